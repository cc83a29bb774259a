"""Write examples/int8_conv.tflite: one int8 CONV_2D as TFLite's converter writes a fully
integer-quantized convolution (3x3, 4 to 8 channels, a 16x16 input, SAME, a fused RELU6,
per-channel weight scales, non-zero zero points), from seeded random float weights.

    .venv/bin/python examples/make_int8_conv.py

Needs ai-edge-litert (TFLite's flatbuffer schema). The same seed writes the same bytes.
"""

from pathlib import Path

import numpy as np

from convaccel.tflite import conv_model

INPUT_SHAPE = (1, 16, 16, 4)  # NHWC
OUT_CHANNELS, KERNEL = 8, 3
INPUT_QUANT = (0.02, -6)      # scale, zero point: inputs from -2.44 to 2.66
OUTPUT_QUANT = (0.04, -40)    # -3.52 to 6.68; RELU6 clamps at both ends (-40 and 110)


def main():
    path = Path(__file__).with_name("int8_conv.tflite")
    rng = np.random.default_rng(2024)
    c_in = INPUT_SHAPE[3]
    # Float weights with a spread of magnitudes over the output channels, quantized
    # symmetrically per channel (the scale maps the largest weight to 127), as the converter
    # does; the bias is quantized with input_scale * filter_scale.
    spread = 0.05 * 2.0 ** rng.uniform(-2, 2, size=(OUT_CHANNELS, 1, 1, 1))
    weights = rng.normal(0, 1, size=(OUT_CHANNELS, KERNEL, KERNEL, c_in)) * spread
    filter_scales = (np.abs(weights).max(axis=(1, 2, 3)) / 127).astype(np.float32)
    weights = np.round(weights / filter_scales[:, None, None, None]).astype(np.int8)
    bias_scales = np.float32(INPUT_QUANT[0]) * filter_scales
    bias = np.round(rng.normal(0.5, 0.5, size=OUT_CHANNELS) / bias_scales).astype(np.int32)
    model = conv_model(weights, bias, INPUT_SHAPE, padding="SAME", input_quant=INPUT_QUANT,
                       filter_scales=filter_scales, output_quant=OUTPUT_QUANT,
                       activation="RELU6", name="int8_conv")
    path.write_bytes(model)
    print(f"{path}: {len(model)} bytes")


if __name__ == "__main__":
    main()
