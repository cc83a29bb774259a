"""How Yosys maps a memory on each family: block RAM, LUT RAM or logic.

Figures from Yosys's memory libraries (``share/ice40/brams.txt``, ``share/lattice/
brams_16kd.txt``, ``lutrams_trellis.txt``, ``share/gowin/*rams.txt``) and the DSP mapping
(SB_MAC16 16x16, or two 8x8 where the array instantiates them; MULT18X18D 18x18; Gowin MULT9X9
9x9). Kept apart from the fit check (which imports the engine) so that the engine's weight
placement (:func:`convaccel.hdl.weights.weight_placement`) can read the same figures.
"""

import math
from dataclasses import dataclass

__all__ = ["FAMILY_MAPPING", "bram_blocks", "mapping_logic", "memory_mapping"]


@dataclass(frozen=True)
class _Family:
    dsp_a: int                 # multiplier block operand widths (signed)
    dsp_b: int
    bram_configs: tuple        # (width, depth) of one block RAM
    bram_cost: int
    lutram: tuple | None       # (abits, width, cost) of a distributed RAM cell, RAMs only


FAMILY_MAPPING = {
    "ice40": _Family(16, 16, ((16, 256), (8, 512), (4, 1024), (2, 2048)), 64, None),
    "ecp5": _Family(18, 18, ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192),
                             (1, 16384)), 128, (4, 4, 4)),
    "gowin": _Family(9, 9, ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192),
                            (1, 16384)), 128, (4, 4, 4)),
}

#: Yosys's cost of one memory bit lowered to flip-flops and LUTs (a ROM becomes LUTs).
LOGIC_COST_RAM = 1.0
LOGIC_COST_ROM = 1.0 / 16


def _bram_configs(family, width, depth, is_rom, no_rw_check):
    """``(cost, blocks, depth_blocks)`` of each way of building the memory of block RAMs, as
    Yosys's ``memory_libmap`` scores it: a block's cost per block (the width cut into the
    block's words, the depth into its address range), half a point per bit of the read
    multiplexer between depth blocks and per write enable into them, and two per emulation
    point: a read port not shared with a write port is one; a RAM's read during a write to
    the same address must return the old word, which the block does not guarantee, unless the
    memory is marked :data:`~convaccel.hdl.stage.NO_RW_CHECK`: three more (logic keeps it)."""
    f = FAMILY_MAPPING[family]
    emu = 1 + (3 if not is_rom and not no_rw_check else 0)
    out = []
    for w, d in f.bram_configs:
        deep = math.ceil(depth / d)
        blocks = math.ceil(width / w) * deep
        cost = (f.bram_cost * blocks + 0.5 * (deep - 1) * width
                + (0.5 * deep if deep > 1 and not is_rom else 0) + 2 * emu)
        out.append((cost, blocks, deep))
    return out


def memory_mapping(family, width, depth, is_rom=False, no_rw_check=False):
    """``(kind, blocks)``: where Yosys's ``memory_libmap`` puts one memory (``"bram"``,
    ``"lutram"`` or ``"logic"``) and the block RAMs it takes there (0 unless ``"bram"``).
    `no_rw_check`: the memory is marked :data:`~convaccel.hdl.stage.NO_RW_CHECK`."""
    f = FAMILY_MAPPING[family]
    cost, blocks, _ = min(_bram_configs(family, width, depth, is_rom, no_rw_check))
    # On a tie, Yosys keeps the memory out of block RAM (checked against real builds).
    costs = {"logic": width * depth * (LOGIC_COST_ROM if is_rom else LOGIC_COST_RAM)}
    if f.lutram is not None and not is_rom:
        abits, lut_width, lut_cost = f.lutram
        costs["lutram"] = math.ceil(depth / (1 << abits)) * math.ceil(width / lut_width) * lut_cost
    costs["bram"] = cost
    kind = min(costs, key=costs.get)
    return kind, blocks if kind == "bram" else 0


def mapping_logic(family, width, depth, is_rom=False, no_rw_check=False):
    """``(lut, ff)`` that Yosys adds beside the block RAMs of a memory it maps to them: the
    old word kept for a read during a write to the same address (a RAM not marked
    :data:`~convaccel.hdl.stage.NO_RW_CHECK`: the write data and the read word registered,
    the addresses compared, and a multiplexer; measured on iCE40 and ECP5 for widths 8 to 65
    and depths 8 to 1023, each within 2), and the multiplexer of the read word between depth
    blocks (a LUT per bit per extra block, its select registered)."""
    if memory_mapping(family, width, depth, is_rom, no_rw_check)[0] != "bram":
        return 0, 0
    _, _, deep = min(_bram_configs(family, width, depth, is_rom, no_rw_check))
    abits = max(depth - 1, 1).bit_length()
    lut = (deep - 1) * width
    ff = (deep - 1).bit_length()
    if not is_rom and not no_rw_check:
        lut += width + abits + 2
        ff += 2 * width + abits + 2
    return lut, ff


def bram_blocks(family, width, depth, is_rom=False, no_rw_check=False):
    """Block RAMs for one memory, or 0 if Yosys would rather use LUT RAM or logic."""
    return memory_mapping(family, width, depth, is_rom, no_rw_check)[1]


def brams(family, memories):
    """Block RAMs of `memories` (:class:`~convaccel.hdl.stage.MemoryShape`, each ``count``
    times), as Yosys maps each."""
    return sum(bram_blocks(family, m.width, m.depth, m.rom, m.no_rw_check) * m.count
               for m in memories)
