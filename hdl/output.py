# amaranth: UnusedElaboratable=no
# (The requantizer is built in the constructor, so that its figures are known before elaboration.)
from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec import channel_slot
from .array import psums_layout
from .requant import REQUANT_DATA_BITS, Requantizer, group_layout
from .stage import NO_RW_CHECK, MemoryShape

__all__ = ["pixel_out_layout", "OutputStage"]


def pixel_out_layout(acc_shape, channels):
    """An output beat: every output channel of one pixel, ``last`` on the frame's final one."""
    return data.StructLayout({"data": data.ArrayLayout(acc_shape, channels), "last": 1})


class OutputStage(wiring.Component):
    """Accumulates the array's partial sums across folds, adds the bias and queues whole pixels.

    A pixel's partial sums arrive as ``groups * col_folds`` column blocks (``row_folds``
    vectors each), block ``g * col_folds + j`` holding the channels of convolution group ``g``
    that :func:`convaccel.spec.channel_slot` places there. Each column's accumulator starts
    from the bias of its output channel on a reduction's first fold and adds one partial sum per
    fold; after the last fold the block's ``cols`` results are complete. Blocks are collected
    until the pixel's last block completes, then the pixel's ``channels`` exact results enter an
    output queue, in channel order (idle columns dropped). The array cannot stall, so the queue
    must have room for every pixel in flight: ``credit`` says whether one more may be started
    (``reserve``), and a reservation ends when its pixel leaves on ``o``.

    With ``serial`` (the channel-serial engine), no pixel is assembled: every complete block
    enters the queue and leaves on ``o`` as a beat of ``cols`` channels, a pixel's blocks in
    turn (``last`` on the frame's final block); ``queue_depth`` still counts pixels, and a
    reservation ends when a pixel's last block leaves.

    With ``requantize``, each complete block passes a :class:`~convaccel.hdl.requant.
    Requantizer` before the queue, and the pixels leave as int8.

    Latency: partial sums arriving in cycle ``t`` that complete a pixel leave, if the queue was
    empty and ``o`` is ready, in cycle ``t + latency``.

    Parameters
    ----------
    cols, channels, row_folds, col_folds : int
        ``col_folds`` column blocks per convolution group.
    groups : int
        Convolution groups (they divide ``channels``).
    psum_shape, acc_shape, bias_shape, tag_shape : shape-castable
    requant_multiplier : str
        With ``requantize``: the requantizer's multipliers, ``"dsp"`` or ``"fabric"``
        (:attr:`convaccel.spec.Folding.requant_multiplier`).
    fixed : (sequence of int, :class:`convaccel.quant.Requant` or None) or None
        The biases (per output channel) and the requantization parameters baked in (a
        network's layer, whose weight load carries the same values): the biases in a ROM, the
        requantizer's ``fixed``; the load ports (``b_*``, ``q_data``, ``m_en``, ``s_en``,
        ``c_en``) are then ignored.
    in_flight : int
        Cycles from a reservation (a window taken by the feeder) to its first partial sums
        arriving here; with ``groups * row_folds * col_folds`` cycles per pixel this sets
        :attr:`queue_depth`.

    Members
    -------
    i : In(stream.Signature(psums_layout(...), always_ready=True))
        The array's partial sums with their :func:`~convaccel.hdl.array.fold_tag_layout` tag.
    b_addr : In(range(groups * col_folds))
    b_data : In(bias_shape)
    b_en : In(cols)
        Bias memory write port: column block ``b_addr``, one enable per column.
    q_data : In(signed(REQUANT_DATA_BITS)); m_en, s_en : In(cols); c_en : In(3)
        With ``requantize`` only: the requantizer's load ports (column block ``b_addr``).
    o : Out(stream.Signature(pixel_out_layout(out_shape, channels)))
        ``out_shape`` is ``acc_shape``, or ``signed(8)`` with ``requantize``; with ``serial``
        ``cols`` channels (a block) a beat.
    reserve : In(1)
    credit : Out(1)
    """

    def __init__(self, *, cols, channels, row_folds, col_folds, in_flight, psum_shape,
                 acc_shape, bias_shape, tag_shape, requantize=False, requant_multiplier="dsp",
                 groups=1, serial=False, fixed=None):
        assert channels % groups == 0
        self._fixed = fixed
        assert not serial or (groups == 1 and channels % cols == 0)
        self._serial = serial
        self._cols = cols
        self._channels = channels
        self._row_folds = row_folds
        self._groups = groups
        # column blocks a pixel: what the queue, the biases and the requantizer count
        self._blocks = groups * col_folds
        self._in_flight = in_flight
        self._acc_shape = acc_shape
        self._bias_shape = bias_shape
        self._tag_shape = tag_shape
        self._requant = None
        self._out_shape = acc_shape
        requant_ports = {}
        if requantize:
            self._requant = Requantizer(cols=cols, col_folds=self._blocks,
                                        row_folds=row_folds,
                                        acc_shape=acc_shape, tag_shape=tag_shape,
                                        multiplier=requant_multiplier,
                                        fixed=None if fixed is None else fixed[1],
                                        slots=self._slots)
            self._out_shape = signed(8)
            requant_ports = {
                "q_data": In(signed(REQUANT_DATA_BITS)),
                "m_en": In(cols),
                "s_en": In(cols),
                "c_en": In(3),
            }
        super().__init__({
            "i": In(stream.Signature(psums_layout(psum_shape, cols, tag_shape),
                                     always_ready=True)),
            "b_addr": In(range(self._blocks)),
            "b_data": In(bias_shape),
            "b_en": In(cols),
            **requant_ports,
            "o": Out(stream.Signature(pixel_out_layout(self._out_shape,
                                                       cols if serial else channels))),
            "reserve": In(1),
            "credit": Out(1),
        })

    @property
    def _slots(self):
        # each channel's (column block, column), :func:`convaccel.spec.channel_slot`
        return [channel_slot(ch, self._channels // self._groups, self._cols)
                for ch in range(self._channels)]

    @property
    def requantizer(self):
        """The :class:`~convaccel.hdl.requant.Requantizer`, or ``None`` (raw outputs)."""
        return self._requant

    @property
    def multipliers(self):
        """The requantizer's multipliers (:attr:`Requantizer.multipliers`), if any."""
        return self._requant.multipliers if self._requant else ()

    @property
    def logic(self):
        """The requantizer's logic beyond the fit model's (:attr:`Requantizer.logic`), if
        any: ``{family: (lut, ff)}``."""
        return self._requant.logic if self._requant else {}

    @property
    def latency(self):
        """Accumulation, the queue's write and its read, and the requantizer's if any."""
        return 3 + (self._requant.latency if self._requant else 0)

    @property
    def queue_depth(self):
        """Output pixels the queue holds: every pixel that can be in flight when results are
        always taken, so that it never throttles a frame."""
        p = self._row_folds * self._blocks
        # A pixel's reservation lasts from its window's take to its result's transfer: in_flight
        # + p - 1 + latency cycles and one more, while a window is taken every p cycles.
        return -(-(self._in_flight + self.latency + p) // p) + 1

    @staticmethod
    def split_bits(width):
        """The low half's width of an accumulator of `width` bits kept in two halves (the
        carry between them a cycle late), or ``None`` for one narrow enough to keep whole."""
        return width // 2 if width > 20 else None

    @property
    def memories(self):
        out = Shape.cast(self._out_shape).width
        bias = Shape.cast(self._bias_shape).width
        return (
            MemoryShape("biases", self._cols * bias, self._blocks, rom=self._fixed is not None),
            *(self._requant.memories if self._requant else ()),
            # a word per column block, `groups * col_folds` per queued pixel
            MemoryShape("output queue", self._cols * out + 1 + self._serial,
                        self.queue_depth * self._blocks, no_rw_check=True),
        )

    def elaborate(self, platform):
        m = Module()
        cols, channels, blocks = self._cols, self._channels, self._blocks
        beat = self.i.payload

        init = []
        if self._fixed is not None:
            init = [[0] * cols for _ in range(blocks)]
            for ch, (block, column) in enumerate(self._slots):
                init[block][column] = int(self._fixed[0][ch])
        m.submodules.bias = bias = memory.Memory(
            shape=data.ArrayLayout(self._bias_shape, cols), depth=blocks, init=init)
        if self._fixed is None:
            bias_wr = bias.write_port(granularity=1)
            m.d.comb += [
                bias_wr.addr.eq(self.b_addr),
                bias_wr.en.eq(self.b_en),
            ]
            for c in range(cols):
                m.d.comb += bias_wr.data[c].eq(self.b_data)
        bias_rd = bias.read_port()

        # The biases of the column block whose partial sums arrive are on the read port when
        # they do: the blocks come in order, so the next one's are read as the current one
        # ends. (`succ` is the block after `group`, kept in a register.)
        group = Signal(range(blocks))
        succ = Signal(range(blocks), init=1 % blocks)
        group_end = self.i.valid & beat.tag.last_fold
        m.d.comb += bias_rd.addr.eq(Mux(group_end, succ, group))
        with m.If(group_end):
            m.d.sync += [group.eq(succ), succ.eq(Mux(succ == blocks - 1, 0, succ + 1))]

        # Stage 1: accumulators. A wide one is kept in two halves whose carry between them is
        # a cycle late: the low half's carry out is registered and added into the high half
        # with the next partial sum, and the last one as the sum leaves (`acc`, an increment
        # of the high half). Each carry chain is half the accumulator (a 33-bit chain was the
        # UP5K's critical path at 47.6 MHz), at one flip-flop a column.
        # (Data registers have no reset here: they matter only beside the valid flags.)
        acc = Signal(data.ArrayLayout(self._acc_shape, cols), reset_less=True)
        acc_valid = Signal()
        acc_tag = Signal.like(beat.tag, reset_less=True)
        m.d.sync += [acc_valid.eq(self.i.valid), acc_tag.eq(beat.tag)]
        shape = Shape.cast(self._acc_shape)
        low = self.split_bits(shape.width)
        first = beat.tag.first
        for c in range(cols):
            if low is None:
                with m.If(self.i.valid):
                    m.d.sync += acc[c].eq(Mux(first, bias_rd.data[c], acc[c]) + beat.psums[c])
                continue
            # (the bias and the partial sum sign-extended to the accumulator, then halved)
            start = Signal(shape, name=f"acc_start_{c}")
            psum = Signal(shape, name=f"acc_psum_{c}")
            m.d.comb += [start.eq(bias_rd.data[c]), psum.eq(beat.psums[c])]
            lo = Signal(low, name=f"acc_lo_{c}", reset_less=True)
            hi = Signal(signed(shape.width - low), name=f"acc_hi_{c}", reset_less=True)
            carry = Signal(name=f"acc_carry_{c}", reset_less=True)
            lo_sum = Mux(first, start[:low], lo) + psum[:low]
            with m.If(self.i.valid):
                m.d.sync += [
                    Cat(lo, carry).eq(lo_sum),
                    hi.eq(Mux(first, start[low:].as_signed(), hi) + psum[low:].as_signed() +
                       (carry & ~first)),
                ]
            m.d.comb += acc[c].eq(Cat(lo, hi + carry))

        # With requantization, complete groups pass the requantizer (a fixed latency).
        complete = Signal(group_layout(self._out_shape, cols, self._tag_shape))
        complete_valid = Signal()
        if self._requant:
            m.submodules.requant = rq = self._requant
            m.d.comb += [
                rq.i.valid.eq(acc_valid & acc_tag.last_fold),
                rq.i.payload.data.eq(acc),
                rq.i.payload.tag.eq(acc_tag),
                rq.w_addr.eq(self.b_addr),
                rq.w_data.eq(self.q_data),
                rq.m_en.eq(self.m_en),
                rq.s_en.eq(self.s_en),
                rq.c_en.eq(self.c_en),
                complete_valid.eq(rq.o.valid),
                complete.eq(rq.o.payload),
            ]
        else:
            m.d.comb += [
                complete_valid.eq(acc_valid & acc_tag.last_fold),
                complete.data.eq(acc),
                complete.tag.eq(acc_tag),
            ]

        # Stage 2: complete groups enter the queue memory, a pixel's groups in consecutive
        # words, room for `queue_depth` pixels. Its groups are read back in order: all but the
        # last into registers, the last stays on the read port's output until the pixel leaves.
        # (A block RAM, not flip-flops: the queue is the engine's widest storage. A word is
        # read only after it was written, and the credits keep a write from the words not yet
        # read: never a read of the address being written, so NO_RW_CHECK.)
        words = self.queue_depth * blocks
        word_layout = data.StructLayout({
            "data": data.ArrayLayout(self._out_shape, cols), "last": 1,
            **({"end": 1} if self._serial else {})})
        m.submodules.queue = queue = memory.Memory(shape=word_layout, depth=words, init=[],
                                                   attrs=NO_RW_CHECK)
        wr = queue.write_port()
        rd = queue.read_port()
        w_addr = Signal(range(words))
        r_addr = Signal(range(words))
        r_group = Signal(range(blocks))
        stored = Signal(range(words + 1))             # words written and not yet read
        write = complete_valid
        read = (stored != 0) & ~(self.o.valid & ~self.o.ready)
        m.d.comb += [
            wr.addr.eq(w_addr),
            wr.data.data.eq(complete.data),
            wr.data.last.eq(complete.tag.last_pixel & (complete.tag.last_group
                                                       if self._serial else 1)),
            wr.en.eq(write),
            rd.addr.eq(r_addr),
            rd.en.eq(read),
        ]
        m.d.sync += stored.eq(stored + write - read)
        with m.If(write):
            m.d.sync += w_addr.eq(Mux(w_addr == words - 1, 0, w_addr + 1))
        with m.If(read):
            m.d.sync += [r_addr.eq(Mux(r_addr == words - 1, 0, r_addr + 1)),
                         r_group.eq(Mux(r_group == blocks - 1, 0, r_group + 1))]

        if self._serial:
            m.d.comb += wr.data.end.eq(complete.tag.last_group)
            # every block leaves as it is read; a reservation ends with a pixel's last block
            with m.If(self.o.valid & self.o.ready):
                m.d.sync += self.o.valid.eq(0)
            with m.If(read):
                m.d.sync += self.o.valid.eq(1)
            m.d.comb += [self.o.payload.data.eq(rd.data.data),
                         self.o.payload.last.eq(rd.data.last)]
            self._credits(m, self.o.valid & self.o.ready & rd.data.end)
            return m

        collected = [Signal(data.ArrayLayout(self._out_shape, cols), name=f"group{g}",
                            reset_less=True)
                     for g in range(blocks - 1)]
        fetched = Signal()                            # rd.data holds the word read last cycle
        fetched_group = Signal.like(r_group, reset_less=True)
        m.d.sync += [fetched.eq(read), fetched_group.eq(r_group)]
        with m.If(fetched):
            with m.Switch(fetched_group):
                for g in range(blocks - 1):
                    with m.Case(g):
                        m.d.sync += collected[g].eq(rd.data.data)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(read & (r_group == blocks - 1)):
            m.d.sync += self.o.valid.eq(1)
        lanes = ([lane for group in collected for lane in group] +
                 [rd.data.data[c] for c in range(cols)])
        for ch in range(channels):
            block, column = channel_slot(ch, channels // self._groups, cols)
            m.d.comb += self.o.payload.data[ch].eq(lanes[block * cols + column])
        m.d.comb += self.o.payload.last.eq(rd.data.last)

        self._credits(m, self.o.valid & self.o.ready)
        return m

    def _credits(self, m, release):
        # Credits: pixels reserved and not yet out.
        # (`credit` is registered, computed from the count's next value.)
        in_flight = Signal(range(self.queue_depth + 1))
        next_in_flight = in_flight + self.reserve - release
        credit = Signal(init=1)
        m.d.sync += [in_flight.eq(next_in_flight), credit.eq(next_in_flight < self.queue_depth)]
        m.d.comb += self.credit.eq(credit)
