"""How Yosys maps a memory on each family: block RAM, LUT RAM or logic.

Figures from Yosys's memory libraries (``share/ice40/brams.txt``, ``share/lattice/
brams_16kd.txt``, ``lutrams_trellis.txt``, ``share/gowin/*rams.txt``) and the DSP mapping
(SB_MAC16 16x16, or two 8x8 where the array instantiates them; MULT18X18D 18x18; Gowin MULT9X9
9x9). Kept apart from the fit check (which imports the engine) so that the engine's weight
placement (:func:`convaccel.hdl.weights.weight_placement`) can read the same figures.
"""

import math
from dataclasses import dataclass

__all__ = ["FAMILY_MAPPING", "bram_blocks"]


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


def memory_mapping(family, width, depth, is_rom=False):
    """``(kind, blocks)``: where Yosys's ``memory_libmap`` puts one memory (``"bram"``,
    ``"lutram"`` or ``"logic"``) and the block RAMs it takes there (0 unless ``"bram"``)."""
    f = FAMILY_MAPPING[family]
    blocks = min(math.ceil(width / w) * math.ceil(depth / d) for w, d in f.bram_configs)
    # On a tie, Yosys keeps the memory out of block RAM (checked against real builds).
    costs = {"logic": width * depth * (LOGIC_COST_ROM if is_rom else LOGIC_COST_RAM)}
    if f.lutram is not None and not is_rom:
        abits, lut_width, cost = f.lutram
        costs["lutram"] = math.ceil(depth / (1 << abits)) * math.ceil(width / lut_width) * cost
    costs["bram"] = blocks * f.bram_cost
    kind = min(costs, key=costs.get)
    return kind, blocks if kind == "bram" else 0


def bram_blocks(family, width, depth, is_rom=False):
    """Block RAMs for one memory, or 0 if Yosys would rather use LUT RAM or logic."""
    return memory_mapping(family, width, depth, is_rom)[1]
