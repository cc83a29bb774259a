# amaranth: UnusedElaboratable=no
# (The engine's host is built here only to read its figures, never elaborated.)
"""Fit before you build: the design's DSP and block RAM needs against a board's device.

The estimate counts what the board top holds: one multiplier block per PE (more if the
operands are wider than the block's ports; on iCE40 one SB_MAC16 per pair of PEs with byte-wide
operands, in its dual 8 x 8 mode), and every memory that the board top's components
declare (the engine's stages and its host: the self-test's ROMs or the serial link's buffers,
:class:`~convaccel.hdl.stage.MemoryShape`), each mapped the way Yosys's ``memory_libmap``
chooses, by comparing its costs (block RAM, LUT RAM, flip-flops) with the figures in Yosys's
own memory libraries (``share/<family>/*.txt``). A test compares the estimate with nextpnr's
report of a real build.
"""

import dataclasses
import math
from dataclasses import dataclass

from .selftest import SelfTest, selftest_data

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
#: DSP mapping (SB_MAC16 16x16, or two 8x8 where the array instantiates them; MULT18X18D 18x18;
#: Gowin MULT9X9 9x9).
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


def _check_app(spec, app):
    if app == "selftest" and spec.requantize:
        raise FitError("a requantized layer runs on a board behind the host link: build it "
                       "with --link (the self-test's ROMs hold raw layers only)")


def _host(spec, app, selftest=None):
    """The component that hosts the engine on the board: the serial link or the self-test
    (`selftest` is ``(x, w, b, expected)``, default :func:`selftest_data`'s)."""
    _check_app(spec, app)
    if app == "link":
        from ..link.gateware import HostLink
        return HostLink(spec)
    if app != "selftest":
        raise ValueError(f"app must be 'link' or 'selftest', not {app!r}")
    x, w, b, expected = selftest if selftest is not None else (*selftest_data(spec), None)
    return SelfTest(spec, x, w, b, expected=expected)


def memories(spec, app="selftest", *, selftest=None):
    """Every memory of the board top (:class:`~convaccel.hdl.stage.MemoryShape`), as its
    components declare them. `app` is what hosts the engine: ``"link"`` (the serial link) or
    ``"selftest"`` (its ROMs hold `selftest`, ``(x, w, b, expected)``; the default test data
    when None)."""
    return _host(spec, app, selftest).memories


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


def _pe_dsps(family, spec, rows=None, cols=None):
    """DSP blocks of the PEs (of `spec` on a ``rows x cols`` array, default its own): one per
    PE (more for operands wider than the block's ports); on iCE40 one SB_MAC16 per pair of PEs
    where the array pairs them (its dual 8 x 8 mode)."""
    from amaranth import signed, unsigned

    from ..hdl.array import pe_pairs
    f = _FAMILIES[family]
    rows, cols = rows or spec.rows, cols or spec.cols
    per_pe = math.ceil(spec.input_bits / f.dsp_a) * math.ceil(spec.weight_bits / f.dsp_b)
    if family != "ice40":
        return rows * cols * per_pe
    elem = signed(spec.input_bits) if spec.input_signed else unsigned(spec.input_bits)
    pairs = pe_pairs(rows, cols, elem, signed(spec.weight_bits))
    return pairs + (rows * cols - 2 * pairs) * per_pe


def _blocks(family, a, b):
    """DSP blocks (in the units the board's capacity counts) for an ``a x b`` multiplier beside
    the PEs: cut into blocks, the lone top bit of a signed operand kept out of them, as Yosys
    maps the requantizer (tests/test_boards.py). Gowin's Yosys puts any product wider than
    9 x 9 in 18 x 18 blocks, each on two 9 x 9 sites."""
    f = _FAMILIES[family]
    if family == "gowin" and max(a, b) > f.dsp_a:
        return math.ceil((a - 1) / 18) * math.ceil(b / 18) * 2
    return math.ceil((a - 1) / f.dsp_a) * math.ceil(b / f.dsp_b)


def _dsps(family, spec):
    return _pe_dsps(family, spec) + sum(_blocks(family, a, b)
                                        for a, b in spec.engine.multipliers)


def estimate(spec, board, app="selftest", *, selftest=None):
    """``{"dsp": n, "bram": n}`` the board top needs on `board`."""
    bram = sum(_brams(board.family, m.width, m.depth, m.rom) * m.count
               for m in memories(spec, app, selftest=selftest))
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


def _fit(spec, board, app="selftest", selftest=None):
    needed = estimate(spec, board, app, selftest=selftest)
    return Fit(needed, {k: board.resources[k] for k in needed if k in board.resources})


def largest_array(spec, board, app="selftest"):
    """The ``(rows, cols)`` with the most PEs (then the fewest cycles, then the rows nearest
    `spec`'s) that fits `board`, or None.

    Arrays are tried from the most PEs down, the DSP blocks first (no memory needs counting for
    an array with too many PEs); the first PE count at which any array fits holds the answer.
    The self-test's data does not depend on the array, so its expected output is computed once.
    """
    _check_app(spec, app)
    selftest = None
    if app == "selftest":
        x, w, b = selftest_data(spec)
        from .. import golden
        selftest = (x, w, b, golden.conv2d(x, w, b, spec))
    by_pes = {}
    # (more rows than a reduction, or columns than a group's filters, only add idle PEs)
    for rows in range(1, spec.reduction + 1):
        for cols in range(1, spec.out_per_group + 1):
            by_pes.setdefault(rows * cols, []).append((rows, cols))
    dsp = board.resources.get("dsp")
    for pes in sorted(by_pes, reverse=True):
        fitting = []
        for rows, cols in by_pes[pes]:
            if dsp is not None and _pe_dsps(board.family, spec, rows, cols) > dsp:
                continue                  # (iCE40: an odd row count pairs fewer PEs)
            candidate = dataclasses.replace(spec, rows=rows, cols=cols)
            if dsp is not None and _dsps(board.family, candidate) > dsp:
                continue                  # (the requantizer's multipliers on top)
            if _fit(candidate, board, app, selftest).fits:
                fitting.append((-candidate.cycles, -abs(rows - spec.rows), (rows, cols)))
        if fitting:
            return max(fitting)[2]
    return None


_UNITS = {"dsp": "DSP blocks", "bram": "block RAMs"}


def check_fit(spec, board, app="selftest"):
    """Raise :class:`FitError` unless the design fits `board`; return the :class:`Fit`.

    The message names each resource that is over, by how much, and the largest array that
    would fit.
    """
    fit = _fit(spec, board, app)
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
