# amaranth: UnusedElaboratable=no
"""The pooling stages against golden.max_pool2d and golden.avg_pool2d (TFLite's reference
kernels, themselves checked against LiteRT in tests/test_network.py): random geometries, random
stalls at both ends, exact cycles with none."""

import numpy as np
import pytest

from convaccel import golden
from convaccel.hdl.pool import AvgPool, MaxPool
from convaccel.tflite import _tflite_axis

from simutil import back_to_back, gaps, run_simulation, stream_get, stream_put


def frame_beats(x, lanes):
    """``x`` ``(C, H, W)`` as beats of ``lanes`` channels: raster order, a pixel's chunks in
    turn, ``last`` on the final beat (convaccel.beats.pixel_beats' order)."""
    beats = x.reshape(x.shape[0], -1).T.reshape(-1, lanes)
    return [([int(v) for v in b], n == len(beats) - 1) for n, b in enumerate(beats)]


def tflite_pads(size, kernel, stride, padding):
    """``(top, bottom, left, right)`` as TFLite pads a pooling."""
    (_, top, bottom), (_, left, right) = (_tflite_axis(n, k, s, 1, padding)
                                          for n, k, s in zip(size, kernel, stride))
    return (top, bottom, left, right)


def run_frames(dut, frames, lanes, stall, seed):
    """Send ``frames`` with idle gaps and collect their output beats under random stalls."""
    expected = sum(dut.output_beats for _ in frames)
    got = []

    async def feed(ctx):
        idle = gaps(seed, stall)
        for x in frames:
            for values, last in frame_beats(x, lanes):
                await stream_put(ctx, dut.i, {"data": values, "last": last}, idle)

    async def collect(ctx):
        stalls = gaps(seed + 1, stall)
        for _ in range(expected):
            beat = await stream_get(ctx, dut.o, stalls)
            got.append(([int(v) for v in beat.data], int(beat.last)))

    run_simulation(dut, feed, collect)
    return got


def pool_geometries(rng, count):
    for _ in range(count):
        kernel = tuple(int(k) for k in rng.integers(2, 4, 2))
        stride = tuple(int(s) for s in rng.integers(1, 4, 2))
        padding = ["SAME", "VALID"][int(rng.integers(0, 2))]
        size = tuple(int(k + rng.integers(0, 5)) for k in kernel)
        lanes = int(rng.integers(1, 9))
        chunks = int(rng.integers(1, 4)) if lanes <= 4 else 1
        act = [(-128, 127), (-20, 127), (-100, 40)][int(rng.integers(0, 3))]
        yield kernel, stride, padding, size, lanes, chunks, act


POOLS = {"max": (MaxPool, golden.max_pool2d), "avg": (AvgPool, golden.avg_pool2d)}


@pytest.mark.parametrize("kind, case", [("max", n) for n in range(4)] +
                         [("avg", n) for n in range(3)])
def test_pool_random(kind, case):
    """Random geometries (kernel 2-3, stride 1-3, SAME and VALID, lanes 1-8, chunks), two
    frames each, random gaps at the input and stalls at the output: every beat equal to
    golden.max_pool2d (golden.avg_pool2d: border windows of SAME average fewer taps), ``last``
    on each frame's final beat."""
    cls, reference = POOLS[kind]
    rng = np.random.default_rng(100 + case + 50 * (kind == "avg"))
    for kernel, stride, padding, size, lanes, chunks, act in pool_geometries(rng, 3):
        channels = lanes * chunks
        pads = tflite_pads(size, kernel, stride, padding)
        dut = cls(height=size[0], width=size[1], channels=channels, lanes=lanes,
                      kernel=kernel, stride=stride, pads=pads, act_min=act[0], act_max=act[1])
        frames = [rng.integers(-128, 128, (channels, *size)) for _ in range(2)]
        got = run_frames(dut, frames, lanes, stall=0.3, seed=case)
        expected = []
        for x in frames:
            y = reference(x, kernel, stride, pads, *act)
            assert y.shape == dut.output_shape
            expected += [(v, int(last)) for v, last in frame_beats(y, lanes)]
        assert got == expected, (kernel, stride, padding, size, lanes, chunks)


def cycle_run(dut, frames, lanes):
    """Offer the beats of ``frames`` back to back with output always ready: the output beats
    with the cycle in which each was taken (cycle 0: the first beat offered)."""
    beats = [b for x in frames for b in frame_beats(x, lanes)]
    return back_to_back(dut, beats, len(frames) * dut.output_beats)


@pytest.mark.parametrize("kind, kernel, stride, padding, size, lanes, chunks", [
    ("max", (2, 2), (2, 2), "VALID", (8, 8), 16, 1),      # the digits model's pooling
    ("max", (3, 3), (1, 1), "SAME", (5, 4), 2, 3),
    ("max", (3, 2), (2, 3), "SAME", (7, 5), 1, 2),
    ("max", (2, 3), (3, 1), "VALID", (6, 6), 4, 1),
    ("avg", (3, 3), (1, 2), "SAME", (5, 6), 2, 2),
    ("avg", (2, 2), (2, 2), "VALID", (4, 4), 3, 1),
])
def test_pool_cycles(kind, kernel, stride, padding, size, lanes, chunks):
    """With input always valid and output always ready, a frame takes exactly ``cycles`` from
    its first beat offered to its last output beat taken, and the next frame, offered right
    behind it, ends ``interval`` cycles later."""
    rng = np.random.default_rng(7)
    channels = lanes * chunks
    pads = tflite_pads(size, kernel, stride, padding)
    cls, reference = POOLS[kind]
    dut = cls(height=size[0], width=size[1], channels=channels, lanes=lanes, kernel=kernel,
              stride=stride, pads=pads)
    frames = [rng.integers(-128, 128, (channels, *size)) for _ in range(2)]
    out = cycle_run(dut, frames, lanes)
    n = dut.output_beats
    expected = [b for x in frames
                for b in frame_beats(reference(x, kernel, stride, pads), lanes)]
    assert [(v, last) for _, v, last in out] == [(v, int(last)) for v, last in expected]
    assert out[n - 1][0] + 1 == dut.cycles
    assert out[2 * n - 1][0] + 1 == dut.cycles + dut.interval


def test_max_pool_figures():
    """The digits model's pooling (8x8x16, 2x2 stride 2): one row of partial maxima (4 output
    columns of 16 channels, a word each), the row maxima's running maximum in registers."""
    dut = MaxPool(height=8, width=8, channels=16, lanes=16, kernel=2, stride=2)
    assert dut.output_shape == (16, 4, 4)
    assert [(m.width, m.depth, m.count) for m in dut.memories] == [(128, 1, 1), (128, 4, 1)]
    # padder 2, then padded beat 63 completes the last window, 4 cycles through
    assert dut.cycles == 2 + 63 + 4 + 1
    assert dut.interval == 64 + 1


@pytest.mark.parametrize("args, message", [
    (dict(height=0), r"^height must be a positive integer, not 0$"),
    (dict(width=2.5), r"^width must be an integer, not 2\.5$"),
    (dict(lanes=3), r"^lanes must divide channels \(4\): one of \[1, 2, 4\], not 3$"),
    (dict(kernel=(2, 0)), r"^kernel\[1\] must be a positive integer, not 0$"),
    (dict(kernel=(2, 2, 2)), r"^kernel must be an integer or an \(h, w\) pair, not \(2, 2, 2\)$"),
    (dict(stride="2"), r"^stride must be an integer or an \(h, w\) pair, not '2'$"),
    (dict(pads=(0, 0, -1, 0)), r"^pads must be 4 integers >= 0 \(top, bottom, left, right\), "
                               r"not \(0, 0, -1, 0\)$"),
    (dict(pads=(0, 2, 0, 0)), r"^the bottom pad 2 must be smaller than the kernel \(2\): a "
                              r"window would hold no pixel of the frame$"),
    (dict(height=1, kernel=(3, 2)), r"^the kernel 3x2 is larger than the padded frame 1x5$"),
    (dict(act_min=-129), r"^act_min must be in -128\.\.127 \(int8\), not -129$"),
    (dict(act_min=5, act_max=4), r"^act_min 5 is above act_max 4$"),
])
@pytest.mark.parametrize("cls", [MaxPool, AvgPool])
def test_pool_wrong(cls, args, message):
    params = dict(height=4, width=5, channels=4, lanes=2, kernel=2, stride=2)
    with pytest.raises((TypeError, ValueError), match=message):
        cls(**{**params, **args})
