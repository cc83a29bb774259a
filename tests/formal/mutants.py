# amaranth: UnusedElaboratable=no
"""Stages with a protocol bug put in on purpose, for the tests that show the proofs can fail.

Each is a bug that a stream stage can really have; the harness that the correct stage passes
must find it.
"""

from amaranth import *
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from convaccel.hdl.padder import Padder
from convaccel.hdl.stream import Queue

__all__ = ["LeakyQueue", "OverwritingStage", "RegisterStage", "ShortPadder", "SilentPadder",
           "StutteringQueue"]


class RegisterStage(wiring.Component):
    """A register slice done right: it takes a beat when ``~o.valid | o.ready`` (the control
    for :class:`OverwritingStage`)."""

    def __init__(self, shape):
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
        })

    def _load(self):
        return self.i.valid & self.i.ready

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self._load()):
            m.d.sync += self.o.payload.eq(self.i.payload)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += self.o.valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class OverwritingStage(RegisterStage):
    """Bug: the payload register follows every valid input beat, even while its own beat waits
    for ``o.ready`` (the enable lacks ``i.ready``). ``valid`` is right: only the payload changes
    under a stall."""

    def _load(self):
        return self.i.valid


class LeakyQueue(Queue):
    """Bug: ``i.ready`` tied high (back-pressure ignored), so a beat offered to a full queue is
    taken and lost."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.i.ready.eq(1)
        return m


class StutteringQueue(Queue):
    """Bug: the queue is not popped on a transfer in a cycle that also writes, so that beat
    leaves twice."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = queue = fifo.SyncFIFO(width=Shape.cast(self._shape).width,
                                                   depth=self._depth)
        m.d.comb += [
            queue.w_data.eq(self.i.payload),
            queue.w_en.eq(self.i.valid),
            self.i.ready.eq(queue.w_rdy),
            self.o.payload.eq(queue.r_data),
            self.o.valid.eq(queue.r_rdy),
            queue.r_en.eq(self.o.ready & ~(self.i.valid & self.i.ready)),
        ]
        return m


class SilentPadder(Padder):
    """Bug: ``error`` never pulses."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.error.eq(0)
        return m


def ShortPadder(*, pads, **kwargs):
    """Bug: the padded frame lacks its bottom padding row (a padder built from the wrong
    pads). Its rows are all right, only a row is missing: a frame count must see it."""
    top, bottom, left, right = pads
    return Padder(pads=(top, bottom - 1, left, right), **kwargs)
