"""The golden model against an independent reference (scipy's direct correlation)."""

import numpy as np
import pytest
import scipy.signal

from convaccel import ConvSpec, golden

from helpers import random_data, random_spec


#: PyTorch's padding modes by NumPy's names (F.pad's "replicate" is np.pad's "edge"; both
#: "reflect"s leave the edge out).
NUMPY_MODES = {"replicate": "edge", "reflect": "reflect"}


def reference_pad(x, spec, values=None):
    """The padded frame by another route: ``np.pad`` per channel, its constant (``values``,
    else the layer's) or NumPy's mode for the layer's."""
    top, bottom, left, right = spec.pads
    widths = ((top, bottom), (left, right))
    x = np.asarray(x, dtype=np.int64)
    if spec.padding_mode == "constant":
        values = spec.pad_values if values is None else values
        return np.stack([np.pad(ch, widths, mode="constant", constant_values=v)
                         for ch, v in zip(x, values)])
    return np.stack([np.pad(ch, widths, mode=NUMPY_MODES[spec.padding_mode]) for ch in x])


def reference_conv2d(x, w, b, spec, values=None):
    """Convolution by another route: the frame padded by ``np.pad`` (:func:`reference_pad`),
    the kernel dilated by inserting zeros, one 2-D ``scipy.signal.correlate`` (direct) per
    channel pair, then decimation."""
    c_in = x.shape[0]
    assert spec.acc_bits <= 64, "scipy correlates int64, not Python integers"
    padded = reference_pad(x, spec, values)
    d_h, d_w = spec.dilation
    k_h, k_w = spec.kernel
    # PyTorch's groups: filter o holds w.shape[1] input channels, those of its group, which is
    # o // (out_channels / groups)
    per_filter = w.shape[1]
    filters_per_group = w.shape[0] * per_filter // c_in
    out = []
    for o in range(w.shape[0]):
        acc = 0
        first = o // filters_per_group * per_filter
        for i in range(per_filter):
            kernel = np.zeros(((k_h - 1) * d_h + 1, (k_w - 1) * d_w + 1), dtype=np.int64)
            kernel[::d_h, ::d_w] = w[o, i]
            acc = acc + scipy.signal.correlate(padded[first + i], kernel, mode="valid",
                                               method="direct")
        out.append(acc[::spec.stride[0], ::spec.stride[1]] + (0 if b is None else int(b[o])))
    return np.array(out, dtype=object)


GEOMETRIES = 320


@pytest.mark.parametrize("seed", range(GEOMETRIES))
def test_matches_reference(seed):
    rng = np.random.default_rng(seed)
    spec = random_spec(rng)
    x, w, b = random_data(rng, spec, extreme=seed % 5 == 0)
    if seed % 7 == 0:
        b = None
    ours = golden.conv2d(x, w, b, spec)
    assert ours.shape == spec.output_shape
    assert ours.dtype == np.int64
    ref = reference_conv2d(x, w, b, spec)
    np.testing.assert_array_equal(ours.astype(object), ref)


#: Grouped layers: 2 to 6 groups, half of them depthwise, channel multipliers 1 to 4.
GROUPED_GEOMETRIES = 160


@pytest.mark.parametrize("seed", range(GROUPED_GEOMETRIES))
def test_grouped_matches_reference(seed):
    rng = np.random.default_rng(10_000 + seed)
    spec = random_spec(rng, max_channels=4, max_groups=6)
    assert spec.groups >= 2 and spec.weight_shape[1] == spec.in_channels // spec.groups
    x, w, b = random_data(rng, spec, extreme=seed % 5 == 0)
    ours = golden.conv2d(x, w, b, spec)
    assert ours.shape == spec.output_shape
    np.testing.assert_array_equal(ours.astype(object), reference_conv2d(x, w, b, spec))


def test_depthwise_by_hand():
    # Depthwise, channel multiplier 2: output channel o reads input channel o // 2 alone.
    spec = ConvSpec(height=3, width=3, in_channels=2, out_channels=4, kernel=1, groups=2)
    x = np.stack([np.full((3, 3), 3), np.full((3, 3), -5)])
    w = np.array([1, 2, 3, 4]).reshape(4, 1, 1, 1)
    y = golden.conv2d(x, w, np.array([0, 0, 0, 100]), spec)
    assert [int(y[o, 1, 1]) for o in range(4)] == [3, 6, -15, 80]


def test_groups_one_is_dense():
    # groups = 1 is the dense layer; groups = in_channels on a 1-channel input is too.
    rng = np.random.default_rng(3)
    spec = ConvSpec(height=5, width=5, in_channels=3, out_channels=2, kernel=3, padding=1)
    x, w, b = random_data(rng, spec)
    assert np.array_equal(golden.conv2d(x, w, b, spec),
                          golden.conv2d(x, w, b, ConvSpec(**{**spec.parameters(),
                                                             "groups": 1})))
    # A grouped layer equals the dense one whose weights are zero across groups.
    grouped = ConvSpec(height=5, width=5, in_channels=4, out_channels=6, kernel=3, padding=1,
                       groups=2)
    x, w, b = random_data(rng, grouped)
    dense = np.zeros((6, 4, 3, 3), dtype=np.int64)
    dense[:3, :2], dense[3:, 2:] = w[:3], w[3:]
    np.testing.assert_array_equal(
        golden.conv2d(x, w, b, grouped),
        golden.conv2d(x, dense, b, ConvSpec(**{**grouped.parameters(), "groups": 1})))


def test_grouped_w_shape_wrong():
    spec = ConvSpec(height=4, width=4, in_channels=4, out_channels=4, kernel=3, groups=4)
    with pytest.raises(ValueError,
                       match=r"^w must have the shape \(4, 1, 3, 3\) \(out_channels, "
                             r"in_channels / groups, kernel_h, kernel_w\), not \(4, 4, 3, 3\)$"):
        golden.conv2d(np.zeros(spec.input_shape, int), np.zeros((4, 4, 3, 3), int), None, spec)


@pytest.mark.parametrize("kw", [
    dict(kernel=1),
    dict(kernel=(3, 5), padding=(0, 2, 1, 3)),
    dict(kernel=3, stride=3, padding="valid", height=9, width=12),
    dict(kernel=3, dilation=2, padding="same"),
    dict(kernel=2, padding="same", pad_value=-7),
    dict(kernel=(1, 3), stride=(2, 1), padding=(1, 0, 1, 1), pad_value=5),
])
def test_named_geometries(kw):
    spec = ConvSpec(**{"height": 10, "width": 10, "in_channels": 3, "out_channels": 2, **kw})
    rng = np.random.default_rng(7)
    x, w, b = random_data(rng, spec)
    np.testing.assert_array_equal(golden.conv2d(x, w, b, spec).astype(object),
                                  reference_conv2d(x, w, b, spec))


@pytest.mark.parametrize("mode", ["replicate", "reflect", "per-channel"])
@pytest.mark.parametrize("seed", range(40))
def test_padding_modes_match_reference(mode, seed):
    # Every padding mode on random geometries (stride, dilation, asymmetric and "same"
    # padding), against np.pad's own modes and a direct correlation.
    rng = np.random.default_rng(1000 + seed)
    if mode == "per-channel":
        spec = random_spec(rng, max_size=9, padding_mode="constant")
        values = [int(v) for v in rng.integers(*spec.input_range, spec.in_channels,
                                               endpoint=True)]
        spec = ConvSpec(**{**spec.parameters(), "pad_value": values})
    else:
        spec = random_spec(rng, max_size=9, padding_mode=mode)
    x, w, b = random_data(rng, spec, extreme=seed % 5 == 0)
    np.testing.assert_array_equal(golden.pad_frame(x, spec), reference_pad(x, spec))
    np.testing.assert_array_equal(golden.conv2d(x, w, b, spec).astype(object),
                                  reference_conv2d(x, w, b, spec))


@pytest.mark.parametrize("mode, expected", [
    # 1..12 in a 3 x 4 frame, padded 2 above, 1 below, 3 left, 2 right (NumPy's "edge" and
    # "reflect", written out)
    ("replicate", [[1, 1, 1, 1, 2, 3, 4, 4, 4]] * 3 + [[5, 5, 5, 5, 6, 7, 8, 8, 8],
                                                     [9, 9, 9, 9, 10, 11, 12, 12, 12],
                                                     [9, 9, 9, 9, 10, 11, 12, 12, 12]]),
    ("reflect", [[12, 11, 10, 9, 10, 11, 12, 11, 10], [8, 7, 6, 5, 6, 7, 8, 7, 6],
                 [4, 3, 2, 1, 2, 3, 4, 3, 2], [8, 7, 6, 5, 6, 7, 8, 7, 6],
                 [12, 11, 10, 9, 10, 11, 12, 11, 10], [8, 7, 6, 5, 6, 7, 8, 7, 6]]),
])
def test_edge_modes_by_hand(mode, expected):
    spec = ConvSpec(height=3, width=4, in_channels=1, out_channels=1, kernel=1,
                    padding=(2, 1, 3, 2), padding_mode=mode)
    x = np.arange(1, 13).reshape(1, 3, 4)
    assert golden.pad_frame(x, spec)[0].tolist() == expected
    # a 1 x 1 kernel of ones reads the padded frame back
    assert golden.conv2d(x, np.ones((1, 1, 1, 1), int), None, spec)[0].tolist() == expected


def test_pad_mean_rounds_half_away_from_zero():
    # ties go away from zero: 0.5 -> 1, -0.5 -> -1, 2.5 -> 3, -2.5 -> -3; others to nearest
    frames = {(0, 1): 1, (-1, 0): -1, (2, 3): 3, (-3, -2): -3, (1, 1): 1, (0, 0): 0}
    x = np.array([[[a, b]] for a, b in frames])
    assert golden.pad_mean(x) == tuple(frames.values())
    # thirds round to the nearest: 4/3 -> 1, 5/3 -> 2, -4/3 -> -1, -5/3 -> -2
    x = np.array([[[1, 1, 2]], [[1, 2, 2]], [[-1, -1, -2]], [[-1, -2, -2]]])
    assert golden.pad_mean(x) == (1, 2, -1, -2)
    # the extremes stay in range, and wide values are summed exactly
    assert golden.pad_mean(np.full((1, 3, 3), -(1 << 31))) == (-(1 << 31),)
    assert golden.pad_mean(np.array([[[(1 << 31) - 1, (1 << 31) - 2]]])) == ((1 << 31) - 1,)


def test_run_time_pad_values():
    spec = ConvSpec(height=3, width=3, in_channels=2, out_channels=1, kernel=3, padding=1,
                    pad_value=[4, -4], pad_runtime=True)
    x = np.array([np.arange(9).reshape(3, 3), -np.arange(9).reshape(3, 3) - 1])
    w, b = np.ones((1, 2, 3, 3), int), None
    # no pad given: the layer's pad_value, which the host loads unless told otherwise
    np.testing.assert_array_equal(golden.conv2d(x, w, b, spec),
                                  reference_conv2d(x, w, b, spec, [4, -4]))
    assert golden.resolve_pad(spec, None) == (4, -4)
    assert golden.resolve_pad(spec, 7) == (7, 7)
    assert golden.resolve_pad(spec, [1, 2]) == (1, 2)
    # the mean of channel 0 is 4, of channel 1 -5
    assert golden.resolve_pad(spec, "mean", x) == (4, -5)
    np.testing.assert_array_equal(golden.conv2d(x, w, b, spec, pad="mean"),
                                  reference_conv2d(x, w, b, spec, [4, -5]))


@pytest.mark.parametrize("kw, pad, message", [
    (dict(), 3, r"^pad values for a frame need a layer with run-time pad values \(set "
                r"pad_runtime = true in the layer\); this one pads with its pad_value, fixed at "
                r"generation$"),
    (dict(pad_runtime=True), "median", r"^pad must be 'mean', an integer or one integer per "
                                       r"input channel, not 'median'$"),
    (dict(pad_runtime=True), 1.5, r"^pad must be 'mean', an integer or one integer per "
                                  r"input channel, not 1\.5$"),
    (dict(pad_runtime=True), [1, 2, 3], r"^pad must have the shape \(2,\) \(one value per "
                                        r"input channel\), not \(3,\)$"),
    (dict(pad_runtime=True), [0, 128], r"^pad\[1\] = 128 is outside -128\.\.127; 1 "
                                       r"value\(s\) of pad do not fit$"),
])
def test_pad_wrong(kw, pad, message):
    spec = ConvSpec(height=3, width=3, in_channels=2, out_channels=1, kernel=3, padding=1, **kw)
    x = np.zeros(spec.input_shape, int)
    with pytest.raises(ValueError, match=message):
        golden.conv2d(x, np.zeros(spec.weight_shape, int), None, spec, pad=pad)


def test_hand_computed():
    # 1 channel, 3x3 frame 1..9, 2x2 kernel of ones, padding 1 on the right and bottom only,
    # value -1: every output is the sum of a 2x2 block of the padded frame.
    spec = ConvSpec(height=3, width=3, in_channels=1, out_channels=1, kernel=2,
                    padding=(0, 1, 0, 1), pad_value=-1)
    x = np.arange(1, 10).reshape(1, 3, 3)
    w = np.ones((1, 1, 2, 2), dtype=np.int64)
    y = golden.conv2d(x, w, np.array([100]), spec)
    assert y.tolist() == [[[112, 116, 107], [124, 128, 113], [113, 115, 106]]]


def test_extreme_fills_accumulator():
    # The largest output: every input and weight at its most negative value, the bias at its
    # largest. It must fit acc_bits and need every one of them.
    spec = ConvSpec(height=4, width=4, in_channels=3, out_channels=2, kernel=3, bias_bits=20)
    lo_x, _ = spec.input_range
    lo_w, _ = spec.weight_range
    lo_b, hi_b = spec.bias_range
    x = np.full(spec.input_shape, lo_x)
    w = np.full(spec.weight_shape, lo_w)
    y_max = golden.conv2d(x, w, np.full(2, hi_b), spec)
    assert y_max.max() == spec.acc_range[1]
    # and the smallest: inputs at their most negative, weights at their largest, bias lowest
    y_min = golden.conv2d(x, -w - 1, np.full(2, lo_b), spec)
    assert y_min.min() == spec.acc_range[0]
    bits = spec.acc_bits
    assert -(1 << (bits - 1)) <= y_min.min() and y_max.max() < (1 << (bits - 1))
    assert not (-(1 << (bits - 2)) <= y_min.min() and y_max.max() < (1 << (bits - 2)))


def test_wide_widths_stay_exact():
    # 32-bit inputs and weights overflow int64 sums; the model falls back to Python integers.
    spec = ConvSpec(height=3, width=3, in_channels=2, out_channels=1, kernel=3, padding=1,
                    input_bits=32, weight_bits=32)
    assert spec.acc_bits > 64
    x = np.full(spec.input_shape, -(1 << 31), dtype=np.int64)
    w = np.full(spec.weight_shape, -(1 << 31), dtype=np.int64)
    y = golden.conv2d(x, w, None, spec)
    assert y.dtype == object
    assert y[0, 1, 1] == 18 * (1 << 62)
    # the centre output by Python integers, tap by tap
    expected = sum(int(x[i, r, c]) * int(w[0, i, r, c]) for i in range(2) for r in range(3)
                   for c in range(3))
    assert y[0, 1, 1] == expected


def test_unsigned_inputs():
    spec = ConvSpec(height=5, width=5, in_channels=2, out_channels=3, kernel=3,
                    input_signed=False, pad_value=255)
    x = np.full(spec.input_shape, 255)
    w = np.full(spec.weight_shape, -128)
    assert golden.conv2d(x, w, None, spec).min() == 18 * 255 * -128


def test_x_shape_wrong():
    spec = ConvSpec(height=4, width=4, in_channels=2, out_channels=1, kernel=3)
    with pytest.raises(ValueError,
                       match=r"^x must have the shape \(2, 4, 4\) \(in_channels, height, width\), "
                             r"not \(4, 4\)$"):
        golden.conv2d(np.zeros((4, 4), int), np.zeros(spec.weight_shape, int), None, spec)


def test_w_dtype_wrong():
    spec = ConvSpec(height=4, width=4, in_channels=2, out_channels=1, kernel=3)
    with pytest.raises(TypeError, match=r"^w must hold integers, not float64$"):
        golden.conv2d(np.zeros(spec.input_shape, int), np.zeros(spec.weight_shape), None, spec)


def test_x_range_wrong():
    spec = ConvSpec(height=4, width=4, in_channels=2, out_channels=1, kernel=3)
    x = np.zeros(spec.input_shape, int)
    x[1, 2, 3] = 128
    with pytest.raises(ValueError, match=r"^x\[1, 2, 3\] = 128 is outside -128\.\.127; "
                                         r"1 value\(s\) of x do not fit$"):
        golden.conv2d(x, np.zeros(spec.weight_shape, int), None, spec)


def test_b_range_wrong():
    spec = ConvSpec(height=4, width=4, in_channels=2, out_channels=1, kernel=3, bias_bits=8)
    with pytest.raises(ValueError, match=r"^b\[0\] = -129 is outside -128\.\.127"):
        golden.conv2d(np.zeros(spec.input_shape, int), np.zeros(spec.weight_shape, int),
                      np.array([-129]), spec)
