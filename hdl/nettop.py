# amaranth: UnusedElaboratable=no
# (The top builds its stages in its constructor, so that their figures are known before
# elaboration.)
"""A whole network as one component: its stages joined by queues, the weights baked in."""

import math

import numpy as np
from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..network import Conv, Reshape, from_project, to_project
from ..spec import bits_for
from .accelerator import ConvAccelerator, load_layout
from .padder import pixel_in_layout
from .stage import MemoryShape
from .stream import Queue

__all__ = ["LoadRom", "NetworkTop", "load_rom_shapes", "queue_shapes", "beat_layout",
           "input_beats", "stage_beats", "output_tensor"]


def _word_bits(values):
    return bits_for(min(values), max(values), True)


def load_rom_shapes(sections):
    """The :class:`MemoryShape` of each ROM of a :class:`LoadRom` of `sections` (lists of
    values): the narrowest two's complement word that holds every value of its section, a
    value a word."""
    return tuple(MemoryShape("weight-load ROM", _word_bits(values), len(values), rom=True)
                 for values in sections)


class LoadRom(wiring.Component):
    """Streams a fixed weight load once after reset: its sections in turn, each from a ROM of
    its own.

    A load's sections differ in width (8-bit weights, 32-bit biases, 31-bit multipliers, small
    shifts, :func:`convaccel.beats.weight_sections`): each is kept in words of the narrowest
    width that holds its values (one ROM of the widest word would take that width for every
    weight) and sign-extended on the way out (to ``value_bits``). ``last`` marks the final
    beat; ``done`` rises in the cycle after it is taken and stays. A beat is offered from the
    second cycle after reset (the ROMs' read ports are synchronous), then one per cycle while
    ``o.ready`` holds.

    Parameters
    ----------
    sections : sequence of sequences of int
        The values, streamed section after section (none empty).
    value_bits : int
        The width of the stream's (signed) value.

    Members
    -------
    o : Out(stream.Signature(load_layout(signed(value_bits))))
    done : Out(1)
    """

    def __init__(self, sections, value_bits):
        self._sections = [[int(v) for v in values] for values in sections]
        assert self._sections and all(self._sections)
        assert all(m.width <= value_bits for m in self.memories)
        self._value_bits = value_bits
        super().__init__({
            "o": Out(stream.Signature(load_layout(signed(value_bits)))),
            "done": Out(1),
        })

    @property
    def memories(self):
        return load_rom_shapes(self._sections)

    def elaborate(self, platform):
        m = Module()
        sections = self._sections
        count = len(sections)
        depth = max(map(len, sections))
        section = Signal(range(count))
        addr = Signal(range(depth))
        at_end = Signal()                      # `addr` is its section's last value
        final = Signal()                       # ... of the last section
        ends = Array(Const(len(values) - 1, range(depth)) for values in sections)
        m.d.comb += [at_end.eq(addr == ends[section]),
                     final.eq(at_end & (section == count - 1))]
        primed = Signal()                      # the read ports hold the words at `addr`
        take = self.o.valid & self.o.ready
        # Every ROM reads the next address as the current beat is taken (a beat a cycle); the
        # current section's word is the beat.
        next_addr = Mux(take & ~final, Mux(at_end, 0, addr + 1), addr)
        words = []
        for n, (values, shape) in enumerate(zip(sections, self.memories)):
            m.submodules[f"rom{n}"] = rom = memory.Memory(shape=signed(shape.width),
                                                          depth=len(values), init=values)
            rd = rom.read_port()
            m.d.comb += [rd.en.eq(1), rd.addr.eq(next_addr)]
            words.append(rd.data.as_signed())
        m.d.comb += [self.o.valid.eq(primed & ~self.done),
                     self.o.payload.data.eq(Array(words)[section] if count > 1 else words[0]),
                     self.o.payload.last.eq(final)]
        m.d.sync += primed.eq(1)
        with m.If(take):
            with m.If(final):
                m.d.sync += self.done.eq(1)
            with m.Elif(at_end):
                m.d.sync += [section.eq(section + 1), addr.eq(0)]
            with m.Else():
                m.d.sync += addr.eq(addr + 1)
        return m


def beat_layout(lanes):
    """The payload of a stream between stages: `lanes` int8 values and ``last``."""
    return pixel_in_layout(data.ArrayLayout(signed(8), lanes))


def queue_shapes(plan):
    """The queues' memories between the hardware stages of `plan` (a ``NetworkPlan``)."""
    return tuple(mem for s, depth in zip(plan.hardware, plan.queue_depths)
                 for mem in Queue(beat_layout(s.out_lanes), depth).memories)


def _stream_values(value, lanes):
    """A frame in the project's layout (``(C, H, W)``, or ``(N,)`` in TFLite's ``(h, w, c)``
    order) as the values of its beats in stream order, ``(beats, lanes)``: raster order, a
    pixel's channels in turn, `lanes` a beat."""
    value = np.asarray(value, dtype=np.int64)
    if value.ndim == 3:
        value = value.reshape(value.shape[0], -1).T
    return value.reshape(-1, lanes)


def input_beats(plan, x):
    """The network's input tensor `x` (as the LiteRT interpreter's, NHWC int8) as the top's
    input beats: ``(values, last)``, raster order, ``plan.in_lanes`` channels a beat (a
    pixel's beats in turn)."""
    x = plan.network.check_input(x)
    flat = _stream_values(to_project(x), plan.in_lanes)
    return [([int(v) for v in beat], n == len(flat) - 1) for n, beat in enumerate(flat)]


def stage_beats(plan, trace):
    """The beats each hardware stage of `plan` emits for a frame whose stages' outputs are
    `trace` (:meth:`convaccel.network.Network.trace`): per hardware stage (``plan.hardware``,
    in order), an int64 array ``(beats, out_lanes)`` of its output beats' values in stream
    order (``last`` is on each frame's final beat)."""
    assert len(trace) == len(plan.stages)
    return [_stream_values(value, s.out_lanes) for s, value in zip(plan.stages, trace)
            if not isinstance(s.stage, Reshape)]


def output_tensor(plan, beats):
    """The output tensor (int8, as the LiteRT interpreter's) from a frame's output beats
    (lists of ``plan.out_lanes`` values)."""
    net = plan.network
    values = np.array(beats, dtype=np.int64).ravel()
    shape = net.output_shape
    if values.size != math.prod(shape):
        raise ValueError(f"a frame has {math.prod(shape)} output values, not {values.size}")
    if len(shape) == 4:       # (h, w, c) order, as the stream delivers it
        return values.reshape(shape).astype(np.int8)
    return from_project(values, shape).astype(np.int8)


class NetworkTop(wiring.Component):
    """A network's stages as one pipeline: ``i`` → stage 0 → queue → stage 1 → ... → ``o``.

    Each hardware stage of `plan` (:class:`convaccel.compiler.NetworkPlan`; a reshape is
    none) is its own engine on its own folding: a :class:`ConvAccelerator` per convolution,
    with a :class:`LoadRom` streaming its weight load (:func:`convaccel.beats.weight_beats`:
    weights, biases, requantization) after reset; a max or average pool; a dense stage (its
    weights in its own ROM). Between two stages a :class:`Queue` of ``plan.queue_depths`` beats:
    the beats flow as the producer emits them (the plan matched the widths: a stage's input
    ``lanes`` is its producer's channels per result beat).

    The input is refused (``i.ready`` low) until every weight load has been taken
    (``loaded``). Frames then follow each other; in steady state one leaves every
    ``plan.interval`` cycles (with input always valid and output always ready).

    Parameters
    ----------
    plan : NetworkPlan

    Members
    -------
    i : In(stream.Signature(pixel_in_layout(ArrayLayout(signed(8), plan.in_lanes))))
        The network's input, raster order, ``in_lanes`` channels a beat (:func:`input_beats`),
        ``last`` on a frame's final beat.
    o : Out(stream.Signature(pixel_in_layout(ArrayLayout(signed(8), plan.out_lanes))))
        The output tensor's values in its order (a classifier's logits, a beat each;
        :func:`output_tensor`), ``last`` on a frame's final beat.
    loaded : Out(1)
        Every weight load has been taken.
    error : Out(1)
        Sticky: a stage flagged an error (a frame of the wrong length, a bad load value).
    """

    def __init__(self, plan):
        self._plan = plan
        self._stages = []
        self._roms = []
        for s in plan.hardware:
            component = s.component()
            self._stages.append(component)
            if isinstance(s.stage, Conv):
                from ..compiler import _load_sections
                rom = LoadRom(_load_sections(s.stage, s.spec), s.spec.load_bits)
                self._roms.append((len(self._stages) - 1, rom))
        self._queues = [Queue(beat_layout(s.out_lanes), depth)
                        for s, depth in zip(plan.hardware, plan.queue_depths)]
        super().__init__({
            "i": In(stream.Signature(beat_layout(plan.in_lanes))),
            "o": Out(stream.Signature(beat_layout(plan.out_lanes))),
            "loaded": Out(1),
            "error": Out(1),
        })

    @property
    def plan(self):
        return self._plan

    @property
    def stages(self):
        return tuple(self._stages)

    @property
    def memories(self):
        return tuple(mem for part in (*self._stages, *self._queues, *(r for _, r in self._roms))
                     for mem in part.memories)

    def elaborate(self, platform):
        m = Module()

        def ports(component):
            if isinstance(component, ConvAccelerator):
                return component.pixels, component.results
            return component.i, component.o

        for n, stage in enumerate(self._stages):
            m.submodules[f"stage{n}"] = stage
        for n, queue in enumerate(self._queues):
            m.submodules[f"queue{n}"] = queue
        for n, rom in self._roms:
            m.submodules[f"load{n}"] = rom
            wiring.connect(m, rom.o, self._stages[n].weights)
        m.d.comb += self.loaded.eq(Cat(rom.done for _, rom in self._roms).all()
                                   if self._roms else 1)

        # The input waits for the loads: an engine takes no frame while a load is offered.
        first, _ = ports(self._stages[0])
        m.d.comb += [first.payload.eq(self.i.payload),
                     first.valid.eq(self.i.valid & self.loaded),
                     self.i.ready.eq(first.ready & self.loaded)]
        for n, queue in enumerate(self._queues):
            _, out = ports(self._stages[n])
            into, _ = ports(self._stages[n + 1])
            wiring.connect(m, out, queue.i)
            wiring.connect(m, queue.o, into)
        _, last = ports(self._stages[-1])
        wiring.connect(m, last, wiring.flipped(self.o))

        with m.If(Cat(stage.error for stage in self._stages).any()):
            m.d.sync += self.error.eq(1)
        return m
