import itertools

import numpy as np
from amaranth import signed

from convaccel.hdl.array import fold_tag_layout
from convaccel.hdl.output import OutputStage
from convaccel.spec import channel_slot

from simutil import gaps, run_simulation, stream_get


def test_accumulates_folds_adds_bias_and_queues_pixels():
    # 3 output channels on 2 columns (2 groups, the second half empty), 2 folds per group.
    cols, channels, row_folds, col_folds = 2, 3, 2, 2
    dut = OutputStage(cols=cols, channels=channels, row_folds=row_folds, col_folds=col_folds,
                      in_flight=0, psum_shape=signed(12), acc_shape=signed(16),
                      bias_shape=signed(8), tag_shape=fold_tag_layout())
    rng = np.random.default_rng(3)
    bias = [-100, 50, 7]
    pixels = 6
    psums = rng.integers(-2000, 2000, (pixels, col_folds, row_folds, cols))
    got, credits = [], []

    async def drive(ctx):
        for ch, value in enumerate(bias):
            ctx.set(dut.b_addr, ch // cols)
            ctx.set(dut.b_en, 1 << (ch % cols))
            ctx.set(dut.b_data, value)
            await ctx.tick()
        ctx.set(dut.b_en, 0)
        for p in range(pixels):
            # one reservation per pixel, as the feeder makes when it takes a window
            while not ctx.get(dut.credit):
                credits.append(p)
                await ctx.tick()
            ctx.set(dut.reserve, 1)
            await ctx.tick()
            ctx.set(dut.reserve, 0)
            for g in range(col_folds):
                for f in range(row_folds):
                    ctx.set(dut.i.valid, 1)
                    ctx.set(dut.i.payload, {
                        "psums": [int(v) for v in psums[p, g, f]],
                        "tag": {"first": f == 0, "last_fold": f == row_folds - 1,
                                "last_group": g == col_folds - 1,
                                "last_pixel": p == pixels - 1}})
                    await ctx.tick()
                    ctx.set(dut.i.valid, 0)
            await ctx.tick()

    async def collect(ctx):
        # a consumer that starts late, then is slow: the queue fills, credit stops
        stalls = itertools.chain([True] * 40, gaps(4, 0.5))
        for p in range(pixels):
            beat = await stream_get(ctx, dut.o, stalls)
            got.append(([int(v) for v in beat.data], int(beat.last)))

    run_simulation(dut, drive, collect)
    sums = psums.sum(axis=2).reshape(pixels, col_folds * cols)[:, :channels] + bias
    assert got == [(row.tolist(), int(p == pixels - 1)) for p, row in enumerate(sums)]
    assert credits, "the slow consumer never exhausted the credits"


def test_grouped_blocks_in_channel_order():
    # 2 convolution groups of 3 channels on 2 columns: 2 blocks a group, the second of each
    # using one column; the pixel leaves in channel order, the idle columns dropped. The blocks
    # arrive one a cycle (row_folds = 1), with random values in the idle columns.
    cols, channels, groups, col_folds = 2, 6, 2, 2
    blocks = groups * col_folds
    dut = OutputStage(cols=cols, channels=channels, row_folds=1, col_folds=col_folds,
                      groups=groups, in_flight=0, psum_shape=signed(12), acc_shape=signed(16),
                      bias_shape=signed(8), tag_shape=fold_tag_layout())
    slots = [channel_slot(ch, channels // groups, cols) for ch in range(channels)]
    assert slots == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1), (3, 0)]
    rng = np.random.default_rng(4)
    bias = [int(v) for v in rng.integers(-100, 100, channels)]
    pixels = 4
    psums = rng.integers(-2000, 2000, (pixels, blocks, cols))
    got = []

    async def drive(ctx):
        for ch, value in enumerate(bias):
            block, column = slots[ch]
            ctx.set(dut.b_addr, block)
            ctx.set(dut.b_en, 1 << column)
            ctx.set(dut.b_data, value)
            await ctx.tick()
        ctx.set(dut.b_en, 0)
        for p in range(pixels):
            while not ctx.get(dut.credit):
                await ctx.tick()
            ctx.set(dut.reserve, 1)
            await ctx.tick()
            ctx.set(dut.reserve, 0)
            for b in range(blocks):
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, {
                    "psums": [int(v) for v in psums[p, b]],
                    "tag": {"first": 1, "last_fold": 1, "last_group": b == blocks - 1,
                            "last_col_fold": b % col_folds == col_folds - 1,
                            "last_pixel": p == pixels - 1}})
                await ctx.tick()
            ctx.set(dut.i.valid, 0)

    async def collect(ctx):
        stalls = gaps(5, 0.3)
        for p in range(pixels):
            beat = await stream_get(ctx, dut.o, stalls)
            got.append([int(v) for v in beat.data])

    run_simulation(dut, drive, collect)
    expected = [[int(psums[p, b, c]) + bias[ch] for ch, (b, c) in enumerate(slots)]
                for p in range(pixels)]
    assert got == expected
