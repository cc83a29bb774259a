from amaranth import *
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .stage import MemoryShape

__all__ = ["Queue"]


class Queue(wiring.Component):
    """A first-in first-out queue between two streams of the same payload layout.

    Amaranth's :class:`~amaranth.lib.fifo.SyncFIFO` with typed streams: the payload keeps its
    layout on both sides, so ``wiring.connect`` checks it. Its ``i.ready`` comes from the
    queue's own registers, which cuts a combinational handshake path between the stages on
    either side.

    Latency: a beat taken in cycle ``t`` is offered from cycle ``t + 1``. Throughput: one beat
    per cycle.

    Parameters
    ----------
    shape : shape-castable
        The payload.
    depth : int
        Beats held.

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))
    """

    latency = 1

    def __init__(self, shape, depth):
        self._shape = shape
        self._depth = depth
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
        })

    @property
    def memories(self):
        return (MemoryShape("queue", Shape.cast(self._shape).width, self._depth),)

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
            queue.r_en.eq(self.o.ready),
        ]
        return m
