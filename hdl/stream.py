from amaranth import *
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .stage import MemoryShape

__all__ = ["Queue", "REGISTER_DEPTH"]


#: Queues of more beats than this keep them in a memory read synchronously (block RAM where
#: Yosys finds it cheaper); these few are registers.
REGISTER_DEPTH = 2


class Queue(wiring.Component):
    """A first-in first-out queue between two streams of the same payload layout.

    Amaranth's FIFOs with typed streams: the payload keeps its layout on both sides, so
    ``wiring.connect`` checks it. Its ``i.ready`` comes from the queue's own registers, which
    cuts a combinational handshake path between the stages on either side.

    Up to two beats (``REGISTER_DEPTH``) it is :class:`~amaranth.lib.fifo.SyncFIFO`: registers
    read combinationally. A deeper queue is :class:`~amaranth.lib.fifo.SyncFIFOBuffered`: its
    head beat in a register, the others in a memory with a synchronous read port, which Yosys
    maps to block RAM (an asynchronously read memory cannot be: on iCE40 a deep SyncFIFO
    becomes flip-flops and a multiplexer of every word).

    Latency (:attr:`latency`): a beat taken in cycle ``t`` is offered from cycle ``t + 1``
    (registers) or ``t + 2`` (memory: written, then read into the head register). Throughput:
    one beat per cycle.

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

    def __init__(self, shape, depth):
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise ValueError(f"Queue depth must be a positive integer, not {depth!r}")
        self._shape = shape
        self._depth = depth
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
        })

    @property
    def buffered(self):
        """The beats past the head are in a memory read synchronously."""
        return self._depth > REGISTER_DEPTH

    @property
    def latency(self):
        """Cycles from a beat taken by an empty queue to the first cycle it is offered."""
        return 2 if self.buffered else 1

    @property
    def memories(self):
        width = Shape.cast(self._shape).width
        if self.buffered:
            # (the head beat is a register: the memory holds one fewer)
            return (MemoryShape("queue", width, self._depth - 1),)
        return (MemoryShape("queue", width, self._depth),)

    def elaborate(self, platform):
        m = Module()
        kind = fifo.SyncFIFOBuffered if self.buffered else fifo.SyncFIFO
        m.submodules.fifo = queue = kind(width=Shape.cast(self._shape).width,
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
