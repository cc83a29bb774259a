from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .stage import MemoryShape

__all__ = ["pixel_in_layout", "Padder", "EdgePadder"]


def pixel_in_layout(pixel_shape):
    """An input beat: one pixel, all channels, and ``last`` on the frame's final pixel."""
    return data.StructLayout({"data": pixel_shape, "last": 1})


class Padder(wiring.Component):
    """Surrounds a raster frame with padding pixels.

    Emits the padded frame, ``(height + top + bottom) x (width + left + right)`` pixels in
    raster order, one per cycle at most: a padding pixel whenever the position is outside the
    input frame, else the next input pixel. Padding is generated without waiting for input, so
    padding rows and columns cost no input bandwidth.

    A frame begins in the first cycle in which ``start_ok`` is asserted and an input beat is
    valid (that beat is not consumed until its position comes). Frame length is checked against
    ``last``: if ``last`` comes early, ``error`` pulses and the rest of the frame is made of
    padding, so downstream still sees a whole frame; if the frame's final pixel lacks ``last``,
    ``error`` pulses and input beats are dropped up to and including the next one with ``last``,
    so the following frame starts aligned.

    With ``chunks > 1`` (the channel-serial engine) a pixel is ``chunks`` consecutive beats,
    beat ``j`` holding channels ``j * lanes .. (j + 1) * lanes - 1``: everything above counts
    beats (a padding pixel is ``chunks`` beats, each its channels' pad values; ``last`` belongs
    on the frame's final beat).

    Latency is 1 cycle (a registered output); a frame's start takes ``start_cycles`` more, so
    its first beat leaves 2 cycles after its start. Throughput is one beat per cycle.

    Parameters
    ----------
    height, width : int
        The input frame.
    pads : (top, bottom, left, right)
    pad_value : int or sequence of int
        The padding pixel's elements: one value for all, or one per channel (``chunks *
        lanes`` of them).
    pixel_shape : shape-castable
        One beat, an array (e.g. ``data.ArrayLayout(signed(8), lanes)``).
    runtime : bool
        The pad values can be loaded: with one chunk a register, ``pad_value`` at reset, whose
        element ``c`` takes ``pad_data`` in a cycle with bit ``c`` of ``pad_en`` set; with
        several, a memory of a word per chunk whose element ``c`` of word ``pad_addr`` takes
        ``pad_data`` with bit ``c`` of ``pad_en``.
    chunks : int
        Beats per pixel.

    Members
    -------
    i : In(stream.Signature(pixel_in_layout(pixel_shape)))
    o : Out(stream.Signature(pixel_shape))
    start_ok : In(1)
        A new frame may begin.
    start : Out(1)
        The cycle in which a frame begins.
    error : Out(1)
        Pulses when an input frame turns out shorter or longer than ``height x width``.
    pad_en : In(lanes), pad_data : In(element shape), pad_addr : In(range(chunks))
        Only with ``runtime``: load one element of the padding pixel (between frames);
        ``pad_addr`` only with several chunks.
    """

    latency = 1
    #: The cycle in which a frame starts, before its first pixel moves.
    start_cycles = 1

    def __init__(self, *, height, width, pads, pad_value, pixel_shape, runtime=False,
                 chunks=1):
        self._height = height
        self._width = width
        self._pads = tuple(pads)
        self._pixel_shape = pixel_shape
        self._runtime = runtime
        self._chunks = chunks
        layout = data.Layout.cast(pixel_shape)
        if isinstance(pad_value, int):
            pad_value = (pad_value,) * (layout.length * chunks)
        assert len(pad_value) == layout.length * chunks
        self._pad_value = tuple(pad_value)
        ports = {
            "i": In(stream.Signature(pixel_in_layout(pixel_shape))),
            "o": Out(stream.Signature(pixel_shape)),
            "start_ok": In(1),
            "start": Out(1),
            "error": Out(1),
        }
        if runtime:
            ports.update(pad_en=In(layout.length), pad_data=In(layout.elem_shape))
            if chunks > 1:
                ports.update(pad_addr=In(range(chunks)))
        super().__init__(ports)

    @property
    def _pad_words(self):
        """The pad values as one tuple per chunk."""
        lanes = len(self._pad_value) // self._chunks
        return [self._pad_value[j * lanes:(j + 1) * lanes] for j in range(self._chunks)]

    @property
    def _pad_memory(self):
        """Several chunks of pad values that differ (or are loaded): a memory of a word per
        chunk, read at the beat's chunk (a register per channel would grow with them)."""
        return self._chunks > 1 and (self._runtime or len(set(self._pad_words)) > 1)

    @property
    def memories(self):
        if not self._pad_memory:
            return ()
        return (MemoryShape("pad values", Shape.cast(self._pixel_shape).width, self._chunks),)

    def elaborate(self, platform):
        m = Module()
        top, bottom, left, right = self._pads
        padded_h = self._height + top + bottom
        padded_w = self._width + left + right
        layout = data.Layout.cast(self._pixel_shape)
        chunks = self._chunks
        # The beat's chunk (a pixel's chunks in turn); x moves at a pixel's last chunk.
        if chunks > 1:
            chunk = Signal(range(chunks))
            chunk_end = Signal()                       # chunk == chunks - 1
        else:
            chunk, chunk_end = C(0), C(1)
        load = Signal()
        if self._pad_memory:
            m.submodules.pad_values = pad_mem = memory.Memory(
                shape=layout, depth=chunks, init=[list(w) for w in self._pad_words])
            pad_rd = pad_mem.read_port()
            # Read a cycle ahead: the chunk of the beat that the next cycle makes.
            m.d.comb += pad_rd.addr.eq(Mux(load, Mux(chunk_end, 0, chunk + 1), chunk))
            pad_pixel = pad_rd.data
            if self._runtime:
                pad_wr = pad_mem.write_port(granularity=1)     # (one channel)
                m.d.comb += [pad_wr.addr.eq(self.pad_addr), pad_wr.en.eq(self.pad_en)]
                for c in range(layout.length):
                    m.d.comb += pad_wr.data[c].eq(self.pad_data)
        else:
            pad_pixel = layout.const(list(self._pad_words[0]))
        if self._runtime and not self._pad_memory:
            pad_pixel = Signal(layout, init=list(self._pad_value))
            for c in range(layout.length):
                with m.If(self.pad_en[c]):
                    m.d.sync += pad_pixel[c].eq(self.pad_data)

        y = Signal(range(padded_h))
        x = Signal(range(padded_w))
        active = Signal()
        fill = Signal()       # the input ended early: the rest of the frame is padding
        late = Signal()       # the frame's final input pixel lacked `last`
        discard = Signal()    # dropping the rest of an overlong input frame

        # Where (y, x) stands, kept in registers beside the counters (set a cycle ahead from
        # their next values) so that the handshakes start from flip-flops.
        in_rows = Signal(init=top == 0)                 # top <= y < top + height
        in_cols = Signal(init=left == 0)                # left <= x < left + width
        last_row = Signal(init=top + self._height == 1)     # y == top + height - 1
        last_col = Signal(init=left + self._width == 1)     # x == left + width - 1
        bottom = Signal(init=padded_h == 1)             # y == padded_h - 1
        row_end = Signal(init=padded_w == 1)            # x == padded_w - 1
        before_rows = Signal(init=top == 1)             # y == top - 1
        before_cols = Signal(init=left == 1)            # x == left - 1
        interior = in_rows & in_cols
        final_input = last_row & last_col & chunk_end
        frame_end = bottom & row_end & chunk_end

        # A frame's start only sets `active`; padding and input begin in the next cycle, so
        # that what moves the counters depends on this block's registers and `i.valid` alone.
        m.d.comb += self.start.eq(~active & ~discard & self.start_ok & self.i.valid)
        with m.If(self.start):
            m.d.sync += active.eq(1)
        go = active
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        # (the pixel's register has no reset: it matters only beside `o.valid`)
        payload = Signal.like(self.o.payload, name="pixel", reset_less=True)
        m.d.comb += self.o.payload.eq(payload)

        with m.If(discard):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid & self.i.payload.last):
                m.d.sync += discard.eq(0)
        with m.Elif(go & (~self.o.valid | self.o.ready)):
            with m.If(interior & ~fill):
                m.d.comb += self.i.ready.eq(1)
                m.d.comb += load.eq(self.i.valid)
                m.d.sync += payload.eq(self.i.payload.data)
                with m.If(self.i.valid & self.i.payload.last & ~final_input):
                    m.d.sync += fill.eq(1)
                    m.d.comb += self.error.eq(1)
                with m.If(self.i.valid & ~self.i.payload.last & final_input):
                    m.d.sync += late.eq(1)
                    m.d.comb += self.error.eq(1)
            with m.Else():
                m.d.comb += load.eq(1)
                m.d.sync += payload.eq(pad_pixel)

        def step(counter, size, start, length, inside, last, end, before):
            """Advance `counter` (0..size-1) and its flags: inside [start, start + length),
            at start + length - 1, at size - 1, at start - 1."""
            m.d.sync += [
                counter.eq(Mux(end, 0, counter + 1)),
                end.eq(Mux(end, size == 1, counter == size - 2)),
                last.eq(Mux(end, start + length == 1, counter == start + length - 2)),
                before.eq(Mux(end, start == 1, counter == start - 2)),
            ]
            with m.If(end):
                m.d.sync += inside.eq(start == 0)
            with m.Elif(before):
                m.d.sync += inside.eq(1)
            with m.Elif(last):
                m.d.sync += inside.eq(0)

        with m.If(load):
            m.d.sync += self.o.valid.eq(1)
            if chunks > 1:
                m.d.sync += [chunk.eq(Mux(chunk_end, 0, chunk + 1)),
                             chunk_end.eq(~chunk_end & (chunk == chunks - 2))]
            with m.If(chunk_end):
                step(x, padded_w, left, self._width, in_cols, last_col, row_end, before_cols)
                with m.If(row_end):
                    step(y, padded_h, top, self._height, in_rows, last_row, bottom,
                         before_rows)
            with m.If(frame_end):
                m.d.sync += [active.eq(0), fill.eq(0), late.eq(0)]
                # The final input pixel, if it lacked `last`, may be this very pixel.
                m.d.sync += discard.eq(late | (self.i.ready & ~self.i.payload.last &
                                               final_input))
        return m


class EdgePadder(wiring.Component):
    """Surrounds a raster frame with padding taken from the frame itself: PyTorch's
    ``"replicate"`` (the nearest edge pixel) or ``"reflect"`` (the frame mirrored about its
    edge row or column, the edge not repeated), without a frame buffer.

    Padded row ``y`` and column ``x`` come from the input's row ``sy(y)`` and column
    ``sx(x)``: ``clamp(y - top, 0, height - 1)`` (replicate) or ``|y - top|`` folded back at
    ``height - 1`` (reflect), and likewise across. Input pixels are written, as they arrive,
    into a memory of ``rows`` input rows (row ``r`` in slot ``r mod rows``), and the padded
    frame is read out of it in raster order as soon as each pixel's source has arrived. Row
    ``r`` is last needed by padded row ``top + r`` (the rows a reflected bottom edge needs are
    the frame's last ``bottom``, never overwritten), so the writer of row ``r`` waits until the
    reader is past padded row ``top + r - rows``. ``rows`` is 2 (replicate; 1 for a one-row
    frame) or ``max(2, top + 1, bottom + 1)`` (reflect: at the start the reader needs rows
    ``0..top``, at the end rows ``height - 1 - bottom..height - 1``), at most ``height``.

    A frame begins in the first cycle in which ``start_ok`` is asserted and an input beat is
    valid; input is taken from the next cycle. Frame length is checked against ``last`` as
    :class:`Padder` does (``error`` pulses with the beat that shows it wrong): a frame that
    ends early is completed with zero pixels; the beats of one that runs long are dropped up
    to and including the next with ``last``. Downstream always sees a whole padded frame.

    Latency is 1 cycle (the memory's registered read). The first padded pixel needs input
    pixel ``n0 = sy(0) * width + sx(0)`` (``0`` for replicate, ``top * width + left`` for
    reflect), so a frame's start takes ``start_cycles = n0 + 2`` cycles: ``n0 + 1`` more than
    :class:`Padder`'s. From then on, with the input always valid, the padder emits a pixel in
    every cycle in which its output can move, as :class:`Padder` does: the source of each
    padded pixel has arrived by then, because it emits ``width + left + right`` pixels per row
    while it takes ``width``, and ``rows >= 2`` lets the next row arrive while one is read.

    Parameters
    ----------
    height, width : int
        The input frame.
    pads : (top, bottom, left, right)
        With ``"reflect"`` each must be smaller than the frame on its axis.
    mode : ``"replicate"`` or ``"reflect"``
    pixel_shape : shape-castable
        One pixel, all channels.

    Members
    -------
    i : In(stream.Signature(pixel_in_layout(pixel_shape)))
    o : Out(stream.Signature(pixel_shape))
    start_ok : In(1)
    start : Out(1)
    error : Out(1)
        As :class:`Padder`'s.
    """

    latency = 1

    def __init__(self, *, height, width, pads, mode, pixel_shape):
        if mode not in ("replicate", "reflect"):
            raise ValueError(f"mode must be 'replicate' or 'reflect', not {mode!r}")
        top, bottom, left, right = pads
        if mode == "reflect" and not (max(top, bottom) < height and max(left, right) < width):
            raise ValueError(f"reflect padding {tuple(pads)} is not smaller than the frame "
                             f"{height} x {width} on each side")
        self._height = height
        self._width = width
        self._pads = tuple(pads)
        self._mode = mode
        self._pixel_shape = pixel_shape
        super().__init__({
            "i": In(stream.Signature(pixel_in_layout(pixel_shape))),
            "o": Out(stream.Signature(pixel_shape)),
            "start_ok": In(1),
            "start": Out(1),
            "error": Out(1),
        })

    @property
    def rows(self):
        """Input rows the memory holds."""
        top, bottom, _, _ = self._pads
        need = 2 if self._mode == "replicate" else max(2, top + 1, bottom + 1)
        return min(self._height, need)

    def _first_source(self, axis):
        """``sy(0)`` or ``sx(0)``: where the padded frame's first row or column comes from."""
        return self._pads[2 * axis] if self._mode == "reflect" else 0

    @property
    def start_cycles(self):
        """Cycles from a frame's start to the cycle in which its first pixel is read: the
        start, then input pixels ``0..n0`` written, then one to see the last of them."""
        return self._first_source(0) * self._width + self._first_source(1) + 2

    @property
    def memories(self):
        return (MemoryShape("padder rows", Shape.cast(self._pixel_shape).width,
                            self.rows * self._width),)

    def elaborate(self, platform):
        m = Module()
        height, width = self._height, self._width
        top, bottom, left, right = self._pads
        padded_h, padded_w = height + top + bottom, width + left + right
        rows = self.rows
        reflect = self._mode == "reflect"
        sy0, sx0 = self._first_source(0), self._first_source(1)

        m.submodules.rows = mem = memory.Memory(shape=self._pixel_shape, depth=rows * width,
                                                init=[])
        wr = mem.write_port()
        rd = mem.read_port()

        active = Signal()
        discard = Signal()      # dropping the rest of an overlong input frame
        m.d.comb += self.start.eq(~active & ~discard & self.start_ok & self.i.valid)

        # -- the writer: input pixels into the memory, row r in slot r mod rows ----------------
        # Both sides decide from registers: `credit` counts the input rows the writer may still
        # begin (row r replaces row r - rows, last read in padded row top + r - rows, so row r
        # may begin once the reader is past padded row top + r - rows), `ahead` counts the input
        # pixels written beyond the one the reader needs next (it may read when that is > 0).
        w_row = Signal(range(height + 1))
        w_col = Signal(range(width))
        w_addr = Signal(range(rows * width))
        w_done = Signal()       # the frame's pixels are all written
        fill = Signal()         # the input ended early: the rest is written as zeros
        credit = Signal(range(rows + padded_h + 1))
        slot_free = Signal()    # credit > 0, registered
        writing = active & ~w_done & slot_free
        final = (w_row == height - 1) & (w_col == width - 1)
        take = Signal()
        with m.If(discard):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid & self.i.payload.last):
                m.d.sync += discard.eq(0)
        with m.Elif(writing & ~fill):
            m.d.comb += [self.i.ready.eq(1), take.eq(self.i.valid)]
            with m.If(self.i.valid & self.i.payload.last & ~final):
                m.d.comb += self.error.eq(1)
                m.d.sync += fill.eq(1)
            with m.If(self.i.valid & ~self.i.payload.last & final):
                m.d.comb += self.error.eq(1)
                m.d.sync += discard.eq(1)
        write = take | (writing & fill)
        m.d.comb += [
            wr.addr.eq(w_addr),
            wr.data.eq(Mux(fill, 0, self.i.payload.data)),
            wr.en.eq(write),
        ]
        with m.If(write):
            m.d.sync += [
                w_addr.eq(Mux(w_addr == rows * width - 1, 0, w_addr + 1)),
                w_col.eq(Mux(w_col == width - 1, 0, w_col + 1)),
            ]
            with m.If(w_col == width - 1):
                m.d.sync += w_row.eq(w_row + 1)
            with m.If(final):
                m.d.sync += [w_done.eq(1), fill.eq(0)]

        # -- the reader: the padded frame in raster order --------------------------------------
        ry = Signal(range(padded_h + 1))
        rx = Signal(range(padded_w))
        sx = Signal(range(width))
        base = Signal(range(rows * width))             # (sy mod rows) * width
        n0 = sy0 * width + sx0
        ahead = Signal(range(-height * width, height * width + 1))
        avail = Signal()        # ahead > 0, registered
        o_ready = ~self.o.valid | self.o.ready
        read = Signal()
        m.d.comb += [
            read.eq(active & o_ready & avail),
            rd.addr.eq(base + sx),
            rd.en.eq(read),
            self.o.payload.eq(rd.data),
        ]

        def steps(i, size, before):
            """(increment, decrement) of the source index from padded index i to i + 1."""
            i = Value.cast(i)
            inside = (i >= before) & (i < before + size - 1)
            return inside, (~inside if reflect else Const(0))

        # Where (ry, rx) stands, in registers set from the next position (as Padder's): the
        # source column's and row's steps, the row's last pixel, padded rows from `top` on, and
        # `moved`, by how many input pixels a read moves the source index the reader needs
        # next: along the row by one, from a row's last pixel (column sx_end) to the next row's
        # first (sx0) by a row, or not at all.
        col_inc, col_dec, row_inc, row_dec, row_end, past_top = (
            Signal(name=n) for n in ("col_inc", "col_dec", "row_inc", "row_dec", "row_end",
                                     "past_top"))
        sx_end = width - 1 - (right if reflect else 0)
        moved = Signal(range(-2 * width, 2 * width + 1))

        def place(rx_next, ry_next):
            c_inc, c_dec = steps(rx_next, width, left)
            r_inc, r_dec = steps(ry_next, height, top)
            end = Value.cast(rx_next) == padded_w - 1
            return [
                Cat(col_inc, col_dec, row_inc, row_dec).eq(Cat(c_inc, c_dec, r_inc, r_dec)),
                row_end.eq(end),
                past_top.eq(Value.cast(ry_next) >= top),
                moved.eq(Mux(end,
                             Mux(r_inc, width + sx0 - sx_end,
                                 Mux(r_dec, -width + sx0 - sx_end, sx0 - sx_end)),
                             Mux(c_inc, 1, Mux(c_dec, -1, 0)))),
            ]

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(read):
            m.d.sync += self.o.valid.eq(1)
            with m.If(col_inc):
                m.d.sync += sx.eq(sx + 1)
            with m.Elif(col_dec):
                m.d.sync += sx.eq(sx - 1)
            with m.If(row_end):
                m.d.sync += [rx.eq(0), sx.eq(sx0), ry.eq(ry + 1), place(0, ry + 1)]
                with m.If(row_inc):
                    m.d.sync += base.eq(Mux(base == (rows - 1) * width, 0, base + width))
                with m.Elif(row_dec):
                    m.d.sync += base.eq(Mux(base == 0, (rows - 1) * width, base - width))
                with m.If(ry == padded_h - 1):
                    m.d.sync += active.eq(0)
            with m.Else():
                m.d.sync += [rx.eq(rx + 1), place(rx + 1, ry)]
        # The lead after this cycle for each of write and read, all four from registers alone;
        # `write` and `read` only pick one, and whether it is above zero (registered too): no
        # adder between a handshake and a register.
        for written in (0, 1):
            for taken in (0, 1):
                lead = Signal.like(ahead, name=f"ahead_w{written}_r{taken}")
                m.d.comb += lead.eq(ahead + written - (moved if taken else 0))
                with m.If((write == written) & (read == taken)):
                    m.d.sync += [ahead.eq(lead), avail.eq(~lead[-1] & lead.any())]
        # the reader leaves padded row ry >= top: one more input row may begin; the writer
        # begins one
        credit_next = Signal.like(credit)
        m.d.comb += credit_next.eq(credit + (read & row_end & past_top)
                                   - (write & (w_col == width - 1)))
        m.d.sync += [credit.eq(credit_next),
                     slot_free.eq(credit_next.any() if rows < height else 1)]

        with m.If(self.start):
            m.d.sync += [
                active.eq(1),
                w_row.eq(0), w_col.eq(0), w_addr.eq(0), w_done.eq(0), fill.eq(0),
                credit.eq(rows), slot_free.eq(1),
                ry.eq(0), rx.eq(0), place(0, 0),
                sx.eq(sx0), base.eq(sy0 % rows * width),
                ahead.eq(-n0), avail.eq(0),
            ]
        return m
