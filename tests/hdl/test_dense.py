# amaranth: UnusedElaboratable=no
"""The dense stage against golden.dense (LiteRT's floating-point requantization) on random
layers, and against LiteRT itself on the digits model's classifier; the integer form of the
requantization over every reachable accumulator; exact cycles; refusals."""

from pathlib import Path

import numpy as np
import pytest

from convaccel import golden, quant
from convaccel.hdl.dense import Dense, exact_requant, requantize_fixed
from convaccel.network import load_network

from simutil import back_to_back, gaps, run_simulation, stream_get, stream_put
from tflite_models import reference_interpreter

DIGITS = Path(__file__).parents[2] / "examples" / "digits"


def beats_of(x, lanes):
    flat = np.asarray(x).reshape(-1, lanes)
    return [([int(v) for v in b], n == len(flat) - 1) for n, b in enumerate(flat)]


def run_frames(dut, frames, lanes, stall=0.0, seed=0):
    """Send ``frames`` (flat int8 vectors) and collect their outputs, a list per frame of
    ``(values, last)`` beats."""
    got = []

    async def feed(ctx):
        idle = gaps(seed, stall)
        for x in frames:
            for values, last in beats_of(x, lanes):
                await stream_put(ctx, dut.i, {"data": values, "last": last}, idle)

    async def collect(ctx):
        stalls = gaps(seed + 1, stall)
        for _ in range(len(frames) * dut.output_beats):
            beat = await stream_get(ctx, dut.o, stalls)
            got.append(([int(v) for v in beat.data], int(beat.last)))

    run_simulation(dut, feed, collect)
    return got


def expected_beats(ys, out_lanes):
    return [b for y in ys for b in [(list(v), int(last)) for v, last in
                                    ((list(map(int, c)), n == len(y) // out_lanes - 1)
                                     for n, c in enumerate(np.reshape(y, (-1, out_lanes))))]]


def random_layer(rng, units, inputs):
    w = rng.integers(-128, 128, (units, inputs))
    input_zp = int(rng.integers(-128, 128))
    # scales that spread typical sums over the int8 range
    typical = 74 * 74 * inputs ** 0.5
    scales = tuple(float(s) for s in 40 / typical * 10 ** rng.uniform(-0.5, 0.5, units))
    bias = rng.integers(-int(typical), int(typical), units)
    engine_bias = quant.engine_bias(bias, w, input_zp)
    zp = int(rng.integers(-60, 60))
    act = [(-128, 127), (zp, 127)][int(rng.integers(0, 2))]
    return w, engine_bias, scales, zp, act


@pytest.mark.parametrize("units, inputs, lanes, rows, cols, out_lanes, kind", [
    (3, 12, 4, 2, 3, 1, "dsp"),
    (4, 10, 5, 1, 2, 2, "dsp"),
    (6, 8, 8, 4, 1, 3, "dsp"),
    (2, 9, 3, 3, 2, 2, "dsp"),
    (3, 12, 4, 2, 3, 1, "fabric"),
    (4, 10, 5, 1, 2, 2, "fabric"),
    # the accumulators as rings (out_lanes divides cols): one ring of every unit; rings read
    # a head at a time, and two at a time
    (5, 10, 5, 1, 1, 1, "fabric"),
    (8, 6, 2, 1, 4, 1, "dsp"),
    (8, 6, 3, 3, 4, 2, "dsp"),
])
def test_dense_random(rng, units, inputs, lanes, rows, cols, out_lanes, kind):
    """Random small layers and foldings, three frames, random gaps and stalls: every output
    equal to golden.dense (the requantizer's product in DSP blocks or shift-add in logic)."""
    w, b, scales, zp, (lo, hi) = random_layer(rng, units, inputs)
    dut = Dense(weights=w, bias=b, scales=scales, output_zero_point=zp, act_min=lo,
                act_max=hi, lanes=lanes, rows=rows, cols=cols, out_lanes=out_lanes,
                requant_multiplier=kind)
    frames = [rng.integers(-128, 128, inputs) for _ in range(3)]
    got = run_frames(dut, frames, lanes, stall=0.3, seed=units)
    ys = [golden.dense(x, w, b, scales, zp, lo, hi) for x in frames]
    assert got == expected_beats(ys, out_lanes)
    assert len({tuple(y) for y in ys}) > 1     # (not a constant output)


@pytest.mark.parametrize("kind", ["dsp", "fabric"])
def test_dense_saturates_large_values(rng, kind):
    """Scales ten times the usual: most rounded magnitudes are far past the clamp
    bounds (the requantizer saturates them before the sign, zero point and clamp), some
    near them; every output equal to golden.dense."""
    units, inputs = 4, 6
    w, b, scales, zp, (lo, hi) = random_layer(rng, units, inputs)
    scales = tuple(10 * s for s in scales)
    dut = Dense(weights=w, bias=b, scales=scales, output_zero_point=zp, act_min=lo,
                act_max=hi, lanes=2, rows=1, cols=2, out_lanes=2, requant_multiplier=kind)
    frames = [rng.integers(-128, 128, inputs) for _ in range(6)]
    got = run_frames(dut, frames, 2, stall=0.3, seed=7)
    ys = [golden.dense(x, w, b, scales, zp, lo, hi) for x in frames]
    assert got == expected_beats(ys, 2)
    magnitudes = np.abs([(w @ x + b) * np.array(scales) for x in frames])
    assert (magnitudes > 600).any() and (magnitudes < 300).any()


def test_dense_digits_matches_litert():
    """The digits model's classifier (256 -> 10) fed with its input from Network.trace() for
    the first 60 test images, as a 4x4x16 pool would deliver it (16 lanes): each output beat
    equal to LiteRT's output tensor (BUILTIN_REF on the whole model)."""
    path = DIGITS / "digits.tflite"
    net = load_network(path)
    run = reference_interpreter(path.read_bytes())
    dense = net.stages[4]
    dut = Dense.of(dense, lanes=16, rows=4, cols=5, out_lanes=2)
    xs = np.load(DIGITS / "digits_test.npz")["x"][:60]
    frames = [net.trace(x)[3] for x in xs]
    got = run_frames(dut, frames, 16, stall=0.2, seed=5)
    litert = [run(x)[0] for x in xs]
    assert got == expected_beats(litert, 2)


@pytest.mark.full
def test_dense_requant_digits_exhaustive():
    """The integer requantization of the digits classifier equals LiteRT's floating-point one
    on every accumulator int8 inputs can reach (each unit's whole range, about 2 million
    each), not only on the window exact_requant compares."""
    dense = load_network(DIGITS / "digits.tflite").stages[4]
    dut = Dense.of(dense, lanes=16)
    multipliers, shift = dut.requant
    total = 0
    for u, (lo, hi) in enumerate(dut._acc_ranges):
        acc = np.arange(lo, hi + 1, dtype=np.int64)[None]
        want = quant.requantize_float(acc, [dense.scales[u]], dense.output_zero_point,
                                      dense.act_min, dense.act_max)
        got = requantize_fixed(acc, [multipliers[u]], shift, dense.output_zero_point,
                               dense.act_min, dense.act_max)
        np.testing.assert_array_equal(got, want, err_msg=f"unit {u}")
        total += acc.size
    assert total > 10_000_000
    # TFLite's fixed-point multiplier (the convolutions') is not the same function there
    tflite = [quant.quantize_multiplier(s) for s in dense.scales]
    lo, hi = dut._acc_ranges[0]
    acc = np.arange(lo, hi + 1, dtype=np.int64)[None]
    fixed = quant.requantize(np.repeat(acc, 10, axis=0), *zip(*tflite),
                             dense.output_zero_point, dense.act_min, dense.act_max)
    floats = quant.requantize_float(np.repeat(acc, 10, axis=0), dense.scales,
                                    dense.output_zero_point, dense.act_min, dense.act_max)
    assert (fixed != floats).any()


def test_exact_requant_needs_more_than_rounding():
    """A rounded multiplier is not always right: 0.1's double is a hair above 0.1, so
    ``acc * 0.1`` for ``acc = 10n + 5`` lies a hair above ``n + 0.5`` and C's ``round`` goes
    away from zero; a multiplier rounded below 0.1 takes those ties the other way. The search
    takes the shortest multiplier right on every accumulator of the range."""
    scale = 0.1
    acc = np.arange(-3000, 3001, dtype=np.int64)[None]
    multipliers, shift = exact_requant([scale], 0, -128, 127, [(-3000, 3000)])
    want = quant.requantize_float(acc, [scale], 0, -128, 127)
    np.testing.assert_array_equal(requantize_fixed(acc, multipliers, shift, 0, -128, 127), want)
    # a multiplier two bits shorter gets a tie wrong
    short = int(round(scale * 2 ** (shift - 2)))
    assert (requantize_fixed(acc, [short], shift - 2, 0, -128, 127) != want).any()


def cycle_run(dut, frames, lanes):
    beats = [b for x in frames for b in beats_of(x, lanes)]
    return back_to_back(dut, beats, len(frames) * dut.output_beats)


@pytest.mark.parametrize("lanes, rows, cols, out_lanes, kind", [
    (4, 1, 3, 1, "dsp"), (2, 2, 1, 3, "dsp"), (4, 1, 3, 1, "fabric"), (2, 2, 1, 3, "fabric")])
def test_dense_cycles(rng, lanes, rows, cols, out_lanes, kind):
    """With input always valid and output always ready a frame takes exactly ``cycles``, from
    its first beat taken to its last output beat taken; the next starts right after. The
    fabric requantizer's product takes a cycle per bit of ``M``; an output beat's requantizer
    takes its magnitude, the product, the rounding division and the clamp, then a cycle to
    leave."""
    w, b, scales, zp, (lo, hi) = random_layer(rng, 3, 8)
    dut = Dense(weights=w, bias=b, scales=scales, output_zero_point=zp, act_min=lo,
                act_max=hi, lanes=lanes, rows=rows, cols=cols, out_lanes=out_lanes,
                requant_multiplier=kind)
    frames = [rng.integers(-128, 128, 8) for _ in range(2)]
    out = cycle_run(dut, frames, lanes)
    ys = [golden.dense(x, w, b, scales, zp, lo, hi) for x in frames]
    assert [(v, last) for _, v, last in out] == expected_beats(ys, out_lanes)
    n = dut.output_beats
    product = 1 if kind == "dsp" else dut.multiplier_bits
    assert dut.cycles == ((8 // lanes) * (lanes // rows) * (3 // cols) + dut.mac_latency + 1
                          + n * (4 + product))
    if kind == "fabric":
        assert len(dut.multipliers) == rows * cols          # (no DSP block requantizes)
    assert out[n - 1][0] + 1 == dut.cycles
    assert out[2 * n - 1][0] + 1 == dut.cycles + dut.interval


def test_dense_figures():
    """The digits classifier at 16 lanes, 4 x 5 multipliers: 8 cycles a beat, 16 beats, a
    weight ROM of 128 words of 20 weights, 10 accumulators of 22 bits."""
    dense = load_network(DIGITS / "digits.tflite").stages[4]
    dut = Dense.of(dense, lanes=16, rows=4, cols=5)
    assert dut.cycles_per_beat == 8 and dut.input_beats == 16
    assert [(m.width, m.depth, m.rom) for m in dut.memories] == [(160, 128, True)]
    w = dense.stream_weights.astype(np.int64)
    lo = dense.engine_bias + np.minimum(w * -128, w * 127).sum(axis=1)
    hi = dense.engine_bias + np.maximum(w * -128, w * 127).sum(axis=1)
    assert dut.acc_bits == int(max(np.abs(lo).max(), np.abs(hi).max())).bit_length() + 1


def test_dense_error_on_misplaced_last():
    w, b, scales, zp, _ = random_layer(np.random.default_rng(3), 2, 4)
    dut = Dense(weights=w, bias=b, scales=scales, output_zero_point=zp, lanes=2)
    errors = []

    async def feed(ctx):
        for values, last in [([1, 2], True), ([3, 4], True)]:     # the first `last` is early
            await stream_put(ctx, dut.i, {"data": values, "last": last})

    async def collect(ctx):
        for _ in range(dut.output_beats):
            await stream_get(ctx, dut.o)

    async def watch(ctx):
        async for _, _, error in ctx.tick().sample(dut.error):
            errors.append(error)

    run_simulation(dut, feed, collect, processes=[watch])
    assert sum(errors) == 1


def _params(**changes):
    w = np.ones((4, 6), dtype=np.int64)
    params = dict(weights=w, bias=np.zeros(4, dtype=np.int64), scales=[0.01] * 4,
                  output_zero_point=0, lanes=3)
    return {**params, **changes}


@pytest.mark.parametrize("changes, message", [
    (dict(weights=np.ones(6, dtype=np.int64)), r"^weights must be an integer array \(units, "
                                               r"inputs\), not int64 \(6,\)$"),
    (dict(weights=np.full((4, 6), 200)), r"^weights must hold int8 values \(-128\.\.127\)$"),
    (dict(bias=np.zeros(3, dtype=np.int64)), r"^bias must be \(4,\) integers, one per unit, "
                                             r"not int64 \(3,\)$"),
    (dict(scales=[0.01] * 3), r"^scales must be 4, one per unit, not 3$"),
    (dict(scales=[0.01, 0.01, 0.0, 0.01]), r"^the requantization scales must be positive, "
                                           r"not \[0\.01, 0\.01, 0\.0, 0\.01\]$"),
    (dict(lanes=4), r"^lanes must divide inputs \(6\): one of \[1, 2, 3, 6\], not 4$"),
    (dict(rows=2), r"^rows must divide lanes \(3\): one of \[1, 3\], not 2$"),
    (dict(cols=3), r"^cols must divide units \(4\): one of \[1, 2, 4\], not 3$"),
    (dict(out_lanes=0), r"^out_lanes must be a positive integer, not 0$"),
    (dict(output_zero_point=200), r"^output_zero_point must be an integer in -128\.\.127, "
                                  r"not 200$"),
    (dict(act_max=128), r"^act_max must be in -128\.\.127 \(int8\), not 128$"),
    (dict(requant_multiplier="lut"), r"^requant_multiplier must be 'dsp' or 'fabric', not "
                                     r"'lut'$"),
])
def test_dense_wrong(changes, message):
    with pytest.raises((TypeError, ValueError), match=message):
        Dense(**_params(**changes))


@pytest.mark.parametrize("scale, order", [(0.1875, "past"), (0.75, "equal"), (1.5, "top")])
def test_dense_fabric_product_orders(scale, order):
    """The fabric requantizer's shift-add from M's low bit up (the shift past M's width: the
    rounding after; the shift equal to it: the rounding the last step's carry) and from its
    top bit down (a scale of 1 or more), on scales of few bits (3 * 2**-4, 3 * 2**-2, 3 *
    2**-1, exactly) and accumulators that stay inside the clamp, a quarter of them ties: every
    output equal to golden.dense (LiteRT's rounding of halves away from zero)."""
    rng = np.random.default_rng(int(scale * 16))
    w = np.array([[1, 0], [0, 1], [1, -1]])
    b = np.array([0, 3, -2])
    dut = Dense(weights=w, bias=b, scales=[scale] * 3, lanes=2, rows=1, cols=1,
                requant_multiplier="fabric")
    multipliers, shift = dut.requant
    assert all(m_ == scale * 2 ** shift for m_ in multipliers)      # (exact: ties are ties)
    assert order == ("past" if shift > dut.multiplier_bits else
                     "equal" if shift == dut.multiplier_bits else "top")
    frames = [rng.integers(-40, 40, 2) for _ in range(24)]
    got = run_frames(dut, frames, 2, stall=0.2, seed=3)
    ys = [golden.dense(x, w, b, [scale] * 3, 0, -128, 127) for x in frames]
    assert got == expected_beats(ys, 1)
