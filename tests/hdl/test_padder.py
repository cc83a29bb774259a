# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth import signed
from amaranth.lib import data

from convaccel.hdl.padder import EdgePadder, Padder

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


# -- per-channel and run-time constants ---------------------------------------------------------

def test_per_channel_pad_values():
    dut = Padder(height=2, width=3, pads=(1, 0, 1, 1), pad_value=(7, -8),
                 pixel_shape=data.ArrayLayout(signed(8), 2))
    x = np.random.default_rng(5).integers(-128, 128, (2, 2, 3))
    got, errors = run(dut, frame_beats(x), 3 * 5)
    expected = np.stack([np.pad(x[0], ((1, 0), (1, 1)), constant_values=7),
                         np.pad(x[1], ((1, 0), (1, 1)), constant_values=-8)])
    assert got == expected.reshape(2, -1).T.tolist() and errors == 0


def test_run_time_pad_values():
    # The pad pixel is a register: its reset value first, then what pad_en / pad_data load.
    dut = Padder(height=1, width=2, pads=(0, 0, 1, 0), pad_value=(1, 2),
                 pixel_shape=data.ArrayLayout(signed(8), 2), runtime=True)
    got = []

    async def bench(ctx):
        ctx.set(dut.start_ok, 1)
        for frame, load in enumerate([None, (0, -5), (1, 9)]):
            if load:
                channel, value = load
                ctx.set(dut.pad_en, 1 << channel)
                ctx.set(dut.pad_data, value)
                await ctx.tick()
                ctx.set(dut.pad_en, 0)
            for n in range(2):
                await stream_put(ctx, dut.i, {"data": [10 * frame + n, -n], "last": n == 1})

    async def collect(ctx):
        for _ in range(9):
            got.append([int(v) for v in await stream_get(ctx, dut.o)])

    run_simulation(dut, bench, collect)
    assert got == [[1, 2], [0, 0], [1, -1],
                   [-5, 2], [10, 0], [11, -1],
                   [-5, 9], [20, 0], [21, -1]]


# -- replicate and reflect ----------------------------------------------------------------------

NUMPY_MODES = {"replicate": "edge", "reflect": "reflect"}


def make_edge(mode, height=4, width=5, pads=(2, 1, 3, 2), channels=2):
    return EdgePadder(height=height, width=width, pads=pads, mode=mode,
                      pixel_shape=data.ArrayLayout(signed(8), channels))


def edge_pixels(x, pads, mode):
    top, bottom, left, right = pads
    p = np.pad(x, ((0, 0), (top, bottom), (left, right)), mode=NUMPY_MODES[mode])
    return p.reshape(p.shape[0], -1).T.tolist()


EDGE_CASES = [
    ("replicate", 4, 5, (2, 1, 3, 2)),
    ("reflect", 4, 5, (2, 1, 3, 2)),
    ("reflect", 5, 3, (4, 4, 2, 0)),        # as wide as reflection allows: rows 0..4 held
    ("replicate", 3, 1, (3, 5, 2, 2)),      # pads wider than the frame
    ("replicate", 1, 4, (2, 2, 0, 1)),      # one row
    ("reflect", 2, 2, (1, 1, 1, 1)),
    ("reflect", 6, 4, (0, 0, 2, 3)),        # columns only
]


@pytest.mark.parametrize("mode, height, width, pads", EDGE_CASES)
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_edge_pads_frames(mode, height, width, pads, stall):
    rng = np.random.default_rng(height * 10 + width)
    xs = [rng.integers(-128, 128, (2, height, width)) for _ in range(3)]
    top, bottom, left, right = pads
    size = (height + top + bottom) * (width + left + right)
    got, errors = run(make_edge(mode, height, width, pads), sum(map(frame_beats, xs), []),
                      3 * size, stall, seed=len(pads) + height)
    assert got == sum((edge_pixels(x, pads, mode) for x in xs), [])
    assert errors == 0


def test_edge_first_pixel_and_then_one_per_cycle():
    # With the input always valid and the output always ready, the first padded pixel leaves
    # start_cycles + latency cycles after the start (reflect: input pixel top * width + left
    # must be in first), then one every cycle to the end of the frame.
    for mode in ("replicate", "reflect"):
        dut = make_edge(mode)
        x = np.random.default_rng(8).integers(-128, 128, (2, 4, 5))
        beats = frame_beats(x)
        seen = []

        async def feed(ctx):
            ctx.set(dut.start_ok, 1)
            for channels, last in beats:
                await stream_put(ctx, dut.i, {"data": channels, "last": last})

        async def watch(ctx):
            ctx.set(dut.o.ready, 1)
            cycle = 0
            async for _, _, start, valid in ctx.tick().sample(dut.start, dut.o.valid):
                if start:
                    seen.append(("start", cycle))
                if valid:
                    seen.append(cycle)
                if len(seen) == 1 + 7 * 10:
                    return
                cycle += 1

        run_simulation(dut, feed, watch)
        start = seen[0][1]
        first = start + dut.start_cycles + dut.latency
        assert seen[1:] == list(range(first, first + 70)), mode
        assert dut.start_cycles == (2 if mode == "replicate" else 2 * 5 + 3 + 2)


@pytest.mark.parametrize("mode", ["replicate", "reflect"])
def test_edge_short_frame_filled_and_next_correct(mode):
    # A frame that ends 6 pixels early is completed with zeros and flagged once; the next
    # frame is padded correctly.
    rng = np.random.default_rng(13)
    x1, x2 = (rng.integers(-128, 128, (2, 4, 5)) for _ in range(2))
    short = frame_beats(x1)[:14]
    short[-1] = (short[-1][0], True)
    got, errors = run(make_edge(mode), short + frame_beats(x2), 2 * 70, stall=0.3)
    filled = x1.copy()
    filled.reshape(2, -1)[:, 14:] = 0
    pads = (2, 1, 3, 2)
    assert got == edge_pixels(filled, pads, mode) + edge_pixels(x2, pads, mode)
    assert errors == 1


@pytest.mark.parametrize("mode", ["replicate", "reflect"])
def test_edge_long_frame_dropped_to_last_and_next_correct(mode):
    rng = np.random.default_rng(14)
    x1, x2 = (rng.integers(-128, 128, (2, 4, 5)) for _ in range(2))
    long = [(c, False) for c, _ in frame_beats(x1)] + [([1, 1], False), ([2, 2], True)]
    got, errors = run(make_edge(mode), long + frame_beats(x2), 2 * 70, stall=0.3)
    pads = (2, 1, 3, 2)
    assert got == edge_pixels(x1, pads, mode) + edge_pixels(x2, pads, mode)
    assert errors == 1


def test_edge_padder_wrong():
    with pytest.raises(ValueError, match=r"^mode must be 'replicate' or 'reflect', not "
                                         r"'circular'$"):
        make_edge("circular")
    with pytest.raises(ValueError, match=r"^reflect padding \(2, 1, 5, 0\) is not smaller than "
                                         r"the frame 4 x 5 on each side$"):
        make_edge("reflect", pads=(2, 1, 5, 0))
