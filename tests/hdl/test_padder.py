import numpy as np
import pytest
from amaranth import signed
from amaranth.lib import data

from convaccel.hdl.padder import Padder

from simutil import gaps, run_simulation, stream_get, stream_put

PADS = (1, 2, 0, 3)
PAD_VALUE = -5


def make(height=3, width=4, pads=PADS, channels=2):
    return Padder(height=height, width=width, pads=pads, pad_value=PAD_VALUE,
                  pixel_shape=data.ArrayLayout(signed(8), channels))


def run(dut, beats, expected_pixels, stall=0.0, seed=0):
    """Send `beats` ((channels, last) pairs), collect `expected_pixels` output pixels and the
    number of error pulses."""
    got, errors = [], []

    async def feed(ctx):
        ctx.set(dut.start_ok, 1)
        idle = gaps(seed, stall)
        for channels, last in beats:
            await stream_put(ctx, dut.i, {"data": channels, "last": last}, idle)

    async def collect(ctx):
        stalls = gaps(seed + 1, stall)
        for _ in range(expected_pixels):
            got.append([int(v) for v in await stream_get(ctx, dut.o, stalls)])

    async def watch(ctx):
        async for _, _, error in ctx.tick().sample(dut.error):
            errors.append(error)

    run_simulation(dut, feed, collect, processes=[watch])
    return got, sum(errors)


def frame_beats(x):
    pixels = x.reshape(x.shape[0], -1).T
    return [([int(v) for v in p], n == len(pixels) - 1) for n, p in enumerate(pixels)]


def padded_pixels(x, pads=PADS):
    top, bottom, left, right = pads
    p = np.pad(x, ((0, 0), (top, bottom), (left, right)), constant_values=PAD_VALUE)
    return p.reshape(p.shape[0], -1).T.tolist()


@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_pads_frames(stall):
    rng = np.random.default_rng(1)
    xs = [rng.integers(-128, 128, (2, 3, 4)) for _ in range(3)]
    got, errors = run(make(), sum((frame_beats(x) for x in xs), []), 3 * 6 * 7, stall, seed=3)
    assert got == sum((padded_pixels(x) for x in xs), [])
    assert errors == 0


def test_no_padding_is_a_copy():
    x = np.random.default_rng(2).integers(-128, 128, (1, 2, 5))
    got, _ = run(make(height=2, width=5, pads=(0, 0, 0, 0), channels=1), frame_beats(x), 10)
    assert got == x.reshape(1, -1).T.tolist()


def test_short_frame_filled_and_next_correct():
    # A frame that ends 4 pixels early is completed with padding and flagged once; the next
    # frame is padded correctly.
    rng = np.random.default_rng(3)
    x1, x2 = (rng.integers(-128, 128, (2, 3, 4)) for _ in range(2))
    short = frame_beats(x1)[:8]
    short[-1] = (short[-1][0], True)
    got, errors = run(make(), short + frame_beats(x2), 2 * 42)
    filled = x1.copy()
    filled.reshape(2, -1)[:, 8:] = PAD_VALUE
    assert got == padded_pixels(filled) + padded_pixels(x2)
    assert errors == 1


def test_long_frame_dropped_to_last_and_next_correct():
    rng = np.random.default_rng(4)
    x1, x2 = (rng.integers(-128, 128, (2, 3, 4)) for _ in range(2))
    long = [(c, False) for c, _ in frame_beats(x1)] + [([1, 1], False), ([2, 2], True)]
    got, errors = run(make(), long + frame_beats(x2), 2 * 42)
    assert got == padded_pixels(x1) + padded_pixels(x2)
    assert errors == 1


def test_waits_for_start_ok():
    dut = make()
    seen = []

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.o.ready, 1)
        for _ in range(5):
            _, _, start, valid = await ctx.tick().sample(dut.start, dut.o.valid)
            seen.append((start, valid))
        ctx.set(dut.start_ok, 1)
        _, _, start = await ctx.tick().sample(dut.start)
        seen.append((start,))

    run_simulation(dut, bench)
    assert seen == [(0, 0)] * 5 + [(1,)]
