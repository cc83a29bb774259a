from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .array import fold_tag_layout, vector_layout
from .stage import MemoryShape

__all__ = ["LineBuffer"]


class LineBuffer(wiring.Component):
    """The channel-serial engine's line buffer and address generator: padded beats in, the
    array's vectors out, read straight from block RAM.

    Beats of ``lanes`` channels arrive in raster order, a pixel's ``chunks`` beats in turn, and
    are written one per cycle into a ring of :attr:`ring_rows` padded rows: one memory word per
    beat, beat ``b`` of the padded frame at address ``b mod depth`` (``depth = ring_rows *
    width * chunks``), deep and narrow. For each output pixel an address generator reads, by
    counters and adders alone, ``interval = col_folds * row_folds`` vectors of ``rows``
    channels: for each column block, for each tap ``(kh, kw)`` in raster order, for each chunk,
    each ``rows``-channel sub-word of the chunk's word (``lanes / rows`` of them), so that the
    reduction index is ``n = (kh * kernel_w + kw) * in_channels + chunk * lanes + sub * rows +
    r``: the order of :func:`convaccel.beats.weight_beats`. Each vector carries its weight
    address ``k`` (``0 .. interval - 1``) and a :func:`~convaccel.hdl.array.fold_tag_layout`
    tag. Nothing of a receptive field is held in registers: flip-flops grow with the array, not
    with ``kernel_h * kernel_w * in_channels``.

    Ring rows and the handshakes: output row ``oy`` reads padded rows ``oy * stride_h .. oy *
    stride_h + k_eff_h - 1``. With ``ring_rows = k_eff_h + stride_h`` the writer can write the
    ``stride_h`` rows the next output row adds while the reader is still on this one; padded row
    ``y`` replaces row ``y - ring_rows``, whose last reader is output row ``(y - ring_rows) //
    stride_h``. So the writer holds ``credit`` rows it may begin: ``ring_rows`` at a frame's
    start, one less per row it begins, ``stride_h`` more each time the reader issues the last
    vector of an output row. An output pixel may be taken (its first vector issued from the
    next cycle) once the beat that completes its receptive field (its bottom-right tap's last
    chunk) has been written: ``ahead`` counts the beats written beyond that one, less one. Both
    decisions are registered (``row_free``, ``avail``): no adder or comparator lies between a
    handshake and the next. The address generator's counters wrap to 0 with a pixel's last
    vector (a take need not restart them), which of them steps is decided a cycle ahead
    (``carry_i``, ``free``: flip-flops set from the counters' next values), and the next tap
    row's address is a flip-flop too: ``take`` is one gate of four flip-flops and no counter
    enable depends on it (timing on iCE40; no cycle changes).

    Latency: a pixel taken in cycle ``h`` issues its vectors on ``o`` in cycles ``h + latency ..
    h + latency + interval - 1`` (the counters, then the memory's synchronous read). The next
    pixel can be taken in the cycle whose counters issue the last vector, so pixels follow each
    other with no gap; ``credit`` (room downstream for one more output pixel) gates a take,
    which ``take`` reports. :meth:`schedule` gives the cycle of every take (the engine's cycle
    model).

    Parameters
    ----------
    padded : (height, width)
        The padded frame; the strided windows end at its last row and column (an integer output
        size).
    kernel, dilation, stride : (h, w)
    chunks, lanes : int
        Beats per pixel and channels per beat.
    rows, col_folds : int
        The array's rows (a divisor of ``lanes``) and the column blocks of an output pixel.
    elem_shape : shape-castable
        One input element.

    Members
    -------
    i : In(stream.Signature(data.ArrayLayout(elem_shape, lanes)))
        The padded beats.
    o : Out(stream.Signature(vector_layout(...), always_ready=True))
    start : In(1)
        A frame begins (the engine's register of the padder's ``start``, before the frame's
        first beat): the ring, the counters and the lead restart.
    credit : In(1)
    take : Out(1)
        An output pixel is taken in this cycle (a reservation downstream).
    """

    latency = 2

    def __init__(self, *, padded, kernel, dilation, stride, chunks, lanes, rows, col_folds,
                 elem_shape):
        assert lanes % rows == 0
        self._padded = tuple(padded)
        self._kernel = tuple(kernel)
        self._dilation = tuple(dilation)
        self._stride = tuple(stride)
        self._chunks = chunks
        self._lanes = lanes
        self._rows = rows
        self._col_folds = col_folds
        self._elem_shape = elem_shape
        for axis, name in enumerate(("height", "width")):
            size, k_eff, s = self._padded[axis], self._kernel_eff[axis], self._stride[axis]
            assert size >= k_eff and (size - k_eff) % s == 0, name
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(elem_shape, lanes))),
            "o": Out(stream.Signature(
                vector_layout(elem_shape, rows, self.interval, fold_tag_layout()),
                always_ready=True)),
            "start": In(1),
            "credit": In(1),
            "take": Out(1),
        })

    # -- figures -------------------------------------------------------------------------------

    @property
    def _kernel_eff(self):
        return tuple((k - 1) * d + 1 for k, d in zip(self._kernel, self._dilation))

    @property
    def _output_size(self):
        return tuple((p - k) // s + 1
                     for p, k, s in zip(self._padded, self._kernel_eff, self._stride))

    @property
    def subwords(self):
        """Vectors per beat: ``lanes / rows``."""
        return self._lanes // self._rows

    @property
    def row_folds(self):
        """Vectors per column block: taps x chunks x sub-words."""
        return self._kernel[0] * self._kernel[1] * self._chunks * self.subwords

    @property
    def interval(self):
        """Cycles (vectors) per output pixel."""
        return self.row_folds * self._col_folds

    @property
    def ring_rows(self):
        """Padded rows the ring holds: ``k_eff_h + stride_h``."""
        return self._kernel_eff[0] + self._stride[0]

    @property
    def depth(self):
        """Words of the ring: ``ring_rows * width * chunks``."""
        return self.ring_rows * self._padded[1] * self._chunks

    @property
    def memories(self):
        width = self._lanes * Shape.cast(self._elem_shape).width
        return (MemoryShape("line buffer", width, self.depth),)

    def _need(self, oy, ox):
        """The beat (index in the padded frame) that completes output pixel (oy, ox)'s field."""
        k_eff_h, k_eff_w = self._kernel_eff
        s_h, s_w = self._stride
        return (((oy * s_h + k_eff_h - 1) * self._padded[1] + ox * s_w + k_eff_w - 1)
                * self._chunks + self._chunks - 1)

    def schedule(self, front):
        """The cycle in which each output pixel is taken (raster order), with padded beat ``b``
        offered from cycle ``front + b`` and ``credit`` always high: the exact recurrence of
        this stage's two registered decisions.

        A padded row's first beat is written at the earliest in the cycle it is offered, a row
        after the previous row's first beat (a beat a cycle), and, for row ``y >= ring_rows``,
        in the cycle after the reader issued the last vector of output row ``(y - ring_rows) //
        stride_h``; the rest of the row follows a beat a cycle. Pixel ``n`` is taken in the
        cycle after the beat that completes it was written, at the earliest ``interval`` cycles
        after pixel ``n - 1``; an output row's last vector is issued ``interval`` cycles after
        its last pixel's take.
        """
        out_h, out_w = self._output_size
        per_row = self._padded[1] * self._chunks
        p = self.interval
        row_start, row_done, takes = [], [], []

        def written(b):
            y = b // per_row
            while len(row_start) <= y:
                r = len(row_start)
                t = front + r * per_row
                if r:
                    t = max(t, row_start[-1] + per_row)
                if r >= self.ring_rows:
                    t = max(t, row_done[(r - self.ring_rows) // self._stride[0]] + 1)
                row_start.append(t)
            return row_start[y] + b - y * per_row

        for oy in range(out_h):
            for ox in range(out_w):
                t = written(self._need(oy, ox)) + 1
                if takes:
                    t = max(t, takes[-1] + p)
                takes.append(t)
            row_done.append(takes[-1] + p)
        return takes

    # -- the hardware --------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        padded_h, padded_w = self._padded
        k_h, k_w = self._kernel
        d_h, d_w = self._dilation
        s_h, s_w = self._stride
        out_h, out_w = self._output_size
        chunks, rows = self._chunks, self._rows
        depth, ring_rows = self.depth, self.ring_rows
        per_row = padded_w * chunks
        elem_width = Shape.cast(self._elem_shape).width

        def counter(name, size):
            """A counter 0..size-1 and its end flag (a register, set a cycle ahead; a constant
            1 for a counter of one)."""
            if size == 1:
                return C(0, 1), C(1, 1)
            return (Signal(range(size), name=name),
                    Signal(name=f"{name}_end"))

        def advance(value, end, size):
            """Step a counter from `counter` (back to 0 after its end)."""
            if size == 1:
                return []
            return [value.eq(Mux(end, 0, value + 1)), end.eq(~end & (value == size - 2))]

        def restart(value, end, size):
            if size == 1:
                return []
            return [value.eq(0), end.eq(0)]

        def ring_add(value, step):
            """``(value + step) mod depth`` for a constant ``0 <= step < depth`` and ``value <
            depth``: an adder, a subtracter and a comparison side by side, no multiplier."""
            assert 0 <= step < depth
            return Mux(value >= depth - step, value - (depth - step), value + step)

        m.submodules.ring = ring = memory.Memory(
            shape=data.ArrayLayout(self._elem_shape, self._lanes), depth=depth, init=[])
        wr = ring.write_port()
        rd = ring.read_port()

        # -- the writer: beat b at address b mod depth -----------------------------------------
        w_addr = Signal(range(depth))
        w_pos, w_pos_end = counter("w_pos", per_row)         # the beat within its padded row
        w_row_start = Signal(init=1)                          # w_pos == 0
        credit_rows = Signal(range(ring_rows + s_h * out_h + 1))
        row_free = Signal()                                   # credit_rows > 0, registered
        write = self.i.valid & self.i.ready
        m.d.comb += [
            self.i.ready.eq(~w_row_start | row_free),
            wr.addr.eq(w_addr),
            wr.data.eq(self.i.payload),
            wr.en.eq(write),
        ]
        with m.If(write):
            m.d.sync += [w_addr.eq(Mux(w_addr == depth - 1, 0, w_addr + 1)),
                         *advance(w_pos, w_pos_end, per_row),
                         w_row_start.eq(w_pos_end)]

        # -- the reader: the counters of the vector being issued (stage 0) ---------------------
        # The counters run through a pixel's vectors while `busy` and wrap to 0 with its last
        # vector, so between pixels they stand at 0 and a take need not restart them: no
        # counter enable depends on `take`. Which counters step in a cycle is decided a cycle
        # ahead: `carry[i]` (every counter below counter `i` at its end) is a flip-flop set from
        # the counters' next values, so each enable is a register (and `busy`), and `free`
        # (``~busy | final``) is one too: `take` is a single gate of four flip-flops.
        busy = Signal()
        free = Signal(init=1)                                 # ~busy | final, registered
        digits = [counter(name, size) + (size,) for name, size in (
            ("sub", self.subwords), ("chunk", chunks), ("kw", k_w), ("kh", k_h),
            ("block", self._col_folds))]
        (sub, _, _), (chunk, _, _), (kw, _, _), (kh, _, _), (block, _, _) = digits
        carry = [C(1, 1)]                                     # carry[i]: digits < i at their end
        for n, (value, end, size) in enumerate(digits):
            if isinstance(carry[-1], Const) and size == 1:
                carry.append(C(1, 1))
            else:
                carry.append(Signal(name=f"carry_{n + 1}", init=0))
        k = Signal(range(self.interval))
        addr = Signal(range(depth))                           # of the word being read
        tap_row = Signal(range(depth))                        # tap (kh, 0), chunk 0
        pix_base = Signal(range(depth))                       # tap (0, 0), chunk 0
        first = Signal(init=1)                                # a block's first vector
        last_pixel = Signal()                                 # the frame's final pixel
        row_last = Signal()                                   # the last pixel of its row
        fold_end = carry[4]
        final = busy & carry[5]                               # the pixel's last vector

        # The next pixel to take: its base address, its row's, where it stands.
        nb = Signal(range(depth))
        nrb = Signal(range(depth))
        ox, ox_end = counter("ox", out_w)
        oy, oy_end = counter("oy", out_h)
        armed = Signal()                                      # pixels of the frame remain
        avail = Signal()                                      # ahead >= 0, registered
        need_0 = self._need(0, 0) + 1
        col_step = s_w * chunks
        row_step = self._need(1, 0) - self._need(0, out_w - 1) if out_h > 1 else 0
        ahead = Signal(range(-need_0 - max(col_step, row_step) - 1,
                             padded_h * per_row + 1))

        take = free & avail & self.credit & armed
        m.d.comb += self.take.eq(take)

        # The counters' next values, and the carries from them (registered a cycle ahead).
        ends_next = []
        for n, (value, end, size) in enumerate(digits):
            if size == 1:
                ends_next.append(C(1, 1))
                continue
            end_next = Signal(name=f"{value.name}_end_next")
            m.d.comb += end_next.eq(Mux(carry[n], ~end & (value == size - 2), end))
            ends_next.append(end_next)
        with m.If(busy):
            m.d.sync += [k.eq(Mux(carry[5], 0, k + 1)), first.eq(fold_end)]
            for n, (value, end, size) in enumerate(digits):
                if size > 1:
                    with m.If(carry[n]):
                        m.d.sync += value.eq(Mux(end, 0, value + 1))
                    m.d.sync += end.eq(ends_next[n])
            for n in range(1, len(carry)):
                if not isinstance(carry[n], Const):
                    m.d.sync += carry[n].eq(Cat(*ends_next[:n]).all())
        busy_next = take | (busy & ~carry[5])
        final_next = Mux(busy, Cat(*ends_next).all(), carry[5])
        m.d.sync += [busy.eq(busy_next), free.eq(~busy_next | final_next)]

        # The next tap row's address: a flip-flop where a tap row lasts two cycles or more (it
        # is set in the cycle after `tap_row` changes, and read at the tap row's last vector).
        row_vectors = self.subwords * chunks * k_w
        down_step = (d_h * padded_w * chunks) % depth
        if row_vectors > 1:
            down = Signal.like(tap_row, name="down")
            m.d.sync += down.eq(ring_add(tap_row, down_step))
        else:
            down = ring_add(tap_row, down_step)

        # The word's address: loaded with the next pixel's base while `free` (the pixel's last
        # vector, or idle: harmless, nothing is issued until a take), stepped by the carries.
        with m.If(free):
            m.d.sync += [addr.eq(nb), tap_row.eq(nb), pix_base.eq(nb),
                         last_pixel.eq(ox_end & oy_end), row_last.eq(ox_end)]
        with m.Elif(busy):
            with m.If(carry[4]):
                m.d.sync += [addr.eq(pix_base), tap_row.eq(pix_base)]
            with m.Elif(carry[3]):
                m.d.sync += [addr.eq(down), tap_row.eq(down)]
            with m.Elif(carry[2]):
                m.d.sync += addr.eq(addr + (d_w * chunks - (chunks - 1)))
            with m.Elif(carry[1]):
                m.d.sync += addr.eq(addr + 1)

        with m.If(take):
            m.d.sync += advance(ox, ox_end, out_w)
            with m.If(ox_end):
                next_row = ring_add(nrb, (s_h * padded_w * chunks) % depth)
                m.d.sync += [*advance(oy, oy_end, out_h), nrb.eq(next_row), nb.eq(next_row)]
                with m.If(oy_end):
                    m.d.sync += armed.eq(0)
            with m.Else():
                m.d.sync += nb.eq(nb + col_step)

        # The lead: beats written beyond the one the next pixel needs, less one. After this
        # cycle: + a write, - the step to the pixel after the one taken (along the row, or to
        # the next output row's first); each sum from registers, `write` and `take` only pick.
        step = Mux(ox_end, row_step, col_step)
        for written in (0, 1):
            for taken in (0, 1):
                lead = Signal.like(ahead, name=f"ahead_w{written}_t{taken}")
                m.d.comb += lead.eq(ahead + written - (step if taken else 0))
                with m.If((write == written) & (take == taken)):
                    m.d.sync += [ahead.eq(lead), avail.eq(~lead[-1])]

        # Row credits: a row begun by the writer, `stride_h` freed by an output row's end.
        row_done = final & row_last
        credit_next = Signal.like(credit_rows)
        m.d.comb += credit_next.eq(credit_rows - (write & w_row_start) +
                                   Mux(row_done, s_h, 0))
        m.d.sync += [credit_rows.eq(credit_next), row_free.eq(credit_next != 0)]

        with m.If(self.start):
            m.d.sync += [
                w_addr.eq(0), *restart(w_pos, w_pos_end, per_row), w_row_start.eq(1),
                credit_rows.eq(ring_rows), row_free.eq(1),
                nb.eq(0), nrb.eq(0), armed.eq(1),
                *restart(ox, ox_end, out_w), *restart(oy, oy_end, out_h),
                ahead.eq(-need_0), avail.eq(0),
            ]

        # -- stage 1: the word is read; the vector leaves with its address and tag -------------
        sub_1 = Signal.like(sub) if self.subwords > 1 else None
        m.d.comb += [rd.addr.eq(addr), rd.en.eq(1)]
        m.d.sync += [
            self.o.valid.eq(busy),
            self.o.payload.k.eq(k),
            self.o.payload.tag.first.eq(first),
            self.o.payload.tag.last_fold.eq(fold_end),
            self.o.payload.tag.last_group.eq(carry[5]),
            self.o.payload.tag.last_col_fold.eq(carry[5]),
            self.o.payload.tag.last_pixel.eq(last_pixel),
        ]
        if sub_1 is None:
            m.d.comb += self.o.payload.x.eq(rd.data.as_value()[:rows * elem_width])
        else:
            m.d.sync += sub_1.eq(sub)
            words = Array(rd.data.as_value()[s * rows * elem_width:(s + 1) * rows * elem_width]
                          for s in range(self.subwords))
            m.d.comb += self.o.payload.x.eq(words[sub_1])
        return m
