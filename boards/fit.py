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
import functools
import math
import time
from dataclasses import dataclass

from .mapping import FAMILY_MAPPING as _FAMILIES
from .mapping import brams, mapping_logic, memory_mapping
from .selftest import SelfTest, selftest_data

__all__ = ["Fit", "FitError", "SearchResult", "check_fit", "check_network_fit", "estimate",
           "fastest_folding", "folding_text", "largest_array", "logic_capacity",
           "logic_needed", "memories", "network_estimate", "network_link_brams", "queue_logic",
           "stage_logic", "weight_placement_for"]


class FitError(ValueError):
    """The design does not fit the board's device."""


def _check_app(spec, app):
    if app == "selftest" and spec.requantize:
        raise FitError("a requantized layer runs on a board behind the host link: build it "
                       "with --link (the self-test's ROMs hold raw layers only)")


def _host(spec, app, selftest=None, family=None):
    """The component that hosts the engine on the board: the serial link (built for `family`)
    or the self-test (`selftest` is ``(x, w, b, expected)``, default :func:`selftest_data`'s)."""
    _check_app(spec, app)
    if app == "link":
        from ..link.gateware import HostLink
        return HostLink(spec, family=family)
    if app != "selftest":
        raise ValueError(f"app must be 'link' or 'selftest', not {app!r}")
    x, w, b, expected = selftest if selftest is not None else (*selftest_data(spec), None)
    return SelfTest(spec, x, w, b, expected=expected)


def memories(spec, app="selftest", *, selftest=None, family=None):
    """Every memory of the board top (:class:`~convaccel.hdl.stage.MemoryShape`), as its
    components declare them. `app` is what hosts the engine: ``"link"`` (the serial link, as
    built for `family`) or ``"selftest"`` (its ROMs hold `selftest`, ``(x, w, b, expected)``;
    the default test data when None)."""
    if selftest is None and app == "link":
        return _link_memories(spec, family)
    return _host(spec, app, selftest, family).memories


@functools.lru_cache(maxsize=1024)
def _link_memories(spec, family):
    # (a search estimates a folding once, a check of its answer again)
    return _host(spec, "link", family=family).memories


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
    from ..hdl.accelerator import engine_multipliers
    return _pe_dsps(family, spec) + sum(_blocks(family, a, b)
                                        for a, b in engine_multipliers(spec))


def weight_placement_for(spec, board, fixed=False):
    """Where the PEs' weights of `spec` live on `board`
    (:func:`~convaccel.hdl.weights.weight_placement`, the decision the array takes when it is
    elaborated for the board's platform; `fixed` weights, a network's, are never in SPRAM)."""
    from ..hdl.weights import weight_placement
    depth = max(m.depth for m in spec.memories if m.name == "PE weights")
    return weight_placement(rows=spec.rows, cols=spec.cols, depth=depth,
                            weight_bits=spec.weight_bits, paired=spec.engine.pe_pairs > 0,
                            family=board.family,
                            spram=0 if fixed else board.resources.get("spram", 0))


def _placed_memories(spec, board, app, selftest):
    """The board top's memories with the PEs' weights as the board places them, and the
    SPRAMs they take."""
    placement = weight_placement_for(spec, board)
    depth = max(m.depth for m in spec.memories if m.name == "PE weights")
    weights, spram = placement.memories(spec.rows, spec.cols, depth, spec.weight_bits)
    others = tuple(m for m in memories(spec, app, selftest=selftest, family=board.family)
                   if m.name != "PE weights")
    return others + weights, spram, placement


#: The logic model, per family: flip-flops and LUTs as ``c0 + c_window * window bits + c_pe *
#: PE bits + c_out * output bits`` (:func:`_logic_features`), plus what the memories lowered to
#: logic cost (a RAM bit is a flip-flop and about a LUT; a ROM bit 1/16 LUT; a LUT RAM cell a
#: LUT) and the weight lanes' delays. Non-negative least-squares fits of Yosys's mapping of the
#: board top with the host link (benchmarks/calibrate_fit.py on the layers of
#: benchmarks/fit_calibration/<board>.jsonl: 7 on the UP5K, within 3.5 % (FF) and 1 % (LUT) of
#: each; 4 on the ECP5 and the GW1NR-9, as many as coefficients, so checked only on other
#: layers; ``lut`` counts the LUT4s of :mod:`.cost`'s counts).
_LOGIC_MODEL = {
    "ice40": {"ff": (900.464, 1.272, 2.711, 0.905), "lut": (1179.687, 0.669, 1.052, 1.114)},
    "ecp5": {"ff": (872.151, 1.288, 3.068, 0.991), "lut": (1421.365, 0.646, 3.223, 0.809)},
    "gowin": {"ff": (872.151, 1.288, 3.068, 0.991), "lut": (1126.283, 0.395, 0.0, 2.924)},
}

#: The channel-serial engine's logic model, the same features (its window term is the beat and
#: the vector, ``(lanes + rows) * input_bits``): a non-negative least-squares fit of five real
#: iCEBreaker builds of the board top with the host link (examples/resnet8_stage1..3.toml on
#: 4 x 2 and 8 x 1 arrays with lanes 16 and 32, the requantizer's multiplier in DSP blocks and
#: in fabric, and a raw 4 x 4 lanes 16 build; benchmarks/fit_calibration/icebreaker-serial.jsonl),
#: each within 14 % (LUT) and 7 % (FF). Its constant is large: the line buffer's address
#: generator, the padder by chunks and the output stage by blocks cost about the same at any
#: size. No ECP5 or Gowin build of it has been measured yet: their estimates use these
#: coefficients too (LUT4 counts on all three families).
_SERIAL_LOGIC_MODEL = {"ff": (1922.794, 4.265, 0.734, 0.0), "lut": (2711.731, 1.579, 0.0, 0.0)}

#: The share of an iCE40's logic cells that a design may take: nextpnr placed a ResNet-8 stage
#: at 89 % of the UP5K's in a minute, and was still placing the same engine at 95 % after 23
#: minutes (and at 101 % and 103 % failed outright). The fit check keeps this headroom.
_ICE40_PLACEABLE = 0.9

#: The self-test host against the link's (its ROMs counted as memories): ``(lut, ff)``, the
#: mean difference of two real iCEBreaker builds of the self-test (the default layer, 1403
#: LUT4 and 2387 FF, and examples/reflect_s2.toml, 1380 and 1866) from the link model's
#: estimate; each is within 13 % of its build with it.
_SELFTEST_OFFSET = (-896, -312)

#: iCE40 logic cells are 0.8 x (LUT4 + FF) in every nextpnr build of the UP5K we have (0.78 to
#: 0.81, 27 builds of 5 designs).
_LC_PER_LUT_FF = 0.8

#: A network's board top packs tighter: 0.765 to 0.780 logic cells per LUT4 and flip-flop in
#: nextpnr's packing of four builds of the digits network on the UP5K (its weights baked in,
#: 4685 to 4789 logic cells); the network's estimate takes the highest.
_NETWORK_LC_PER_LUT_FF = 0.78


def _logic_features(spec):
    """``(window, pe, out)`` bits: the registers that hold a window (the window generator's and
    the feeder's copy; the channel-serial engine's vectors only), the PEs' operands and sums,
    and an output pixel with its accumulators."""
    k_h, k_w = spec.kernel
    if spec.serial:
        window = (spec.lanes + spec.rows) * spec.input_bits
    else:
        window = (k_h * k_w * spec.in_channels + spec.groups * spec.row_folds * spec.rows) \
            * spec.input_bits
    pe = spec.pe_count * (spec.input_bits + spec.psum_bits)
    out = spec.result_channels * spec.output_bits + spec.cols * spec.acc_bits
    return window, pe, out


def _logic_floor(family, spec, app):
    """``(lut, ff)``: the part of the logic estimate that needs no memory counted (a lower
    bound of :func:`_logic`'s: the memories and the lanes' delays only add)."""
    features = (1, *_logic_features(spec))
    model = _SERIAL_LOGIC_MODEL if spec.serial else _LOGIC_MODEL[family]
    offset = _SELFTEST_OFFSET if app == "selftest" else (0, 0)
    # (the model's layers had the requantizer's multipliers in DSP blocks; in logic they add
    # what the requantizer says)
    extra = spec.engine.extra_logic(family) if spec.requant_multiplier != "dsp" else (0, 0)
    return (sum(c * f for c, f in zip(model["lut"], features)) + offset[0] + extra[0],
            sum(c * f for c, f in zip(model["ff"], features)) + offset[1] + extra[1])


def _floor_fits(board, spec, app):
    """The floor of the logic estimate fits `board` (else no estimate of `spec` can)."""
    lut, ff = _logic_floor(board.family, spec, app)
    floors = {"lut": lut, "ff": ff}
    if board.family == "ice40":
        floors["logic"] = _LC_PER_LUT_FF * (lut + ff)
    capacities = _capacities(board, [k for k in floors if k in board.resources])
    return all(round(floors[k]) <= n for k, n in capacities.items())


def _memory_logic(family, mems, beside=False):
    """``(lut, ff)`` of the memories that Yosys lowers to logic or LUT RAM; with `beside`,
    also of the logic it adds beside block RAMs (:func:`~.mapping.mapping_logic`: the
    engine's logic model, fitted to real builds, has it in its coefficients)."""
    lut = ff = 0
    for m in mems:
        kind, _ = memory_mapping(family, m.width, m.depth, m.rom, m.no_rw_check)
        if kind == "bram" and beside:
            extra_lut, extra_ff = mapping_logic(family, m.width, m.depth, m.rom, m.no_rw_check)
            lut += extra_lut * m.count
            ff += extra_ff * m.count
        bits = m.width * m.depth * m.count
        if kind == "logic" and m.rom:
            lut += bits / 16
        elif kind == "logic":
            ff += bits
            lut += bits
        elif kind == "lutram":
            lut += _lutram_cells(family, m)
    return lut, ff


def _lutram_cells(family, m):
    """The distributed RAM cells (one LUT's storage each) that Yosys builds memory `m` of."""
    abits, lut_width, _ = _FAMILIES[family].lutram
    return math.ceil(m.depth / (1 << abits)) * math.ceil(m.width / lut_width) * m.count


#: Flip-flop sites a distributed RAM cell takes from the placer, per family: on Gowin a
#: RAM16SDP4 takes its slices' (nextpnr-himbaechel counts them before placing: the default
#: layer's 2469 flip-flops and 121 cells take 3195 of the GW1NR-9's 6480 sites; at 5 x 8 its
#: 5643 and 187 take 6765, and nextpnr never finishes placing).
_LUTRAM_FF_SITES = {"gowin": 6}


def _logic(family, spec, mems, placement, app):
    """``{"lut": n, "ff": n}`` estimated for the board top (:data:`_LOGIC_MODEL`)."""
    lut, ff = _logic_floor(family, spec, app)
    mem_lut, mem_ff = _memory_logic(family, mems)
    lut += mem_lut
    ff += mem_ff + placement.delay_bits(spec.rows, spec.cols, spec.weight_bits)
    return {"lut": round(lut), "ff": round(ff)}


def estimate(spec, board, app="selftest", *, selftest=None):
    """``{"dsp", "bram", "spram", "lut", "ff"[, "logic"]: n}``: what the board top needs on
    `board` (``logic``: iCE40 logic cells)."""
    mems, spram, placement = _placed_memories(spec, board, app, selftest)
    bram = brams(board.family, mems)
    needed = {"dsp": _dsps(board.family, spec), "bram": bram, "spram": spram,
              **_logic(board.family, spec, mems, placement, app)}
    needed.update(_ff_sites(board.family, needed["ff"], mems))
    if board.family == "ice40":
        needed["logic"] = round(_LC_PER_LUT_FF * (needed["lut"] + needed["ff"]))
    return needed


def _ff_sites(family, ff, mems):
    """``{"ff_sites": n}`` on a family whose distributed RAM cells take flip-flop sites
    (:data:`_LUTRAM_FF_SITES`): `ff` flip-flops and those the cells of `mems` take; else
    ``{}``."""
    sites = _LUTRAM_FF_SITES.get(family)
    if not sites:
        return {}
    cells = sum(_lutram_cells(family, m) for m in mems
                if memory_mapping(family, m.width, m.depth, m.rom, m.no_rw_check)[0]
                == "lutram")
    return {"ff_sites": ff + sites * cells}


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

    @property
    def load(self):
        """The sum over resources of the fraction of the device used: what breaks a tie
        between equally fast foldings."""
        return sum(n / self.available[k] for k, n in self.needed.items()
                   if self.available.get(k))


def _total(board, resource):
    """How many of `resource` the board's device has (flip-flop sites: its flip-flops)."""
    return board.resources.get("ff" if resource == "ff_sites" else resource, 0)


def _capacities(board, needed):
    # (a resource the device lacks, e.g. SPRAM off the UltraPlus, has a capacity of 0; an
    # iCE40's logic cells keep the placer's headroom, _ICE40_PLACEABLE)
    capacities = {k: _total(board, k) for k in needed}
    if board.family == "ice40" and "logic" in capacities:
        capacities["logic"] = int(capacities["logic"] * _ICE40_PLACEABLE)
    return capacities


def _fit(spec, board, app="selftest", selftest=None):
    needed = estimate(spec, board, app, selftest=selftest)
    return Fit(needed, _capacities(board, needed))


def _selftest_data(spec, app):
    """The self-test's data (it does not depend on the folding), computed once for a search."""
    if app != "selftest":
        return None
    x, w, b = selftest_data(spec)
    from .. import golden
    return (x, w, b, golden.conv2d(x, w, b, spec))


def _folding_candidates(spec):
    """Every folding the search considers: ``(rows, cols, lanes, requant_multiplier)`` with no
    rows past the reduction or columns past a group's filters (only idle PEs there), and for
    the channel-serial engine every ``lanes`` that divides ``in_channels`` and that
    ``ConvSpec`` accepts with those rows and columns; a requantized layer's with either kind
    of requantizer multiplier (the fabric kind where ``ConvSpec`` accepts it)."""
    serial_lanes = [d for d in range(1, spec.in_channels + 1) if spec.in_channels % d == 0] \
        if spec.groups == 1 else []
    kinds = ("dsp", "fabric") if spec.requantize else ("dsp",)
    for rows in range(1, spec.reduction + 1):
        for cols in range(1, spec.out_per_group + 1):
            for kind in kinds:
                yield rows, cols, None, kind
                for lanes in serial_lanes:
                    if lanes % rows == 0 and spec.out_channels % cols == 0:
                        yield rows, cols, lanes, kind


@dataclass(frozen=True)
class SearchResult:
    """The outcome of :func:`fastest_folding`.

    Members
    -------
    spec : ConvSpec or None
        The layer on the fastest folding that fits, or None.
    fit : Fit or None
        Its estimate.
    considered, estimated : int
        Foldings considered, and foldings whose whole estimate was made (the others were
        ruled out by their DSP blocks or by a bound on their cycles).
    seconds : float
    """

    spec: object
    fit: object
    considered: int
    estimated: int
    seconds: float

    @property
    def folding(self):
        return None if self.spec is None else self.spec.folding


def _with_folding(spec, rows, cols, lanes, requant_multiplier=None):
    # (`requant_multiplier` None: `spec`'s)
    return dataclasses.replace(spec, rows=rows, cols=cols, lanes=lanes,
                               requant_multiplier=requant_multiplier or spec.requant_multiplier)


def fastest_folding(spec, board, app="selftest"):
    """The folding of `spec`'s layer with the fewest cycles per frame that fits `board`, ties
    broken by the lighter load on the device (:attr:`Fit.load`), then the fewer PEs, then the
    rows nearest `spec`'s (:class:`SearchResult`).

    Candidates (:func:`_folding_candidates`) are ruled out by their DSP blocks first, then by
    the part of their logic estimate that needs no memory counted (no engine is built for
    them); the others are taken in order of their cycles per
    output pixel, which bounds a frame's cycles from below (``output pixels x P``: a window
    takes the array ``P`` cycles), so the search stops once that bound passes the fastest
    folding found.
    """
    start = time.perf_counter()
    _check_app(spec, app)
    selftest = _selftest_data(spec, app)
    dsp = board.resources.get("dsp")
    considered = estimated = 0
    feasible = []
    for rows, cols, lanes, kind in _folding_candidates(spec):
        considered += 1
        if dsp is not None and _pe_dsps(board.family, spec, rows, cols) > dsp:
            continue                  # (iCE40: an odd row count pairs fewer PEs)
        try:
            candidate = _with_folding(spec, rows, cols, lanes, kind)
        except ValueError:
            continue
        feasible.append(candidate)
    best = None
    pixels = spec.output_pixels
    for candidate in sorted(feasible, key=lambda c: c.cycles_per_pixel):
        if best is not None and pixels * candidate.cycles_per_pixel > best[0][0]:
            continue
        if not _floor_fits(board, candidate, app):
            continue                  # (its logic, before any memory is counted)
        if dsp is not None and _dsps(board.family, candidate) > dsp:
            continue                  # (the requantizer's multipliers on top)
        estimated += 1
        fit = _fit(candidate, board, app, selftest)
        if not fit.fits:
            continue
        key = (candidate.cycles, fit.load, candidate.pe_count, abs(candidate.rows - spec.rows),
               candidate.rows, candidate.lanes or 0)
        if best is None or key < best[0]:
            best = (key, candidate, fit)
    return SearchResult(spec=best and best[1], fit=best and best[2], considered=considered,
                        estimated=estimated,
                        seconds=time.perf_counter() - start)


def largest_array(spec, board, app="selftest"):
    """The ``(rows, cols)`` with the most PEs (then the fewest cycles, then the rows nearest
    `spec`'s) that fits `board`, or None (today's engine: no ``lanes``).

    Arrays are tried from the most PEs down, the DSP blocks first (no memory needs counting for
    an array with too many PEs); the first PE count at which any array fits holds the answer.
    """
    _check_app(spec, app)
    selftest = _selftest_data(spec, app)
    by_pes = {}
    for rows in range(1, spec.reduction + 1):
        for cols in range(1, spec.out_per_group + 1):
            by_pes.setdefault(rows * cols, []).append((rows, cols))
    dsp = board.resources.get("dsp")
    for pes in sorted(by_pes, reverse=True):
        fitting = []
        for rows, cols in by_pes[pes]:
            if dsp is not None and _pe_dsps(board.family, spec, rows, cols) > dsp:
                continue
            candidate = _with_folding(spec, rows, cols, None)
            if dsp is not None and _dsps(board.family, candidate) > dsp:
                continue
            if _fit(candidate, board, app, selftest).fits:
                fitting.append((-candidate.cycles, -abs(rows - spec.rows), (rows, cols)))
        if fitting:
            return max(fitting)[2]
    return None


# -- a network's stages --------------------------------------------------------------------

#: A network's logic model on iCE40 (:func:`stage_logic`, :func:`_host_logic`), calibrated on
#: Yosys's mapping of a real network's board top, each cell put to its part by the names of
#: its nets (benchmarks/attribute_netlist.py): the digits model, its convolutions' weights and
#: parameters baked in, on the compiler's lightest plan for the UP5K (conv 1 x 1 lanes 1 with
#: the dsp requantizer; conv 1 x 1 lanes 1 with the fabric one; pool lanes 1; dense 1 x 1
#: fabric: 3289 LUT4 and 2853 flip-flops in all, estimated 3267 and 2798) and on an earlier
#: one (conv 2 x 1 whole pixels; conv 2 x 1 lanes 8 fabric: 3388 and 3295, estimated 3490
#: and 3460: the serial engine's flip-flops at lanes 8 are overestimated by about 230).
#: ``host``: what the network has once, the link, the network engine's status counters, the
#: board top and the network's input queue (9 LUT4 and 22 flip-flops at one lane).
#: ``engine``: a convolution engine's control beyond the engine model's terms, its memories
#: and its requantizer, whole-pixel and channel-serial. ``dense``, ``pool``, ``queue``: a
#: stage's control beyond the data path :func:`stage_logic` counts. No ECP5 or Gowin network
#: has been attributed yet: they use these figures (LUT4 counts on all three).
_NETWORK_LOGIC = {
    "host": (1145, 717),
    "engine": {"whole": (108, 10), "serial": (352, 230)},
    "dense": (300, 47),
    "pool": (18, 19),
    "queue": (48, 25),
}

#: The dsp requantizer alone (:class:`~convaccel.hdl.requant.Requantizer`, Yosys's mapping on
#: the UP5K, value widths 19 to 33 bits, 1 to 4 columns, 1 and 2 units, 1 to 16 folds): per
#: unit ``c0 + c1 * value bits``, ``c2`` per column beyond the units (its registers and
#: selection), and per unit where it copies the group's multipliers: ``(lut, ff)`` of the
#: copies for the partial products (``"early"``: the group takes more than one pass, or the
#: next group may come within three cycles) and of those for the last stage (``"late"``: ...
#: within six). The fabric kind is this plus
#: :attr:`~convaccel.hdl.requant.Requantizer.logic`.
_REQUANT_DSP = {"lut": (309, 13.6, 74), "ff": (487, 11.0, 198), "early": (0, 62),
                "late": (50, 117)}

#: The requantizer with its parameters baked in (``fixed``, a network's layer; its
#: multipliers and shift codes in ROMs, only the layer's right shifts built, the zero point and
#: clamp constants), per kind: ``(c0, c_bits, c_shift)`` per unit of ``c0 + c_bits * value
#: bits + c_shift * distinct shifts``, and ``c_col`` per column beyond the units; LUTs and
#: flip-flops. Fitted to Yosys's mapping of the requantizer alone on the UP5K (value widths
#: 19 to 33 bits, 1 and 2 columns, one unit, 2 and 4 distinct right shifts), each within 9
#: LUTs, before :func:`_requant_logic`'s terms for the held operands and the tables read at
#: once. Its tables had two distinct multipliers (Yosys shares such ROM bits): with random ones
#: the requantizer alone maps to 30 to 60 LUTs and 30 to 60 flip-flops more, but in the
#: digits network's board top these figures are within 40 of its mapped requantizers (the
#: dsp kind's 263 / 448 against 288 / 457, the fabric kind's 175 / 375 against 212 / 342).
#: A layer with a left shift is counted as the loaded kind (:data:`_REQUANT_DSP`).
_REQUANT_FIXED = {
    "dsp": {"lut": (58.5, 8.5, 21.67, -24.5), "ff": (247.5, 11.0, 5.67, 147.5)},
    "fabric": {"lut": (-37.0, 7.64, 22.17, 33.0), "ff": (222.0, 10.0, 5.0, 80.0)},
}

#: The share of a ROM's bits in logic that are LUTs (Yosys's ``memory_libmap`` cost).
_ROM_LUT_PER_BIT = 1 / 16


def _host_logic(family):
    """``(lut, ff)`` of what a network has once: the host link, the network engine's status
    counters, the board top (:data:`_NETWORK_LOGIC`)."""
    return _NETWORK_LOGIC["host"]


def _requant_logic(family, spec, fixed=None):
    """``(lut, ff)`` of a requantized layer's requantizer (:data:`_REQUANT_DSP`; with its
    parameters `fixed`, a :class:`~convaccel.quant.Requant`, :data:`_REQUANT_FIXED`), or
    zeros."""
    if not spec.requantize:
        return 0, 0
    from amaranth import signed

    from .. import quant
    from ..hdl.requant import Requantizer
    width = Requantizer.value_width_for(signed(spec.acc_bits))
    cols = spec.cols
    if fixed is not None and max(fixed.shift) <= 0:
        units = Requantizer.units_for(cols, spec.row_folds, spec.requant_multiplier)
        entries = len(Requantizer.shift_table(fixed))
        model = _REQUANT_FIXED[spec.requant_multiplier]
        # (the dsp kind's copies of the group's multipliers, as the loaded kind's)
        stable = spec.row_folds if cols <= units else 0
        dsp = spec.requant_multiplier == "dsp"
        lut, ff = (units * (c[0] + c[1] * width + c[2] * entries
                            + dsp * (early * (stable < 3) + late * (stable < 6)))
                   + c[3] * (cols - units)
                   for c, early, late in zip((model["lut"], model["ff"]),
                                             _REQUANT_DSP["early"], _REQUANT_DSP["late"]))
        if dsp and stable >= 6:
            ff += units * (quant.MULTIPLIER_BITS + 1)      # (the held multiplier's sum)
        if Requantizer.reads_tables_at_once(spec.blocks, fixed):
            # (the tables' read registers: the fit above had them)
            ff -= cols * (quant.MULTIPLIER_BITS + Requantizer._code_bits(entries))
        if Requantizer.holds_operands(cols, spec.row_folds, fixed):
            # no copies of the operands (the value; the fabric kind's value twice and its
            # multiplier): measured 20 and 79 flip-flops fewer at 19 and 22 bits
            ff -= width + 1 if dsp else 2 * width + quant.MULTIPLIER_BITS + 2
        return lut, ff
    # (the dsp kind's units: the model is calibrated on it)
    units = Requantizer.units_for(cols, spec.row_folds, "dsp")
    # (cycles the group's registers hold its multipliers: its folds, if one pass takes it)
    stable = spec.row_folds if cols <= units else 0
    out = [c[0] * units + c[1] * width * units + c[2] * max(cols - units, 0)
           + units * (early * (stable < 3) + late * (stable < 6))
           for c, early, late in zip((_REQUANT_DSP["lut"], _REQUANT_DSP["ff"]),
                                     _REQUANT_DSP["early"], _REQUANT_DSP["late"])]
    if spec.requant_multiplier != "dsp":
        extra = spec.engine.extra_logic(family)
        out = [out[0] + extra[0], out[1] + extra[1]]
    elif stable >= 6:
        out[1] += units * (quant.MULTIPLIER_BITS + 1)      # (the held multiplier's sum)
    return tuple(out)


def stage_logic(plan, board):
    """``(lut, ff)`` estimated for one stage of a network (a
    :class:`~convaccel.compiler.StagePlan`) on `board`, less what :func:`_host_logic` counts
    once for the whole network (:data:`_NETWORK_LOGIC`).

    A convolution: the terms of the engine's logic model without its constant (which holds
    the link's), its memories in logic and what Yosys adds beside its block RAMs, the
    weights' delays, its requantizer (:func:`_requant_logic`), its control; its weight-load
    ROM. A dense stage: its accumulators and their adders, the selection of an accumulator
    and of its multiplier, the products, the requantizer's product, rounding, sign, zero point
    and clamp, its control. A pool: a beat held and compared or summed per pipeline step. A
    reshape: nothing."""
    from ..network import Conv, Dense, Pool
    family = board.family
    stage = plan.stage
    if isinstance(stage, Conv):
        spec = plan.spec
        mems, _ = plan.memories(board)
        features = (0, *_logic_features(spec))
        model = _SERIAL_LOGIC_MODEL if spec.serial else _LOGIC_MODEL[family]
        lut = sum(c * f for c, f in zip(model["lut"], features))
        ff = sum(c * f for c, f in zip(model["ff"], features))
        # (the requantizer's memories are in its own figure)
        engine = [m for m in mems if m.name not in ("requant multipliers", "requant shifts")]
        mem_lut, mem_ff = _memory_logic(family, engine, beside=True)
        rq_lut, rq_ff = _requant_logic(family, spec, stage.conv.requant)
        control = _NETWORK_LOGIC["engine"]["serial" if spec.serial else "whole"]
        placement = weight_placement_for(spec, board, fixed=True)
        return (lut + mem_lut + rq_lut + control[0],
                ff + mem_ff + rq_ff + control[1]
                + placement.delay_bits(spec.rows, spec.cols, spec.weight_bits))
    if isinstance(stage, Dense):
        dense = plan.component()
        acc, mbits = dense.acc_bits, dense.multiplier_bits
        units, lanes = dense.units, plan.in_lanes
        rows, cols, out = plan.rows, plan.cols, plan.out_lanes
        beats = dense.output_beats
        psum = 16 + (rows - 1).bit_length() + 1
        fabric = dense.requant_multiplier == "fabric"
        shift = dense.requant[1]
        ring = cols % out == 0
        # (the fabric kind's product from M's low bit up is as wide as the magnitude)
        product = acc - 1 + (0 if fabric and shift >= mbits else mbits)
        rounded = product - max(shift - (mbits if product < acc - 1 + mbits else 0), 0) + 2
        # accumulators, the beat and a word's operands, the products' sums, the requantizer's
        # magnitude, multiplier and product, the output beat
        regs = (units * acc + lanes * 8 + rows * 8 + cols * psum
                + out * (acc + mbits + product + 9))
        # the accumulators' adders (a ring per column, or one per unit) and their inputs, the
        # selection of a beat's part, the products' adder trees, an accumulator's selection (a
        # LUT per 1.4 inputs of a multiplexer: of the rings' heads, or of the units) and its
        # multiplier's (of constants: one per 4), the product's rounding adder (the fabric
        # kind's shift-add and its multiplexer), the sign, zero point and clamp
        luts = ((2 * cols * acc if ring else units * acc) + rows * 8 * 0.7 * (lanes // rows - 1)
                + cols * psum * max(rows - 1, 0)
                + out * (acc * 0.7 * ((cols if ring else beats) - 1) + mbits * beats / 4
                         + product + (2 * product if fabric else 0) + 3 * rounded))
        mem_lut, mem_ff = _memory_logic(family, dense.memories, beside=True)
        control = _NETWORK_LOGIC["dense"]
        return luts + mem_lut + control[0], regs + mem_ff + control[1]
    if isinstance(stage, Pool):
        pool = plan.component()
        beat = 8 * plan.in_lanes
        mem_lut, mem_ff = _memory_logic(family, pool.memories, beside=True)
        # per pipeline stage of a pool: a beat held and its comparison or sum
        stages = len(getattr(pool, "stages", ())) or 1
        control = _NETWORK_LOGIC["pool"]
        return (3 * beat * stages + mem_lut + control[0],
                3 * beat * stages + mem_ff + control[1])
    return 0, 0


def _network_link_memories(plan, family):
    """The host link's own memories in front of `plan`'s network, built for `family`."""
    from ..link.gateware import HostLink
    from ..link.network import NetworkEngine, NetworkLinkSpec
    return HostLink(NetworkLinkSpec(plan), engine=NetworkEngine(plan),
                    family=family).own_memories


def network_link_brams(plan, board):
    """Block RAMs of the host link's own memories in front of `plan`'s network on `board`."""
    return brams(board.family, _network_link_memories(plan, board.family))


def queue_logic(board, memories):
    """``(lut, ff)`` of a network's queues on `board` whose memories are `memories` (a memory
    a queue): those lowered to logic and beside block RAMs, and each queue's control
    (:data:`_NETWORK_LOGIC`)."""
    lut, ff = _memory_logic(board.family, memories, beside=True)
    return (lut + _NETWORK_LOGIC["queue"][0] * len(memories),
            ff + _NETWORK_LOGIC["queue"][1] * len(memories))


def network_estimate(plan, board):
    """``{"dsp", "bram", "spram", "lut", "ff"[, "logic"|"ff_sites"]: n}``: what a network's
    board top (a :class:`~convaccel.compiler.NetworkPlan` behind the host link) needs on
    `board`. DSP and block RAM as the plan counts them (with the link's packet buffers and
    result queue); logic: :func:`_host_logic` once, :func:`stage_logic` per stage, the queues'
    memories lowered to logic and their control (:data:`_NETWORK_LOGIC`); on Gowin the
    flip-flop sites, its distributed RAM cells' among them (:func:`_ff_sites`)."""
    from ..hdl.nettop import queue_shapes
    family = board.family
    link_mems = _network_link_memories(plan, board.family)
    lut, ff = _host_logic(family)
    spram = 0
    bram = plan.queue_bram(board)
    mems = [*link_mems, *queue_shapes(plan)]
    for s in plan.stages:
        s_lut, s_ff = stage_logic(s, board)
        lut += s_lut
        ff += s_ff
        bram += s.bram(board)
        s_mems, s_spram = s.memories(board)
        spram += s_spram
        mems += s_mems
    q_lut, q_ff = queue_logic(board, queue_shapes(plan))
    lut += q_lut
    ff += q_ff
    bram += brams(family, link_mems)
    needed = {"dsp": plan.dsp, "bram": bram, "spram": spram, "lut": round(lut),
              "ff": round(ff), **_ff_sites(family, round(ff), mems)}
    if family == "ice40":
        needed["logic"] = round(_NETWORK_LC_PER_LUT_FF * (lut + ff))
    return needed


def logic_capacity(board):
    """``{resource: n}``: the logic a design may take on `board` (an iCE40's logic cells with
    the placer's headroom, :data:`_ICE40_PLACEABLE`)."""
    keys = [k for k in ("logic", "lut", "ff") if k in board.resources]
    if board.family == "ice40":
        keys = ["logic"]
    return _capacities(board, keys)


def logic_needed(board, lut, ff):
    """The logic figures :func:`logic_capacity` bounds, for a network's `lut` and `ff`."""
    if board.family == "ice40":
        return {"logic": round(_NETWORK_LC_PER_LUT_FF * (lut + ff))}
    return {k: v for k, v in (("lut", round(lut)), ("ff", round(ff)))
            if k in board.resources}


def check_network_fit(plan, board):
    """Raise :class:`FitError` unless the network's board top (:func:`network_estimate`) fits
    `board`; return the :class:`Fit`."""
    needed = network_estimate(plan, board)
    fit = Fit(needed, _capacities(board, needed))
    if fit.fits:
        return fit
    problems = "; ".join(
        f"needs {fit.needed[k]} {_UNITS[k]}, the {board.device} has {_total(board, k)}"
        + (f", of which the placer can use {fit.available[k]}"
           if fit.available[k] != _total(board, k) else "")
        + f" ({excess} over)" for k, excess in fit.over.items())
    raise FitError(f"The network does not fit the {board.name} board behind the host link: "
                   f"{problems}; choose a larger board")


_UNITS = {"dsp": "DSP blocks", "bram": "block RAMs", "spram": "SPRAMs", "lut": "LUTs",
          "ff": "flip-flops", "logic": "logic cells",
          "ff_sites": "flip-flop sites (its flip-flops and those its distributed RAM cells take)"}


def folding_text(spec):
    """``rows = R, cols = C (N PEs)[, lanes L][, requant_multiplier = 'fabric']``."""
    lanes = f", lanes = {spec.lanes}" if spec.serial else ""
    kind = (f", requant_multiplier = {spec.requant_multiplier!r}"
            if spec.requant_multiplier != "dsp" else "")
    return f"rows = {spec.rows}, cols = {spec.cols} ({spec.pe_count} PEs){lanes}{kind}"


def check_fit(spec, board, app="selftest"):
    """Raise :class:`FitError` unless the design fits `board`; return the :class:`Fit`.

    The message names each resource that is over, by how much, and the fastest folding that
    would fit (:func:`fastest_folding`).
    """
    fit = _fit(spec, board, app)
    if fit.fits:
        return fit
    def has(k):
        total = _total(board, k)
        if fit.available[k] == total:
            return f"has {total}"
        return (f"has {total}, of which the placer can use {fit.available[k]} "
                f"({round(100 * _ICE40_PLACEABLE)} %)")
    problems = "; ".join(
        f"needs {fit.needed[k]} {_UNITS[k]}, the {board.device} {has(k)} ({excess} over)"
        for k, excess in fit.over.items())
    found = fastest_folding(spec, board, app)
    if found.spec is None:
        advice = "no folding fits this layer on this board; choose a larger board"
    else:
        advice = (f"the fastest folding that fits is {folding_text(found.spec)}: "
                  f"{found.spec.cycles} cycles per frame")
    raise FitError(
        f"The {spec.rows} x {spec.cols} array does not fit the {board.name} board: "
        f"{problems}; {advice}")
