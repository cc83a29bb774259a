from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .stage import MemoryShape

__all__ = ["window_layout", "WindowGen"]


def window_layout(pixel_shape, kernel):
    """A receptive field: ``kernel_h * kernel_w`` pixels in raster order (tap ``kh * kernel_w +
    kw``), ``last`` on the frame's final window. As bits it is also the flat vector of
    ``kernel_h * kernel_w * channels`` elements with the channel innermost."""
    return data.StructLayout({
        "data": data.ArrayLayout(pixel_shape, kernel[0] * kernel[1]),
        "last": 1,
    })


class WindowGen(wiring.Component):
    """Line buffer and window generator: turns a padded raster stream into receptive fields.

    Keeps the last ``k_eff_h - 1`` rows of the padded frame in one block RAM (one word per
    column holding that column's rows, so a pixel costs one read and one write), shifts a
    ``kernel_h x k_eff_w`` register window along the row, and emits the window only at output
    positions: every ``stride``-th row and column once the window is full. ``k_eff = (kernel -
    1) * dilation + 1``; with dilation only every ``dilation``-th row and column of the footprint
    is kept in the window.

    Latency: the window whose bottom-right pixel is accepted in cycle ``t`` is valid from cycle
    ``t + latency`` (line-buffer read, then shift). Throughput: one pixel per cycle, less the cycles
    in which a valid window waits for ``o.ready``.

    Parameters
    ----------
    padded : (height, width)
        The padded frame.
    kernel, dilation, stride : (h, w)
        The strided positions must end at the frame's last pixel, ``(padded - k_eff) % stride
        == 0`` on both axes (an integer output size, as :class:`~convaccel.ConvLayer`
        ensures): the frame's last window carries ``last`` because its bottom-right pixel is
        the frame's last. Anything else is refused.
    pixel_shape : shape-castable
        One pixel, all channels.

    Members
    -------
    i : In(stream.Signature(pixel_shape))
    o : Out(stream.Signature(window_layout(pixel_shape, kernel)))
    """

    def __init__(self, *, padded, kernel, dilation, stride, pixel_shape):
        self._padded = tuple(padded)
        self._kernel = tuple(kernel)
        self._dilation = tuple(dilation)
        self._stride = tuple(stride)
        self._pixel_shape = pixel_shape
        for axis, name in enumerate(("height", "width")):
            size, k_eff, s = self._padded[axis], self._kernel_eff[axis], self._stride[axis]
            if size < k_eff or (size - k_eff) % s:
                raise ValueError(
                    f"the strided windows on the {name} axis do not end at the padded frame's "
                    f"edge: (padded {size} - kernel {k_eff}) is not a multiple of stride {s} "
                    f"(or negative)")
        super().__init__({
            "i": In(stream.Signature(pixel_shape)),
            "o": Out(stream.Signature(window_layout(pixel_shape, kernel))),
        })

    latency = 2

    @property
    def _kernel_eff(self):
        return tuple((k - 1) * d + 1 for k, d in zip(self._kernel, self._dilation))

    @property
    def memories(self):
        k_eff_h = self._kernel_eff[0]
        if k_eff_h == 1:
            return ()
        width = (k_eff_h - 1) * Shape.cast(self._pixel_shape).width
        return (MemoryShape("line buffer", width, self._padded[1]),)

    # -- where the windows are, in pixels of the padded stream (the cycle model's terms) -------

    @property
    def first_window(self):
        """Pixels before the one that completes the first window."""
        k_eff_h, k_eff_w = self._kernel_eff
        return (k_eff_h - 1) * self._padded[1] + k_eff_w - 1

    @property
    def column_step(self):
        """Pixels from one window to the next along a row."""
        return self._stride[1]

    @property
    def row_step(self):
        """Pixels from the last window of a row to the first of the next: the rows the stride
        skips, then the next row's first ``k_eff_w``."""
        return (self._stride[0] - 1) * self._padded[1] + self._kernel_eff[1]

    def elaborate(self, platform):
        m = Module()
        padded_h, padded_w = self._padded
        k_h, k_w = self._kernel
        d_h, d_w = self._dilation
        s_h, s_w = self._stride
        keff_h, keff_w = self._kernel_eff

        # Position of the pixel at `i`, and where it stands in the stride pattern.
        x = Signal(range(padded_w))
        y = Signal(range(padded_h))
        phase_x = Signal(range(s_w))
        phase_y = Signal(range(s_h))

        # Stage 1: the pixel waits one cycle for its column to be read from the line buffer.
        s1_valid = Signal()
        s1_pixel = Signal(self._pixel_shape)
        s1_x = Signal.like(x)
        s1_emit = Signal()
        s1_last = Signal()

        # Decodes of the position, kept in registers beside the counters (set a cycle ahead
        # from their next values) so that the counters' enables start from flip-flops.
        x_end = Signal(init=padded_w == 1)            # x == padded_w - 1
        y_end = Signal(init=padded_h == 1)            # y == padded_h - 1
        # The window is full (spans the kernel) from this row / column on.
        full_x = Signal(init=keff_w == 1)             # x >= keff_w - 1
        full_y = Signal(init=keff_h == 1)             # y >= keff_h - 1

        shift = s1_valid & (~self.o.valid | self.o.ready)
        accept = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(~s1_valid | shift)

        with m.If(accept):
            m.d.sync += [
                s1_valid.eq(1),
                s1_pixel.eq(self.i.payload),
                s1_x.eq(x),
                s1_emit.eq(full_y & (phase_y == 0) & full_x & (phase_x == 0)),
                s1_last.eq(y_end & x_end),
            ]
            m.d.sync += [x.eq(x + 1), x_end.eq(x == padded_w - 2),
                         full_x.eq(full_x | (x == keff_w - 2))]
            with m.If(full_x):
                m.d.sync += phase_x.eq(Mux(phase_x == s_w - 1, 0, phase_x + 1))
            with m.If(x_end):
                m.d.sync += [x.eq(0), x_end.eq(padded_w == 1), full_x.eq(keff_w == 1),
                             phase_x.eq(0),
                             y.eq(y + 1), y_end.eq(y == padded_h - 2),
                             full_y.eq(full_y | (y == keff_h - 2))]
                with m.If(full_y):
                    m.d.sync += phase_y.eq(Mux(phase_y == s_h - 1, 0, phase_y + 1))
                with m.If(y_end):
                    m.d.sync += [y.eq(0), y_end.eq(padded_h == 1), full_y.eq(keff_h == 1),
                                 phase_y.eq(0)]
        with m.Elif(shift):
            m.d.sync += s1_valid.eq(0)

        # The column under the pixel: rows[t] is the pixel t rows above it.
        rows = [s1_pixel]
        if keff_h > 1:
            m.submodules.line_buffer = line_buffer = memory.Memory(
                shape=data.ArrayLayout(self._pixel_shape, keff_h - 1), depth=padded_w, init=[])
            wr = line_buffer.write_port()
            # A one-column frame reads the column it writes in the same cycle.
            rd = line_buffer.read_port(transparent_for=(wr,) if padded_w == 1 else ())
            m.d.comb += [
                rd.addr.eq(x),
                rd.en.eq(accept),
                wr.addr.eq(s1_x),
                wr.en.eq(shift),
                wr.data[0].eq(s1_pixel),
            ]
            for t in range(1, keff_h - 1):
                m.d.comb += wr.data[t].eq(rd.data[t - 1])
            rows += [rd.data[t] for t in range(keff_h - 1)]

        # The window: k_eff_w columns of k_h pixels, the newest column last.
        column_layout = data.ArrayLayout(self._pixel_shape, k_h)
        columns = [Signal(column_layout, name=f"column{j}") for j in range(keff_w)]
        with m.If(shift):
            for j in range(keff_w - 1):
                m.d.sync += columns[j].eq(columns[j + 1])
            for kh in range(k_h):
                m.d.sync += columns[-1][kh].eq(rows[(k_h - 1 - kh) * d_h])
            m.d.sync += [
                self.o.valid.eq(s1_emit),
                self.o.payload.last.eq(s1_last),
            ]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        for kh in range(k_h):
            for kw in range(k_w):
                m.d.comb += self.o.payload.data[kh * k_w + kw].eq(columns[kw * d_w][kh])
        return m
