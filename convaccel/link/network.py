# amaranth: UnusedElaboratable=no
# (The engine builds its network top in its constructor, so that its figures are known before
# elaboration.)
"""A whole network behind the serial host link: the same link, its engine a network.

The link (:class:`~convaccel.link.gateware.HostLink`) moves a layer's weight-load beats, input
pixels and result pixels; for a network (:class:`convaccel.hdl.nettop.NetworkTop`) the weights
are baked into its stages, so there is no load, an input "pixel" is a pixel of the input tensor (its
channels, int8, a byte each) and a result "pixel" is one output beat of the network
(``plan.out_lanes`` int8 values: a classifier's logit, a byte). :class:`NetworkLinkSpec` gives
the link and the host driver these figures where they read a layer's, and
:class:`NetworkEngine` gives the network the engine's ports and status counters.
"""

import math

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..hdl.accelerator import COUNTER_BITS, load_layout
from ..hdl.nettop import NetworkTop, beat_layout
from ..hdl.output import pixel_out_layout
from ..network import project_shape

__all__ = ["NetworkEngine", "NetworkLinkSpec"]


class NetworkLinkSpec:
    """What the host link needs to know of a network's plan, under the names it reads of a
    layer's :class:`~convaccel.ConvSpec` (:class:`~convaccel.link.protocol.LinkFormat`,
    :class:`~convaccel.link.gateware.HostLink`, :class:`~convaccel.link.device.Device`).

    Inputs: the input tensor in the project's layout ``(C, H, W)``, int8, a pixel's channels
    in beats of ``plan.in_lanes`` (:func:`~convaccel.hdl.nettop.input_beats`'s order). Results:
    ``output_pixels`` beats of ``out_channels = plan.out_lanes`` int8 values, in the output
    tensor's order (:func:`~convaccel.hdl.nettop.output_tensor`). No weight load
    (``load_beats = 0``)."""

    input_bits = output_bits = load_bits = 8
    input_signed = True
    input_range = (-128, 127)
    load_beats = 0
    pixel_result_beats = 1
    requantize = True

    def __init__(self, plan):
        self.plan = plan
        shape = project_shape(plan.network.input_shape)
        if len(shape) != 3:
            raise ValueError(f"the host link sends an image (1, H, W, C), not the input "
                             f"tensor {tuple(plan.network.input_shape)}")
        self.input_shape = shape
        self.in_channels = shape[0]
        self.input_pixels = shape[1] * shape[2]
        self.input_beats = math.prod(shape) // plan.in_lanes
        self.out_channels = plan.out_lanes
        self.output_pixels = math.prod(plan.network.output_shape) // plan.out_lanes
        self.output_shape = (self.out_channels, self.output_pixels)
        self.cycles = plan.interval
        self.macs = plan.network.macs


class NetworkEngine(wiring.Component):
    """A :class:`~convaccel.hdl.nettop.NetworkTop` with the ports of a convolution engine, as
    the host link drives one: ``pixels`` in, ``results`` out (the network's output beats),
    ``weights`` (always ready, its beats dropped: the link refuses a load before one could
    come, :class:`~convaccel.link.decoder.RequestDecoder` ``preloaded``), and the status.

    Status: ``busy`` while a frame is in the pipeline (from its first input beat taken to its
    last output beat taken; frames may overlap), ``done`` once a frame's last output beat has
    been taken and no frame is in the pipeline; ``cycles`` counts the cycles of the last
    frame, from its first input beat taken to its last output beat taken; ``input_stalls``
    and ``output_stalls`` the cycles of a frame in which the network waited for an input beat
    or an output beat waited to be taken; ``macs`` the multiply-accumulates of the frames done
    (the network's per frame, added at each frame's end). ``loaded``: the network's
    (its weights are baked in: always).

    Parameters
    ----------
    plan : NetworkPlan

    Members
    -------
    pixels : In(stream.Signature(beat_layout(plan.in_lanes)))
    results : Out(stream.Signature(pixel_out_layout(signed(8), plan.out_lanes)))
    weights : In(stream.Signature(load_layout(signed(8))))
    busy, done, error, loaded : Out(1)
    cycles, input_stalls, output_stalls : Out(32)
    macs : Out(64)
    """

    def __init__(self, plan):
        self._plan = plan
        self._top = NetworkTop(plan)
        self._layouts = {"pixels": beat_layout(plan.in_lanes),
                         "results": pixel_out_layout(signed(8), plan.out_lanes),
                         "weights": load_layout(signed(8))}
        super().__init__({
            "pixels": In(stream.Signature(self._layouts["pixels"])),
            "results": Out(stream.Signature(self._layouts["results"])),
            "weights": In(stream.Signature(self._layouts["weights"])),
            "busy": Out(1), "done": Out(1), "error": Out(1), "loaded": Out(1),
            "cycles": Out(COUNTER_BITS), "input_stalls": Out(COUNTER_BITS),
            "output_stalls": Out(COUNTER_BITS), "macs": Out(64),
        })

    @property
    def layouts(self):
        return dict(self._layouts)

    @property
    def memories(self):
        return self._top.memories

    def elaborate(self, platform):
        m = Module()
        m.submodules.network = top = self._top
        m.d.comb += self.weights.ready.eq(1)
        wiring.connect(m, wiring.flipped(self.pixels), top.i)
        wiring.connect(m, top.o, wiring.flipped(self.results))
        m.d.comb += [self.error.eq(top.error), self.loaded.eq(top.loaded)]

        # Frames in the pipeline: a frame enters with its first beat, leaves with its last.
        plan = self._plan
        most = len(plan.hardware) + sum(plan.queue_depths) + 2
        inflight = Signal(range(most + 1))
        first = Signal(init=1)              # the next input beat is a frame's first
        take_in = self.pixels.valid & self.pixels.ready
        take_out = self.results.valid & self.results.ready
        enters = take_in & first
        leaves = take_out & self.results.payload.last
        with m.If(take_in):
            m.d.sync += first.eq(self.pixels.payload.last)
        m.d.sync += inflight.eq(inflight + enters - leaves)
        m.d.comb += self.busy.eq(inflight != 0)
        with m.If(enters):
            m.d.sync += [self.done.eq(0), self.cycles.eq(1), self.input_stalls.eq(0),
                         self.output_stalls.eq(0)]
        with m.Elif(self.busy):
            m.d.sync += [self.cycles.eq(self.cycles + 1),
                         self.input_stalls.eq(self.input_stalls +
                                              (self.pixels.ready & ~self.pixels.valid)),
                         self.output_stalls.eq(self.output_stalls +
                                               (self.results.valid & ~self.results.ready))]
        with m.If(leaves):
            m.d.sync += self.macs.eq(self.macs + plan.network.macs)
            with m.If(inflight == 1):
                m.d.sync += self.done.eq(1)
        return m
