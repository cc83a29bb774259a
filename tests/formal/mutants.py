# amaranth: UnusedElaboratable=no
"""Stages with a protocol bug put in on purpose, for the tests that show the proofs can fail.

Each is a bug that a stream stage can really have; the harness that the correct stage passes
must find it. The small ones are written out; the others are the stage's own ``elaborate``
with one expression changed (:func:`mutant`), so that they follow the stage as it evolves.
"""

import inspect
import sys
import textwrap

from amaranth import *
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from convaccel.hdl.array import Feeder, SystolicArray
from convaccel.hdl.padder import Padder
from convaccel.hdl.requant import Requantizer
from convaccel.hdl.stream import Queue
from convaccel.link.framing import RequestReceiver, ResponseSender

__all__ = ["CreditlessFeeder", "EagerSender", "HalfCrcReceiver", "LateTagArray", "LeakyQueue",
           "OverwritingStage", "RegisterStage", "RoundingRequantizer", "ShortPadder",
           "SilentPadder", "StutteringQueue", "mutant"]


def mutant(name, cls, old, new, doc, method="elaborate"):
    """A subclass `name` of `cls` whose `method` (``elaborate`` unless told) is ``cls``'s source
    of it with the text `old` (which must occur exactly once) replaced by `new`, compiled in the
    namespace of `cls`'s module and at its lines there (so that the failing assertion's trace
    points into the stage's own file)."""
    lines, first = inspect.getsourcelines(getattr(cls, method))
    source = textwrap.dedent("".join(lines))
    if source.count(old) != 1:
        raise AssertionError(f"{cls.__name__}.{method} has {source.count(old)} copies of "
                             f"{old!r}, not 1: the mutant needs updating")
    code = compile("\n" * (first - 1) + source.replace(old, new), inspect.getsourcefile(cls),
                   "exec")
    namespace = dict(vars(sys.modules[cls.__module__]))
    exec(code, namespace)
    return type(name, (cls,), {method: namespace[method], "__doc__": doc,
                               "__module__": __name__})


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


CreditlessFeeder = mutant(
    "CreditlessFeeder", Feeder, "self.i.ready.eq((~busy | final) & self.credit)",
    "self.i.ready.eq(~busy | final)",
    """Bug: ``credit`` ignored: a window is taken with no room downstream for its pixel.""")

LateTagArray = mutant(
    "LateTagArray", SystolicArray, "delayed(self.i.payload.tag, self.latency,",
    "delayed(self.i.payload.tag, self.latency + 1,",
    """Bug: the tag is delayed one cycle too many: each beat carries its predecessor's tag.""")

RoundingRequantizer = mutant(
    "RoundingRequantizer", Requantizer, "carry = neg & ((high == 0) | ~nonzero)",
    "carry = neg",
    """Bug: the rounding division's nudge is the same for negative values (the dsp kind's sum of
    a magnitude and its sign: ``-h + half``): their ties round up (toward zero), not away from
    zero as gemmlowp's RoundingDivideByPOT does.""",
    method="_divide_and_clamp")

HalfCrcReceiver = mutant(
    "HalfCrcReceiver", RequestReceiver, "crc_ok.eq(crc.match_detected)",
    "crc_ok.eq(crc.crc[:8] == 0)",
    """Bug: the CRC's verdict tests only the low byte of the residue: a request whose CRC is
    wrong in a way that leaves it zero is reported good.""")

EagerSender = mutant(
    "EagerSender", ResponseSender,
    "self.o.valid.eq(Mux(from_queue, self.results.valid, fresh))",
    "self.o.valid.eq(Mux(from_queue, self.results.valid, 1))",
    """Bug: a STATUS payload byte is offered before its register holds the byte due (the
    registered byte is a cycle behind the index).""")
