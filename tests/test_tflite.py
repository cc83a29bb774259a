"""Int8 .tflite import: the golden model against LiteRT's reference kernels, and the reader's
mapping and refusals."""

import dataclasses
import math
import re
import sys

import numpy as np
import pytest

from convaccel import quant
from convaccel.golden import conv2d
from convaccel.spec import ConfigError
from convaccel.tflite import (INT8_ONLY, QuantizedConv, TfliteError, conv_model,
                              depthwise_model, load_conv, read_model)

from tflite_models import (add_operator, add_tensor, model_object, pack_model,
                           reference_interpreter)

pytest.importorskip("ai_edge_litert")

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
_INT32_MAX = (1 << 31) - 1


# -- random models -----------------------------------------------------------------------------

def _geometry(rng):
    """Random shapes: 1x1 to 4x4 kernels (rectangular too), stride 1-3, dilation 1-2, SAME or
    VALID, small odd frames."""
    while True:
        height, width = (int(v) for v in rng.integers(1, 10, size=2))
        kernel = tuple(int(v) for v in rng.integers(1, 5, size=2))
        stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
        dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
        padding = str(rng.choice(["SAME", "VALID"]))
        k_eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
        if padding == "VALID" and (k_eff[0] > height or k_eff[1] > width):
            continue
        return dict(height=height, width=width, in_channels=int(rng.integers(1, 6)),
                    out_channels=int(rng.integers(1, 7)), kernel=kernel, stride=stride,
                    dilation=dilation, padding=padding)


def _accumulators(conv, xs):
    """TFLite's int32 accumulators for the inputs ``xs``, ``(inputs, C, H, W)``."""
    raw = dataclasses.replace(conv.layer, requantize=False)
    return np.stack([conv2d(conv.to_layer_input(x), conv.weights, conv.engine_bias, raw)
                     for x in xs])


def _random_model(rng, kind, inputs, layout="dense"):
    """A random one-conv int8 model (bytes) and ``inputs`` inputs for it.

    ``layout`` ``"dense"``: a ``CONV_2D``; ``"grouped"``: a ``CONV_2D`` of 2 or 3 groups (a
    filter with fewer input channels than the input); ``"depthwise"``: a ``DEPTHWISE_CONV_2D``
    with a channel multiplier of 1 to 3.

    ``kind`` ``"spread"``: full-range data, per-channel weight magnitudes and scales spanning
    orders of magnitude, outputs spread over int8. ``"large"``: effective scales above 1 (TFLite
    shifts left, up to 2**12) on small accumulators. ``"ties"``: effective scales of exactly
    1, 1.25, 1.5 or 1.75 times a power of two, on small accumulators, so that ``acc *
    multiplier`` often lands on a half at bit 31 and ``RoundingDivideByPOT`` on a half.
    In every kind ``acc << left_shift`` fits int32, where TFLite's arithmetic is defined.
    """
    g = _geometry(rng)
    c_in, c_out = g["in_channels"], g["out_channels"]
    groups = 1
    if layout == "depthwise":
        groups, c_out = c_in, c_in * int(rng.integers(1, 4))
    elif layout == "grouped":
        groups = int(rng.integers(2, 4))
        c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 4))
    per_group = c_in // groups
    k_h, k_w = g["kernel"]
    input_shape = (1, g["height"], g["width"], c_in)
    zp_in, zp_out = (int(v) for v in rng.integers(-128, 128, size=2))
    if kind == "spread":
        magnitude = rng.choice([1, 3, 15, 127], size=(c_out, 1, 1, 1))
        weights = rng.integers(-magnitude, magnitude, endpoint=True,
                               size=(c_out, k_h, k_w, per_group))
        bias = rng.integers(-1, 2, size=c_out) * rng.integers(0, 1 << 16, size=c_out) \
            * magnitude.ravel() // 16
        xs = rng.integers(-128, 128, size=(inputs, *input_shape))
    else:
        weights = rng.integers(-3, 4, size=(c_out, k_h, k_w, per_group))
        bias = rng.integers(-64, 65, size=c_out)
        near = rng.integers(-4, 5, size=(inputs, *input_shape))
        xs = np.where(rng.random(size=near.shape) < 0.9, np.clip(zp_in + near, -128, 127),
                      rng.integers(-128, 128, size=near.shape))
    weights, bias, xs = weights.astype(np.int8), bias.astype(np.int32), xs.astype(np.int8)

    probe = QuantizedConv.from_parameters(weights, bias, input_shape, input_quant=(1.0, zp_in),
                                          filter_scales=1.0, output_quant=(1.0, zp_out), **{
                                              k: g[k] for k in ("stride", "dilation",
                                                                "padding")})
    acc = _accumulators(probe, xs)
    peak = np.maximum(np.abs(acc).max(axis=(0, 2, 3)), 1)

    if kind == "ties":
        # in * f / out == base * 2**-k exactly: every scale a power of two times 1..1.75.
        in_exp, out_exp = int(rng.integers(-9, -4)), int(rng.integers(-8, -3))
        input_scale, output_scale = 2.0 ** in_exp, 2.0 ** out_exp
        base = rng.choice([1.0, 1.25, 1.5, 1.75], size=c_out)
        k = np.ceil(np.log2(peak * base / 96)).astype(int) + rng.integers(0, 2, size=c_out)
        k = np.maximum(k, 1)
        filter_scales = base * 2.0 ** (out_exp - in_exp - k)
    else:
        input_scale = float(np.float32(rng.uniform(0.5, 1) * 2.0 ** -rng.integers(3, 9)))
        output_scale = float(np.float32(rng.uniform(0.5, 1) * 2.0 ** -rng.integers(1, 7)))
        if kind == "spread":
            effective = rng.uniform(16, 256, size=c_out) / peak * 10 ** rng.uniform(-1, 1, c_out)
        else:
            effective = 2.0 ** rng.uniform(0, np.where(rng.random(c_out) < 0.5, 3, 12))
        filter_scales = effective * output_scale / input_scale
    filter_scales = filter_scales.astype(np.float32)
    for c in range(c_out):
        while True:
            _, shift = quant.quantize_multiplier(
                input_scale * float(filter_scales[c]) / output_scale)
            if int(peak[c]) << max(shift, 0) <= _INT32_MAX:
                break
            filter_scales[c] /= 2
    write, filt = ((depthwise_model, weights.transpose(3, 1, 2, 0)) if layout == "depthwise"
                   else (conv_model, weights))
    model = write(filt, bias, input_shape, stride=g["stride"], dilation=g["dilation"],
                  padding=g["padding"], input_quant=(input_scale, zp_in),
                  filter_scales=filter_scales, output_quant=(output_scale, zp_out),
                  activation=str(rng.choice(ACTIVATIONS)))
    return model, xs


def _ties(conv, acc, y):
    """Counts of the rounding ties hit on the outputs that no clamp decides: ``acc * M`` on
    a half at bit 31; ``RoundingDivideByPOT`` on a half, positive and negative."""
    multiplier = np.array(conv.multiplier, dtype=np.int64).reshape(1, -1, 1, 1)
    shift = np.array(conv.shift, dtype=np.int64).reshape(1, -1, 1, 1)
    product = (acc << np.maximum(shift, 0)) * multiplier
    high = (product + (1 << 30)) >> 31
    right = np.maximum(-shift, 0)
    half = np.where(right > 0, np.int64(1) << np.maximum(right - 1, 0), -1)
    free = (y > conv.act_min) & (y < conv.act_max)
    rdbp = free & ((high & ((np.int64(1) << right) - 1)) == half)
    return np.array([(free & (product % (1 << 31) == 1 << 30)).sum(),
                     (rdbp & (high > 0)).sum(), (rdbp & (high < 0)).sum()])


def test_golden_matches_litert(rng, tmp_path):
    """The golden model (the engine's route) and the direct TFLite route against LiteRT's
    BUILTIN_REF kernels, bit for bit: 100 random models, 5 inputs each."""
    kinds = ["spread", "spread", "large", "ties"] * 25
    cases = 0
    seen = {"activations": set(), "paddings": set(), "positive shifts": 0, "1x1": 0,
            "rectangular": 0, "cropped": 0, "strides": set(), "dilations": set()}
    ties = np.zeros(3, dtype=int)
    for i, kind in enumerate(kinds):
        model, xs = _random_model(rng, kind, inputs=5)
        path = tmp_path / f"m{i}.tflite"
        path.write_bytes(model)
        conv = load_conv(path)
        run = reference_interpreter(model)
        ys = []
        for x in xs:
            y = run(x)
            assert y.dtype == np.int8 and y.shape == conv.output_shape
            np.testing.assert_array_equal(conv.golden(x), y, err_msg=f"model {i} ({kind})")
            np.testing.assert_array_equal(conv.reference(x), y, err_msg=f"model {i} ({kind})")
            ys.append(y[0].transpose(2, 0, 1))
            cases += 1
        if kind == "ties":
            ties += _ties(conv, _accumulators(conv, xs), np.stack(ys))
        seen["activations"].add(conv.activation)
        seen["paddings"].add(conv.padding)
        seen["strides"].update(conv.stride)
        seen["dilations"].update(conv.dilation)
        seen["positive shifts"] += sum(s > 0 for s in conv.shift)
        seen["1x1"] += conv.layer.kernel == (1, 1)
        seen["rectangular"] += conv.layer.kernel[0] != conv.layer.kernel[1]
        seen["cropped"] += (conv.layer.height, conv.layer.width) != conv.input_shape[1:3]
    assert cases == 500
    assert seen["activations"] == set(ACTIVATIONS)
    assert seen["paddings"] == {"SAME", "VALID"}
    assert seen["strides"] == {1, 2, 3} and seen["dilations"] == {1, 2}
    assert seen["positive shifts"] >= 50
    assert min(seen["1x1"], seen["rectangular"], seen["cropped"]) >= 3
    # Ties at bit 31, and at the rounding division with either sign.
    assert all(ties >= 50), ties


def test_grouped_and_depthwise_match_litert(rng, tmp_path):
    """DEPTHWISE_CONV_2D (channel multipliers 1-3) and grouped CONV_2D (2 or 3 groups): the
    golden model (the engine's route, the layer's ``groups``) and the direct TFLite route
    against LiteRT's BUILTIN_REF kernels, bit for bit: 90 random models, 4 inputs each."""
    layouts = ["depthwise", "depthwise", "grouped"] * 30
    kinds = ["spread", "spread", "large", "ties"] * 23
    seen = {"multipliers": set(), "groups": set(), "operators": set(), "activations": set(),
            "strides": set(), "dilations": set(), "paddings": set()}
    for i, (layout, kind) in enumerate(zip(layouts, kinds)):
        model, xs = _random_model(rng, kind, inputs=4, layout=layout)
        conv = load_conv(_write(tmp_path, model, f"m{i}.tflite"))
        layer = conv.layer
        c_in, c_out = conv.input_shape[3], conv.output_shape[3]
        if layout == "depthwise":
            assert conv.operator == "DEPTHWISE_CONV_2D" and layer.groups == c_in
            assert conv.weights.shape[1] == 1
            seen["multipliers"].add(c_out // c_in)
        else:
            assert conv.operator == "CONV_2D" and layer.groups == c_in // conv.weights.shape[1]
        seen["groups"].add(layer.groups)
        run = reference_interpreter(model)
        for x in xs:
            y = run(x)
            assert y.shape == conv.output_shape
            np.testing.assert_array_equal(conv.golden(x), y, err_msg=f"model {i} ({layout})")
            np.testing.assert_array_equal(conv.reference(x), y, err_msg=f"model {i} ({layout})")
        seen["operators"].add(conv.operator)
        seen["activations"].add(conv.activation)
        seen["paddings"].add(conv.padding)
        seen["strides"].update(conv.stride)
        seen["dilations"].update(conv.dilation)
    assert seen["multipliers"] == {1, 2, 3}
    assert {2, 3, 4, 5} <= seen["groups"]
    assert seen["operators"] == {"CONV_2D", "DEPTHWISE_CONV_2D"}
    assert seen["activations"] == set(ACTIVATIONS) and seen["paddings"] == {"SAME", "VALID"}
    assert seen["strides"] == {1, 2, 3} and seen["dilations"] == {1, 2}


# -- edge scales -------------------------------------------------------------------------------

# (input scale, filter scale, output scale) as float32, and QuantizeMultiplier's result for
# double(input) * double(filter) / double(output).
EDGE_SCALES = [
    # 1 and 0.75: exact significands.
    ((0.5, 0.5, 0.25), (1 << 30, 1)),
    ((0.5, 0.375, 0.25), (3 << 29, 0)),
    # 46341**2 * 2**-32: the significand is n + 1/2; TfLiteRound goes away from zero.
    ((46341 * 2.0 ** -16, 46341 * 2.0 ** -16, 1.0), (46341 ** 2 // 2 + 1, 0)),
    # (2**47 - 1) * 2**-47: the significand rounds up to 2**31, renormalized to 2**30.
    ((10610063 * 2.0 ** -24, 13264529 * 2.0 ** -24, 0.5), (1 << 30, 1)),
    # 2**-40: below 2**-32, flushed to zero.
    ((2.0 ** -20, 2.0 ** -20, 1.0), (0, 0)),
    # 2**12: a left shift of 13, beyond the engine's cap of 9.
    ((1.0, 2.0 ** 12, 1.0), (1 << 30, 13)),
    # 3 * 2**-33: the longest right shift, 31.
    ((3.0 * 2 ** -16, 2.0 ** -17, 1.0), (3 << 29, -31)),
]


@pytest.mark.parametrize("scales, expected", EDGE_SCALES)
def test_quantize_multiplier_edges(scales, expected):
    input_scale, filter_scale, output_scale = (float(np.float32(s)) for s in scales)
    assert (input_scale, filter_scale, output_scale) == scales  # exact in float32
    assert quant.quantize_multiplier(input_scale * filter_scale / output_scale) == expected


@pytest.mark.parametrize("scales, expected", EDGE_SCALES)
def test_edge_scales_match_litert(tmp_path, scales, expected):
    """A 1x1 convolution with an edge scale above, on 256 consecutive accumulators in each of
    three windows (around 0, +40 and -90 at the output), against LiteRT.

    (The multiplier's low bits are not observable through int8 outputs: one unit in a 31-bit
    multiplier moves an output by about 2**-23. This checks what is: the shift, the
    renormalization, the flush to zero, a left shift beyond the engine's cap.)
    """
    input_scale, filter_scale, output_scale = scales
    effective = input_scale * filter_scale / output_scale
    left = max(expected[1], 0)
    limit = (_INT32_MAX >> left) - 600
    # acc = bias + 64 * x0 + x1 (input zero point 0): x0, x1 in -8..7 give 256 consecutive
    # accumulators around each channel's bias.
    bias = np.array([0, *(np.clip(round(t / effective), -limit, limit) for t in (40, -90))],
                    dtype=np.int32)
    weights = np.zeros((3, 1, 1, 2), dtype=np.int8)
    weights[:, 0, 0] = (64, 1)
    grid = np.stack(np.meshgrid(np.arange(-8, 8), np.arange(-8, 8), indexing="ij"), axis=-1)
    x = grid.reshape(1, 16, 16, 2).astype(np.int8)
    model = conv_model(weights, bias, x.shape, input_quant=(input_scale, 0),
                       filter_scales=filter_scale, output_quant=(output_scale, -3))
    conv = load_conv(_write(tmp_path, model))
    assert set(zip(conv.multiplier, conv.shift)) == {expected}
    y = reference_interpreter(model)(x)
    np.testing.assert_array_equal(conv.golden(x), y)
    np.testing.assert_array_equal(conv.reference(x), y)


# -- reading -----------------------------------------------------------------------------------

def _small_model(**changes):
    rng = np.random.default_rng(7)
    kw = dict(weights=rng.integers(-128, 128, size=(3, 2, 3, 4)).astype(np.int8),
              bias=np.array([100, -7, 1 << 20], dtype=np.int32), input_shape=(1, 7, 9, 4),
              stride=(2, 1), padding="SAME", input_quant=(0.05, -11),
              filter_scales=[0.01, 0.002, 0.0004], output_quant=(0.1, 9), activation="RELU6",
              name="block1/conv")
    kw.update(changes)
    return kw, conv_model(**kw)


def _write(tmp_path, data, name="model.tflite"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_read_model(tmp_path):
    kw, data = _small_model()
    path = _write(tmp_path, data)
    model = read_model(path)
    assert model.path == path
    assert model.operators == ((0, "CONV_2D"),)
    (source,), (sink,) = model.inputs, model.outputs
    assert (source.name, source.shape, source.type) == ("block1/conv/input", (1, 7, 9, 4), "INT8")
    assert source.zero_point == (-11,) and source.scale == (float(np.float32(0.05)),)
    assert (sink.name, sink.shape, sink.zero_point) == ("block1/conv", (1, 4, 9, 3), (9,))
    conv, = model.convs
    # OHWI -> OIHW
    np.testing.assert_array_equal(conv.weights, kw["weights"].transpose(0, 3, 1, 2))
    assert conv.weights.dtype == np.int8 and conv.bias.dtype == np.int32
    np.testing.assert_array_equal(conv.bias, kw["bias"])
    assert conv.filter_scales == tuple(float(np.float32(s)) for s in kw["filter_scales"])
    assert (conv.input_zero_point, conv.output_zero_point) == (-11, 9)
    assert (conv.input_shape, conv.output_shape) == ((1, 7, 9, 4), (1, 4, 9, 3))
    assert (conv.activation, conv.padding, conv.stride, conv.dilation) == \
        ("RELU6", "SAME", (2, 1), (1, 1))
    assert (conv.act_min, conv.act_max) == quant.activation_range("RELU6", np.float32(0.1), 9)
    for c, f in enumerate(conv.filter_scales):
        assert (conv.multiplier[c], conv.shift[c]) == quant.quantize_multiplier(
            conv.input_scale * f / conv.output_scale)
    layer = conv.layer
    assert (layer.height, layer.width, layer.in_channels, layer.out_channels) == (7, 9, 4, 3)
    assert (layer.kernel, layer.stride, layer.padding) == ((2, 3), (2, 1), "same")
    assert layer.requantize and layer.pad_value == -11 and layer.name == "block1_conv"
    assert (layer.input_bits, layer.weight_bits, layer.input_signed) == (8, 8, True)
    np.testing.assert_array_equal(
        conv.engine_bias, kw["bias"] + 11 * kw["weights"].astype(np.int64).sum(axis=(1, 2, 3)))
    assert layer.bias_bits == 22  # 1 << 20 plus the zero point's correction
    assert conv.requant == quant.hardware_parameters(conv.multiplier, conv.shift, 9,
                                                     conv.act_min, conv.act_max)
    assert load_conv(path).layer == layer


def test_read_model_per_tensor_scale(tmp_path):
    _, data = _small_model(filter_scales=0.003)
    conv = load_conv(_write(tmp_path, data))
    assert conv.filter_scales == (float(np.float32(0.003)),) * 3
    assert len(set(conv.multiplier)) == 1
    x = np.random.default_rng(1).integers(-128, 128, size=(1, 7, 9, 4)).astype(np.int8)
    np.testing.assert_array_equal(conv.golden(x), reference_interpreter(data)(x))


@pytest.mark.parametrize("inputs", [[0, 1], [0, 1, -1]])
def test_read_model_without_bias(tmp_path, inputs):
    # (LiteRT's int8 kernel refuses a CONV_2D without a bias; the reader takes it as zeros.)
    _, data = _small_model()
    model = model_object(data)
    model.subgraphs[0].operators[0].inputs = inputs
    conv = load_conv(_write(tmp_path, pack_model(model)))
    np.testing.assert_array_equal(conv.bias, [0, 0, 0])
    assert conv.bias.dtype == np.int32


@pytest.mark.parametrize("size, kernel, stride, dilation, padding, pads, frame", [
    # TFLite SAME: out = ceil(size / stride), the odd pad after: ConvLayer's "same".
    (16, 3, 1, 1, "SAME", (1, 1), 16),
    (16, 3, 2, 1, "SAME", (0, 1), 16),
    (9, 4, 3, 2, "SAME", (2, 2), 9),
    # A kernel narrower than the stride: no padding, the last row read by no output.
    (4, 1, 2, 1, "SAME", (0, 0), 3),
    # VALID: out = (size - k_eff) // stride + 1; rows past the last window are cropped.
    (7, 3, 2, 1, "VALID", (0, 0), 7),
    (8, 3, 2, 1, "VALID", (0, 0), 7),
    (10, 2, 3, 2, "VALID", (0, 0), 9),
])
def test_padding(tmp_path, size, kernel, stride, dilation, padding, pads, frame):
    weights = np.ones((1, kernel, 1, 1), dtype=np.int8)
    data = conv_model(weights, None, (1, size, 5, 1), stride=(stride, 1),
                      dilation=(dilation, 1), padding=padding, input_quant=(1.0, 3),
                      output_quant=(1.0, 0))
    conv = load_conv(_write(tmp_path, data))
    assert conv.layer.padding == padding.lower()
    assert conv.layer.pads[:2] == pads and conv.layer.height == frame
    assert conv.layer.output_size[0] == conv.output_shape[1]
    x = np.arange(size * 5).reshape(1, size, 5, 1).astype(np.int8)
    assert conv.to_layer_input(x).shape == (1, frame, 5)
    np.testing.assert_array_equal(conv.golden(x), reference_interpreter(data)(x))


def test_two_operators_wrong(tmp_path):
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    _, data = _small_model()
    model = model_object(data)
    graph = model.subgraphs[0]
    conv_out = graph.outputs[0]
    pooled = add_tensor(model, "pool", (1, 2, 4, 3), scale=0.1, zero_point=9)
    options = schema.Pool2DOptionsT()
    options.padding, options.strideH, options.strideW = schema.Padding.VALID, 2, 2
    options.filterHeight, options.filterWidth = 2, 2
    add_operator(model, "MAX_POOL_2D", [conv_out], [pooled], options)
    shape = add_tensor(model, "shape", (2,), "INT32", data=np.array([1, 24], dtype="<i4"))
    flat = add_tensor(model, "flat", (1, 24), scale=0.1, zero_point=9)
    add_operator(model, "RESHAPE", [pooled, shape], [flat])
    graph.outputs = [flat]
    path = _write(tmp_path, pack_model(model))

    assert read_model(path).operators == ((0, "CONV_2D"), (1, "MAX_POOL_2D"), (2, "RESHAPE"))
    with pytest.raises(TfliteError, match=r"^.*/model\.tflite: operators 1 \(MAX_POOL_2D\), "
                                          r"2 \(RESHAPE\) are not supported by this version: "
                                          r"only a single CONV_2D or DEPTHWISE_CONV_2D$"):
        load_conv(path)
    assert issubclass(TfliteError, ConfigError)

    graph.operators = graph.operators[:2]
    graph.outputs = [pooled]
    path = _write(tmp_path, pack_model(model))
    with pytest.raises(TfliteError, match=r"^.*/model\.tflite: operator 1 \(MAX_POOL_2D\) is not "
                                          r"supported by this version: only a single CONV_2D or "
                                          r"DEPTHWISE_CONV_2D$"):
        load_conv(path)
    # The model itself runs (the pooled output of the convolution).
    reference_interpreter(pack_model(model))(np.zeros((1, 7, 9, 4), dtype=np.int8))


def test_float_model_wrong(tmp_path):
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    _, data = _small_model()
    model = model_object(data)
    for t in model.subgraphs[0].tensors:
        t.type, t.quantization = schema.TensorType.FLOAT32, None
    path = _write(tmp_path, pack_model(model))
    with pytest.raises(TfliteError, match=r"^.*/model\.tflite: the model's input "
                                          r"'block1/conv/input' is float32; int8 only: convert "
                                          r"with full-integer quantization \(TFLiteConverter "
                                          r"with representative_dataset and inference_input_type"
                                          r"/inference_output_type = tf\.int8\)$"):
        read_model(path)


def test_float_conv_wrong(tmp_path):
    # int8 in and out, a float32 CONV_2D between DEQUANTIZE and QUANTIZE.
    _, data = _small_model()
    model = model_object(data)
    graph = model.subgraphs[0]
    conv = graph.operators[0]
    x_float = add_tensor(model, "x_float", (1, 7, 9, 4), "FLOAT32")
    y_float = add_tensor(model, "y_float", (1, 4, 9, 3), "FLOAT32")
    w_float = add_tensor(model, "w_float", (3, 2, 3, 4), "FLOAT32",
                         data=np.zeros((3, 2, 3, 4), dtype="<f4"))
    graph.operators = []
    add_operator(model, "DEQUANTIZE", [graph.inputs[0]], [x_float])
    conv.inputs = [x_float, w_float, -1]
    conv.outputs = [y_float]
    graph.operators.append(conv)
    add_operator(model, "QUANTIZE", [y_float], [graph.outputs[0]])
    path = _write(tmp_path, pack_model(model))
    with pytest.raises(TfliteError, match=r"^.*/model\.tflite: operator 1 \(CONV_2D\): the input "
                                          r"'x_float' is float32; " + re.escape(INT8_ONLY) + "$"):
        read_model(path)


def test_uint8_model_wrong(tmp_path):
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    _, data = _small_model()
    model = model_object(data)
    model.subgraphs[0].tensors[0].type = schema.TensorType.UINT8
    path = _write(tmp_path, pack_model(model))
    with pytest.raises(TfliteError, match=r"^.*/model\.tflite: the model's input "
                                          r"'block1/conv/input' is uint8; int8 only: convert"):
        read_model(path)


def test_filter_zero_point_wrong(tmp_path):
    _, data = _small_model()
    model = model_object(data)
    model.subgraphs[0].tensors[1].quantization.zeroPoint = [0, 3, 0]
    path = _write(tmp_path, pack_model(model))
    with pytest.raises(TfliteError, match=r"^.*/model\.tflite: operator 0 \(CONV_2D\): the filter "
                                          r"'block1/conv/weights' has non-zero zero points "
                                          r"\[0, 3, 0\]; TFLite's int8 convolution needs "
                                          r"symmetric weights \(zero points 0\)$"):
        load_conv(path)


def test_batch_wrong(tmp_path):
    _, data = _small_model()
    model = model_object(data)
    for t in model.subgraphs[0].tensors:
        if t.name in (b"block1/conv/input", b"block1/conv"):
            t.shape[0] = 2
    path = _write(tmp_path, pack_model(model))
    with pytest.raises(TfliteError, match=r"^.*/model\.tflite: operator 0 \(CONV_2D\): the input "
                                          r"'block1/conv/input' has a batch of 2; the batch must "
                                          r"be 1$"):
        load_conv(path)


def test_activation_wrong(tmp_path):
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    _, data = _small_model()
    model = model_object(data)
    model.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = \
        schema.ActivationFunctionType.TANH
    path = _write(tmp_path, pack_model(model))
    with pytest.raises(TfliteError, match=r"^.*: operator 0 \(CONV_2D\): the fused activation "
                                          r"TANH is not supported; NONE, RELU, RELU6 or "
                                          r"RELU_N1_TO_1 are$"):
        load_conv(path)


def test_file_wrong(tmp_path):
    with pytest.raises(TfliteError, match=r"^.*/absent\.tflite: no such file$"):
        read_model(tmp_path / "absent.tflite")
    with pytest.raises(TfliteError, match=r"^.*/folder: cannot read the file: Is a directory$"):
        (tmp_path / "folder").mkdir()
        read_model(tmp_path / "folder")
    path = _write(tmp_path, b"[layer]\nheight = 5\n", "layer.toml")
    with pytest.raises(TfliteError, match=r"^.*/layer\.toml: not a \.tflite model \(a TFLite "
                                          r"flatbuffer starts with a root offset and the "
                                          r"identifier TFL3\)$"):
        read_model(path)
    _, data = _small_model()
    path = _write(tmp_path, data[:200], "cut.tflite")
    with pytest.raises(TfliteError, match=r"^.*/cut\.tflite: a damaged \.tflite file \("):
        read_model(path)
    path = _write(tmp_path, data[:8], "header.tflite")
    with pytest.raises(TfliteError, match=r"^.*/header\.tflite: a damaged \.tflite file \("):
        read_model(path)


def test_damaged_file_wrong(tmp_path):
    # flatbuffers' Python runtime follows offsets unchecked: a damaged file is read or refused,
    # never a traceback or a hang.
    rng = np.random.default_rng(11)
    _, data = _small_model()
    outcomes = {"read": 0, "refused": 0}
    for _ in range(300):
        damaged = bytearray(data)
        for where in rng.integers(0, len(data), size=rng.integers(1, 8)):
            damaged[where] = int(rng.integers(0, 256))
        path = _write(tmp_path, bytes(damaged), "damaged.tflite")
        try:
            read_model(path)
            outcomes["read"] += 1
        except TfliteError as e:
            assert str(e).startswith(f"{path}: ")
            outcomes["refused"] += 1
    assert min(outcomes.values()) > 20, outcomes


def test_schema_missing_wrong(tmp_path, monkeypatch):
    kw, data = _small_model()
    path = _write(tmp_path, data)
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    with pytest.raises(TfliteError, match=r"^writing \.tflite models needs TFLite's flatbuffer "
                                          r"schema with its object API: pip install "
                                          r"ai-edge-litert$"):
        conv_model(**kw)
    monkeypatch.setitem(sys.modules, "tflite", None)
    with pytest.raises(TfliteError, match=r"^reading \.tflite models needs TFLite's flatbuffer "
                                          r"schema: pip install ai-edge-litert \(or the smaller, "
                                          r"pure-Python tflite\)$"):
        read_model(path)


def test_read_with_tflite_package(tmp_path, monkeypatch):
    # Reading needs only the generated reader classes: the pure-Python `tflite` package has them.
    _, data = _small_model()
    path = _write(tmp_path, data)
    expected = load_conv(path)
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    pytest.importorskip("tflite")
    conv = load_conv(path)
    assert conv.layer == expected.layer
    for field in ("multiplier", "shift", "act_min", "act_max", "filter_scales", "input_shape"):
        assert getattr(conv, field) == getattr(expected, field)
    np.testing.assert_array_equal(conv.weights, expected.weights)
    np.testing.assert_array_equal(conv.bias, expected.bias)


def test_layer_data_wrong(tmp_path):
    _, data = _small_model()
    conv = load_conv(_write(tmp_path, data))
    with pytest.raises(ValueError, match=r"^the input must have the model's shape \(1, 7, 9, 4\) "
                                         r"\(NHWC\), not \(7, 9, 4\)$"):
        conv.golden(np.zeros((7, 9, 4), dtype=np.int8))
    with pytest.raises(ValueError, match=r"^the input must hold int8 values \(-128\.\.127\)$"):
        conv.reference(np.full((1, 7, 9, 4), 128))
    with pytest.raises(TypeError, match=r"^the input must hold integers, not float64$"):
        conv.to_layer_input(np.zeros((1, 7, 9, 4)))
    with pytest.raises(ValueError, match=r"^the layer's output must have the shape \(3, 4, 9\) "
                                         r"\(C, H, W\), not \(4, 9, 3\)$"):
        conv.from_layer_output(np.zeros((4, 9, 3), dtype=np.int64))


def test_example_model():
    from pathlib import Path
    path = Path(__file__).parent.parent / "examples" / "int8_conv.tflite"
    conv = load_conv(path)
    assert conv.layer.kernel == (3, 3) and conv.layer.out_channels == 8
    x = np.random.default_rng(3).integers(-128, 128, size=conv.input_shape).astype(np.int8)
    np.testing.assert_array_equal(conv.golden(x), reference_interpreter(path.read_bytes())(x))
    assert math.prod(conv.output_shape) == 16 * 16 * 8


# -- depthwise and grouped ---------------------------------------------------------------------

def _depthwise(**changes):
    rng = np.random.default_rng(8)
    kw = dict(weights=rng.integers(-128, 128, size=(1, 3, 3, 6)).astype(np.int8),
              bias=np.arange(6, dtype=np.int32) * 100 - 250, input_shape=(1, 7, 9, 3),
              stride=(1, 2), padding="SAME", input_quant=(0.05, -11),
              filter_scales=[0.01, 0.002, 0.0004, 0.003, 0.02, 0.001],
              output_quant=(0.1, 9), activation="RELU", name="dw")
    kw.update(changes)
    return kw, depthwise_model(**kw)


def test_read_depthwise_model(tmp_path):
    kw, data = _depthwise()
    model = read_model(_write(tmp_path, data))
    assert model.operators == ((0, "DEPTHWISE_CONV_2D"),)
    conv, = model.convs
    assert conv.operator == "DEPTHWISE_CONV_2D"
    # (1, H, W, O) -> OIHW with one input channel a filter; multiplier 2: filters 2c and 2c + 1
    # read input channel c
    np.testing.assert_array_equal(conv.weights, kw["weights"].transpose(3, 0, 1, 2))
    layer = conv.layer
    assert (layer.in_channels, layer.out_channels, layer.groups) == (3, 6, 3)
    assert layer.weight_shape == (6, 1, 3, 3) and layer.name == "dw"
    assert conv.filter_scales == tuple(float(np.float32(s)) for s in kw["filter_scales"])
    # the options' depth_multiplier is written as TFLite's converter does
    options = model_object(data).subgraphs[0].operators[0].builtinOptions
    assert options.depthMultiplier == 2
    np.testing.assert_array_equal(
        conv.engine_bias, kw["bias"] + 11 * kw["weights"].astype(np.int64).sum(axis=(0, 1, 2)))
    x = np.random.default_rng(2).integers(-128, 128, size=(1, 7, 9, 3)).astype(np.int8)
    y = reference_interpreter(data)(x)
    np.testing.assert_array_equal(conv.golden(x), y)
    assert len(np.unique(y)) > 8


def test_depthwise_multiplier_from_shapes(tmp_path):
    # TFLite derives the channel multiplier from the shapes (ComputeDepthMultiplier) and does
    # not read the options' depth_multiplier; so does the reader.
    _, data = _depthwise()
    model = model_object(data)
    model.subgraphs[0].operators[0].builtinOptions.depthMultiplier = 5
    data = pack_model(model)
    conv = load_conv(_write(tmp_path, data))
    assert conv.layer.groups == 3 and conv.layer.out_channels == 6
    x = np.random.default_rng(3).integers(-128, 128, size=(1, 7, 9, 3)).astype(np.int8)
    np.testing.assert_array_equal(conv.golden(x), reference_interpreter(data)(x))


def test_depthwise_filter_wrong(tmp_path):
    _, data = _depthwise()
    model = model_object(data)
    model.subgraphs[0].tensors[0].shape = [1, 7, 9, 4]          # 6 filters, 4 input channels
    path = _write(tmp_path, pack_model(model))
    with pytest.raises(TfliteError, match=r"^.*/model\.tflite: operator 0 \(DEPTHWISE_CONV_2D\): "
                                          r"the filter 'dw/weights' has 6 output channels, not a "
                                          r"multiple of the input's 4 \(the channel multiplier "
                                          r"is out_channels / in_channels\)$"):
        load_conv(path)
    model = model_object(data)
    model.subgraphs[0].tensors[1].shape = [2, 3, 3, 3]
    path = _write(tmp_path, pack_model(model))
    with pytest.raises(TfliteError, match=r"^.*: operator 0 \(DEPTHWISE_CONV_2D\): the filter "
                                          r"'dw/weights' has the shape \(2, 3, 3, 3\); a "
                                          r"depthwise filter is \(1, kernel_h, kernel_w, "
                                          r"out_channels\)$"):
        load_conv(path)
    model = model_object(data)
    model.subgraphs[0].tensors[1].quantization.quantizedDimension = 0
    path = _write(tmp_path, pack_model(model))
    with pytest.raises(TfliteError, match=r"^.*: operator 0 \(DEPTHWISE_CONV_2D\): the filter "
                                          r"'dw/weights' is quantized along dimension 0; "
                                          r"per-channel scales are along the output channels "
                                          r"\(3\)$"):
        load_conv(path)


def test_depthwise_model_wrong():
    kw, _ = _depthwise()
    with pytest.raises(ValueError, match=r"^a depthwise filter is \(1, kernel_h, kernel_w, "
                                         r"out_channels\), not \(6, 3, 3, 1\)$"):
        depthwise_model(**{**kw, "weights": kw["weights"].transpose(3, 1, 2, 0)})
    with pytest.raises(ValueError, match=r"^the filter's 6 output channels are not a multiple "
                                         r"of the input's 4 channels$"):
        depthwise_model(**{**kw, "input_shape": (1, 7, 9, 4)})


def test_grouped_conv_wrong():
    kw, _ = _small_model()
    # 4 input channels, filters of 3: no whole number of groups
    with pytest.raises(ValueError, match=r"^the input has 4 channels and the filter 3: a "
                                         r"filter's input channels must divide the input's "
                                         r"\(groups = input channels / filter input channels\)$"):
        conv_model(**{**kw, "weights": kw["weights"][..., :3]})
    # 2 groups of 2 input channels, 3 filters: not a whole number a group
    with pytest.raises(ValueError, match=r"^the filter's 3 output channels do not divide into "
                                         r"the 2 groups of the input's 4 channels$"):
        conv_model(**{**kw, "weights": kw["weights"][..., :2]})


def test_example_depthwise_model():
    from pathlib import Path
    path = Path(__file__).parent.parent / "examples" / "int8_depthwise.tflite"
    conv = load_conv(path)
    assert conv.operator == "DEPTHWISE_CONV_2D"
    assert conv.layer.groups == conv.layer.in_channels == conv.layer.out_channels == 8
    x = np.random.default_rng(4).integers(-128, 128, size=conv.input_shape).astype(np.int8)
    y = reference_interpreter(path.read_bytes())(x)
    np.testing.assert_array_equal(conv.golden(x), y)
    assert len(np.unique(y)) > 32
