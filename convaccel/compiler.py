# amaranth: UnusedElaboratable=no
# (Stages are built here only to read their figures; the network top builds its own.)
"""The network compiler, first version: each stage's folding, chosen for a DSP budget.

A network (:func:`convaccel.network.load_network`) runs as a dataflow pipeline, one engine per
stage, joined by queues (:class:`convaccel.hdl.nettop.NetworkTop`). Its throughput is set by
its slowest stage: in steady state a frame leaves every ``interval`` cycles, the largest of
the stages' own intervals (a stage's cycles between the starts of two frames whose beats
follow each other, from its exact cycle model: ``ConvSpec.cycles`` for a convolution engine,
which takes a frame only after the previous one's last result has left; ``MaxPool.interval``
or ``AvgPool.interval``; ``Dense.cycles``). A ``RESHAPE`` (a flatten) moves no data and costs
nothing.

The stream between two stages carries the producer's result beats as they are: the consumer's
``lanes`` equals the producer's channels per result beat (a convolution engine's ``cols``
with ``lanes`` set, its ``out_channels`` without; a pool keeps its input's; the dense stage
emits one logit a beat). So the foldings are chosen together: :func:`compile_network`
enumerates each stage's foldings (a convolution: every ``rows x cols`` array with whole-pixel
beats if its input carries whole pixels, and every channel-serial ``rows x cols`` with
``lanes`` = the input's channels per beat; a dense stage: ``rows`` dividing its input's beat,
``cols`` dividing its units), keeps per stage and per input and output beat width only the
foldings no other one beats in both interval and DSP blocks (exact intervals, computed lazily
behind the lower bound ``output pixels x cycles per pixel``), and joins the stages by a
dynamic program over the beat widths: the fastest pipeline within the budget, ties broken by
fewer DSP blocks. The search is exhaustive over that space (no greedy step).

DSP blocks are counted as :mod:`convaccel.boards.fit` counts them for one engine (its PEs, and
the requantizer's multipliers), a dense stage's multipliers with the same rule; block RAM as
Yosys maps each stage's memories (:func:`convaccel.boards.mapping.memory_mapping`), the PEs'
weights placed as the engine places them on the board.

**Queue depths.** The queue after stage ``n`` holds one whole frame of that boundary's beats
(the producer's result beats per frame). Then a stage never waits for its consumer while it
produces a frame (the consumer, no slower per frame, frees a frame's worth of room while the
producer makes the next) and the slowest stage finds its next frame's beats already queued
when it starts it: it runs every frame exactly as its cycle model (input always valid, output
always ready) says, so the pipeline's frame interval is exactly the largest stage interval.
The rule is checked in simulation (``tests/hdl/test_nettop.py``: measured cycles per image
equal :attr:`NetworkPlan.interval`), and with random stalls at both ends nothing deadlocks (a
queue only decouples; back-pressure keeps every beat).
"""

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .network import Conv, Dense, Pool, Reshape
from .spec import ConfigError, ConvSpec

__all__ = ["StagePlan", "NetworkPlan", "plan_network", "compile_network", "CompileError"]


class CompileError(ConfigError):
    """No folding of the network fits the budget, or a stage cannot be mapped yet."""


@dataclass(frozen=True, eq=False)
class StagePlan:
    """One stage of a network on its folding.

    Members
    -------
    stage : Conv, Pool, Dense or Reshape
        The network's stage.
    in_lanes, out_lanes : int
        Elements per input and output beat.
    spec : ConvSpec or None
        A convolution's engine (its folding: ``rows``, ``cols``, ``lanes``).
    rows, cols : int or None
        The array (a convolution's, or a dense stage's multipliers: ``rows`` elements of a
        beat by ``cols`` units a cycle).
    cycles : int
        Cycles of a frame alone (input always valid, output always ready), from its first
        beat offered to its last result taken.
    interval : int
        Cycles between the starts of frames that follow each other (0 for a reshape).
    dsp : int
        DSP blocks (in the family's units).
    requant_multiplier : str
        A convolution's or a dense stage's requantizer multiplier: ``"dsp"`` or ``"fabric"``
        (shift-add in logic, no DSP block).
    lut, ff : int
        The stage's logic on the board it was compiled for
        (:func:`convaccel.boards.fit.stage_logic`; 0 without a board).
    brams, sprams : int
        Its block RAMs (:meth:`bram`) and SPRAMs there (0 without a board).
    queue_brams : int
        The block RAMs of the queue after it there (0 without a board, and for the last
        stage).
    """

    stage: object
    in_lanes: int
    out_lanes: int
    spec: object = None
    rows: int | None = None
    cols: int | None = None
    cycles: int = 0
    interval: int = 0
    dsp: int = 0
    requant_multiplier: str = "dsp"
    lut: int = 0
    ff: int = 0
    brams: int = 0
    sprams: int = 0
    queue_brams: int = 0

    @property
    def operator(self):
        return self.stage.operator

    @property
    def in_beats(self):
        """Input beats per frame."""
        return math.prod(self.stage.input_shape) // self.in_lanes

    @property
    def out_beats(self):
        """Output beats per frame."""
        return math.prod(self.stage.output_shape) // self.out_lanes

    @property
    def folding_text(self):
        fabric = ", fabric rq" if self.requant_multiplier == "fabric" else ""
        if isinstance(self.stage, Conv):
            lanes = f", lanes {self.spec.lanes}" if self.spec.serial else ", whole pixels"
            return f"{self.rows} x {self.cols}{lanes}{fabric}"
        if isinstance(self.stage, Dense):
            return f"{self.rows} x {self.cols}, lanes {self.in_lanes}{fabric}"
        if isinstance(self.stage, Pool):
            return f"lanes {self.in_lanes}"
        return "-"

    def component(self):
        """The stage's hardware (a new component; None for a reshape)."""
        return _component(self.stage, self.in_lanes, self.rows, self.cols, self.spec,
                          self.requant_multiplier)

    def memories(self, board=None):
        """The stage's memories (:class:`~convaccel.hdl.stage.MemoryShape`), the PEs' weights
        placed as on `board`, and the count of SPRAMs they take there: ``(shapes, spram)``.
        A convolution's as the network bakes them in (:func:`_fixed_memories`; its weights
        in block RAM, as ROMs)."""
        if isinstance(self.stage, Reshape):
            return (), 0
        if not isinstance(self.stage, Conv):
            return tuple(self.component().memories), 0
        spec = self.spec
        engine = _fixed_memories(self.stage, spec, spec.memories)
        if board is None:
            return engine, 0
        from .boards.fit import weight_placement_for
        placement = weight_placement_for(spec, board, fixed=True)
        depth = max(m.depth for m in spec.memories if m.name == "PE weights")
        weights, spram = placement.memories(spec.rows, spec.cols, depth, spec.weight_bits,
                                            rom=True)
        others = tuple(m for m in engine if m.name != "PE weights")
        return (*others, *weights), spram

    def bram(self, board):
        """Block RAMs of the stage on `board` (Yosys's mapping of each memory)."""
        from .boards.mapping import brams
        return brams(board.family, self.memories(board)[0])


def _load_sections(conv, spec):
    """The weight load of `conv` on `spec` in its sections of alike widths
    (:func:`convaccel.beats.weight_sections`)."""
    from .beats import weight_sections
    c = conv.conv
    return weight_sections(c.weights, c.engine_bias, spec, c.requant)


def _fixed_parameters(conv, spec):
    """A network convolution's weights (in its load's order), biases and requantization,
    baked into its engine on `spec` (:class:`~convaccel.hdl.accelerator.ConvAccelerator`'s
    ``fixed``)."""
    weights, biases = _load_sections(conv, spec)[:2]
    return weights, biases, conv.conv.requant


def _fixed_memories(conv, spec, memories):
    """`memories` of `spec`'s engine (its own, as loaded) as the network builds it, with
    :func:`_fixed_parameters`: the weights, the biases and the requantizer's tables in ROMs."""
    from .hdl.requant import Requantizer
    requant = conv.conv.requant
    out = [dataclasses.replace(m, rom=True) if m.name in ("biases", "PE weights") else m
           for m in memories
           if requant is None or m.name not in ("requant multipliers", "requant shifts")]
    if requant is not None:
        out += Requantizer.memories_for(spec.cols, spec.blocks, requant)
    return tuple(out)


def _component(stage, lanes, rows, cols, spec, requant_multiplier="dsp"):
    if isinstance(stage, Conv):
        from .hdl.accelerator import ConvAccelerator
        return ConvAccelerator(spec, fixed=_fixed_parameters(stage, spec))
    if isinstance(stage, Pool):
        from .hdl.pool import AvgPool, MaxPool
        cls = MaxPool if stage.operator == "MAX_POOL_2D" else AvgPool
        _, height, width, channels = stage.input_shape
        return cls(height=height, width=width, channels=channels, lanes=lanes,
                   kernel=stage.kernel, stride=stage.stride, pads=stage.pads,
                   act_min=stage.act_min, act_max=stage.act_max)
    if isinstance(stage, Dense):
        from .hdl.dense import Dense as DenseStage
        return DenseStage.of(stage, lanes=lanes, rows=rows, cols=cols,
                             requant_multiplier=requant_multiplier)
    return None


@dataclass(frozen=True, eq=False)
class NetworkPlan:
    """A network on chosen foldings: what :class:`convaccel.hdl.nettop.NetworkTop` builds.

    Members
    -------
    network : Network
    stages : tuple of StagePlan
        One per network stage, in order.
    family : str or None
        The FPGA family the DSP blocks are counted for.
    """

    network: object
    stages: tuple
    family: str | None = None

    @property
    def interval(self):
        """Cycles per frame in steady state: the slowest stage's interval."""
        return max(s.interval for s in self.stages)

    @property
    def bottleneck(self):
        return max(range(len(self.stages)), key=lambda n: self.stages[n].interval)

    @property
    def dsp(self):
        return sum(s.dsp for s in self.stages)

    def estimate(self, board):
        """What the network's board top needs on `board`, behind the host link
        (:func:`convaccel.boards.fit.network_estimate`)."""
        from .boards.fit import network_estimate
        return network_estimate(self, board)

    @property
    def in_lanes(self):
        return self.stages[0].in_lanes

    @property
    def out_lanes(self):
        return self.stages[-1].out_lanes

    @property
    def hardware(self):
        """The stages that are hardware (every stage but a reshape), in order."""
        return tuple(s for s in self.stages if not isinstance(s.stage, Reshape))

    @property
    def queue_depths(self):
        """Beats of the queue after each hardware stage but the last: one frame of that
        boundary's beats (the module's doc gives the rule)."""
        return tuple(s.out_beats for s in self.hardware[:-1])

    def frames_per_second(self, mhz):
        return mhz * 1e6 / self.interval

    def queue_bram(self, board):
        """Block RAMs of the queues on `board` (Yosys's mapping of each)."""
        from .boards.mapping import brams
        from .hdl.nettop import queue_shapes
        return brams(board.family, queue_shapes(self))

    def figures(self, board=None):
        """The plan's figures (JSON-ready): per stage its folding, beat widths, cycles,
        interval, DSP and (with `board`) block RAM; the queue depths; the frame interval and
        its stage; with `board`, the totals against its resources and the frames per second at
        its default clock."""
        stages = []
        for n, s in enumerate(self.stages):
            stage = {"stage": n, "operator": s.operator, "folding": s.folding_text,
                     "rows": s.rows, "cols": s.cols,
                     "lanes": s.spec.lanes if s.spec is not None else None,
                     "in_lanes": s.in_lanes, "out_lanes": s.out_lanes, "cycles": s.cycles,
                     "interval": s.interval, "dsp": s.dsp,
                     "requant_multiplier": s.requant_multiplier
                     if isinstance(s.stage, (Conv, Dense)) else None}
            if board is not None:
                stage["bram"] = s.bram(board)
            stages.append(stage)
        doc = {"family": self.family, "stages": stages, "queue_depths": list(self.queue_depths),
               "interval": self.interval, "bottleneck": self.bottleneck, "dsp": self.dsp}
        if board is not None:
            doc["queue_bram"] = self.queue_bram(board)
            doc["bram"] = sum(s["bram"] for s in stages) + doc["queue_bram"]
            doc["board"] = {"name": board.name, "dsp": board.resources.get("dsp"),
                            "bram": board.resources.get("bram"), "mhz": board.default_mhz}
            doc["frames_per_second"] = self.frames_per_second(board.default_mhz)
            doc["estimate"] = self.estimate(board)
        return doc

    def table(self, board=None):
        """The per-stage table (text): folding, cycles per frame alone, interval, DSP and
        (with `board`) block RAM; then the pipeline's figures."""
        depths = ", ".join(map(str, self.queue_depths)) + " beats"
        # (the folding column as wide as its widest entry: "4 x 16, lanes 8, fabric rq")
        fw = max([22, len(depths)] + [len(s.folding_text) for s in self.stages])
        head = f"  {'#':<2} {'operator':<16} {'folding':<{fw}} {'cycles':>7} {'interval':>8} " \
               f"{'DSP':>4}" + (f" {'BRAM':>5}" if board else "")
        lines = [head]
        bram_total = 0
        for n, s in enumerate(self.stages):
            row = (f"  {n:<2} {s.operator:<16} {s.folding_text:<{fw}} {s.cycles:>7} "
                   f"{s.interval:>8} {s.dsp:>4}")
            if board:
                b = s.bram(board)
                bram_total += b
                row += f" {b:>5}"
            lines.append(row)
        if board:
            queues = self.queue_bram(board)
            bram_total += queues
            lines.append(f"  {'':<2} {'queues':<16} {depths:<{fw}} {'':>7} {'':>8} {0:>4} "
                         f"{queues:>5}")
        total = f"  total: {self.dsp} DSP"
        if board:
            total += f" (of {board.resources.get('dsp', '?')}), {bram_total} BRAM (of " \
                     f"{board.resources.get('bram', '?')})"
        lines.append(total)
        if board:
            from .boards.fit import logic_capacity
            needed = self.estimate(board)
            caps = logic_capacity(board)
            logic = ", ".join(f"{needed[k]} {_LOGIC_UNITS[k]} (of {n} usable)"
                              for k, n in caps.items())
            lines.append(f"  logic: {logic}, estimated with the host link (the network's "
                         f"model, convaccel.boards.fit.stage_logic)")
        lines.append(f"  frame interval {self.interval} cycles (stage {self.bottleneck}, "
                     f"{self.stages[self.bottleneck].operator})")
        return "\n".join(lines)


_LOGIC_UNITS = {"logic": "logic cells", "lut": "LUTs", "ff": "flip-flops"}


# -- building plans --------------------------------------------------------------------------

def _conv_plan(stage, in_lanes, spec, family):
    from .boards import fit
    dsp = fit._dsps(family, spec) if family else spec.pe_count
    return StagePlan(stage=stage, in_lanes=in_lanes, out_lanes=spec.result_channels,
                     spec=spec, rows=spec.rows, cols=spec.cols, cycles=spec.cycles,
                     interval=spec.cycles, dsp=dsp,
                     requant_multiplier=spec.requant_multiplier)


def _multiplier_dsps(family, multipliers):
    from .boards import fit
    if family is None:
        return len(multipliers)
    return sum(fit._blocks(family, a, b) for a, b in multipliers)


def _stage_plan(stage, in_lanes, folding, family):
    """The plan of `stage` fed beats of `in_lanes` elements on `folding` (a conv's
    ``Folding``, a dense stage's ``(rows, cols)`` or ``(rows, cols, requant_multiplier)``,
    nothing for the others)."""
    if isinstance(stage, Conv):
        layer = stage.layer
        spec = ConvSpec.of(layer, folding)
        if spec.beat_channels != in_lanes:
            raise ValueError(f"the folding {folding} takes beats of {spec.beat_channels} "
                             f"channels; the stream carries {in_lanes}")
        return _conv_plan(stage, in_lanes, spec, family)
    if isinstance(stage, Reshape):
        return StagePlan(stage=stage, in_lanes=in_lanes, out_lanes=in_lanes)
    if isinstance(stage, Pool):
        pool = _component(stage, in_lanes, None, None, None)
        return StagePlan(stage=stage, in_lanes=in_lanes, out_lanes=in_lanes, cycles=pool.cycles,
                         interval=pool.interval,
                         dsp=_multiplier_dsps(family, getattr(pool, "multipliers", ())))
    rows, cols, *kind = folding
    kind = kind[0] if kind else "dsp"
    dense = _component(stage, in_lanes, rows, cols, None, kind)
    return StagePlan(stage=stage, in_lanes=in_lanes, out_lanes=1, rows=rows, cols=cols,
                     cycles=dense.cycles, interval=dense.cycles,
                     dsp=_multiplier_dsps(family, dense.multipliers), requant_multiplier=kind)


def _check_supported(network):
    for s in network.stages:
        if isinstance(s, Conv):
            layer = s.layer
            if (layer.height, layer.width) != tuple(s.input_shape[1:3]):
                raise CompileError(
                    f"stage {s.index} ({s.operator}) reads only the first {layer.height} x "
                    f"{layer.width} of its {s.input_shape[1]} x {s.input_shape[2]} input; the "
                    f"network top does not crop a stream yet: use SAME padding or a stride "
                    f"that divides the input")


def plan_network(network, foldings, *, family=None):
    """The plan of `network` on explicit foldings: one entry per stage, a ``Folding`` for a
    convolution, ``(rows, cols)`` or ``(rows, cols, requant_multiplier)`` for a dense stage,
    None for the others. The first stage's
    input beat is its ``beat_channels`` (a convolution) or one element. Raises
    ``ValueError`` where a folding does not take its input's beats."""
    _check_supported(network)
    if len(foldings) != len(network.stages):
        raise ValueError(f"foldings must be {len(network.stages)}, one per stage, not "
                         f"{len(foldings)}")
    first = network.stages[0]
    lanes = (ConvSpec.of(first.layer, foldings[0]).beat_channels if isinstance(first, Conv)
             else 1)
    plans = []
    for stage, folding in zip(network.stages, foldings):
        plan = _stage_plan(stage, lanes, folding, family)
        plans.append(plan)
        lanes = plan.out_lanes
    return NetworkPlan(network=network, stages=tuple(plans), family=family)


# -- the search ------------------------------------------------------------------------------

def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _stage_input_widths(stage):
    """The beat widths a first stage can take."""
    if isinstance(stage, Conv):
        c = stage.layer.in_channels
        return sorted(set(_divisors(c)) if stage.layer.groups == 1 else {c})
    return [1]


def _conv_candidates(stage, in_lanes, family, budget, smallest=False, board=None, last=False):
    """The Pareto front ``{out_lanes: [plan]}`` of a convolution's foldings fed `in_lanes`
    channels a beat, with either requantizer multiplier where ``ConvSpec`` accepts it
    (`smallest`: the 1 x 1 arrays only, the fewest DSP blocks)."""
    from .boards import fit
    from .spec import Folding
    layer = stage.layer
    raw = []
    shapes = []
    if in_lanes == layer.in_channels:
        shapes += [(r, c, None) for r in range(1, layer.reduction + 1)
                   for c in range(1, layer.out_per_group + 1)]
    shapes += [(r, c, in_lanes) for r in _divisors(in_lanes)
               for c in _divisors(layer.out_channels)]
    kinds = ("dsp", "fabric") if layer.requantize else ("dsp",)
    for r, c, lanes in shapes:
        if smallest and (r, c) != (1, 1):
            continue
        for kind in kinds:
            try:
                spec = ConvSpec.of(layer, Folding(r, c, lanes, kind))
            except ValueError:
                continue
            pe = fit._pe_dsps(family, spec) if family else spec.pe_count
            if budget is not None and pe > budget:
                continue
            raw.append((pe, spec.output_pixels * spec.cycles_per_pixel, spec))
    fronts = {}
    # Lazily exact: by DSP (their floor first), an exact interval only where the lower bound
    # could beat the best one found with no more DSP blocks (per kind of requantizer: the
    # fabric kind trades DSP blocks for logic, which the bound does not see).
    by_width = {}
    for item in raw:
        key = (item[2].result_channels, item[2].requant_multiplier)
        by_width.setdefault(key, []).append(item)
    for (width, _), items in by_width.items():
        evaluated = []
        for pe, bound, spec in sorted(items, key=lambda t: (t[0], t[1])):
            best = min((p.interval for p in evaluated if p.dsp <= pe), default=None)
            if best is not None and bound >= best:
                continue
            plan = _conv_plan(stage, in_lanes, spec, family)
            if budget is not None and plan.dsp > budget:
                continue
            evaluated.append(plan)
        fronts.setdefault(width, []).extend(_pareto(evaluated))
    return {w: _pareto(_with_logic(plans, board, last)) for w, plans in fronts.items()}


def _with_logic(plans, board, last=False):
    """`plans` with their logic, block RAMs and SPRAMs on `board` and the queue's after the
    stage unless it is the `last`; unchanged without a board."""
    if board is None:
        return plans
    import dataclasses

    from .boards.fit import queue_logic, stage_logic
    from .boards.mapping import brams
    from .hdl.nettop import beat_layout
    from .hdl.stream import Queue
    out = []
    for p in plans:
        lut, ff = stage_logic(p, board)
        queue = 0
        if not last and not isinstance(p.stage, Reshape):
            mems = Queue(beat_layout(p.out_lanes), p.out_beats).memories
            queue = brams(board.family, mems)
            # (its logic too, as the plan's estimate counts it)
            q_lut, q_ff = queue_logic(board, mems)
            lut, ff = lut + q_lut, ff + q_ff
        out.append(dataclasses.replace(p, lut=round(lut), ff=round(ff), brams=p.bram(board),
                                       sprams=p.memories(board)[1], queue_brams=queue))
    return out


def _figures(p):
    """What a plan costs and gives, each the less the better: its interval, DSP blocks, LUTs,
    flip-flops, block RAMs (with its queue's) and SPRAMs."""
    return (p.interval, p.dsp, p.lut, p.ff, p.brams + p.queue_brams, p.sprams)


def _undominated(items, key):
    """The `items` whose figures (``key(item)``, each the less the better) no other item's
    are all at most (ties: the first in the figures' order kept), in that order. Sorted, an
    item can only be dominated by one before it: each is checked against the front kept so
    far, all of it at once."""
    items = sorted(items, key=key)
    if not items:
        return []
    figures = np.array([key(item) for item in items], dtype=np.float64)
    kept = np.empty_like(figures)
    front = []
    for item, f in zip(items, figures):
        if front and (kept[:len(front)] <= f).all(axis=1).any():
            continue
        kept[len(front)] = f
        front.append(item)
    return front


def _pareto(plans):
    """Plans no other beats in interval, DSP blocks, logic and memories (ties: the first
    kept)."""
    return _undominated(plans, _figures)


def _candidates(stage, in_lanes, family, budget, smallest=False, board=None, last=False):
    """``{out_lanes: [plan]}``, each list a Pareto front (`last`: the network's last hardware
    stage, no queue after it)."""
    if isinstance(stage, Conv):
        return _conv_candidates(stage, in_lanes, family, budget, smallest, board, last)
    if isinstance(stage, Dense):
        inputs = math.prod(stage.input_shape)
        if inputs % in_lanes:
            return {}
        plans = [_stage_plan(stage, in_lanes, (r, c, kind), family)
                 for r in _divisors(in_lanes) for c in _divisors(stage.units)
                 for kind in ("dsp", "fabric")]
        plans = [p for p in plans if budget is None or p.dsp <= budget]
        return {1: _pareto(_with_logic(plans, board, last))} if plans else {}
    if isinstance(stage, Pool) and stage.input_shape[3] % in_lanes:
        return {}
    return {in_lanes: _with_logic([_stage_plan(stage, in_lanes, None, family)], board, last)}


def _search(network, family, dsp, board, fits, host=(0, 0, 0, 0), cache=None):
    """The DP over beat widths: every final ``(interval, dsp, lut, ff, bram, spram, plans)``
    within the budgets (`fits`: a function of ``(lut, ff, bram, spram)`` that tells whether
    they fit the board, or None), starting from `host`'s ``(lut, ff, bram, spram)`` (what the
    network shares once). `cache` keeps the stages' candidates between searches."""
    cache = {} if cache is None else cache
    hardware = [s for s in network.stages if not isinstance(s, Reshape)]
    last = hardware[-1].index if hardware else None
    states = {w: [(0, 0, *host, ())] for w in _stage_input_widths(network.stages[0])}
    for stage in network.stages:
        new = {}
        for width, partials in states.items():
            key = (stage.index, width)
            if key not in cache:
                cache[key] = _candidates(stage, width, family, dsp, board=board,
                                         last=stage.index == last)
            for out, plans in cache[key].items():
                for interval, used, lut, ff, bram, spram, chosen in partials:
                    for p in plans:
                        total = used + p.dsp
                        if dsp is not None and total > dsp:
                            continue
                        figures = (lut + p.lut, ff + p.ff, bram + p.brams + p.queue_brams,
                                   spram + p.sprams)
                        if fits is not None and not fits(*figures):
                            continue
                        new.setdefault(out, []).append(
                            (max(interval, p.interval), total, *figures, chosen + (p,)))
        states = {w: _front(items) for w, items in new.items()}
    return [item for items in states.values() for item in items]


def compile_network(network, board=None, *, dsp=None, family=None):
    """The fastest plan of `network` (:class:`NetworkPlan`) within a DSP budget: `dsp`
    blocks, or `board`'s (``board.resources["dsp"]``); DSP blocks counted for `family` (default
    the board's). A convolution's and a dense stage's requantizer may multiply in DSP blocks
    or in logic (``requant_multiplier = "fabric"``), so with a `board` the plan must also fit
    its logic: each stage's estimate (:func:`convaccel.boards.fit.stage_logic`), the host
    link counted once, within the device's (an iCE40's logic cells with the placer's
    headroom); and its block RAMs and SPRAMs (each stage's memories and the queue after it
    as Yosys maps them, the host link's). Ties in the frame interval go to the lighter load
    on the device (the sum of the fractions of its DSP blocks and logic used), without a
    board to fewer DSP blocks. Raises :class:`CompileError` when no folding fits, naming the
    fewest DSP blocks any needs, or the resources that the lightest plan (the least share of
    its most used resource) needs beyond the board's."""
    _check_supported(network)
    if board is not None:
        family = family or board.family
        if dsp is None:
            dsp = board.resources.get("dsp")
    if dsp is not None and (isinstance(dsp, bool) or not isinstance(dsp, int) or dsp < 0):
        raise ValueError(f"dsp must be a non-negative integer (DSP blocks), not {dsp!r}")
    if board is None:
        finals = _search(network, family, dsp, None, None)
        if not finals:
            raise _dsp_error(network, family, dsp, board)
        _, _, _, _, _, _, chosen = min(finals, key=lambda t: (t[0], t[1]))
        return NetworkPlan(network=network, stages=chosen, family=family)

    from .boards.fit import _host_logic, logic_capacity, logic_needed, network_link_brams
    caps = {**logic_capacity(board), "bram": board.resources.get("bram", 0),
            "spram": board.resources.get("spram", 0)}

    def needed(t):
        """``{resource: n}`` of a final state, as :func:`logic_capacity` and the device
        count them."""
        return {**logic_needed(board, t[2], t[3]), "bram": t[4], "spram": t[5]}

    def fits(lut, ff, bram, spram):
        return all(n <= caps[k] for k, n in needed((0, 0, lut, ff, bram, spram)).items())

    cache = {}
    host_lut, host_ff = _host_logic(board.family)
    # The host link's block RAMs hardly depend on the plan (its packet buffers; its result
    # queue holds an output beat or more): counted from the plan found without them.
    unbounded = _search(network, family, dsp, board, None, (host_lut, host_ff, 0, 0), cache)
    if not unbounded:
        raise _dsp_error(network, family, dsp, board)
    some = NetworkPlan(network=network, stages=unbounded[0][6], family=family)
    host = (host_lut, host_ff, network_link_brams(some, board), 0)
    finals = _search(network, family, dsp, board, fits, host, cache)
    if not finals:
        unbounded = _search(network, family, dsp, board, None, host, cache)
        # the lightest: the least share of its most used resource
        least = needed(min(unbounded, key=lambda t: max(
            n / caps[k] if caps[k] else math.inf * n for k, n in needed(t).items())))
        over = [k for k, n in least.items() if n > caps[k]]
        what = ", ".join(f"{least[k]} {_RESOURCE_UNITS[k]} ({_capacity_text(board, k, caps[k])})"
                         for k in over)
        raise CompileError(
            f"no folding of the network fits the {board.name} board within its {dsp} DSP "
            f"blocks: the lightest needs {what}, estimated with the host link")
    dsp_total = board.resources.get("dsp") or 0

    def load(t):
        share = sum(n / caps[k] for k, n in logic_needed(board, t[2], t[3]).items())
        return share + (t[1] / dsp_total if dsp_total else 0)
    _, _, _, _, _, _, chosen = min(finals, key=lambda t: (t[0], load(t)))
    return NetworkPlan(network=network, stages=chosen, family=family)


_RESOURCE_UNITS = {**_LOGIC_UNITS, "bram": "block RAMs", "spram": "SPRAMs"}


def _capacity_text(board, resource, capacity):
    if resource in _LOGIC_UNITS and capacity != board.resources.get(resource):
        return f"the placer can use {capacity}"
    return f"the {board.device} has {capacity}"


def _dsp_error(network, family, dsp, board):
    least = _all_dsp_floor(network, family)
    return CompileError(
        f"no folding of the network fits {dsp} DSP blocks"
        f"{f' (the {board.name} board)' if board else ''}: the smallest folding needs "
        f"{least} ({family or 'PE'} count)")


def _front(items):
    """The search's states that no other beats in its six figures."""
    return _undominated(items, lambda t: t[:6])


def _all_dsp_floor(network, family):
    """The fewest DSP blocks of any folding: 1 x 1 arrays (a PE, one requantizer; a dense
    stage's 1 x 1 is among its candidates)."""
    states = {w: [(0, 0)] for w in _stage_input_widths(network.stages[0])}
    for stage in network.stages:
        new = {}
        for width, partials in states.items():
            for out, plans in _candidates(stage, width, family, None, True).items():
                least = min(p.dsp for p in plans)
                best = min(u for _, u in partials)
                new.setdefault(out, []).append((0, best + least))
        states = new
    return min(u for items in states.values() for _, u in items)
