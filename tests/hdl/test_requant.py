# amaranth: UnusedElaboratable=no
"""The requantizer alone: TFLite's int8 arithmetic bit for bit, groups back to back, its
latency as it states it."""

import numpy as np
import pytest
from amaranth import signed

from convaccel.hdl.array import fold_tag_layout
from convaccel.hdl.requant import Requantizer
from convaccel.quant import (hardware_parameters, quantize_multiplier, requantize,
                             requantize_hw)

from simutil import run_simulation


def run_requantizer(cols, col_folds, row_folds, acc_bits, acc, rq, multiplier="dsp",
                    fixed=False):
    """Load `rq` (with `fixed`, build the requantizer with `rq` baked in and load nothing),
    send `acc` ((channels, pixels)) a group every `row_folds` cycles; returns the outputs as
    (channels, pixels) and the cycles from each group's arrival to its departure."""
    dut = Requantizer(cols=cols, col_folds=col_folds, row_folds=row_folds,
                      acc_shape=signed(acc_bits), tag_shape=fold_tag_layout(),
                      multiplier=multiplier, fixed=rq if fixed else None)
    pixels = acc.shape[1]
    got, sent, left = [], [], []

    async def bench(ctx):
        for g in range(0 if fixed else col_folds):
            for c in range(cols):
                ch = g * cols + c
                for enable, value in ((dut.m_en, rq.multiplier[ch]), (dut.s_en, rq.shift[ch])):
                    ctx.set(dut.w_addr, g)
                    ctx.set(dut.w_data, value)
                    ctx.set(enable, 1 << c)
                    await ctx.tick()
                    ctx.set(enable, 0)
        for bit, value in enumerate((rq.output_zero_point, rq.act_min, rq.act_max)
                                    if not fixed else ()):
            ctx.set(dut.w_data, value)
            ctx.set(dut.c_en, 1 << bit)
            await ctx.tick()
        ctx.set(dut.c_en, 0)
        if fixed:
            # (the read ports hold the first group's parameters from the cycle after reset)
            await ctx.tick()
        cycle = 0
        for p in range(pixels):
            for g in range(col_folds):
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload.data, [int(v) for v in acc[g * cols:(g + 1) * cols, p]])
                ctx.set(dut.i.payload.tag, {"first": 0, "last_fold": 1,
                                            "last_group": int(g == col_folds - 1),
                                            "last_pixel": int(p == pixels - 1)})
                sent.append(cycle)
                await ctx.tick()
                ctx.set(dut.i.valid, 0)
                if row_folds > 1:
                    await ctx.tick().repeat(row_folds - 1)
                cycle += row_folds
        await ctx.tick().repeat(dut.latency + 2)

    async def monitor(ctx):
        cycle = 0
        async for _, _, valid, payload in ctx.tick().sample(dut.o.valid, dut.o.payload):
            if valid:
                got.append([int(v) for v in payload.data])
                left.append(cycle)
            if sent or valid:
                cycle += 1

    run_simulation(dut, bench, processes=[monitor])
    out = np.array(got).reshape(pixels, col_folds * cols).T
    return out, [b - a for a, b in zip(sent, left)], dut


@pytest.mark.parametrize("kind, cols, col_folds, row_folds, acc_bits", [
    ("dsp", 2, 4, 9, 33),       # the default layer's folding: one unit, two passes
    ("dsp", 3, 2, 1, 20),       # a group every cycle: a unit per column
    ("dsp", 5, 1, 2, 40),       # three units, two passes, one idle lane
    ("dsp", 1, 3, 1, 12),
    ("dsp", 4, 2, 3, 33),
    # one column, its multipliers taken from the group's registers for the partial products
    # (three folds or more) and for a negative value's sum (six or more)
    ("dsp", 1, 3, 5, 22),
    ("dsp", 1, 2, 3, 19),
    ("dsp", 1, 2, 6, 21),
    # in logic, 16 cycles a value: a unit per column at the fewest folds; two passes of
    # three units, one idle; one unit, two passes; one column
    ("fabric", 3, 2, 16, 20),
    ("fabric", 5, 1, 36, 40),
    ("fabric", 2, 3, 33, 33),
    ("fabric", 1, 2, 20, 12),
])
def test_requantizer_matches_tflite(kind, cols, col_folds, row_folds, acc_bits):
    rng = np.random.default_rng(cols * 100 + row_folds)
    channels = cols * col_folds
    # scales over ten decades, some above 1 (positive TFLite shifts, some beyond the cap)
    multiplier, shift = zip(*(quantize_multiplier(s)
                              for s in 10 ** rng.uniform(-6, 4, size=channels)))
    zero_point = int(rng.integers(-128, 128))
    rq = hardware_parameters(multiplier, shift, zero_point, -100, 120)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    acc = rng.integers(lo, hi, endpoint=True, size=(channels, 8))
    acc[:, :3] = rng.integers(max(lo, -3000), min(hi, 3000), size=(channels, 3))
    acc[:, 3] = lo
    acc[:, 4] = hi
    out, latencies, dut = run_requantizer(cols, col_folds, row_folds, acc_bits, acc, rq, kind)
    np.testing.assert_array_equal(out, requantize_hw(acc, rq))
    # TFLite's own form agrees wherever TFLite's int32 arithmetic is defined
    defined = (np.abs(acc) < 1 << 31) & (
        np.abs(acc) << np.maximum(np.array(shift), 0)[:, None] < 1 << 31)
    tflite = requantize(acc, multiplier, shift, zero_point, -100, 120)
    np.testing.assert_array_equal(out[defined], tflite[defined])
    assert latencies == [dut.latency] * (8 * col_folds)
    assert dut.passes * dut.interval <= row_folds and dut.units * dut.passes >= cols
    assert (dut.multipliers == ()) == (kind == "fabric")


@pytest.mark.parametrize("multiplier", ["dsp", "fabric"])
@pytest.mark.parametrize("acc_bits", [2, 5, 9, 10])
def test_requantizer_narrow_accumulators(acc_bits, multiplier):
    # Accumulators narrower than the saturation (10 bits) on the left-shift path: negative
    # ones stay negative (found by the fuzzer: -1 came out as 15 from a 4-bit accumulator).
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    acc = np.array([[lo, -1, 0, 1, hi, lo, hi, -1]])
    rq = hardware_parameters([1 << 30], [1], 0)             # scale 1: out = acc, clamped
    out, _, _ = run_requantizer(1, 1, 16 if multiplier == "fabric" else 1, acc_bits, acc, rq,
                                multiplier)
    np.testing.assert_array_equal(out, requantize_hw(acc, rq))
    np.testing.assert_array_equal(out, np.clip(acc, -128, 127))


@pytest.mark.parametrize("kind", ["dsp", "fabric"])
def test_requantizer_rounds_like_tflite(kind):
    # Accumulators that land inside the int8 range, at scales from 2**-12 to 2 (right shifts
    # of 0 to 12, a left shift of 1): the rounding of the high multiply and of the division
    # decide many outputs here, where random accumulators mostly clamp.
    rng = np.random.default_rng(5)
    cols, col_folds, pixels = 3, 2, 24
    channels = cols * col_folds
    scales = 2.0 ** rng.uniform(-12, 1, size=channels)
    multiplier, shift = zip(*(quantize_multiplier(s) for s in scales))
    rq = hardware_parameters(multiplier, shift, 3, -128, 127)
    acc = np.round(rng.uniform(-120, 120, size=(channels, pixels)) / scales[:, None])
    acc = acc.astype(np.int64) + rng.integers(-1, 2, size=(channels, pixels))
    out, _, _ = run_requantizer(cols, col_folds, 16, 24, acc, rq, kind)
    expected = requantize(acc, multiplier, shift, 3, -128, 127)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out, requantize_hw(acc, rq))
    assert np.mean((expected > -128) & (expected < 127)) > 0.9      # (few clamp)
    # the high multiply's rounding matters for a fair share of these outputs
    unrounded = np.array([[(int(a) * multiplier[c]) >> 31 for a in acc[c]]
                          for c in range(channels)])
    rounded = np.array([[(int(a) * multiplier[c] + (1 << 30)) >> 31 for a in acc[c]]
                        for c in range(channels)])
    assert np.mean(unrounded != rounded) > 0.3


@pytest.mark.parametrize("row_folds", [1, 2, 3, 5, 6, 7])
def test_requantizer_each_group_its_multiplier(row_folds):
    """Groups back to back, each column group with a multiplier of its own and no right shift,
    small values of both signs that no clamp hides: the high half itself is the output, so a
    value multiplied with a neighbouring group's multiplier (taken from the group's registers
    a cycle too late) shows."""
    rng = np.random.default_rng(row_folds)
    col_folds = 3
    scales = [0.52, 0.99, 0.71]                     # shift 0 each, multipliers far apart
    multiplier, shift = zip(*(quantize_multiplier(s) for s in scales))
    assert set(shift) == {0}
    rq = hardware_parameters(multiplier, shift, 0, -128, 127)
    acc = rng.integers(-250, 251, size=(col_folds, 24))
    out, latencies, dut = run_requantizer(1, col_folds, row_folds, 20, acc, rq)
    np.testing.assert_array_equal(out, requantize_hw(acc, rq))
    assert latencies == [dut.latency] * (24 * col_folds)


@pytest.mark.parametrize("kind, cols, col_folds, row_folds, acc_bits, shifts", [
    ("dsp", 1, 8, 9, 19, "right"),        # the digits network's first layer
    ("fabric", 1, 16, 72, 22, "right"),   # ... and its second
    ("dsp", 2, 3, 1, 33, "any"),
    ("dsp", 1, 3, 5, 22, "one"),
    ("fabric", 3, 2, 16, 20, "any"),
    ("fabric", 2, 2, 33, 24, "one"),
    # the operands taken from the group's registers from two folds (and from 16 in logic)
    ("dsp", 1, 4, 2, 20, "right"),
    ("dsp", 1, 4, 1, 20, "right"),
    ("fabric", 1, 4, 16, 20, "right"),
    # more than 16 groups: the tables read through a register, as loaded ones
    ("dsp", 1, 18, 2, 20, "right"),
])
def test_fixed_requantizer_matches_tflite(kind, cols, col_folds, row_folds, acc_bits, shifts):
    """Parameters baked in (nothing loaded): only the layer's shifts built, a left shift where
    it has one, the zero point and clamp constants; the same outputs and latency."""
    rng = np.random.default_rng(cols * 10 + col_folds + row_folds)
    channels = cols * col_folds
    if shifts == "any":          # scales over ten decades, left shifts beyond the cap too
        scales = 10 ** rng.uniform(-6, 4, size=channels)
        scales[0], scales[-1] = 37.0, 1e4
    elif shifts == "one":
        scales = rng.uniform(2.0 ** -9, 2.0 ** -8, size=channels)
    else:                        # right shifts of 7 to 10, as the digits network's
        scales = 2.0 ** rng.uniform(-11, -7, size=channels)
    multiplier, shift = zip(*(quantize_multiplier(s) for s in scales))
    rq = hardware_parameters(multiplier, shift, int(rng.integers(-128, 128)), -110, 120)
    assert (len(set(rq.shift)) == 1) == (shifts == "one")
    assert (max(rq.shift) > 0) == (shifts == "any")
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    acc = rng.integers(lo, hi, endpoint=True, size=(channels, 8))
    acc[:, :3] = rng.integers(max(lo, -3000), min(hi, 3000), size=(channels, 3))
    acc[:, 3] = lo
    acc[:, 4] = hi
    out, latencies, dut = run_requantizer(cols, col_folds, row_folds, acc_bits, acc, rq, kind,
                                          fixed=True)
    np.testing.assert_array_equal(out, requantize_hw(acc, rq))
    loaded = Requantizer(cols=cols, col_folds=col_folds, row_folds=row_folds,
                         acc_shape=signed(acc_bits), tag_shape=fold_tag_layout(),
                         multiplier=kind)
    assert latencies == [loaded.latency] * (8 * col_folds)
    assert all(m.rom for m in dut.memories)
