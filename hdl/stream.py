from amaranth import *
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .stage import NO_RW_CHECK, MemoryShape

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
    read combinationally. A deeper queue is :class:`~amaranth.lib.fifo.SyncFIFOBuffered`'s
    design: its head beat in a register, the others in a memory with a synchronous read port,
    which Yosys maps to block RAM (an asynchronously read memory cannot be: on iCE40 a deep
    SyncFIFO becomes flip-flops and a multiplexer of every word). The memory is never read at
    the address being written (a word is read only once written, and written only once read),
    so it is marked :data:`~convaccel.hdl.stage.NO_RW_CHECK`: no logic keeps the old word
    beside the block RAM.

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
            return (MemoryShape("queue", width, self._depth - 1, no_rw_check=True),)
        return (MemoryShape("queue", width, self._depth),)

    def elaborate(self, platform):
        m = Module()
        if self.buffered:
            return self._buffered(m)
        m.submodules.fifo = queue = fifo.SyncFIFO(width=Shape.cast(self._shape).width,
                                                  depth=self._depth)
        # `i.ready` is a flip-flop of its own, set from the queue's next level (SyncFIFO's
        # `w_rdy` decodes its level: a LUT ahead of the writer's whole handshake, the UP5K's
        # critical path at 52 MHz).
        not_full = Signal(init=1)
        write = self.i.valid & not_full
        read = self.o.ready & queue.r_rdy
        m.d.sync += not_full.eq(queue.level + write - read != self._depth)
        m.d.comb += [
            queue.w_data.eq(self.i.payload),
            queue.w_en.eq(self.i.valid),
            self.i.ready.eq(not_full),
            self.o.payload.eq(queue.r_data),
            self.o.valid.eq(queue.r_rdy),
            queue.r_en.eq(self.o.ready),
        ]
        return m

    def _buffered(self, m):
        # SyncFIFOBuffered's design (amaranth 0.5), its memory marked NO_RW_CHECK: `depth - 1`
        # words between `produce` and `consume`, the head beat on the read port's output.
        inner = self._depth - 1
        m.submodules.storage = storage = memory.Memory(
            shape=Shape.cast(self._shape).width, depth=inner, init=[], attrs=NO_RW_CHECK)
        wr = storage.write_port()
        rd = storage.read_port()
        level = Signal(range(inner + 1))            # words in the memory
        produce = Signal(range(inner))
        consume = Signal(range(inner))
        write = self.i.valid & self.i.ready
        # the head moves to the read port's output when it is empty or taken
        fetch = (level != 0) & (~self.o.valid | self.o.ready)
        m.d.comb += [
            self.i.ready.eq(level != inner),
            wr.addr.eq(produce), wr.data.eq(self.i.payload), wr.en.eq(write),
            rd.addr.eq(consume), rd.en.eq(fetch),
            self.o.payload.eq(rd.data),
        ]
        with m.If(write):
            m.d.sync += produce.eq(Mux(produce == inner - 1, 0, produce + 1))
        with m.If(fetch):
            m.d.sync += consume.eq(Mux(consume == inner - 1, 0, consume + 1))
        with m.If(write & ~fetch):
            m.d.sync += level.eq(level + 1)
        with m.If(fetch & ~write):
            m.d.sync += level.eq(level - 1)
        with m.If(fetch):
            m.d.sync += self.o.valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m
