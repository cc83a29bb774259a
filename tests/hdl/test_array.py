# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.lib import data

from convaccel.hdl.array import (Feeder, ProcessingElement, ProcessingElementPair,
                                 SystolicArray)
from convaccel.hdl.ice40 import DualMul8x8
from convaccel.hdl.window import window_layout

from simutil import run_simulation, stream_put


def _run_array(dut, rows, cols, depth, weights, vectors, addresses):
    """Load `weights` (depth, rows, cols), feed `vectors` with their `addresses` (a gap every
    third cycle); returns {cycle: (valid, psums, tag)} of the output."""
    got = {}

    async def bench(ctx):
        for k in range(depth):
            for r in range(rows):
                for c in range(cols):
                    ctx.set(dut.w_addr, k)
                    ctx.set(dut.w_data, int(weights[k, r, c]))
                    ctx.set(dut.w_en, 1 << (r * cols + c))
                    await ctx.tick()
        ctx.set(dut.w_en, 0)
        for t in range(len(vectors) + dut.latency):
            valid = t < len(vectors) and t % 3 != 1          # gaps: `valid` travels too
            ctx.set(dut.i.valid, valid)
            if t < len(vectors):
                ctx.set(dut.i.payload, {"x": [int(v) for v in vectors[t]],
                                        "k": int(addresses[t]), "tag": t})
            beat = ctx.get(dut.o.payload)
            got[t] = (ctx.get(dut.o.valid), [int(v) for v in beat.psums], beat.tag)
            await ctx.tick()

    run_simulation(dut, bench)
    return got


def _check_array(dut, got, weights, vectors, addresses):
    wrong = []
    for t in range(len(vectors)):
        valid, psums, tag = got[t + dut.latency]
        assert valid == (t % 3 != 1), f"vector {t}"
        if valid and (psums, tag) != ((vectors[t] @ weights[addresses[t]]).tolist(), t):
            wrong.append(t)
    return wrong


@pytest.mark.parametrize("rows, cols, depth", [(1, 1, 1), (3, 2, 4), (4, 4, 3), (2, 5, 1)])
def test_array_dot_products(rows, cols, depth):
    """One vector per cycle, each with a random weight address and a tag; every column's result
    leaves `latency` cycles later as the exact dot product, all columns aligned, with the
    vector's tag and `valid`."""
    dut = SystolicArray(rows=rows, cols=cols, depth=depth, elem_shape=signed(8),
                        weight_shape=signed(8), psum_shape=signed(8 + 8 + rows),
                        tag_shape=unsigned(8))
    rng = np.random.default_rng(rows * 100 + cols * 10 + depth)
    weights = rng.integers(-128, 128, (depth, rows, cols))
    vectors = rng.integers(-128, 128, (30, rows))
    addresses = rng.integers(0, depth, 30)
    got = _run_array(dut, rows, cols, depth, weights, vectors, addresses)
    assert _check_array(dut, got, weights, vectors, addresses) == []


@pytest.mark.parametrize("elem, weight, pairs", [
    (unsigned(8), signed(8), 2), (signed(8), signed(8), 2), (unsigned(7), signed(5), 2),
    (signed(9), signed(8), 0), (unsigned(8), signed(9), 0)])
def test_array_pairs_at_extremes(elem, weight, pairs):
    """Rows (0, 1) of each column share a dual multiplier and a weight memory when the operands
    are at most 8 bits (signed or not), the odd last row does not; every product is exact at
    the operands' extremes, and a fault in either PE of a pair, or in the single row, shows in
    its column's sums."""
    rows, cols, depth = 3, 2, 3
    kw = dict(rows=rows, cols=cols, depth=depth, elem_shape=elem, weight_shape=weight,
              psum_shape=signed(elem.width + weight.width + 3), tag_shape=unsigned(8))
    assert SystolicArray(**kw).pe_pairs == pairs
    rng = np.random.default_rng(elem.width * 10 + weight.width)

    def extremes(shape, size):
        lo, hi = (-(1 << shape.width - 1), (1 << shape.width - 1) - 1) if shape.signed else \
            (0, (1 << shape.width) - 1)
        return rng.choice([lo, hi, lo + 1, 0, 1, -1 if shape.signed else 2], size)

    weights = extremes(weight, (depth, rows, cols))
    vectors = extremes(elem, (24, rows))
    addresses = rng.integers(0, depth, 24)
    dut = SystolicArray(**kw)
    assert _check_array(dut, _run_array(dut, rows, cols, depth, weights, vectors, addresses),
                        weights, vectors, addresses) == []
    for pe in [(0, 1), (1, 0), (2, 1)]:
        dut = SystolicArray(faulty_pe=pe, **kw)
        assert _check_array(dut, _run_array(dut, rows, cols, depth, weights, vectors,
                                            addresses), weights, vectors, addresses), pe


def test_pe_latency():
    dut = ProcessingElement(depth=2, elem_shape=signed(8), weight_shape=signed(8),
                            psum_shape=signed(20))
    trace = []

    async def bench(ctx):
        ctx.set(dut.w_addr, 1)
        ctx.set(dut.w_data, -7)
        ctx.set(dut.w_en, 1)
        await ctx.tick()
        ctx.set(dut.w_en, 0)
        ctx.set(dut.x_in, 9)
        ctx.set(dut.k_in, 1)
        ctx.set(dut.psum_in, 0)
        await ctx.tick()
        ctx.set(dut.x_in, 0)
        for n in range(1, 6):
            if n == ProcessingElement.latency - 1:
                ctx.set(dut.psum_in, 1000)
            trace.append((ctx.get(dut.x_out), ctx.get(dut.psum_out)))
            await ctx.tick()
            ctx.set(dut.psum_in, 0)

    run_simulation(dut, bench)
    assert trace[0][0] == 9                                # x_out one cycle later
    assert trace[ProcessingElement.latency - 1][1] == 1000 - 63


def test_pe_pair_latency():
    """Each lane of a pair keeps a single PE's latency: the upper element meets the partial sum
    entering 3 cycles later, the lower (a cycle behind, the row below's) the upper's sum."""
    assert ProcessingElementPair.latency == ProcessingElement.latency
    dut = ProcessingElementPair(depth=2, elem_shape=signed(8), weight_shape=signed(8),
                                psum_shape=signed(20))
    trace = []

    async def bench(ctx):
        for lane, w in enumerate([-7, 11]):
            ctx.set(dut.w_addr, 1)
            ctx.set(dut.w_data, w)
            ctx.set(dut.w_en, 1 << lane)
            await ctx.tick()
        ctx.set(dut.w_en, 0)
        ctx.set(dut.x_in, [9, 0])
        ctx.set(dut.k_in, 1)
        await ctx.tick()
        ctx.set(dut.x_in, [0, -5])                       # the lower row's element, a cycle on
        ctx.set(dut.k_in, 0)
        for n in range(1, 7):
            ctx.set(dut.psum_in, 1000 if n == ProcessingElement.latency - 1 else 0)
            trace.append(([int(v) for v in ctx.get(dut.x_out)], ctx.get(dut.psum_out)))
            await ctx.tick()
            ctx.set(dut.x_in, [0, 0])

    run_simulation(dut, bench)
    assert trace[0][0] == [9, 0] and trace[1][0] == [0, -5]   # x_out one cycle later
    # upper: 1000 + 9 * -7 in T + 4 (T = 0 here), on to the lower; lower: + -5 * 11 in T + 5
    assert trace[ProcessingElement.latency][1] == 1000 - 63 - 55


def test_dual_mul_wrong():
    with pytest.raises(ValueError, match=r"^DualMul8x8 takes operands of at most 8 bits, not "
                                         r"signed\(9\) and signed\(8\)$"):
        DualMul8x8(a_shape=signed(9), b_shape=signed(8))


def test_feeder_issues_folds_and_honours_credit():
    reduction, rows, row_folds, col_folds = 5, 2, 3, 2      # 5 elements, 2 lanes: 3 folds
    kernel = (1, 5)
    pixel = data.ArrayLayout(signed(8), 1)
    dut = Feeder(reduction=reduction, rows=rows, row_folds=row_folds, col_folds=col_folds,
                 elem_shape=signed(8), window_shape=window_layout(pixel, kernel))
    windows = [[1, 2, 3, 4, 5], [-1, -2, -3, -4, -5]]
    issued = []

    async def feed(ctx):
        for n, window in enumerate(windows):
            await stream_put(ctx, dut.i, {"data": [[v] for v in window], "last": n == 1})

    async def watch(ctx):
        ctx.set(dut.credit, 0)
        for _ in range(4):                                  # no credit: nothing is taken
            assert not ctx.get(dut.i.ready)
            await ctx.tick()
        ctx.set(dut.credit, 1)
        for _ in range(16):
            if ctx.get(dut.o.valid):
                beat = ctx.get(dut.o.payload)
                issued.append(([int(v) for v in beat.x], beat.k, beat.tag.first,
                               beat.tag.last_fold, beat.tag.last_group, beat.tag.last_pixel))
            await ctx.tick()

    run_simulation(dut, feed, watch)
    expected = []
    for n, window in enumerate(windows):
        lanes = window + [0]
        for g in range(col_folds):
            for f in range(row_folds):
                expected.append((lanes[f * 2:f * 2 + 2], g * row_folds + f, f == 0,
                                 f == row_folds - 1, g == col_folds - 1, n == 1))
    assert issued == expected                               # back to back: no gap


@pytest.mark.parametrize("groups, channels, col_folds", [(2, 4, 2), (3, 3, 1)])
def test_feeder_issues_groups_in_turn(groups, channels, col_folds):
    # A window of 3 taps, channel innermost; each group's vectors hold its own channels only,
    # tap-major (no lane holds another group's element), row_folds vectors a column block,
    # col_folds blocks a group, the groups in order.
    per_group, taps, rows = channels // groups, 3, 4
    reduction = taps * per_group
    row_folds = -(-reduction // rows)
    pixel = data.ArrayLayout(signed(8), channels)
    dut = Feeder(reduction=reduction, rows=rows, row_folds=row_folds, col_folds=col_folds,
                 elem_shape=signed(8), window_shape=window_layout(pixel, (1, taps)),
                 groups=groups, in_channels=channels)
    assert dut.interval == groups * row_folds * col_folds
    windows = [[[10 * t + c + 1 for c in range(channels)] for t in range(taps)],
               [[-10 * t - c - 1 for c in range(channels)] for t in range(taps)]]
    issued = []

    async def feed(ctx):
        for n, window in enumerate(windows):
            await stream_put(ctx, dut.i, {"data": window, "last": n == 1})

    async def watch(ctx):
        ctx.set(dut.credit, 1)
        for _ in range(2 * dut.interval + 4):
            if ctx.get(dut.o.valid):
                beat = ctx.get(dut.o.payload)
                issued.append(([int(v) for v in beat.x], beat.k, beat.tag.first,
                               beat.tag.last_fold, beat.tag.last_col_fold, beat.tag.last_group,
                               beat.tag.last_pixel))
            await ctx.tick()

    run_simulation(dut, feed, watch)
    expected = []
    for n, window in enumerate(windows):
        k = 0
        for g in range(groups):
            lanes = [window[t][g * per_group + i] for t in range(taps) for i in range(per_group)]
            lanes += [0] * (row_folds * rows - reduction)
            for j in range(col_folds):
                for f in range(row_folds):
                    expected.append((lanes[f * rows:(f + 1) * rows], k, f == 0,
                                     f == row_folds - 1, j == col_folds - 1,
                                     g == groups - 1 and j == col_folds - 1, n == 1))
                    k += 1
    assert issued == expected                               # back to back: no gap
