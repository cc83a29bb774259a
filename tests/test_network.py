"""Whole int8 networks from .tflite files: the golden model of a chain of stages against
LiteRT's reference kernels (BUILTIN_REF), on the digits model and on generated chains, and the
reader's refusals."""

import re
from pathlib import Path

import numpy as np
import pytest

from convaccel import golden, quant
from convaccel.network import (NETWORK_OPERATORS, Conv, Dense, Network, Pool, Reshape,
                               load_network, project_shape, to_project)
from convaccel.tflite import INT8_ONLY, TfliteError

from tflite_models import ChainModel, add_operator, add_tensor, model_object, pack_model, \
    reference_interpreter

pytest.importorskip("ai_edge_litert")

DIGITS = Path(__file__).parents[1] / "examples" / "digits"
DIGITS16 = Path(__file__).parents[1] / "examples" / "digits16"
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def _write(tmp_path, data, name="model.tflite"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _check(tmp_path, data, xs, name="model.tflite"):
    """Load the model ``data``, run the inputs ``xs`` through its golden model and LiteRT's
    reference kernels, and require them equal; return the network and the outputs."""
    net = load_network(_write(tmp_path, data, name))
    run = reference_interpreter(data)
    ys = []
    for i, x in enumerate(xs):
        y = run(x)
        assert y.dtype == np.int8 and y.shape == net.output_shape
        np.testing.assert_array_equal(net.golden(x), y, err_msg=f"input {i}")
        ys.append(y)
    return net, ys


# -- the digits model --------------------------------------------------------------------------

def test_digits_model_matches_litert():
    """The digits model (examples/digits): every image of its committed test split (360) gives
    LiteRT's output tensor bit for bit."""
    path = DIGITS / "digits.tflite"
    split = np.load(DIGITS / "digits_test.npz")
    xs, labels = split["x"], split["labels"]
    assert xs.shape == (360, 1, 8, 8, 1) and xs.dtype == np.int8
    net = load_network(path)
    assert [s.operator for s in net.stages] == ["CONV_2D", "CONV_2D", "MAX_POOL_2D", "RESHAPE",
                                                "FULLY_CONNECTED"]
    assert net.input_shape == (1, 8, 8, 1) and net.output_shape == (1, 10)
    run = reference_interpreter(path.read_bytes())
    correct = 0
    for i, x in enumerate(xs):
        y = run(x)
        np.testing.assert_array_equal(net.golden(x), y, err_msg=f"test image {i}")
        correct += int(np.argmax(y)) == labels[i]
    # (a trained classifier: make_digits.py reports its accuracy)
    assert correct / len(xs) > 0.9


def test_digits_stages():
    net = load_network(DIGITS / "digits.tflite")
    conv1, conv2, pool, flat, dense = net.stages
    assert isinstance(conv1, Conv) and conv1.layer.kernel == (3, 3)
    assert (conv1.layer.in_channels, conv1.layer.out_channels) == (1, 8)
    assert (conv2.layer.in_channels, conv2.layer.out_channels) == (8, 16)
    assert conv1.activation == conv2.activation == "RELU"
    assert isinstance(pool, Pool) and pool.kernel == pool.stride == (2, 2)
    assert pool.output_shape == (1, 4, 4, 16)
    assert isinstance(flat, Reshape) and flat.output_shape == (1, 256)
    assert isinstance(dense, Dense) and dense.weights.shape == (10, 256)
    assert net.macs == 8 * 8 * 8 * 9 + 8 * 8 * 16 * 9 * 8 + 256 * 10
    assert [t.index for t in net.stages] == [0, 1, 2, 3, 4]
    # every stage boundary, in the project's layouts
    x = np.load(DIGITS / "digits_test.npz")["x"][0]
    assert [t.shape for t in net.trace(x)] == [(8, 8, 8), (16, 8, 8), (16, 4, 4), (256,), (10,)]


def test_digits16_model_matches_litert():
    """The bigger model (examples/digits16: 16x16 input, three convolutions of 8, 16 and 32
    channels, each followed by a max pool, then a dense classifier): every image of its
    committed test split (360) gives LiteRT's output tensor bit for bit."""
    path = DIGITS16 / "digits16.tflite"
    split = np.load(DIGITS16 / "digits16_test.npz")
    xs, labels = split["x"], split["labels"]
    assert xs.shape == (360, 1, 16, 16, 1) and xs.dtype == np.int8
    net = load_network(path)
    assert [s.operator for s in net.stages] == [
        "CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D",
        "RESHAPE", "FULLY_CONNECTED"]
    convs = [s for s in net.stages if isinstance(s, Conv)]
    assert [(c.layer.in_channels, c.layer.out_channels) for c in convs] == \
        [(1, 8), (8, 16), (16, 32)]
    assert all(c.layer.kernel == (3, 3) and c.activation == "RELU" for c in convs)
    assert net.input_shape == (1, 16, 16, 1) and net.output_shape == (1, 10)
    assert [t.shape for t in net.trace(xs[0])] == [
        (8, 16, 16), (8, 8, 8), (16, 8, 8), (16, 4, 4), (32, 4, 4), (32, 2, 2), (128,), (10,)]
    run = reference_interpreter(path.read_bytes())
    correct = 0
    for i, x in enumerate(xs):
        y = run(x)
        np.testing.assert_array_equal(net.golden(x), y, err_msg=f"test image {i}")
        correct += int(np.argmax(y)) == labels[i]
    # (a trained classifier: make_digits16.py reports its accuracy)
    assert correct / len(xs) > 0.9


# -- generated chains --------------------------------------------------------------------------

def _filter(rng, c_out, *shape):
    """int8 weights of a spread of magnitudes, and scales that keep outputs inside int8."""
    magnitude = rng.choice([3, 15, 127], size=(c_out,) + (1,) * len(shape))
    w = rng.integers(-magnitude, magnitude, endpoint=True, size=(c_out, *shape))
    return w.astype(np.int8)


def _scales(rng, w, input_scale, output_scale, typical):
    """Filter scales mapping a typical accumulator of ``w`` to ``typical`` output steps."""
    reach = np.sqrt((w.reshape(len(w), -1).astype(float) ** 2).sum(axis=1)) * 60 + 1
    return (typical * output_scale / input_scale / reach
            * 10 ** rng.uniform(-0.3, 0.3, len(w))).astype(np.float32)


def _window_sums(frame, pool):
    """Per output of the pooling ``pool``, the sum of its taps inside ``frame`` ``(C, H, W)``
    and their count."""
    from numpy.lib.stride_tricks import sliding_window_view
    top, bottom, left, right = pool.pads
    (s_h, s_w) = pool.stride
    out = []
    for a in (frame, np.ones_like(frame)):
        padded = np.pad(a, ((0, 0), (top, bottom), (left, right)))
        windows = sliding_window_view(padded, pool.kernel, axis=(1, 2))[:, ::s_h, ::s_w]
        out.append(windows.sum(axis=(3, 4)))
    return out


def test_pooling_matches_litert(rng, tmp_path):
    """MAX_POOL_2D and AVERAGE_POOL_2D after a convolution: kernels 1-3 (rectangular too),
    strides 1-3, SAME and VALID, every fused activation, odd frames; 60 models, 3 inputs each.
    Average pooling's ties (a sum half-way between two multiples of the count, on both sides
    of zero) and SAME's partial windows are hit."""
    seen = {"operators": set(), "paddings": set(), "activations": set(), "strides": set(),
            "partial": 0}
    ties = np.zeros(2, dtype=int)
    for i in range(60):
        h, w, c = (int(v) for v in rng.integers(3, 8, size=3))
        kind = ["MAX", "AVERAGE"][i % 2]
        kernel = tuple(int(v) for v in rng.integers(1, 4, size=2))
        stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
        padding = ["SAME", "VALID"][(i // 2) % 2]
        activation = ACTIVATIONS[(i // 4) % 4]
        zp = int(rng.integers(-100, 100))
        q = (float(rng.uniform(0.01, 0.1)), zp)
        weights = _filter(rng, c, 1, 1, 2)
        chain = ChainModel((1, h, w, 2), (0.03, -5))
        chain.conv(weights, rng.integers(-500, 500, size=c), _scales(rng, weights, 0.03, q[0],
                                                                      40), q)
        chain.pool(kind, kernel, stride, padding, activation)
        xs = rng.integers(-128, 128, size=(3, 1, h, w, 2)).astype(np.int8)
        net, _ = _check(tmp_path, chain.bytes(), xs)
        pool = net.stages[1]
        assert pool.operator == f"{kind}_POOL_2D"
        seen["operators"].add(pool.operator)
        seen["paddings"].add(pool.padding)
        seen["activations"].add(pool.activation)
        seen["strides"].update(pool.stride)
        seen["partial"] += any(pool.pads)
        if kind == "AVERAGE":
            for x in xs:
                sums, counts = _window_sums(net.trace(x)[0], pool)
                tie = 2 * (sums % counts) == counts
                ties += [(tie & (sums > 0)).sum(), (tie & (sums < 0)).sum()]
    assert seen["operators"] == {"MAX_POOL_2D", "AVERAGE_POOL_2D"}
    assert seen["paddings"] == {"SAME", "VALID"} and seen["activations"] == set(ACTIVATIONS)
    assert seen["strides"] == {1, 2, 3} and seen["partial"] >= 10
    assert all(ties >= 10), ties


def test_dense_matches_litert(rng, tmp_path):
    """FULLY_CONNECTED: per-tensor and per-output weight scales, with and without a bias, on a
    flattened frame, directly on a 4-D frame (TFLite flattens it in (h, w, c) order) and on a
    vector; scales of powers of two on small sums, so that many products land on a half
    (LiteRT rounds them away from zero; the convolutions' fixed-point form would round some
    differently); 48 models, 4 inputs each."""
    seen = {"per output": 0, "per tensor": 0, "no bias": 0, "4-D": 0, "activations": set()}
    halves = differ = 0
    for i in range(48):
        h, w, c = (int(v) for v in rng.integers(1, 5, size=3))
        units = int(rng.integers(1, 9))
        per_output, with_bias, ties = i % 2 == 0, i % 3 != 0, i % 4 < 2
        layout = ["flatten", "4-D", "vector"][i % 3]
        activation = ACTIVATIONS[(i // 3) % 4]
        q_in = (2.0 ** -5, int(rng.integers(-20, 20))) if ties else (0.03, -7)
        q_out = (2.0 ** -4, int(rng.integers(-30, 30))) if ties else (0.07, 11)
        n = h * w * c
        chain = ChainModel((1, n) if layout == "vector" else (1, h, w, c), q_in)
        if layout == "flatten":
            chain.reshape()
        if ties:
            weights = rng.integers(-3, 4, size=(units, n)).astype(np.int8)
            scales = (rng.choice([1.0, 1.25, 1.5, 1.75], size=units if per_output else 1)
                      * 2.0 ** -rng.integers(1, 4, size=units if per_output else 1))
            bias = rng.integers(-40, 40, size=units)
        else:
            weights = _filter(rng, units, n)
            scales = _scales(rng, weights, q_in[0], q_out[0], 40)[:units if per_output else 1]
            bias = rng.integers(-3000, 3000, size=units)
        chain.dense(weights, bias if with_bias else None, scales, q_out, activation)
        xs = rng.integers(-128, 128, size=(4, *chain.model.subgraphs[0].tensors[0].shape))
        net, ys = _check(tmp_path, chain.bytes(), xs.astype(np.int8))
        dense = net.stages[-1]
        assert dense.weights.shape == (units, *project_shape(dense.input_shape))
        assert len(dense.scales) == units
        seen["per output" if per_output and units > 1 else "per tensor"] += 1
        seen["no bias"] += not with_bias
        seen["4-D"] += len(dense.input_shape) == 4
        seen["activations"].add(activation)
        if ties:
            for x in xs:
                frame = [to_project(x.astype(np.int64)), *net.trace(x)][-2]
                acc = golden.dense(frame, dense.weights, dense.engine_bias)
                value = acc * np.array(dense.scales)
                halves += int((value - np.floor(value) == 0.5).sum())
                # the convolutions' fixed-point requantization would round some differently
                m, sh = zip(*(quant.quantize_multiplier(v) for v in dense.scales))
                fixed = quant.requantize(acc, m, sh, dense.output_zero_point, dense.act_min,
                                         dense.act_max)
                differ += int((fixed != net.golden(x)[0]).sum())
    assert min(seen["per output"], seen["per tensor"], seen["no bias"], seen["4-D"]) >= 8
    assert seen["activations"] == set(ACTIVATIONS)
    assert halves >= 15
    assert differ >= 10, differ  # (the test tells the two forms apart)


def test_chain_matches_litert(rng, tmp_path):
    """Longer chains: conv (1x1 and 3x3), depthwise, average pooling with SAME padding and a
    stride of 2, max pooling, a flatten, two dense layers; 6 models, 5 inputs each."""
    for i in range(6):
        q = [(float(np.float32(rng.uniform(0.01, 0.1))), int(rng.integers(-60, 60)))
             for _ in range(6)]
        chain = ChainModel((1, 9, 7, 3), q[0])
        w1 = _filter(rng, 6, 1 + 2 * (i % 2), 1 + 2 * (i % 2), 3)
        chain.conv(w1, rng.integers(-300, 300, size=6), _scales(rng, w1, q[0][0], q[1][0], 40),
                   q[1], activation="RELU")
        chain.pool("AVERAGE", (3, 2), 2, "SAME")
        wd = _filter(rng, 1, 3, 3, 12)[0][None]
        chain.conv(wd, rng.integers(-300, 300, size=12),
                   _scales(rng, wd.transpose(3, 1, 2, 0), q[1][0], q[2][0], 30), q[2],
                   stride=1, activation="RELU6", depthwise=True)
        chain.pool("MAX", 2, 2, "SAME")
        chain.reshape()
        n = int(np.prod(chain.shape))
        w2 = _filter(rng, 16, n)
        chain.dense(w2, rng.integers(-900, 900, size=16),
                    _scales(rng, w2, q[2][0], q[3][0], 40), q[3], activation="RELU")
        w3 = _filter(rng, 5, 16)
        chain.dense(w3, rng.integers(-900, 900, size=5), _scales(rng, w3, q[3][0], q[4][0], 40)[:1],
                    q[4])
        xs = rng.integers(-128, 128, size=(5, 1, 9, 7, 3)).astype(np.int8)
        net, ys = _check(tmp_path, chain.bytes(), xs)
        assert [s.operator for s in net.stages] == [
            "CONV_2D", "AVERAGE_POOL_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "RESHAPE",
            "FULLY_CONNECTED", "FULLY_CONNECTED"]
        assert net.stages[2].layer.groups == 6  # (channel multiplier 2)
        # (no stage's output is constant: each stage is exercised)
        assert all(len(np.unique(t)) >= 3 for t in net.trace(xs[0]))


def test_flatten_order(tmp_path):
    """A flatten of a (1, H, W, C) tensor orders the elements (h, w, c): a dense layer that
    picks element k of the flattened vector reads pixel (h, w) channel c of the frame."""
    h, w, c = 2, 3, 4
    n = h * w * c
    chain = ChainModel((1, h, w, c), (1.0, 0)).reshape()
    chain.dense(np.eye(n, dtype=np.int8), None, 1.0, (1.0, 0))
    x = np.arange(n, dtype=np.int8).reshape(1, h, w, c)
    net, (y,) = _check(tmp_path, chain.bytes(), [x])
    np.testing.assert_array_equal(y[0], np.arange(n))
    dense = net.stages[1]
    # (the weights line up with the flattened vector; stream_weights with a raster stream)
    np.testing.assert_array_equal(dense.stream_weights, np.eye(n))


# -- refusals ----------------------------------------------------------------------------------

def _base():
    """Operators 0 CONV_2D, 1 MAX_POOL_2D, 2 RESHAPE, 3 FULLY_CONNECTED; tensors 0 input,
    1-3 the conv's weights, bias, output (w1, b1, conv1), 4 pool4, 5-6 the reshape's shape and
    output (reshape5), 7-9 the dense layer's weights, bias and output (w7, b7, dense7)."""
    rng = np.random.default_rng(3)
    chain = ChainModel((1, 6, 6, 2), (0.05, 3))
    chain.conv(rng.integers(-9, 9, size=(8, 3, 3, 2)), np.zeros(8), 0.01, (0.1, -4))
    chain.pool("MAX", 2, 2).reshape()
    chain.dense(rng.integers(-9, 9, size=(4, 72)), np.arange(4), [0.01] * 4, (0.2, 1))
    return model_object(chain.bytes())


def _softmax(model, after=9):
    out = add_tensor(model, f"softmax{after}", (1, 4), scale=1 / 256, zero_point=-128)
    add_operator(model, "SOFTMAX", [after], [out])
    model.subgraphs[0].outputs = [out]
    return out


def _options(model, op):
    return model.subgraphs[0].operators[op].builtinOptions


def _tensor(model, index):
    return model.subgraphs[0].tensors[index]


def _set(obj, **values):
    for k, v in values.items():
        setattr(obj, k, v)


NAMES = ", ".join(NETWORK_OPERATORS[:-1]) + " and " + NETWORK_OPERATORS[-1]
REFUSALS = [
    (lambda m: _softmax(m),
     r"operator 4 \(SOFTMAX\) is not supported in a network; its stages are CONV_2D, "
     r"DEPTHWISE_CONV_2D, MAX_POOL_2D, AVERAGE_POOL_2D, FULLY_CONNECTED and RESHAPE"),
    (lambda m: _softmax(m, _softmax(m)),
     r"operators 4 \(SOFTMAX\), 5 \(SOFTMAX\) are not supported in a network; its stages "
     r"are " + re.escape(NAMES)),
    (lambda m: _set(m.subgraphs[0], operators=[], outputs=[0]), r"the model has no operator"),
    (lambda m: _set(m.subgraphs[0], inputs=[0, 4]),
     r"the model has 2 inputs and 1 outputs; a network has one of each"),
    (lambda m: add_operator(m, "RESHAPE", [4, 5],
                            [add_tensor(m, "side", (1, 72), scale=0.1, zero_point=-4)]),
     r"the output of operator 1 'pool4' is read by operators 2, 4: a branch; only linear "
     r"chains \(each tensor read by one operator\) are supported"),
    (lambda m: _set(m.subgraphs[0].operators[3], inputs=[
        add_tensor(m, "orphan", (1, 72), scale=0.1, zero_point=-4), 7, 8]),
     r"operator 3 \(FULLY_CONNECTED\) reads 'orphan', not the output of operator 2 "
     r"'reshape5': only linear chains \(each operator reading the previous one's output\) "
     r"are supported"),
    (lambda m: _set(m.subgraphs[0], outputs=[4]),
     r"the model's output 'pool4' is not the last operator's output 'dense7'"),
    (lambda m: _set(_tensor(m, 4), type=3),   # UINT8
     r"operator 1 \(MAX_POOL_2D\): the output 'pool4' is uint8; " + re.escape(INT8_ONLY)),
    (lambda m: _set(_tensor(m, 4), type=7),   # INT16
     r"operator 1 \(MAX_POOL_2D\): the output 'pool4' is INT16; int8 only"),
    (lambda m: _set(_tensor(m, 6).quantization, scale=[0.1, 0.1], zeroPoint=[-4, -4]),
     r"operator 2 \(RESHAPE\): the output 'reshape5' has 2 scales; an activation is "
     r"quantized per tensor \(one scale and zero point\)"),
    (lambda m: _set(_tensor(m, 6), shape=[1, 8, 9]),
     r"operator 2 \(RESHAPE\): the output 'reshape5' has the shape \(1, 8, 9\); a network's "
     r"tensors are \(1, H, W, C\) or \(1, N\)"),
    (lambda m: _set(m.subgraphs[0].operators[1], inputs=[3, 2]),
     r"operator 1 \(MAX_POOL_2D\) has 2 inputs and 1 outputs; it takes 1 and 1"),
    (lambda m: _set(m.subgraphs[0].operators[1], builtinOptionsType=0, builtinOptions=None),
     r"operator 1 \(MAX_POOL_2D\) has no Pool2DOptions"),
    (lambda m: _set(_options(m, 1), fusedActivationFunction=4),   # TANH
     r"operator 1 \(MAX_POOL_2D\): the fused activation TANH is not supported; NONE, RELU, "
     r"RELU6 or RELU_N1_TO_1 are"),
    (lambda m: _set(_tensor(m, 4).quantization, zeroPoint=[5]),
     r"operator 1 \(MAX_POOL_2D\): the input is quantized with scale 0.1, zero point -4 and "
     r"the output with scale 0.1, zero point 5; TFLite's int8 pooling keeps the quantization "
     r"\(they must be equal\)"),
    (lambda m: _set(_options(m, 1), strideH=0),
     r"operator 1 \(MAX_POOL_2D\): the filter \(2, 2\), stride \(0, 2\) and padding VALID are "
     r"not a pooling's \(positive sizes, SAME or VALID\)"),
    (lambda m: _set(_options(m, 1), filterHeight=7),
     r"operator 1 \(MAX_POOL_2D\): the 7x2 filter is larger than the 6x6 input with VALID "
     r"padding"),
    (lambda m: _set(_tensor(m, 4), shape=[1, 2, 2, 8]),
     r"operator 1 \(MAX_POOL_2D\): the output 'pool4' has the shape \(1, 2, 2, 8\); the "
     r"pooling gives \(1, 3, 3, 8\)"),
    (lambda m: _set(_tensor(m, 6), shape=[1, 70]),
     r"operator 2 \(RESHAPE\): the input \(1, 3, 3, 8\) and the output \(1, 70\) hold "
     r"different numbers of values"),
    (lambda m: _set(_tensor(m, 6).quantization, zeroPoint=[9]),
     r"operator 2 \(RESHAPE\): the input and output are quantized differently; a reshape "
     r"keeps the quantization"),
    (lambda m: _set(_tensor(m, 7), type=0, quantization=None),   # FLOAT32
     r"operator 3 \(FULLY_CONNECTED\): the weights 'w7' are float32, not quantized; "
     + re.escape(INT8_ONLY)),
    (lambda m: _set(_tensor(m, 7), shape=[4, 72, 1]),
     r"operator 3 \(FULLY_CONNECTED\): the weights 'w7' have the shape \(4, 72, 1\); a fully "
     r"connected layer's are \(units, inputs\)"),
    (lambda m: _set(_tensor(m, 7).quantization, zeroPoint=[0, 1, 0, 0]),
     r"operator 3 \(FULLY_CONNECTED\): the weights 'w7' have non-zero zero points; TFLite's "
     r"int8 fully connected layer needs symmetric weights \(zero points 0\)"),
    (lambda m: _set(_tensor(m, 7).quantization, quantizedDimension=1),
     r"operator 3 \(FULLY_CONNECTED\): the weights 'w7' have 4 scales along dimension 1; "
     r"give one, or one per output \(dimension 0\)"),
    (lambda m: _set(_tensor(m, 7), shape=[4, 71]),
     r"operator 3 \(FULLY_CONNECTED\): the input 'reshape5' \(1, 72\) holds 72 values and "
     r"the weights take 71; the batch must be 1"),
    (lambda m: _set(_tensor(m, 9), shape=[1, 5]),
     r"operator 3 \(FULLY_CONNECTED\): the output 'dense7' has the shape \(1, 5\); a fully "
     r"connected layer of 4 units gives \(1, 4\)"),
    (lambda m: _set(_tensor(m, 7), buffer=0),
     r"operator 3 \(FULLY_CONNECTED\): the weights 'w7' hold no constant \(4, 72\) data"),
    (lambda m: _set(_tensor(m, 8), type=9),   # INT8
     r"operator 3 \(FULLY_CONNECTED\): the bias 'b7' is INT8; an int8 fully connected "
     r"layer's bias is int32"),
    (lambda m: _set(_tensor(m, 8), buffer=0),
     r"operator 3 \(FULLY_CONNECTED\): the bias 'b7' holds no constant \(4,\) data"),
    (lambda m: _set(_options(m, 3), weightsFormat=1),
     r"operator 3 \(FULLY_CONNECTED\): the weights format 1 is not supported; DEFAULT \(0\) "
     r"is"),
    (lambda m: _set(_tensor(m, 7).quantization, scale=[0.01, 0.0, 0.01, 0.01]),
     r"operator 3 \(FULLY_CONNECTED\): the weights scale must be positive and finite, not "
     r"0\.0"),
]


@pytest.mark.parametrize("mutate, message", REFUSALS)
def test_network_wrong(tmp_path, mutate, message):
    model = _base()
    mutate(model)
    path = _write(tmp_path, pack_model(model))
    with pytest.raises(TfliteError, match=r"^.*/model\.tflite: " + message + "$"):
        load_network(path)


def test_dynamic_flatten_wrong(tmp_path):
    # TFLiteConverter's flatten of a model with a dynamic batch: SHAPE, STRIDED_SLICE and PACK
    # compute the RESHAPE's shape at run time.
    model = _base()
    shape = add_tensor(model, "dims", (4,), "INT32")
    add_operator(model, "SHAPE", [4], [shape])
    add_operator(model, "STRIDED_SLICE", [shape], [add_tensor(model, "n", (), "INT32")])
    with pytest.raises(TfliteError, match=r"^.*/model\.tflite: operators 4 \(SHAPE\), 5 "
                                          r"\(STRIDED_SLICE\) are not supported in a network; "
                                          r"its stages are .* and RESHAPE \(SHAPE computes a "
                                          r"flatten's shape for a dynamic batch: convert the "
                                          r"model with a fixed batch of 1, e\.g\. "
                                          r"keras\.Input\(\.\.\., batch_size=1\)\)$"):
        load_network(_write(tmp_path, pack_model(model)))


def test_base_model_reads(tmp_path):
    # (the model the refusals above damage is itself a network, bit-exact with LiteRT)
    data = pack_model(_base())
    xs = np.random.default_rng(5).integers(-128, 128, size=(3, 1, 6, 6, 2)).astype(np.int8)
    net, _ = _check(tmp_path, data, xs)
    assert len(net.stages) == 4


def test_pool_input_wrong(tmp_path):
    chain = ChainModel((1, 4, 4, 2), (0.1, 0)).pool("MAX", 2, 2)
    model = model_object(chain.bytes())
    _tensor(model, 0).shape, _tensor(model, 1).shape = [1, 32], [1, 8]
    with pytest.raises(TfliteError, match=r"^.*: operator 0 \(MAX_POOL_2D\): the input 'input' "
                                          r"has the shape \(1, 32\); pooling takes \(1, H, W, "
                                          r"C\)$"):
        load_network(_write(tmp_path, pack_model(model)))


def test_golden_wrong(tmp_path):
    with pytest.raises(ValueError, match=r"^a 1x1 pooling window with the padding \(1, 0, 0, "
                                         r"0\) holds no pixel of the 2x2 frame$"):
        golden.avg_pool2d(np.zeros((1, 2, 2)), (1, 1), (1, 1), (1, 0, 0, 0))
    with pytest.raises(ValueError, match=r"^the weights \(3, 4\) must be \(units, \*\(5,\)\), "
                                         r"one per input element and output$"):
        golden.dense(np.zeros(5, dtype=int), np.zeros((3, 4), dtype=int), None)
    with pytest.raises(ValueError, match=r"^the bias must be \(3,\), one per output, not "
                                         r"\(4,\)$"):
        golden.dense(np.zeros(4, dtype=int), np.zeros((3, 4), dtype=int), np.zeros(4, int))
    with pytest.raises(ValueError, match=r"^2 requantization scales were given for a dense "
                                         r"layer of 3 outputs$"):
        golden.dense(np.zeros(4, dtype=int), np.zeros((3, 4), dtype=int), None, [1.0, 1.0])
    with pytest.raises(ValueError, match=r"^accumulators beyond 2\*\*53 are not exact in a "
                                         r"double$"):
        quant.requantize_float(np.array([1 << 53]), [0.5], 0, -128, 127)
    with pytest.raises(ValueError, match=r"^the shape \(2, 3\) is neither \(1, H, W, C\) nor "
                                         r"\(1, N\)$"):
        project_shape((2, 3))
    net = load_network(DIGITS / "digits.tflite")
    assert isinstance(net, Network)
    with pytest.raises(ValueError, match=r"^the input must have the model's shape "
                                         r"\(1, 8, 8, 1\), not \(8, 8, 1\)$"):
        net.golden(np.zeros((8, 8, 1), dtype=np.int8))
    with pytest.raises(TypeError, match=r"^the input must hold integers, not float64$"):
        net.golden(np.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError, match=r"^the input must hold int8 values \(-128\.\.127\)$"):
        net.golden(np.full((1, 8, 8, 1), 200))


def test_round_half_away():
    v = np.array([0.5, -0.5, 1.5, -1.5, 2.4999999999999996, -0.49999999999999994, 3.0, -7.5])
    np.testing.assert_array_equal(quant.round_half_away(v), [1, -1, 2, -2, 2, 0, 3, -8])
