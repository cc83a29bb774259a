# amaranth: UnusedElaboratable=no
"""The PEs' weight memories: shared by rows, in block RAM or SPRAM (amaranth.sim), and the one
function that places them."""

import numpy as np
import pytest
from amaranth import signed, unsigned

from convaccel.boards import boards
from convaccel.boards.mapping import bram_blocks
from convaccel.hdl.array import SystolicArray
from convaccel.hdl.stage import MemoryShape
from convaccel.hdl.weights import (WeightMemory, WeightPlacement, device_spram,
                                   platform_family, weight_groups, weight_placement)

from simutil import run_simulation
from test_array import _check_array, _run_array


def _run_memory(dut, depth, lanes, words, reads):
    """Write `words` (depth, lanes) one weight at a time, then read `reads` (addresses, one a
    cycle); returns {cycle: [lane values]}."""
    got = {}

    async def bench(ctx):
        for k in range(depth):
            for lane in range(lanes):
                ctx.set(dut.w_addr, k)
                ctx.set(dut.w_data, int(words[k, lane]))
                ctx.set(dut.w_en, 1 << lane)
                await ctx.tick()
        ctx.set(dut.w_en, 0)
        await ctx.tick()                # (SPRAM: the last write lands in this cycle)
        for t in range(len(reads) + lanes + 1):
            ctx.set(dut.addr, int(reads[t]) if t < len(reads) else 0)
            await ctx.tick()
            got[t] = [int(v) for v in ctx.get(dut.w)]
    run_simulation(dut, bench)
    return got


@pytest.mark.parametrize("lanes, spram, bits", [(1, False, 8), (4, False, 8), (2, True, 8),
                                                (2, True, 5), (3, True, 3)])
def test_weight_memory_lanes(lanes, spram, bits):
    """Lane ``i`` gives the weight at the address of ``1 + i`` cycles before (the cycle its row
    needs it), written lane by lane; in SPRAM's single-port model too, lanes of widths that are
    not whole nibbles included."""
    depth = 7
    dut = WeightMemory(depth=depth, weight_shape=signed(bits), lanes=lanes, spram=spram)
    rng = np.random.default_rng(lanes * 10 + bits)
    lo, hi = -(1 << bits - 1), (1 << bits - 1)
    words = rng.integers(lo, hi, (depth, lanes))
    reads = rng.integers(0, depth, 20)
    got = _run_memory(dut, depth, lanes, words, reads)
    for t in range(len(reads)):
        for lane in range(lanes):
            # (the value `tick` returned in cycle t + lane is the lane's output after edge
            # t + lane + 1)
            assert got[t + lane][lane] == words[reads[t], lane], (t, lane)
    assert dut.memories == (() if spram else (MemoryShape("PE weights", lanes * bits, depth),))


def test_weight_memory_spram_wrong():
    with pytest.raises(ValueError, match=r"^3 lanes of 8 bits at depth 4 do not fit an "
                                         r"SB_SPRAM256KA \(16 bits of whole nibbles, 16384 "
                                         r"words\)$"):
        WeightMemory(depth=4, weight_shape=signed(8), lanes=3, spram=True)


@pytest.mark.parametrize("placement", [WeightPlacement(4), WeightPlacement(2),
                                       WeightPlacement(2, frozenset({(0, 0), (2, 1)}))])
def test_array_with_placements(placement):
    """The array computes the same exact dot products whatever the placement: four rows (two
    pairs) on one memory, a pair's, some pairs' memories in SPRAM (its model)."""
    rows, cols, depth = 5, 2, 3
    dut = SystolicArray(rows=rows, cols=cols, depth=depth, elem_shape=signed(8),
                        weight_shape=signed(8), psum_shape=signed(8 + 8 + rows),
                        tag_shape=unsigned(8), placement=placement)
    rng = np.random.default_rng(placement.share + len(placement.spram))
    weights = rng.integers(-128, 128, (depth, rows, cols))
    vectors = rng.integers(-128, 128, (24, rows))
    addresses = rng.integers(0, depth, 24)
    got = _run_array(dut, rows, cols, depth, weights, vectors, addresses)
    assert _check_array(dut, got, weights, vectors, addresses) == []
    widths = sorted((m.width, m.count) for m in dut.memories)
    expected = {4: [(8, 2), (32, 2)], 2: [(8, 2), (16, 4 - len(placement.spram))]}[
        placement.share]
    assert widths == expected


def test_platforms_match_the_boards():
    # The array asks its platform what the fit check asks the board registry.
    for board in boards():
        platform = board.platform()
        assert platform_family(platform) == board.family
        assert device_spram(platform) == board.resources.get("spram", 0)
    assert platform_family(None) is None and device_spram(None) == 0


def test_placement_in_simulation_is_todays():
    # No device: a pair's memory shared, the odd row alone, no SPRAM.
    assert weight_placement(rows=5, cols=3, depth=9, weight_bits=8, paired=True) == \
        WeightPlacement(2)
    assert weight_placement(rows=5, cols=3, depth=9, weight_bits=9, paired=False) == \
        WeightPlacement(1)


def _blocks(placement, family, rows, cols, depth, bits):
    shapes, spram = placement.memories(rows, cols, depth, bits)
    return sum(bram_blocks(family, m.width, m.depth) * m.count for m in shapes), spram


def test_placement_on_the_up5k():
    # 16 -> 16 3x3 on 8 x 2: 18 * 8 = 144 fold addresses; a pair's 16 x 144 memory is one EBR;
    # the four SPRAMs take four of the eight pairs' memories.
    p = weight_placement(rows=8, cols=2, depth=144, weight_bits=8, paired=True, family="ice40",
                         spram=4)
    assert p.share == 2 and len(p.spram) == 4
    assert _blocks(p, "ice40", 8, 2, 144, 8) == (4, 4)
    # deep memories (64 -> 64 3x3 on 4 x 2: 144 * 32 = 4608 addresses): 18 EBRs a pair
    p = weight_placement(rows=4, cols=2, depth=4608, weight_bits=8, paired=True,
                         family="ice40", spram=4)
    assert len(p.spram) == 4 and _blocks(p, "ice40", 4, 2, 4608, 8) == (0, 4)
    # tiny memories stay in logic: nothing for SPRAM to free
    p = weight_placement(rows=4, cols=2, depth=4, weight_bits=8, paired=True, family="ice40",
                         spram=4)
    assert p.spram == frozenset()
    # no SPRAM on the other families
    p = weight_placement(rows=4, cols=2, depth=4608, weight_bits=8, paired=True, family="ecp5",
                         spram=0)
    assert p.spram == frozenset()


@pytest.mark.parametrize("family", ["ecp5", "gowin"])
def test_placement_shares_where_it_saves_block_ram(family):
    # 8-bit weights, 288 fold addresses (beyond LUT RAM): a DP16KD / BSRAM port of 36 bits
    # holds four PEs' weights, so four rows share a memory: a quarter of the blocks.
    p = weight_placement(rows=8, cols=4, depth=288, weight_bits=8, paired=True, family=family)
    assert p.share == 4
    assert _blocks(p, family, 8, 4, 288, 8)[0] == 8
    assert _blocks(WeightPlacement(2), family, 8, 4, 288, 8)[0] == 16
    # 16-bit weights: two a port
    p = weight_placement(rows=8, cols=4, depth=500, weight_bits=16, paired=False, family=family)
    assert p.share == 2 and _blocks(p, family, 8, 4, 500, 16)[0] == 16
    # shallow memories in LUT RAM: sharing saves no block RAM and costs flip-flops
    p = weight_placement(rows=8, cols=4, depth=16, weight_bits=8, paired=True, family=family)
    assert _blocks(p, family, 8, 4, 16, 8)[0] == 0 and p.share <= 2


def test_weight_groups():
    assert weight_groups(5, 2) == [(0, 2), (2, 2), (4, 1)]
    assert weight_groups(4, 4) == [(0, 4)]
    assert weight_groups(1, 4) == [(0, 1)]
