# amaranth: UnusedElaboratable=no
import numpy as np
import pytest

from convaccel import DEFAULT_SPEC, ConvSpec, golden
from convaccel.beats import pixel_beats, result_array, result_beats, weight_beats

from enginebench import check_engine, run_engine
from helpers import random_data, random_requant, random_spec

GEOMETRIES = {
    "k1": dict(height=5, width=7, in_channels=3, out_channels=5, kernel=1, rows=2, cols=2),
    "k3_same": dict(height=6, width=6, in_channels=2, out_channels=3, kernel=3,
                    padding="same", rows=4, cols=2),
    "k5_valid_s1": dict(height=7, width=8, in_channels=2, out_channels=2, kernel=5,
                        padding="valid", rows=3, cols=3),
    "k3x5_asym": dict(height=6, width=9, in_channels=3, out_channels=4, kernel=(3, 5),
                      padding=(0, 2, 1, 3), rows=4, cols=3),
    "k3_s2_padval": dict(height=9, width=7, in_channels=2, out_channels=3, kernel=3,
                         stride=2, padding=(1, 1, 0, 0), pad_value=-3, rows=2, cols=2),
    "k3_s3": dict(height=9, width=12, in_channels=1, out_channels=2, kernel=3, stride=3,
                  padding="valid", rows=3, cols=1),
    "k3_dil2": dict(height=8, width=8, in_channels=2, out_channels=3, kernel=3, dilation=2,
                    padding="same", rows=4, cols=2),
    "k5_s2_dil2": dict(height=11, width=9, in_channels=1, out_channels=2, kernel=5, stride=2,
                       dilation=(2, 1), padding=(2, 2, 2, 2), pad_value=7, rows=5, cols=2),
    "fold_both": dict(height=5, width=5, in_channels=5, out_channels=7, kernel=3, padding=1,
                      rows=4, cols=3),
    "big_array": dict(height=6, width=5, in_channels=2, out_channels=2, kernel=3, padding=1,
                      rows=18, cols=2),
    "unsigned_wide": dict(height=5, width=6, in_channels=2, out_channels=2, kernel=(2, 3),
                          input_bits=10, input_signed=False, weight_bits=12, bias_bits=16,
                          pad_value=1023, padding=(1, 0, 1, 1), rows=3, cols=2),
    "tiny_frame": dict(height=3, width=3, in_channels=1, out_channels=1, kernel=3,
                       rows=1, cols=1),
    "k7_barely": dict(height=7, width=8, in_channels=1, out_channels=2, kernel=7,
                      padding=(0, 0, 0, 1), rows=7, cols=2),
    # requantized to int8 (TFLite's arithmetic), the input zero point as the pad value
    "q_k3_same": dict(height=6, width=6, in_channels=2, out_channels=3, kernel=3,
                      padding="same", pad_value=-5, rows=4, cols=2, requantize=True),
    "q_k1_every_cycle": dict(height=5, width=5, in_channels=1, out_channels=4, kernel=1,
                             rows=1, cols=4, requantize=True),
    "q_s2_dil2": dict(height=9, width=9, in_channels=2, out_channels=5, kernel=3, stride=2,
                      dilation=2, padding=2, pad_value=17, rows=3, cols=2, requantize=True),
    # grouped: the groups in turn, each group's channels only (no PE multiplies across groups)
    "dw_k3": dict(height=5, width=6, in_channels=4, out_channels=4, kernel=3, padding=1,
                  groups=4, rows=4, cols=1),
    "dw_mult2_s2": dict(height=7, width=7, in_channels=3, out_channels=6, kernel=3, stride=2,
                        padding="same", pad_value=-4, groups=3, rows=5, cols=2),
    "g2_partial_block": dict(height=5, width=5, in_channels=4, out_channels=6, kernel=(2, 3),
                             padding=(1, 0, 1, 1), groups=2, rows=4, cols=2),
    "g4_dil2": dict(height=7, width=6, in_channels=8, out_channels=8, kernel=3, dilation=2,
                    padding=2, groups=4, rows=3, cols=2),
    "q_dw_idle_cols": dict(height=6, width=5, in_channels=3, out_channels=3, kernel=3,
                           padding=1, pad_value=9, groups=3, rows=9, cols=2, requantize=True),
    # padding taken from the frame (issue #16): replicate and reflect at stride 2 and dilation
    # 2, a pixel per cycle (P = 1, the padder the bottleneck), per-channel and run-time values
    "rep_s2_same": dict(height=7, width=8, in_channels=2, out_channels=3, kernel=3, stride=2,
                        padding="same", padding_mode="replicate", rows=3, cols=2),
    "refl_dil2": dict(height=6, width=7, in_channels=2, out_channels=2, kernel=3, dilation=2,
                      padding=(2, 2, 3, 1), padding_mode="reflect", rows=4, cols=2),
    "refl_s2_dil2": dict(height=9, width=6, in_channels=1, out_channels=2, kernel=(3, 2),
                         stride=2, dilation=2, padding=(3, 3, 5, 2), padding_mode="reflect",
                         rows=2, cols=2),
    "rep_every_cycle": dict(height=4, width=3, in_channels=1, out_channels=2, kernel=1,
                            padding=(3, 2, 4, 1), padding_mode="replicate", rows=1, cols=2),
    "refl_every_cycle": dict(height=5, width=4, in_channels=2, out_channels=1, kernel=(2, 1),
                             padding=(4, 1, 0, 3), padding_mode="reflect", rows=4, cols=1),
    "per_channel": dict(height=5, width=7, in_channels=3, out_channels=2, kernel=3, stride=2,
                        dilation=(1, 2), padding=(1, 1, 2, 2), pad_value=[-7, 0, 99],
                        rows=4, cols=2),
    "q_reflect": dict(height=6, width=6, in_channels=2, out_channels=3, kernel=3,
                      padding="same", padding_mode="reflect", rows=4, cols=2, requantize=True),
    "q_runtime": dict(height=5, width=5, in_channels=2, out_channels=3, kernel=3, padding=1,
                      pad_value=[-5, 3], pad_runtime=True, rows=3, cols=2, requantize=True),
    # the requantizer's multipliers in logic (16 cycles a value): 36 folds, two units of two
    # passes (one idle), a pass every 16 cycles
    "qf_k3": dict(height=4, width=5, in_channels=4, out_channels=3, kernel=3, padding="same",
                  pad_value=-7, rows=1, cols=3, requantize=True, requant_multiplier="fabric"),
    # more than WRITE_CHAIN_PES PEs: the load's writes reach column c c cycles late; a 1x1
    # frame right after the load reads its first weights as early as any layer does
    "chained_writes_k1": dict(height=3, width=4, in_channels=3, out_channels=6, kernel=1,
                              rows=3, cols=6),
    "chained_writes_k3": dict(height=4, width=4, in_channels=2, out_channels=9, kernel=3,
                              padding=1, rows=2, cols=9, requantize=True),
}


@pytest.mark.parametrize("name", GEOMETRIES)
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_matches_golden(name, stall):
    spec = ConvSpec(**GEOMETRIES[name])
    counters = check_engine(spec, seed=len(name), stall=stall, frames=2)
    if stall == 0.0:
        # With the input always valid and the results always ready, the engine takes exactly
        # the cycles its model predicts, frame after frame.
        assert [c["cycles"] for c in counters] == [spec.cycles] * 2
        assert all(c["input_stalls"] == 0 and c["output_stalls"] == 0 for c in counters)
    else:
        # The model is the fastest a frame can go; stalls are counted where they happen (a
        # compute-bound frame may absorb them all and still take the model's cycles).
        assert all(c["cycles"] >= spec.cycles for c in counters)
        assert all(c["input_stalls"] + c["output_stalls"] > 0 for c in counters)


def test_default_layer():
    counters = check_engine(DEFAULT_SPEC, seed=11)
    assert counters[0]["cycles"] == DEFAULT_SPEC.cycles


def test_random_geometries():
    rng = np.random.default_rng(2024)
    for n in range(12):
        spec = random_spec(rng, max_size=7, max_channels=4, max_kernel=4, max_array=4)
        counters = check_engine(spec, seed=n, stall=0.2 if n % 2 else 0.0)
        if n % 2 == 0:
            assert counters[0]["cycles"] == spec.cycles, spec


def test_random_grouped_geometries():
    rng = np.random.default_rng(16)
    for n in range(6):
        spec = random_spec(rng, max_size=6, max_channels=3, max_kernel=3, max_array=3,
                           max_groups=3)
        while spec.cycles > 1000:                      # (a bound on the test's time)
            spec = random_spec(rng, max_size=6, max_channels=3, max_kernel=3, max_array=3,
                               max_groups=3)
        counters = check_engine(spec, seed=n, stall=0.2 if n % 2 else 0.0)
        if n % 2 == 0:
            assert counters[0]["cycles"] == spec.cycles, spec


def test_extreme_values():
    spec = ConvSpec(height=5, width=5, in_channels=3, out_channels=2, kernel=3, padding=1,
                    pad_value=-128, rows=4, cols=2)
    x = np.full(spec.input_shape, -128)
    w = np.full(spec.weight_shape, -128)
    b = np.full(spec.bias_shape, (1 << 31) - 1)
    (y,), _, _ = run_engine(spec, [x], w, b)
    np.testing.assert_array_equal(y, golden.conv2d(x, w, b, spec))
    assert y.max() == spec.acc_range[1]


SMALL = ConvSpec(height=4, width=5, in_channels=2, out_channels=3, kernel=3, padding=1,
                 rows=2, cols=2)


def test_short_frame_flags_error_and_next_frame_is_correct():
    rng = np.random.default_rng(5)
    x1, w, b = random_data(rng, SMALL)
    x2 = random_data(rng, SMALL)[0]
    short = pixel_beats(x1, SMALL)[:7]
    short[-1] = (short[-1][0], True)
    results, counters, _ = run_engine(SMALL, [x1, x2], w, b,
                                      pixel_frames=[short, pixel_beats(x2, SMALL)])
    assert counters[0]["error"] == 1
    np.testing.assert_array_equal(results[1], golden.conv2d(x2, w, b, SMALL))
    # the short frame was completed with padding values
    filled = x1.copy()
    filled.reshape(2, -1)[:, 7:] = SMALL.pad_value
    np.testing.assert_array_equal(results[0], golden.conv2d(filled, w, b, SMALL))


def test_long_frame_flags_error_and_next_frame_is_correct():
    rng = np.random.default_rng(6)
    x1, w, b = random_data(rng, SMALL)
    x2 = random_data(rng, SMALL)[0]
    long = [(c, False) for c, _ in pixel_beats(x1, SMALL)] + [([5, 5], False), ([6, 6], True)]
    results, counters, _ = run_engine(SMALL, [x1, x2], w, b,
                                      pixel_frames=[long, pixel_beats(x2, SMALL)])
    assert counters[0]["error"] == 1
    np.testing.assert_array_equal(results[0], golden.conv2d(x1, w, b, SMALL))
    np.testing.assert_array_equal(results[1], golden.conv2d(x2, w, b, SMALL))


def test_weight_beats_order():
    spec = ConvSpec(height=3, width=3, in_channels=2, out_channels=3, kernel=(1, 2),
                    rows=3, cols=2)
    w = np.arange(12).reshape(3, 2, 1, 2) + 1
    beats = weight_beats(w, np.array([-1, -2, -3]), spec)
    # w[o, i, 0, kw] = 1 + 4o + 2i + kw; reduction n = kw * 2 + i orders filter o's taps
    # (kw, i) = (0,0), (0,1), (1,0), (1,1): filter 0 is [1, 3, 2, 4], 1 is [5, 7, 6, 8], 2 is
    # [9, 11, 10, 12]. Two folds of three lanes, two groups of two columns, beats (k, r, c).
    values = [v for v, _ in beats]
    assert len(values) == spec.cycles_per_pixel * 3 * 2 + 3
    assert values[:6] == [1, 5, 3, 7, 2, 6]        # group 0, fold 0: rows 0..2 x cols 0..1
    assert values[6:12] == [4, 8, 0, 0, 0, 0]      # group 0, fold 1: n = 3, then zero lanes
    assert values[12:18] == [9, 0, 11, 0, 10, 0]   # group 1, fold 0: filter 2 and no filter
    assert values[-3:] == [-1, -2, -3]
    assert [last for _, last in beats] == [False] * (len(beats) - 1) + [True]


@pytest.mark.parametrize("fault", ["short", "long", "weight_too_wide", "bias_too_wide"])
def test_bad_load_flags_error_and_next_load_is_used(fault):
    # Beats are max(weight_bits, bias_bits) wide: a value too wide for the narrower of the two
    # can be sent, and must be refused.
    widths = dict(weight_bits=12, bias_bits=8) if fault == "bias_too_wide" else \
        dict(weight_bits=8, bias_bits=16)
    spec = ConvSpec(height=4, width=4, in_channels=2, out_channels=3, kernel=3, padding=1,
                    rows=2, cols=2, **widths)
    rng = np.random.default_rng(9)
    x, w, b = random_data(rng, spec)
    good = weight_beats(w, b, spec)
    bad = [(v, last) for v, last in weight_beats(np.zeros_like(w), None, spec)]
    if fault == "short":
        bad = bad[:10] + [(bad[10][0], True)]
    elif fault == "long":
        bad = [(v, False) for v, _ in bad] + [(3, False), (4, True)]
    elif fault == "weight_too_wide":
        bad[5] = (200, False)                 # does not fit 8-bit weights
    else:
        bad[-1] = (300, True)                 # does not fit an 8-bit bias
    # After a bad load (flagged), a good one is loaded and used.
    results, counters, error_after_loads = run_engine(spec, [x], w, b, loads=[bad, good])
    assert error_after_loads == 1
    np.testing.assert_array_equal(results[0], golden.conv2d(x, w, b, spec))
    # A good load followed by a bad one that still reaches `last`: the engine is idle again
    # and runs frames (with whatever the bad load left in the memories).
    results, _, error_after_loads = run_engine(spec, [x], w, b, loads=[good, bad])
    assert error_after_loads == 1 and len(results) == 1


def test_depthwise_tflite_model_equals_litert(tmp_path):
    # The whole chain on a DEPTHWISE_CONV_2D (channel multiplier 2, stride 2, SAME, RELU6):
    # the model read into a layer and its spec, the engine loaded with the model's weights,
    # engine bias and requantization, its int8 output against LiteRT's reference kernels.
    pytest.importorskip("ai_edge_litert")
    from convaccel import Folding
    from convaccel.tflite import depthwise_model, load_conv

    from tflite_models import reference_interpreter
    rng = np.random.default_rng(21)
    weights = rng.integers(-127, 128, (1, 3, 3, 6)).astype(np.int8)
    bias = rng.integers(-3000, 3000, 6).astype(np.int32)
    data = depthwise_model(weights, bias, (1, 7, 6, 3), stride=2, padding="SAME",
                           input_quant=(0.03, 5), filter_scales=rng.uniform(0.002, 0.01, 6),
                           output_quant=(0.02, -3), activation="RELU6")
    path = tmp_path / "dw.tflite"
    path.write_bytes(data)
    conv = load_conv(path)
    spec = ConvSpec.of(conv.layer, Folding(4, 2))
    assert spec.groups == 3 and spec.out_per_group == 2
    xs = [rng.integers(-128, 128, conv.input_shape).astype(np.int8) for _ in range(2)]
    results, counters, _ = run_engine(spec, [conv.to_layer_input(x) for x in xs],
                                      conv.weights, conv.engine_bias, requant=conv.requant)
    run = reference_interpreter(data)
    for x, y in zip(xs, results):
        expected = run(x)
        np.testing.assert_array_equal(conv.from_layer_output(y), expected)
        assert len(np.unique(expected)) > 8
    assert [c["cycles"] for c in counters] == [spec.cycles] * 2
@pytest.mark.parametrize("pad", ["mean", [-100, 17, 5]])
def test_run_time_pad_values_per_frame(pad):
    # Pad values loaded at run time, with the weights, before each frame: the frame's mean
    # or values of the host's; frames of exactly the model's cycles (the pad values do not
    # change the frame's figures).
    spec = ConvSpec(height=5, width=4, in_channels=3, out_channels=2, kernel=3, stride=(2, 1),
                    padding=(1, 1, 2, 1), pad_runtime=True, rows=3, cols=2)
    counters = check_engine(spec, seed=4, frames=2, pad=pad)
    assert [c["cycles"] for c in counters] == [spec.cycles] * 2


def test_pad_value_too_wide_flags_error():
    # A run-time pad value that does not fit the inputs (4-bit unsigned here) is flagged like a
    # bias that does not fit; a good load after it is used.
    spec = ConvSpec(height=3, width=3, in_channels=2, out_channels=1, kernel=3, padding=1,
                    input_bits=4, input_signed=False, pad_runtime=True, rows=2, cols=1)
    rng = np.random.default_rng(3)
    x, w, b = random_data(rng, spec)
    good = weight_beats(w, b, spec, pad=[15, 2])
    for bad_value in (16, -1):
        bad = good[:-1] + [(bad_value, True)]
        results, _, error_after_loads = run_engine(spec, [x], w, b, loads=[bad, good])
        assert error_after_loads == 1
        np.testing.assert_array_equal(results[0], golden.conv2d(x, w, b, spec, pad=[15, 2]))


#: The channel-serial engine (``lanes``): beats of `lanes` channels, a pixel's `chunks` beats
#: in turn, vectors read from the line buffer's block RAM, a result beat per column block.
SERIAL = {
    # chunks 2, rows < lanes (two vectors a beat), cols < out_channels (two blocks a pixel)
    "s_k3_chunks2": dict(height=4, width=4, in_channels=4, out_channels=4, kernel=3,
                         padding=1, rows=1, cols=2, lanes=2),
    # stride 2, asymmetric padding, a pad value, chunks 3
    "s_s2_asym": dict(height=7, width=5, in_channels=6, out_channels=2, kernel=3, stride=2,
                      padding=(1, 1, 0, 0), pad_value=-3, rows=2, cols=2, lanes=2),
    # dilation 2, lanes = in_channels (one chunk), rows < lanes
    "s_dil2": dict(height=5, width=5, in_channels=4, out_channels=3, kernel=3, dilation=2,
                   padding="same", rows=2, cols=3, lanes=4),
    # a rectangular kernel, asymmetric padding, three blocks, chunks 2
    "s_k3x5": dict(height=3, width=5, in_channels=4, out_channels=3, kernel=(3, 5),
                   padding=(0, 2, 1, 3), rows=2, cols=1, lanes=2),
    # 1x1, stride 2: input-bound (the ring rows and the padder set the pace, not the array)
    "s_k1_s2": dict(height=9, width=7, in_channels=4, out_channels=2, kernel=1, stride=2,
                    padding=(1, 1, 1, 1), rows=2, cols=2, lanes=2),
    # per-channel pad values across four chunks, stride and dilation on different axes
    "s_per_channel": dict(height=5, width=7, in_channels=8, out_channels=2, kernel=3,
                          stride=2, dilation=(1, 2), padding=(1, 1, 2, 2),
                          pad_value=[-7, 0, 99, 5, -1, 3, 2, -128], rows=2, cols=2, lanes=2),
    # a tap row of one vector (3x1, one chunk, rows = lanes): the next tap row's address
    # is computed in the cycle it is used
    "s_k3x1": dict(height=5, width=3, in_channels=2, out_channels=2, kernel=(3, 1),
                   padding=(1, 1, 0, 0), rows=2, cols=2, lanes=2),
    # a pixel of one vector (1x1, one chunk, one block): every vector its pixel's last
    "s_k1_interval1": dict(height=3, width=4, in_channels=2, out_channels=2, kernel=1,
                           rows=2, cols=2, lanes=2),
    # requantized, unsigned inputs, the zero point as the pad value
    "s_q": dict(height=5, width=5, in_channels=4, out_channels=4, kernel=3, padding=1,
                pad_value=17, input_signed=False, rows=2, cols=2, lanes=4, requantize=True),
    # more than WRITE_CHAIN_PES PEs (the load's writes down a chain, a column a cycle)
    "s_chained_writes": dict(height=3, width=4, in_channels=4, out_channels=18, kernel=3,
                             padding=1, rows=2, cols=9, lanes=2),
    # the requantizer in logic: 18 folds, one unit a column, two blocks a pixel
    "s_qf": dict(height=4, width=4, in_channels=4, out_channels=4, kernel=3, padding=1,
                 pad_value=-3, rows=2, cols=2, lanes=2, requantize=True,
                 requant_multiplier="fabric"),
}


#: (with stalls in the default suite; the others' stalled runs under `full`)
SERIAL_STALLED = ("s_k3_chunks2", "s_s2_asym", "s_k1_s2", "s_q")


@pytest.mark.parametrize("name, stall", [
    pytest.param(name, stall, marks=[pytest.mark.full] if stall and name not in SERIAL_STALLED
                 else [], id=f"{stall}-{name}")
    for stall in (0.0, 0.3) for name in SERIAL])
def test_serial_matches_golden(name, stall):
    spec = ConvSpec(**SERIAL[name])
    assert spec.serial
    counters = check_engine(spec, seed=len(name), stall=stall, frames=2)
    if stall == 0.0:
        assert [c["cycles"] for c in counters] == [spec.cycles] * 2
        assert all(c["input_stalls"] == 0 and c["output_stalls"] == 0 for c in counters)
    else:
        assert all(c["cycles"] >= spec.cycles for c in counters)
        assert all(c["input_stalls"] + c["output_stalls"] > 0 for c in counters)


def test_serial_random_geometries():
    # stride, dilation, kernel, padding, lanes, chunks, rows and cols drawn at random; every
    # other one exactly the model's cycles
    rng = np.random.default_rng(13)
    for n in range(8):
        lanes = int(rng.choice([1, 2, 4]))
        spec = random_spec(rng, max_size=6, max_kernel=3, max_channels=3,
                           in_channels=lanes * int(rng.integers(1, 4)), lanes=lanes,
                           rows=int(rng.choice([r for r in (1, 2, 4) if lanes % r == 0])),
                           cols=1, padding_mode="constant")
        while spec.cycles > 800:                       # (a bound on the test's time)
            spec = random_spec(rng, max_size=6, max_kernel=3, max_channels=3,
                               in_channels=spec.in_channels, lanes=lanes, rows=spec.rows,
                               cols=1, padding_mode="constant")
        counters = check_engine(spec, seed=n, stall=0.2 if n % 2 else 0.0)
        if n % 2 == 0:
            assert counters[0]["cycles"] == spec.cycles, spec


@pytest.mark.parametrize("pad", ["mean", pytest.param([-100, 17, 5, 0, 9, -2],
                                                      marks=pytest.mark.full)])
def test_serial_run_time_pad_values(pad):
    # run-time pad values in the padder's memory of a word per chunk (three chunks of two)
    spec = ConvSpec(height=5, width=4, in_channels=6, out_channels=2, kernel=3, stride=(2, 1),
                    padding=(1, 1, 2, 1), pad_runtime=True, rows=2, cols=1, lanes=2)
    counters = check_engine(spec, seed=4, frames=2, pad=pad)
    assert [c["cycles"] for c in counters] == [spec.cycles] * 2


SERIAL_SMALL = ConvSpec(height=4, width=5, in_channels=4, out_channels=2, kernel=3, padding=1,
                        pad_value=-2, rows=2, cols=1, lanes=2)


def test_serial_short_frame_flags_error_and_next_frame_is_correct():
    spec = SERIAL_SMALL
    rng = np.random.default_rng(5)
    x1, w, b = random_data(rng, spec)
    x2 = random_data(rng, spec)[0]
    short = pixel_beats(x1, spec)[:7]              # three pixels and half of the fourth
    short[-1] = (short[-1][0], True)
    results, counters, _ = run_engine(spec, [x1, x2], w, b,
                                      pixel_frames=[short, pixel_beats(x2, spec)])
    assert counters[0]["error"] == 1
    np.testing.assert_array_equal(results[1], golden.conv2d(x2, w, b, spec))
    # the rest of the frame, from the fourth pixel's second chunk, was padding
    beats = x1.reshape(4, -1).T.reshape(-1, 2).copy()
    beats[7:] = spec.pad_value
    filled = beats.reshape(-1, 4).T.reshape(spec.input_shape)
    np.testing.assert_array_equal(results[0], golden.conv2d(filled, w, b, spec))


def test_serial_long_frame_flags_error_and_next_frame_is_correct():
    spec = SERIAL_SMALL
    rng = np.random.default_rng(6)
    x1, w, b = random_data(rng, spec)
    x2 = random_data(rng, spec)[0]
    long = [(c, False) for c, _ in pixel_beats(x1, spec)] + [([5, 5], False), ([6, 6], True)]
    results, counters, _ = run_engine(spec, [x1, x2], w, b,
                                      pixel_frames=[long, pixel_beats(x2, spec)])
    assert counters[0]["error"] == 1
    np.testing.assert_array_equal(results[0], golden.conv2d(x1, w, b, spec))
    np.testing.assert_array_equal(results[1], golden.conv2d(x2, w, b, spec))


def test_serial_beats():
    # the stream formats: a pixel's chunks in turn, and result blocks back into the array
    spec = ConvSpec(height=2, width=2, in_channels=4, out_channels=4, kernel=1, rows=1,
                    cols=2, lanes=2)
    x = np.arange(16).reshape(4, 2, 2)              # x[c, y, x] = 4c + 2y + x
    beats = pixel_beats(x, spec)
    assert [c for c, _ in beats[:3]] == [[0, 4], [8, 12], [1, 5]]
    assert [last for _, last in beats] == [False] * 7 + [True]
    assert len(beats) == spec.input_beats
    y = np.arange(16).reshape(4, 2, 2)
    blocks = [list(y[j * 2:j * 2 + 2, p // 2, p % 2]) for p in range(4) for j in range(2)]
    np.testing.assert_array_equal(result_array(blocks, spec), y)
    assert result_beats(y, spec) == blocks
    with pytest.raises(ValueError, match=r"^a frame has 8 result beats, not 7$"):
        result_array(blocks[:7], spec)


def test_serial_engine_figures():
    # The line buffer's ring (k_eff_h + stride_h rows of width * chunks words of lanes
    # channels) and no window or feeder; the model's front and back from the stages.
    from convaccel.hdl.accelerator import ConvAccelerator
    spec = ConvSpec(height=16, width=16, in_channels=64, out_channels=64, kernel=3, padding=1,
                    rows=8, cols=2, lanes=8)
    engine = ConvAccelerator(spec)
    names = [type(stage).__name__ for stage in engine.stages]
    assert names == ["Padder", "LineBuffer", "SystolicArray", "OutputStage"]
    (ring,) = [m for m in spec.memories if m.name == "line buffer"]
    assert (ring.width, ring.depth) == (8 * 8, (3 + 1) * 18 * 8)
    assert engine.layouts["pixels"].size == 8 * 8 + 1
    assert engine.layouts["results"].size == 2 * spec.acc_bits + 1
    # compute-bound: a pixel every cycles_per_pixel cycles once the first is ready
    assert spec.cycles > spec.output_pixels * spec.cycles_per_pixel
    assert spec.cycles < spec.output_pixels * spec.cycles_per_pixel + 20 * 18 * 8


@pytest.mark.parametrize("name", ["fold_both", "q_k3_same", "q_dw_idle_cols", "qf_k3", "s_q",
                                  "s_qf"])
def test_fixed_parameters_need_no_load(name):
    """Weights, biases and requantization baked in (``fixed``, a network's engine): the
    weight memories, biases and requantizer's tables are ROMs; with no load at all, frames
    equal the golden model's, under stalls."""
    from convaccel.beats import weight_sections
    from convaccel.hdl.accelerator import ConvAccelerator
    spec = ConvSpec(**(GEOMETRIES.get(name) or SERIAL[name]))
    rng = np.random.default_rng(len(name) + 5)
    x, w, b = random_data(rng, spec)
    requant, requant_bias = random_requant(rng, spec)
    if requant is not None:
        b = requant_bias
    xs = [x, random_data(rng, spec)[0]]
    weights = weight_sections(w, b, spec, requant)[0]
    dut = ConvAccelerator(spec, fixed=(weights, [int(v) for v in b], requant))
    assert all(m.rom for m in dut.memories if m.name in ("PE weights", "biases",
                                                          "requant multipliers",
                                                          "requant shifts"))
    results, counters, _ = run_engine(spec, xs, w, b, stall=0.3, seed=3, dut=dut, loads=[[]])
    for x_, y, c in zip(xs, results, counters):
        np.testing.assert_array_equal(y, golden.conv2d(x_, w, b, spec, requant))
        assert c["error"] == 0 and c["done"] == 1
