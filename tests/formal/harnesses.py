# amaranth: UnusedElaboratable=no
"""Formal harnesses: each instantiates a stage on a small configuration, drives its inputs from
free values that obey the stream contract (``Assume``), and asserts its properties (``Assert``).

Run them with :func:`convaccel.formal.prove` (a bounded model check). Counters in a harness
are as wide as the depth it is checked to needs: ``bound`` is that depth.
"""

from amaranth import *
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import data

from convaccel.formal import assert_stream_source, drive_stream_source
from convaccel.hdl.array import fold_tag_layout
from convaccel.hdl.output import OutputStage
from convaccel.hdl.padder import Padder
from convaccel.hdl.stream import Queue
from convaccel.hdl.window import WindowGen

__all__ = ["OutputStageHarness", "PadderHarness", "QueueHarness", "WindowHarness"]


def _count(m, event, bound, name):
    """A counter of the cycles in which `event` is high (it does not pass `bound`)."""
    counter = Signal(range(bound + 1), name=name)
    with m.If(event & (counter != bound)):
        m.d.sync += counter.eq(counter + 1)
    return counter


class QueueHarness(Elaboratable):
    """:class:`~convaccel.hdl.stream.Queue` (or a stage with its ports) under any valid/ready
    pattern: its output obeys the stream contract, and it loses, duplicates and reorders no
    beat.

    No beat is lost, duplicated or reordered: for a beat index ``n`` and a value ``v`` chosen
    freely once (``AnyConst``), the ``n``-th input beat is assumed to carry ``v`` and the
    ``n``-th output beat is asserted to carry it. As ``n`` and ``v`` range over every value, the
    output sequence is the input sequence. With ``occupancy``, also: beats in minus beats out
    (the occupancy) stays within ``depth``, ``o.valid`` is high exactly when the queue holds a
    beat (a beat taken in cycle ``t`` is offered from ``t + 1``) and ``i.ready`` exactly when it
    has room.

    Parameters
    ----------
    dut : Component with ``i`` and ``o`` streams
        By default ``Queue(shape, depth)``.
    shape : shape-castable
        The payload (two bits by default).
    depth : int
        The beats `dut` holds.
    bound : int
        The depth of the check (sizes the counters).
    occupancy : bool
        Check the occupancy (above) besides the order of the beats.
    """

    def __init__(self, dut=None, *, shape=2, depth=3, bound=20, occupancy=True):
        self.dut = Queue(shape, depth) if dut is None else dut
        self._shape = shape
        self._depth = depth
        self._bound = bound
        self._occupancy = occupancy

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        drive_stream_source(m, dut.i)
        m.d.comb += dut.o.ready.eq(AnySeq(1))
        assert_stream_source(m, dut.o, name="o")

        taken = dut.i.valid & dut.i.ready
        given = dut.o.valid & dut.o.ready
        beats_in = _count(m, taken, self._bound, "beats_in")
        beats_out = _count(m, given, self._bound, "beats_out")

        width = Shape.cast(self._shape).width
        index = AnyConst(range(self._bound))
        value = AnyConst(width)
        with m.If(taken & (beats_in == index)):
            m.d.comb += Assume(Value.cast(dut.i.payload) == value)
        with m.If(given & (beats_out == index)):
            m.d.comb += Assert(Value.cast(dut.o.payload) == value,
                               "the n-th beat out is not the n-th beat in")

        held = Signal(range(self._bound + 1))
        m.d.comb += held.eq(beats_in - beats_out)
        if self._occupancy:
            m.d.comb += [
                Assert(beats_out <= beats_in, "more beats out than in"),
                Assert(held <= self._depth, "more beats held than the depth"),
                Assert(dut.o.valid == (held != 0), "o.valid is not 'a beat is held'"),
                Assert(dut.i.ready == (held < self._depth), "i.ready is not 'there is room'"),
            ]
        # Non-vacuity: the queue fills, stalls with a beat offered, and drains.
        m.d.comb += [
            Cover(held == self._depth, "full"),
            Cover(dut.o.valid & ~dut.o.ready & (beats_out == 1), "a beat stalled"),
            Cover((beats_out == self._depth + 1) & (held == 0), "more beats than the depth"),
        ]
        return m


class PadderHarness(Elaboratable):
    """:class:`~convaccel.hdl.padder.Padder` with any input, ``start_ok`` and ``o.ready``.

    Asserted, for any input:

    * ``o`` obeys the stream contract;
    * frames: no pixel is emitted before the first ``start``, a frame never has more than
      ``padded_h x padded_w`` pixels, and when a frame starts its predecessor has exactly that
      many (beats out plus the one pending on ``o``);
    * the output positions (row, column in the padded frame, counted from the beats out) at the
      border carry ``pad_value`` in every element;
    * ``error`` pulses exactly with the input beat that shows a frame wrong: a ``last`` before
      the frame's ``height x width``-th beat, or that beat without ``last``.

    With ``wellformed``, every input frame is assumed to be ``height x width`` beats with
    ``last`` on its final one, and the interior pixels are asserted to be the input beats in
    order (the ``n``-th interior output is the ``n``-th input beat, ``n`` and its value
    free, as in :class:`QueueHarness`).

    ``make`` builds the stage from the keyword arguments of :class:`~convaccel.hdl.padder.
    Padder` (a mutant, in the tests that show the proofs can fail).
    """

    def __init__(self, *, height=2, width=2, pads=(1, 0, 0, 1), pad_value=2, channels=1,
                 bits=2, wellformed=True, bound=20, make=Padder):
        self._height = height
        self._width = width
        self._pads = tuple(pads)
        self._pad_value = pad_value
        self._channels = channels
        self._bits = bits
        self._wellformed = wellformed
        self._bound = bound
        self.pixel_shape = data.ArrayLayout(unsigned(bits), channels)
        self.dut = make(height=height, width=width, pads=pads, pad_value=pad_value,
                        pixel_shape=self.pixel_shape)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        top, bottom, left, right = self._pads
        h, w = self._height, self._width
        padded_h, padded_w = h + top + bottom, w + left + right
        size = padded_h * padded_w
        frame = h * w

        drive_stream_source(m, dut.i)
        m.d.comb += [
            dut.start_ok.eq(AnySeq(1)),
            dut.o.ready.eq(AnySeq(1)),
        ]
        assert_stream_source(m, dut.o, name="o")

        taken = dut.i.valid & dut.i.ready
        given = dut.o.valid & dut.o.ready

        # Frames: `owed` counts the pixels of the frames started (size per start).
        bound = self._bound + size
        owed = Signal(range(bound + 1))
        with m.If(dut.start & (owed + size <= bound)):
            m.d.sync += owed.eq(owed + size)
        beats_out = _count(m, given, bound, "beats_out")
        m.d.comb += Assert(beats_out + dut.o.valid <= owed, "more pixels than the frames started")
        with m.If(dut.start):
            m.d.comb += Assert(beats_out + dut.o.valid == owed,
                               "a frame started before its predecessor was whole")

        # Where the next beat out stands in the padded frame.
        oy = Signal(range(padded_h))
        ox = Signal(range(padded_w))
        with m.If(given):
            m.d.sync += ox.eq(Mux(ox == padded_w - 1, 0, ox + 1))
            with m.If(ox == padded_w - 1):
                m.d.sync += oy.eq(Mux(oy == padded_h - 1, 0, oy + 1))
        interior = (oy >= top) & (oy < top + h) & (ox >= left) & (ox < left + w)
        pad_pixel = self.pixel_shape.const([self._pad_value] * self._channels)
        with m.If(given & ~interior):
            m.d.comb += Assert(Value.cast(dut.o.payload) == Value.cast(pad_pixel),
                               "a border pixel is not the pad value")

        # Input frames as `last` cuts them: `k` is the beat's index in its frame.
        k = Signal(range(frame + 1))
        with m.If(taken):
            with m.If(dut.i.payload.last):
                m.d.sync += k.eq(0)
            with m.Elif(k != frame):
                m.d.sync += k.eq(k + 1)
        wrong = Mux(dut.i.payload.last, k < frame - 1, k == frame - 1)
        m.d.comb += Assert(dut.error == (taken & wrong),
                           "error is not 'this input beat shows the frame wrong'")

        if self._wellformed:
            with m.If(dut.i.valid):
                m.d.comb += Assume(dut.i.payload.last == (k == frame - 1))
            beats_in = _count(m, taken, self._bound, "beats_in")
            inner_out = _count(m, given & interior, self._bound, "inner_out")
            index = AnyConst(range(self._bound))
            value = AnyConst(Shape.cast(self.pixel_shape).width)
            with m.If(taken & (beats_in == index)):
                m.d.comb += Assume(Value.cast(dut.i.payload.data) == value)
            with m.If(given & interior & (inner_out == index)):
                m.d.comb += Assert(Value.cast(dut.o.payload) == value,
                                   "the n-th interior pixel is not the n-th input beat")

        # Non-vacuity: a second frame starts; a stall with a pixel offered.
        starts = _count(m, dut.start, 2, "starts")
        m.d.comb += [
            Cover(dut.start & (starts == 1), "a second frame starts"),
            Cover(dut.o.valid & ~dut.o.ready & (beats_out == 1), "a pixel stalled"),
        ]
        if not self._wellformed:
            m.d.comb += [
                Cover(dut.error & dut.i.payload.last, "a short frame"),
                Cover(dut.error & ~dut.i.payload.last, "a long frame"),
            ]
        return m


class WindowHarness(Elaboratable):
    """:class:`~convaccel.hdl.window.WindowGen` on a padded raster stream with any valid/ready
    pattern.

    Asserted: ``o`` obeys the stream contract; the windows of a frame come in raster order
    over the output grid (``(padded - k_eff) // stride + 1`` positions each way), ``last`` on
    exactly the frame's final window; and each tap of the window at grid position ``(wy, wx)``
    is the input pixel at ``(wy * stride + kh * dilation, wx * stride + kw * dilation)`` of the
    same frame.

    The taps are checked as beats are through :class:`QueueHarness`: a frame ``f`` (of the
    first two), a position ``(py, px)`` and a value ``v`` are chosen freely once
    (``AnyConst``); that input pixel is assumed to carry ``v``, and every tap that covers it is
    asserted to show ``v``. As ``f``, ``(py, px)`` and ``v`` range over every value, each tap of
    each window of those frames is the pixel under it.

    The geometry must give an integer output size, as :class:`~convaccel.spec.ConvSpec`
    requires: otherwise the last window does not end on the frame's last pixel, and WindowGen
    marks no window ``last``.

    ``make`` builds the stage from the keyword arguments of :class:`~convaccel.hdl.window.
    WindowGen`.
    """

    def __init__(self, *, padded=(3, 3), kernel=(2, 2), dilation=(1, 1), stride=(1, 1),
                 channels=1, bits=2, make=WindowGen):
        self._padded = tuple(padded)
        self._kernel = tuple(kernel)
        self._dilation = tuple(dilation)
        self._stride = tuple(stride)
        for size, k, d, s in zip(padded, kernel, dilation, stride):
            # WindowGen marks `last` on the window whose bottom-right pixel is the frame's last,
            # which needs an integer output size (ConvSpec refuses others).
            if (size - (k - 1) * d - 1) % s:
                raise ValueError(f"Padded size {size} leaves a remainder for kernel {k}, "
                                 f"dilation {d}, stride {s}")
        self.pixel_shape = data.ArrayLayout(unsigned(bits), channels)
        self.dut = make(padded=padded, kernel=kernel, dilation=dilation, stride=stride,
                        pixel_shape=self.pixel_shape)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        (padded_h, padded_w), (k_h, k_w) = self._padded, self._kernel
        (d_h, d_w), (s_h, s_w) = self._dilation, self._stride
        keff_h, keff_w = (k_h - 1) * d_h + 1, (k_w - 1) * d_w + 1
        out_h, out_w = (padded_h - keff_h) // s_h + 1, (padded_w - keff_w) // s_w + 1

        m.d.comb += dut.o.ready.eq(AnySeq(1))
        assert_stream_source(m, dut.o, name="o")
        taken = dut.i.valid & dut.i.ready
        given = dut.o.valid & dut.o.ready

        def raster(event, h, w, name):
            """(frame (saturating at 2), row, column) of the next beat of a raster stream."""
            f = Signal(range(3), name=f"{name}_frame")
            y = Signal(range(h), name=f"{name}_y")
            x = Signal(range(w), name=f"{name}_x")
            with m.If(event):
                m.d.sync += x.eq(Mux(x == w - 1, 0, x + 1))
                with m.If(x == w - 1):
                    m.d.sync += y.eq(Mux(y == h - 1, 0, y + 1))
                    with m.If((y == h - 1) & (f != 2)):
                        m.d.sync += f.eq(f + 1)
            return f, y, x

        in_f, in_y, in_x = raster(taken, padded_h, padded_w, "in")
        out_f, wy, wx = raster(given, out_h, out_w, "out")

        frame = AnyConst(range(2))
        py = AnyConst(range(padded_h))
        px = AnyConst(range(padded_w))
        value = AnyConst(Shape.cast(self.pixel_shape).width)
        drive_stream_source(m, dut.i)
        with m.If(taken & (in_f == frame) & (in_y == py) & (in_x == px)):
            m.d.comb += Assume(Value.cast(dut.i.payload) == value)

        with m.If(given):
            m.d.comb += Assert(dut.o.payload.last == ((wy == out_h - 1) & (wx == out_w - 1)),
                               "last is not on exactly the frame's final window")
            for kh in range(k_h):
                for kw in range(k_w):
                    marked = ((out_f == frame) & (wy * s_h + kh * d_h == py) &
                              (wx * s_w + kw * d_w == px))
                    with m.If(marked):
                        m.d.comb += Assert(
                            Value.cast(dut.o.payload.data[kh * k_w + kw]) == value,
                            f"tap ({kh}, {kw}) is not the pixel under it")

        # Non-vacuity: the second frame's final window leaves; a stall with a window offered.
        m.d.comb += [
            Cover(given & dut.o.payload.last & (out_f == 1), "second frame's last window"),
            Cover(dut.o.valid & ~dut.o.ready, "a window stalled"),
        ]
        return m


class OutputStageHarness(Elaboratable):
    """:class:`~convaccel.hdl.output.OutputStage`'s output stream under any input.

    The partial sums, their tags, the bias writes, ``reserve`` and ``o.ready`` are all free
    (the array's stream is always ready: no assumption on it); asserted: ``o`` obeys the stream
    contract.
    """

    def __init__(self, *, cols=1, channels=2, row_folds=1, col_folds=2, bits=3):
        self.dut = OutputStage(cols=cols, channels=channels, row_folds=row_folds,
                               col_folds=col_folds, in_flight=1, psum_shape=signed(bits),
                               acc_shape=signed(bits + 1), bias_shape=signed(bits),
                               tag_shape=fold_tag_layout())

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        for port in (dut.i.valid, dut.i.payload, dut.b_addr, dut.b_data, dut.b_en, dut.reserve,
                     dut.o.ready):
            value = Value.cast(port)
            m.d.comb += value.eq(AnySeq(value.shape().width))
        assert_stream_source(m, dut.o, name="o")
        m.d.comb += [
            Cover(dut.o.valid & ~dut.o.ready, "a pixel stalled"),
            Cover(dut.o.valid & dut.o.ready & dut.o.payload.last, "a frame's last pixel leaves"),
        ]
        return m
