# amaranth: UnusedElaboratable=no
# (The top builds its stages in its constructor, so that their figures are known before
# elaboration.)
"""A whole network as one component: its stages joined by queues, the weights baked in."""

import math

import numpy as np
from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..network import Reshape, from_project, to_project
from .accelerator import ConvAccelerator
from .padder import pixel_in_layout
from .stream import Queue

__all__ = ["NetworkTop", "queue_shapes", "beat_layout",
           "input_beats", "stage_beats", "output_tensor"]


#: Beats of the queue in front of a network's first stage (registers).
INPUT_QUEUE_DEPTH = 2


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
    none) is its own engine on its own folding, its weights and parameters baked in: a
    :class:`ConvAccelerator` per convolution with its weights, biases and requantization
    fixed (``fixed``: ROMs and constants, no weight load); a max or average pool; a dense
    stage (its weights in its own ROM). Between two stages a :class:`Queue` of
    ``plan.queue_depths`` beats: the beats flow as the producer emits them (the plan matched
    the widths: a stage's input ``lanes`` is its producer's channels per result beat).

    The input passes a queue of :data:`INPUT_QUEUE_DEPTH` beats first (registers: ``i.ready``
    from them). Frames follow each other from reset; in steady state one leaves every
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
        The weights are in place: always (they are baked in).
    error : Out(1)
        Sticky: a stage flagged an error (a frame of the wrong length, a bad load value).
    """

    def __init__(self, plan):
        self._plan = plan
        self._stages = [s.component() for s in plan.hardware]
        self._queues = [Queue(beat_layout(s.out_lanes), depth)
                        for s, depth in zip(plan.hardware, plan.queue_depths)]
        # Two beats of slack at the input: its `ready` from the queue's registers, not from the
        # first stage's handshake (which, through the host's counters, was the digits
        # network's critical path on the UP5K).
        self._input = Queue(beat_layout(plan.in_lanes), INPUT_QUEUE_DEPTH)
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
        return tuple(mem for part in (self._input, *self._stages, *self._queues)
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
        m.d.comb += self.loaded.eq(1)

        m.submodules.input = self._input
        first, _ = ports(self._stages[0])
        wiring.connect(m, wiring.flipped(self.i), self._input.i)
        wiring.connect(m, self._input.o, first)
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
