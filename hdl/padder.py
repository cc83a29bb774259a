from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["pixel_in_layout", "Padder"]


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

    Latency is 1 cycle (a registered output); a frame's start takes ``start_cycles`` more, so
    its first pixel leaves 2 cycles after its start. Throughput is one pixel per cycle.

    Parameters
    ----------
    height, width : int
        The input frame.
    pads : (top, bottom, left, right)
    pad_value : int
    pixel_shape : shape-castable
        One pixel (e.g. ``data.ArrayLayout(signed(8), channels)``); every element is padded with
        ``pad_value``.

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
    """

    latency = 1
    #: The cycle in which a frame starts, before its first pixel moves.
    start_cycles = 1
    memories = ()

    def __init__(self, *, height, width, pads, pad_value, pixel_shape):
        self._height = height
        self._width = width
        self._pads = tuple(pads)
        self._pad_value = pad_value
        self._pixel_shape = pixel_shape
        super().__init__({
            "i": In(stream.Signature(pixel_in_layout(pixel_shape))),
            "o": Out(stream.Signature(pixel_shape)),
            "start_ok": In(1),
            "start": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        top, bottom, left, right = self._pads
        padded_h = self._height + top + bottom
        padded_w = self._width + left + right
        layout = data.Layout.cast(self._pixel_shape)
        pad_pixel = layout.const([self._pad_value] * layout.length)

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
        interior = in_rows & in_cols
        final_input = last_row & last_col
        frame_end = bottom & row_end

        # A frame's start only sets `active`; padding and input begin in the next cycle, so
        # that what moves the counters depends on this block's registers and `i.valid` alone.
        m.d.comb += self.start.eq(~active & ~discard & self.start_ok & self.i.valid)
        with m.If(self.start):
            m.d.sync += active.eq(1)
        go = active
        load = Signal()
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.If(discard):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid & self.i.payload.last):
                m.d.sync += discard.eq(0)
        with m.Elif(go & (~self.o.valid | self.o.ready)):
            with m.If(interior & ~fill):
                m.d.comb += self.i.ready.eq(1)
                m.d.comb += load.eq(self.i.valid)
                m.d.sync += self.o.payload.eq(self.i.payload.data)
                with m.If(self.i.valid & self.i.payload.last & ~final_input):
                    m.d.sync += fill.eq(1)
                    m.d.comb += self.error.eq(1)
                with m.If(self.i.valid & ~self.i.payload.last & final_input):
                    m.d.sync += late.eq(1)
                    m.d.comb += self.error.eq(1)
            with m.Else():
                m.d.comb += load.eq(1)
                m.d.sync += self.o.payload.eq(pad_pixel)

        def step(counter, size, start, length, inside, last, end):
            """Advance `counter` (0..size-1) and its flags: inside [start, start + length),
            at start + length - 1, at size - 1."""
            m.d.sync += [
                counter.eq(Mux(end, 0, counter + 1)),
                end.eq(Mux(end, size == 1, counter == size - 2)),
                last.eq(Mux(end, start + length == 1, counter == start + length - 2)),
            ]
            with m.If(end):
                m.d.sync += inside.eq(start == 0)
            with m.Elif(counter == start - 1):
                m.d.sync += inside.eq(1)
            with m.Elif(counter == start + length - 1):
                m.d.sync += inside.eq(0)

        with m.If(load):
            m.d.sync += self.o.valid.eq(1)
            step(x, padded_w, left, self._width, in_cols, last_col, row_end)
            with m.If(row_end):
                step(y, padded_h, top, self._height, in_rows, last_row, bottom)
            with m.If(frame_end):
                m.d.sync += [active.eq(0), fill.eq(0), late.eq(0)]
                # The final input pixel, if it lacked `last`, may be this very pixel.
                m.d.sync += discard.eq(late | (self.i.ready & ~self.i.payload.last &
                                               final_input))
        return m
