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


def run_requantizer(cols, col_folds, row_folds, acc_bits, acc, rq):
    """Load `rq`, send `acc` ((channels, pixels)) a group every `row_folds` cycles; returns
    the outputs as (channels, pixels) and the cycles from each group's arrival to its
    departure."""
    dut = Requantizer(cols=cols, col_folds=col_folds, row_folds=row_folds,
                      acc_shape=signed(acc_bits), tag_shape=fold_tag_layout())
    pixels = acc.shape[1]
    got, sent, left = [], [], []

    async def bench(ctx):
        for g in range(col_folds):
            for c in range(cols):
                ch = g * cols + c
                for enable, value in ((dut.m_en, rq.multiplier[ch]), (dut.s_en, rq.shift[ch])):
                    ctx.set(dut.w_addr, g)
                    ctx.set(dut.w_data, value)
                    ctx.set(enable, 1 << c)
                    await ctx.tick()
                    ctx.set(enable, 0)
        for bit, value in enumerate((rq.output_zero_point, rq.act_min, rq.act_max)):
            ctx.set(dut.w_data, value)
            ctx.set(dut.c_en, 1 << bit)
            await ctx.tick()
        ctx.set(dut.c_en, 0)
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


@pytest.mark.parametrize("cols, col_folds, row_folds, acc_bits", [
    (2, 4, 9, 33),    # the default layer's folding: one unit, two passes
    (3, 2, 1, 20),    # a group every cycle: a unit per column
    (5, 1, 2, 40),    # three units, two passes, one idle lane
    (1, 3, 1, 12),
    (4, 2, 3, 33),
])
def test_requantizer_matches_tflite(cols, col_folds, row_folds, acc_bits):
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
    out, latencies, dut = run_requantizer(cols, col_folds, row_folds, acc_bits, acc, rq)
    np.testing.assert_array_equal(out, requantize_hw(acc, rq))
    # TFLite's own form agrees wherever TFLite's int32 arithmetic is defined
    defined = (np.abs(acc) < 1 << 31) & (
        np.abs(acc) << np.maximum(np.array(shift), 0)[:, None] < 1 << 31)
    tflite = requantize(acc, multiplier, shift, zero_point, -100, 120)
    np.testing.assert_array_equal(out[defined], tflite[defined])
    assert latencies == [dut.latency] * (8 * col_folds)
    assert dut.passes <= row_folds and dut.units * dut.passes >= cols


@pytest.mark.parametrize("acc_bits", [2, 5, 9, 10])
def test_requantizer_narrow_accumulators(acc_bits):
    # Accumulators narrower than the saturation (10 bits) on the left-shift path: negative
    # ones stay negative (found by the fuzzer: -1 came out as 15 from a 4-bit accumulator).
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    acc = np.array([[lo, -1, 0, 1, hi, lo, hi, -1]])
    rq = hardware_parameters([1 << 30], [1], 0)             # scale 1: out = acc, clamped
    out, _, _ = run_requantizer(1, 1, 1, acc_bits, acc, rq)
    np.testing.assert_array_equal(out, requantize_hw(acc, rq))
    np.testing.assert_array_equal(out, np.clip(acc, -128, 127))
