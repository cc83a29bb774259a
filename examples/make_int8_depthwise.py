"""Write examples/int8_depthwise.tflite: one int8 DEPTHWISE_CONV_2D as TFLite's converter writes a
fully integer-quantized MobileNet-style depthwise convolution (3x3, 8 channels filtered each on
its own, channel multiplier 1, a 16x16 input, SAME, a fused RELU6, per-channel weight scales,
non-zero zero points), from seeded random float weights.

    .venv/bin/python examples/make_int8_depthwise.py

Needs ai-edge-litert (TFLite's flatbuffer schema). The same seed writes the same bytes.
"""

from pathlib import Path

import numpy as np

from convaccel.tflite import depthwise_model

INPUT_SHAPE = (1, 16, 16, 8)  # NHWC
MULTIPLIER, KERNEL = 1, 3
INPUT_QUANT = (0.02, -6)      # scale, zero point: inputs from -2.44 to 2.66
OUTPUT_QUANT = (0.03, -50)    # -2.34 to 5.31; RELU6 clamps at 0 (-50)


def main():
    path = Path(__file__).with_name("int8_depthwise.tflite")
    rng = np.random.default_rng(2025)
    c_out = INPUT_SHAPE[3] * MULTIPLIER
    # Float weights with a spread of magnitudes over the channels, quantized symmetrically per
    # channel (the scale maps the largest weight to 127), as the converter does; the filter is
    # TFLite's depthwise (1, kernel_h, kernel_w, out_channels), the bias quantized with
    # input_scale * filter_scale.
    spread = 0.3 * 2.0 ** rng.uniform(-1, 1, size=(1, 1, 1, c_out))
    weights = rng.normal(0, 1, size=(1, KERNEL, KERNEL, c_out)) * spread
    filter_scales = (np.abs(weights).max(axis=(0, 1, 2)) / 127).astype(np.float32)
    weights = np.round(weights / filter_scales).astype(np.int8)
    bias_scales = np.float32(INPUT_QUANT[0]) * filter_scales
    bias = np.round(rng.normal(0.5, 0.5, size=c_out) / bias_scales).astype(np.int32)
    model = depthwise_model(weights, bias, INPUT_SHAPE, padding="SAME",
                            input_quant=INPUT_QUANT, filter_scales=filter_scales,
                            output_quant=OUTPUT_QUANT, activation="RELU6",
                            name="int8_depthwise")
    path.write_bytes(model)
    print(f"{path}: {len(model)} bytes")


if __name__ == "__main__":
    main()
