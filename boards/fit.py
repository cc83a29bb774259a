"""Fit before you build: the design's DSP and block RAM needs against a board's device.

The estimate counts what the board top holds: one multiplier block per PE (more if the
operands are wider than the block's ports), and every memory of the engine and the self-test
mapped the way Yosys's ``memory_libmap`` chooses, by comparing its costs (block RAM, LUT RAM,
flip-flops) with the figures in Yosys's own memory libraries (``share/<family>/*.txt``). A test
compares the estimate with nextpnr's report of a real build.
"""

import dataclasses
import math
from dataclasses import dataclass

from .selftest import rom_word_bits, selftest_data

__all__ = ["Fit", "FitError", "check_fit", "estimate", "largest_array", "memories"]


class FitError(ValueError):
    """The design does not fit the board's device."""


@dataclass(frozen=True)
class _Family:
    dsp_a: int                 # multiplier block operand widths (signed)
    dsp_b: int
    bram_configs: tuple        # (width, depth) of one block RAM
    bram_cost: int
    lutram: tuple | None       # (abits, width, cost) of a distributed RAM cell, RAMs only


#: Figures from Yosys's memory libraries (``share/ice40/brams.txt``,
#: ``share/lattice/brams_16kd.txt``, ``lutrams_trellis.txt``, ``share/gowin/*rams.txt``) and the
#: DSP mapping (SB_MAC16 16x16; MULT18X18D 18x18; Gowin MULT9X9 9x9).
_FAMILIES = {
    "ice40": _Family(16, 16, ((16, 256), (8, 512), (4, 1024), (2, 2048)), 64, None),
    "ecp5": _Family(18, 18, ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192),
                             (1, 16384)), 128, (4, 4, 4)),
    "gowin": _Family(9, 9, ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192),
                            (1, 16384)), 128, (4, 4, 4)),
}

#: Yosys's cost of one memory bit lowered to flip-flops and LUTs (a ROM becomes LUTs).
_LOGIC_COST_RAM = 1.0
_LOGIC_COST_ROM = 1.0 / 16


def memories(spec, rom_shapes=None, app="selftest"):
    """Every memory of the board top: ``{name: (width, depth, count, is_rom)}``.

    `app` is what hosts the engine: ``"link"`` (the serial link's packet buffers and result
    queue) or ``"selftest"`` (its ROMs; `rom_shapes` is :attr:`SelfTest.rom_shapes`, ``None``
    computes it for the default test data).
    """
    if app == "selftest" and rom_shapes is None:
        rom_shapes = _rom_shapes(spec, *selftest_data(spec))
    mems = {}
    k_eff_h = spec.kernel_eff[0]
    if k_eff_h > 1:
        mems["line buffer"] = ((k_eff_h - 1) * spec.in_channels * spec.input_bits,
                               spec.padded_shape[1], 1, False)
    mems["PE weights"] = (spec.weight_bits, spec.cycles_per_pixel, spec.pe_count, False)
    mems["biases"] = (spec.cols * spec.bias_bits, spec.col_folds, 1, False)
    # The output queue: a word per column group, `col_folds` per queued pixel.
    mems["output queue"] = (spec.cols * spec.acc_bits + 1,
                            spec.output_queue_depth * spec.col_folds, 1, False)
    if app == "link":
        from ..hdl.link import MAX_PAYLOAD, RESULT_QUEUE
        mems["link packet buffers"] = (8, MAX_PAYLOAD, 2, False)
        mems["link result queue"] = (8, RESULT_QUEUE - 1, 1, False)
    else:
        for name, (width, depth) in rom_shapes.items():
            mems[f"self-test {name} ROM"] = (width, depth, 1, True)
    return mems


def _rom_shapes(spec, x, w, b):
    # The same figures as SelfTest.rom_shapes, without elaborating anything.
    from .. import golden
    from ..beats import weight_beats
    weights = [v for v, _ in weight_beats(w, b, spec)]
    expected = golden.conv2d(x, w, b, spec)
    return {
        "weights": (rom_word_bits(weights), len(weights)),
        "pixels": (rom_word_bits(x, spec.input_signed) * spec.in_channels,
                   spec.height * spec.width),
        "expected": (rom_word_bits(expected) * spec.out_channels,
                     spec.output_size[0] * spec.output_size[1]),
    }


def _brams(family, width, depth, is_rom):
    """Block RAMs for one memory, or 0 if Yosys would rather use LUT RAM or logic."""
    f = _FAMILIES[family]
    blocks = min(math.ceil(width / w) * math.ceil(depth / d) for w, d in f.bram_configs)
    # On a tie, Yosys keeps the memory out of block RAM (checked against real builds).
    costs = {"logic": width * depth * (_LOGIC_COST_ROM if is_rom else _LOGIC_COST_RAM)}
    if f.lutram is not None and not is_rom:
        abits, lut_width, cost = f.lutram
        costs["lutram"] = math.ceil(depth / (1 << abits)) * math.ceil(width / lut_width) * cost
    costs["bram"] = blocks * f.bram_cost
    return blocks if min(costs, key=costs.get) == "bram" else 0


def _dsps(family, spec):
    f = _FAMILIES[family]
    per_pe = math.ceil(spec.input_bits / f.dsp_a) * math.ceil(spec.weight_bits / f.dsp_b)
    return spec.pe_count * per_pe


def estimate(spec, board, rom_shapes=None, app="selftest"):
    """``{"dsp": n, "bram": n}`` the board top needs on `board`."""
    bram = sum(_brams(board.family, width, depth, is_rom) * count
               for width, depth, count, is_rom in memories(spec, rom_shapes, app).values())
    return {"dsp": _dsps(board.family, spec), "bram": bram}


@dataclass(frozen=True)
class Fit:
    """The outcome of :func:`check_fit`: needs and capacities by resource."""

    needed: dict
    available: dict

    @property
    def over(self):
        """``{resource: excess}`` for every resource that does not fit."""
        return {k: n - self.available[k] for k, n in self.needed.items()
                if k in self.available and n > self.available[k]}

    @property
    def fits(self):
        return not self.over


def _fit(spec, board, rom_shapes=None, app="selftest"):
    needed = estimate(spec, board, rom_shapes, app)
    return Fit(needed, {k: board.resources[k] for k in needed if k in board.resources})


def largest_array(spec, board, app="selftest"):
    """The ``(rows, cols)`` with the most PEs (then the fewest cycles) that fits `board`, or
    None. The self-test's test data does not depend on the array, so its ROMs are computed
    once."""
    x, w, b = selftest_data(spec)
    base = _rom_shapes(spec, x, w, b)
    best = None
    for rows in range(1, spec.reduction + 1):
        for cols in range(1, spec.out_channels + 1):
            candidate = dataclasses.replace(spec, rows=rows, cols=cols)
            shapes = dict(base, weights=(
                base["weights"][0],
                candidate.cycles_per_pixel * rows * cols + spec.out_channels))
            if not _fit(candidate, board, shapes, app).fits:
                continue
            key = (rows * cols, -candidate.cycles, -abs(rows - spec.rows))
            if best is None or key > best[0]:
                best = (key, (rows, cols))
    return best[1] if best else None


_UNITS = {"dsp": "DSP blocks", "bram": "block RAMs"}


def check_fit(spec, board, rom_shapes=None, app="selftest"):
    """Raise :class:`FitError` unless the design fits `board`; return the :class:`Fit`.

    The message names each resource that is over, by how much, and the largest array that
    would fit.
    """
    fit = _fit(spec, board, rom_shapes, app)
    if fit.fits:
        return fit
    problems = "; ".join(
        f"needs {fit.needed[k]} {_UNITS[k]}, the {board.device} has {fit.available[k]} "
        f"({excess} over)" for k, excess in fit.over.items())
    largest = largest_array(spec, board, app)
    if largest is None:
        advice = "no array size fits this layer on this board; choose a larger board"
    else:
        advice = (f"the largest array that fits is rows = {largest[0]}, cols = {largest[1]} "
                  f"({largest[0] * largest[1]} PEs)")
    raise FitError(
        f"The {spec.rows} x {spec.cols} array does not fit the {board.name} board: "
        f"{problems}; {advice}")
