# amaranth: UnusedElaboratable=no
"""Formal harnesses: each instantiates a stage on a small configuration, drives its inputs from
free values that obey the stream contract (``Assume``), and asserts its properties (``Assert``).

Run them with :func:`convaccel.formal.prove` (a bounded model check). Counters in a harness
are as wide as the depth it is checked to needs: ``bound`` is that depth.
"""

from amaranth import *
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import data, wiring

from convaccel.formal import Past, assert_stream_source, drive_stream_source
from convaccel.hdl.array import Feeder, SystolicArray, fold_tag_layout
from convaccel.hdl.output import OutputStage
from convaccel.hdl.padder import Padder
from convaccel.hdl.requant import Requantizer
from convaccel.hdl.stream import Queue
from convaccel.hdl.window import WindowGen, window_layout
from convaccel.link.framing import PayloadCounter, RequestReceiver, ResponseSender
from convaccel.link.protocol import REQUEST_START, RESPONSE_START, STATUS_BYTES, Command
from convaccel.quant import MULTIPLIER_BITS, SATURATE_BITS, SHIFT_RANGE

__all__ = ["Crc16ResidueHarness", "FeederArrayHarness", "OutputStageHarness", "PadderHarness",
           "QueueHarness", "ReceiverHarness", "RequantizerHarness", "SenderHarness",
           "WindowHarness", "requantize_reference"]


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
    beat that has waited out its latency (a beat taken in cycle ``t`` is offered from ``t +
    dut.latency``: a queue in registers 1, in a memory 2) and ``i.ready`` exactly when it has
    room.

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
            # The beats that may be offered: all held, less the one taken in the cycle before
            # when a beat waits a cycle more (a memory's read).
            latency = getattr(dut, "latency", 1)
            assert latency in (1, 2)
            fresh = Signal()
            if latency == 2:
                m.d.sync += fresh.eq(taken)
            m.d.comb += [
                Assert(beats_out <= beats_in, "more beats out than in"),
                Assert(held <= self._depth, "more beats held than the depth"),
                Assert(dut.o.valid == (held - fresh != 0),
                       "o.valid is not 'a beat is held past the latency'"),
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


class FeederArrayHarness(Elaboratable):
    """:class:`~convaccel.hdl.array.Feeder` driving a :class:`~convaccel.hdl.array.
    SystolicArray`, with any window stream and any ``credit``.

    Asserted, for the feeder:

    * a window is taken only with ``credit``, and then only in a cycle in which no vector of
      the previous window is left to issue but the one going out (``i.ready`` is exactly
      ``credit`` and "idle or issuing the last vector": windows follow back to back);
    * each window taken in cycle ``h`` is issued as exactly ``interval = row_folds *
      col_folds`` vectors, one a cycle in cycles ``h + 1 .. h + interval`` (``o.valid`` is
      high exactly then), the ``j``-th (``j = g * row_folds + f``) with weight address ``k =
      j``, the window's lanes ``f * rows .. f * rows + rows - 1`` (zeros past the reduction)
      and the tag ``first = (f == 0)``, ``last_fold = (f == row_folds - 1)``, ``last_group =
      (g == col_folds - 1)``, ``last_pixel`` = the window's ``last``.

    For the array: ``o.valid`` in cycle ``t`` is the feeder's ``o.valid`` in cycle ``t -
    latency`` (low in the first ``latency`` cycles), and every valid beat carries the tag of
    that vector. With ``weights``, each column's partial sum is also the dot product of that
    vector with the column's weights at its address ``k``: the weights are free values
    (``AnyConst``) that the harness writes through the ``w_*`` ports, one PE and address a
    cycle, before any window is taken (``credit`` is held low meanwhile).

    ``make_feeder`` and ``make_array`` build the stages from their keyword arguments (a
    mutant, in the tests that show the proofs can fail).
    """

    def __init__(self, *, rows=2, cols=1, row_folds=2, col_folds=1, reduction=3, bits=2,
                 weights=False, make_feeder=Feeder, make_array=SystolicArray):
        if not rows * (row_folds - 1) < reduction <= rows * row_folds:
            raise ValueError(f"A reduction of {reduction} does not take {row_folds} folds of "
                             f"{rows} rows")
        self._rows = rows
        self._cols = cols
        self._row_folds = row_folds
        self._col_folds = col_folds
        self._reduction = reduction
        self._bits = bits
        self._weights = weights
        elem_shape = signed(bits)
        window_shape = window_layout(data.ArrayLayout(elem_shape, 1), (1, reduction))
        self.feeder = make_feeder(reduction=reduction, rows=rows, row_folds=row_folds,
                                  col_folds=col_folds, elem_shape=elem_shape,
                                  window_shape=window_shape)
        self.array = make_array(rows=rows, cols=cols, depth=row_folds * col_folds,
                                elem_shape=elem_shape, weight_shape=signed(bits),
                                psum_shape=signed(2 * bits + rows), tag_shape=fold_tag_layout())

    def elaborate(self, platform):
        m = Module()
        m.submodules.feeder = feeder = self.feeder
        m.submodules.array = array = self.array
        wiring.connect(m, feeder.o, array.i)
        rows, cols, bits = self._rows, self._cols, self._bits
        row_folds, col_folds = self._row_folds, self._col_folds
        interval = row_folds * col_folds
        assert feeder.interval == interval

        # The weights, written before the data: one PE and address a cycle.
        credit = Signal()
        weights = {}
        if self._weights:
            writes = [(k, r, c) for k in range(interval) for r in range(rows)
                      for c in range(cols)]
            loading = Signal(range(len(writes) + 1))
            with m.If(loading != len(writes)):
                m.d.sync += loading.eq(loading + 1)
            with m.Switch(loading):
                for n, (k, r, c) in enumerate(writes):
                    weights[k, r, c] = w = AnyConst(signed(bits))
                    with m.Case(n):
                        m.d.comb += [array.w_addr.eq(k), array.w_data.eq(w),
                                     array.w_en.eq(1 << (r * cols + c))]
            m.d.comb += credit.eq(AnySeq(1) & (loading == len(writes)))
        else:
            m.d.comb += credit.eq(AnySeq(1))
        m.d.comb += feeder.credit.eq(credit)

        drive_stream_source(m, feeder.i)
        taken = feeder.i.valid & feeder.i.ready

        # The feeder: the window being issued, and where its issue stands.
        lanes = Signal(row_folds * rows * bits)
        pending = Signal(range(interval + 1))      # vectors of the window still to issue
        fold = Signal(range(row_folds))
        group = Signal(range(col_folds))
        last_pixel = Signal()
        with m.If(taken):
            m.d.sync += [lanes.eq(feeder.i.payload.data.as_value()), pending.eq(interval),
                         fold.eq(0), group.eq(0), last_pixel.eq(feeder.i.payload.last)]
        with m.Elif(pending != 0):
            m.d.sync += [pending.eq(pending - 1),
                         fold.eq(Mux(fold == row_folds - 1, 0, fold + 1))]
            with m.If(fold == row_folds - 1):
                m.d.sync += group.eq(group + 1)
        m.d.comb += [
            Assert(~feeder.i.ready | credit, "a window may be taken without credit"),
            Assert(feeder.i.ready == (credit & (pending <= 1)),
                   "i.ready is not 'credit, and at most the last vector left to issue'"),
            Assert(feeder.o.valid == (pending != 0),
                   "o.valid is not 'a vector of the window is left to issue'"),
        ]
        vector = feeder.o.payload
        with m.If(pending != 0):
            m.d.comb += [
                Assert(vector.x.as_value() == lanes.word_select(fold, rows * bits),
                       "a vector is not the window's lanes of its fold"),
                Assert(vector.k == group * row_folds + fold,
                       "a vector's weight address is not its index in the window"),
                Assert(vector.tag.first == (fold == 0), "tag first is not 'fold 0'"),
                Assert(vector.tag.last_fold == (fold == row_folds - 1),
                       "tag last_fold is not 'the last fold'"),
                Assert(vector.tag.last_group == (group == col_folds - 1),
                       "tag last_group is not 'the last group'"),
                Assert(vector.tag.last_pixel == last_pixel,
                       "tag last_pixel is not the window's last"),
            ]

        # The array: valid and tag delayed by exactly `latency`; with the weights, the dot
        # products.
        expected = Signal(data.ArrayLayout(array.o.payload.psums.shape().elem_shape, cols))
        if self._weights:
            for c in range(cols):
                terms = []
                for r in range(rows):
                    w = Array(weights[k, r, c] for k in range(interval))[vector.k]
                    terms.append(vector.x[r] * w)
                m.d.comb += expected[c].eq(sum(terms))
        delayed = [(feeder.o.valid, vector.tag.as_value(), expected.as_value())]
        for n in range(array.latency):
            regs = tuple(Signal.like(v, name=f"{name}_d{n + 1}")
                         for v, name in zip(delayed[-1], ("valid", "tag", "psums")))
            m.d.sync += [reg.eq(v) for reg, v in zip(regs, delayed[-1])]
            delayed.append(regs)
        valid, tag, psums = delayed[-1]
        m.d.comb += Assert(array.o.valid == valid, "array o.valid is not i.valid delayed by "
                                                   "latency")
        with m.If(valid):
            m.d.comb += Assert(array.o.payload.tag.as_value() == tag,
                               "array tag is not its vector's")
            if self._weights:
                m.d.comb += Assert(array.o.payload.psums.as_value() == psums,
                                   "array partial sums are not the dot products")

        # Non-vacuity: a second window's last vector leaves the array; the feeder's last vector
        # and the next window taken in one cycle.
        windows = _count(m, taken, 2, "windows")
        m.d.comb += [
            Cover(taken & (pending == 1), "windows back to back"),
            Cover(array.o.valid & array.o.payload.tag.last_pixel & (windows == 2) &
                  array.o.payload.tag.last_group & array.o.payload.tag.last_fold,
                  "a last_pixel window's last vector leaves the array"),
        ]
        return m


def requantize_reference(acc, multiplier, shift, zero_point, act_min, act_max):
    """:func:`convaccel.quant.requantize_hw` of one value, in Amaranth arithmetic: written as
    the NumPy model is (saturate and shift left; rounding doubling high multiply; gemmlowp's
    RoundingDivideByPOT with its remainder and threshold; zero point; clamp), not as the
    hardware pipelines it."""
    limit = 1 << (SATURATE_BITS - 1)
    saturated = Mux(acc < -limit, -limit, Mux(acc > limit - 1, limit - 1, acc))
    left = shift[:SHIFT_RANGE[1].bit_length()]
    value = Mux(shift > 0, saturated << left, acc)
    high = (value * multiplier + (1 << 30)) >> 31
    exponent = Mux(shift < 0, -shift, 0)[:6]
    # (the mask as wide as `high`, whose values stay far inside its width: an exponent beyond
    # it masks every bit, as a wider mask would)
    mask = (Const(1, len(high) + 1) << exponent)[:len(high)] - 1
    remainder = high.as_unsigned() & mask[:len(high)]
    threshold = (mask[:len(high)] >> 1) + (high < 0)
    rounded = (high >> exponent) + (remainder > threshold)
    out = rounded + zero_point
    return Mux(out < act_min, act_min, Mux(out > act_max, act_max, out))[:8].as_signed()


class RequantizerHarness(Elaboratable):
    """:class:`~convaccel.hdl.requant.Requantizer` with any accumulators, parameters and
    arrival times within its contract.

    The parameters are free values (``AnyConst``): per group and column a multiplier and a
    shift, the zero point, the clamp bounds; the harness writes them through the load ports
    in the first cycles (multipliers and shifts, one a cycle, then the zero point, ``act_min``
    and ``act_max``). Assumed: they are within the :class:`~convaccel.quant.Requant` ranges
    (shifts in ``SHIFT_RANGE``, ``act_min <= act_max``) and, with ``multiplier_mask``, each
    multiplier has no bit set outside the mask; groups of free accumulators arrive only once
    the parameters are written, at most once every ``row_folds`` cycles, their ``last_group``
    tags right (``col_folds`` groups a pixel, in order).

    Asserted: ``o.valid`` is high exactly ``latency`` cycles after each arrival, the beat
    carries the group's tag, and each of its values is :func:`~convaccel.quant.requantize_hw`
    of the accumulator with its channel's parameters, computed in the harness in the NumPy
    model's form (:func:`requantize_reference`).

    ``make`` builds the stage from the keyword arguments of :class:`~convaccel.hdl.requant.
    Requantizer`.
    """

    def __init__(self, *, cols=1, col_folds=1, row_folds=1, acc_bits=4, multiplier_mask=None,
                 make=Requantizer):
        self._cols = cols
        self._col_folds = col_folds
        self._row_folds = row_folds
        self._acc_bits = acc_bits
        self._multiplier_mask = multiplier_mask
        self.dut = make(cols=cols, col_folds=col_folds, row_folds=row_folds,
                        acc_shape=signed(acc_bits), tag_shape=fold_tag_layout())

    @property
    def load_cycles(self):
        """Cycles the harness takes to write the parameters: no group arrives before."""
        return 2 * self._cols * self._col_folds + 3

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        cols, col_folds, row_folds = self._cols, self._col_folds, self._row_folds

        # The parameters, free, written in the first cycles.
        lo, hi = SHIFT_RANGE
        mults = [[AnyConst(MULTIPLIER_BITS) for _ in range(cols)] for _ in range(col_folds)]
        shifts = [[AnyConst(signed(6)) for _ in range(cols)] for _ in range(col_folds)]
        zero_point, act_min, act_max = (AnyConst(signed(8)) for _ in range(3))
        m.d.comb += Assume(act_min <= act_max)
        for g in range(col_folds):
            for c in range(cols):
                m.d.comb += Assume((shifts[g][c] >= lo) & (shifts[g][c] <= hi))
                if self._multiplier_mask is not None:
                    m.d.comb += Assume((mults[g][c] & ~self._multiplier_mask) == 0)
        writes = []
        for g in range(col_folds):
            for c in range(cols):
                writes += [(g, dut.m_en, 1 << c, mults[g][c]), (g, dut.s_en, 1 << c, shifts[g][c])]
        for bit, value in enumerate((zero_point, act_min, act_max)):
            writes.append((0, dut.c_en, 1 << bit, value))
        assert len(writes) == self.load_cycles
        loading = Signal(range(len(writes) + 1))
        with m.If(loading != len(writes)):
            m.d.sync += loading.eq(loading + 1)
        with m.Switch(loading):
            for n, (g, enable, bit, value) in enumerate(writes):
                with m.Case(n):
                    m.d.comb += [dut.w_addr.eq(g), dut.w_data.eq(value), enable.eq(bit)]

        # Arrivals: once the parameters are written, at most one every `row_folds` cycles,
        # groups tagged in order.
        m.d.comb += [
            dut.i.valid.eq(AnySeq(1)),
            dut.i.payload.eq(AnySeq(len(dut.i.payload.as_value()))),
        ]
        arrived = dut.i.valid
        since = Signal(range(row_folds + 2), init=row_folds + 1)   # (saturating)
        with m.If(arrived):
            m.d.sync += since.eq(1)
        with m.Elif(since != row_folds + 1):
            m.d.sync += since.eq(since + 1)
        group = Signal(range(col_folds))
        with m.If(arrived):
            m.d.sync += group.eq(Mux(group == col_folds - 1, 0, group + 1))
        m.d.comb += [
            Assume(~arrived | (loading == len(writes))),
            Assume(~arrived | (since >= row_folds)),
            Assume(~arrived | (dut.i.payload.tag.last_group == (group == col_folds - 1))),
        ]

        # The reference, computed as the group arrives, delayed by `latency`.
        expected = Signal(data.ArrayLayout(signed(8), cols))
        for c in range(cols):
            m.d.comb += expected[c].eq(requantize_reference(
                dut.i.payload.data[c], Array(mults[g][c] for g in range(col_folds))[group],
                Array(shifts[g][c] for g in range(col_folds))[group],
                zero_point, act_min, act_max))
        delayed = [(arrived, dut.i.payload.tag.as_value(), expected.as_value())]
        for n in range(dut.latency):
            regs = tuple(Signal.like(v, name=f"{name}_d{n + 1}")
                         for v, name in zip(delayed[-1], ("valid", "tag", "out")))
            m.d.sync += [reg.eq(v) for reg, v in zip(regs, delayed[-1])]
            delayed.append(regs)
        valid, tag, out = delayed[-1]
        m.d.comb += Assert(dut.o.valid == valid,
                           "o.valid is not 'a group arrived latency cycles ago'")
        with m.If(valid):
            m.d.comb += Assert(dut.o.payload.tag.as_value() == tag, "a group's tag changed")
            for c in range(cols):
                m.d.comb += Assert(dut.o.payload.data[c] == out.word_select(c, 8).as_signed(),
                                   f"column {c} is not requantize_hw of its accumulator")

        # Non-vacuity: groups back to back; a pixel's last group leaves.
        m.d.comb += [
            Cover(arrived & (since == row_folds)),
            Cover(dut.o.valid & dut.o.payload.tag.last_group),
        ]
        return m


def _crc16(m, crc, byte):
    """CRC-16/IBM-3740 (polynomial 0x1021, not reflected) of `crc` after one more `byte`, bit
    by bit as the standard defines it (the link's CRC is Amaranth's parallel form)."""
    for n in range(8):
        bit = crc[15] ^ byte[7 - n]
        step = Signal(16, name=f"crc_bit{n}")
        m.d.comb += step.eq(Mux(bit, (crc << 1) ^ 0x1021, crc << 1)[:16])
        crc = step
    return crc


class Crc16ResidueHarness(Elaboratable):
    """The CRC-16 of the link (IBM-3740, as :func:`_crc16` computes it): from any register
    value ``x`` (the CRC of the bytes so far), the two bytes ``c`` (high byte first) leave
    the residue 0 exactly when ``c == x``. So a receiver that checks the residue of a request
    with its CRC (as :class:`ReceiverHarness` shows the link's does) accepts exactly the
    requests whose CRC bytes are the CRC-16 of the bytes before them. Combinational: depth 1.
    """

    def elaborate(self, platform):
        m = Module()
        x = AnyConst(16)
        c = AnyConst(16)
        residue = _crc16(m, _crc16(m, x, c[8:]), c[:8])
        m.d.comb += Assert((residue == 0) == (c == x),
                           "the residue is not 'the CRC bytes are the CRC so far'")
        return m


class ReceiverHarness(Elaboratable):
    """:class:`~convaccel.link.framing.RequestReceiver` with its
    :class:`~convaccel.link.framing.PayloadCounter`, under any byte stream.

    Request bytes arrive in any cycles with any values (noise, truncated requests, bad CRCs,
    lengths too long); ``responded`` comes in any cycle after a verdict (the decoder's
    answer), once, and never otherwise. The harness frames the byte stream itself, as the
    protocol defines it (``A5``, command, length, payload, CRC): hunting for ``A5`` while no
    request is in progress, skipping the bytes that arrive between a request's verdict and
    the cycle after its answer.

    Asserted, the receiver's documented verdicts:

    * ``request.check`` exactly 3 cycles after the cycle in which a request's last CRC byte
      is valid on ``i``, and never otherwise; then ``command``, ``length``, ``arg`` (the first
      two payload bytes, big-endian, when there are two), ``units`` and ``whole`` are the
      request's, and ``crc_ok`` is high exactly when the CRC-16 of the request's bytes after
      ``A5``, its CRC included, is 0 (the harness computes it bit by bit).
      :class:`Crc16ResidueHarness` proves that this is the case exactly when the CRC bytes
      are the CRC-16 of the bytes before them: a request with a wrong CRC is never reported
      good;
    * ``request.too_long`` exactly the cycle after a length above ``max_payload`` arrived;
    * ``request.timeout`` exactly when a request in progress has had no byte for ``timeout +
      1`` cycles (a byte after exactly ``timeout`` idle cycles still counts);
    * the payload bytes, and only they, are written to the buffer, the ``n``-th at address
      ``n``, a cycle after they arrive.
    """

    def __init__(self, *, max_payload=2, timeout=2, weight_bytes=2, pixel_bytes=3,
                 make=RequestReceiver):
        self._max_payload = max_payload
        self._timeout = timeout
        self._weight_bytes = weight_bytes
        self._pixel_bytes = pixel_bytes
        self.dut = make(max_payload=max_payload, timeout=timeout, weight_bytes=weight_bytes,
                        pixel_bytes=pixel_bytes)
        self.counter = PayloadCounter(max_payload)

    def elaborate(self, platform):
        m = Module()
        dut = self.dut
        # (elaborated here, to reach its CRC unit for the lemma below)
        m.submodules.dut = receiver = dut.elaborate(platform)
        crc_unit = receiver.submodules.crc
        m.submodules.counter = counter = self.counter
        wiring.connect(m, dut.count, counter.rx)
        max_payload, timeout = self._max_payload, self._timeout
        request = dut.request

        byte = Signal(8)
        got = Signal()
        m.d.comb += [got.eq(AnySeq(1)), byte.eq(AnySeq(8)),
                     dut.i.valid.eq(got), dut.i.payload.eq(byte)]

        # The harness's framing of the byte stream.
        command = Signal(8)
        length = Signal(16)
        index = Signal(range(max_payload + 1))      # payload bytes taken
        arg = Signal(16)
        crc = Signal(16, init=0xFFFF)
        quiet = Signal(range(timeout + 2))           # cycles without a byte, in a request
        with m.If(got):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != timeout + 1):
            m.d.sync += quiet.eq(quiet + 1)
        ends_check = Signal()                        # a request's last CRC byte
        ends_too_long = Signal()                     # a length above max_payload
        payload_byte = Signal()
        owed = Signal()                              # a verdict awaits its answer
        timed_out = Signal()
        crc_next = _crc16(m, crc, byte)
        with m.FSM(name="framing") as framing:
            with m.State("HUNT"):
                with m.If(got & (byte == REQUEST_START)):
                    m.d.sync += crc.eq(0xFFFF)
                    m.next = "COMMAND"
            # (in a request: no byte for `timeout + 1` cycles ends it)
            for state in ("COMMAND", "LENGTH_HI", "LENGTH_LO", "PAYLOAD", "CRC_HI", "CRC_LO"):
                with m.State(state):
                    m.d.comb += timed_out.eq(quiet == timeout + 1)
                    with m.If(timed_out):
                        m.next = "VERDICT"
                    with m.Elif(got):
                        m.d.sync += crc.eq(crc_next)
                        if state == "COMMAND":
                            m.d.sync += [command.eq(byte), index.eq(0)]
                            m.next = "LENGTH_HI"
                        elif state == "LENGTH_HI":
                            m.d.sync += length[8:].eq(byte)
                            m.next = "LENGTH_LO"
                        elif state == "LENGTH_LO":
                            m.d.sync += length[:8].eq(byte)
                            full = Cat(byte, length[8:])
                            with m.If(full > max_payload):
                                m.d.comb += ends_too_long.eq(1)
                                m.next = "VERDICT"
                            with m.Elif(full == 0):
                                m.next = "CRC_HI"
                            with m.Else():
                                m.next = "PAYLOAD"
                        elif state == "PAYLOAD":
                            m.d.comb += payload_byte.eq(1)
                            m.d.sync += index.eq(index + 1)
                            with m.If(index < 2):
                                m.d.sync += arg.eq(Cat(byte, arg[:8]))
                            with m.If(index + 1 == length):
                                m.next = "CRC_HI"
                        elif state == "CRC_HI":
                            m.next = "CRC_LO"
                        else:
                            m.d.comb += ends_check.eq(1)
                            m.next = "VERDICT"
            with m.State("VERDICT"):
                # (bytes are skipped until the cycle after the answer)
                with m.If(dut.responded):
                    m.next = "HUNT"

        # A lemma, for the solver: the receiver's CRC register follows the harness's a cycle
        # later, from the command byte to the CRC's last. (Proved a step at a time, it is
        # then assumed in the later steps: the solver need not relate two XOR networks over a
        # whole request at once, which it cannot do in reasonable time.)
        in_body = Past(m, framing.ongoing("LENGTH_HI") | framing.ongoing("LENGTH_LO") |
                       framing.ongoing("PAYLOAD") | framing.ongoing("CRC_HI") |
                       framing.ongoing("CRC_LO"), name="in_body")
        crc_before = Past(m, crc, name="crc_before")
        with m.If(in_body):
            m.d.comb += Assert(crc_unit.crc == crc_before,
                               "lemma: the CRC register is not the request's CRC so far")

        # The decoder's answer: once, after a verdict.
        verdict = request.check | request.timeout | request.too_long
        with m.If(verdict):
            m.d.sync += owed.eq(1)
        with m.Elif(dut.responded):
            m.d.sync += owed.eq(0)
        m.d.comb += [dut.responded.eq(AnySeq(1)), Assume(~dut.responded | owed)]

        # The verdicts.
        crc_good = Signal()
        m.d.comb += crc_good.eq(crc_next == 0)
        check_due = [Signal(name=f"check_due{n}") for n in range(3)]
        crc_due = [Signal(name=f"crc_due{n}") for n in range(3)]
        m.d.sync += [check_due[0].eq(ends_check), crc_due[0].eq(crc_good)]
        for n in range(1, 3):
            m.d.sync += [check_due[n].eq(check_due[n - 1]), crc_due[n].eq(crc_due[n - 1])]
        m.d.comb += [
            Assert(request.check == check_due[-1],
                   "check is not '3 cycles after a request's last CRC byte'"),
            Assert(request.too_long == Past(m, ends_too_long, name="too_long_due"),
                   "too_long is not 'the cycle after a length above max_payload'"),
            Assert(request.timeout == timed_out,
                   "timeout is not 'a request without a byte for timeout + 1 cycles'"),
        ]
        # (at a check the length is at most max_payload)
        short = length[:max_payload.bit_length()]
        unit = Mux(command == Command.LOAD, self._weight_bytes,
                   Mux(command == Command.FRAME, self._pixel_bytes, 1))
        units = Mux(command == Command.LOAD, short // self._weight_bytes,
                    Mux(command == Command.FRAME, short // self._pixel_bytes, short))
        with m.If(request.check):
            m.d.comb += [
                Assert(request.crc_ok == crc_due[-1],
                       "crc_ok is not 'the CRC-16 of the request with its CRC is the residue 0'"),
                Assert(request.command == command, "command is not the request's"),
                Assert(request.length == length, "length is not the request's"),
                Assert(request.units == units, "units is not the request's whole units"),
                Assert(request.whole == (short == units * unit),
                       "whole is not 'no partial unit'"),
            ]
            with m.If(length >= 2):
                m.d.comb += Assert(request.arg == arg, "arg is not the first two payload bytes")

        # The payload into the buffer, a cycle after it arrives.
        index_due = Past(m, index, name="index_due")
        byte_due = Past(m, byte, name="byte_due")
        m.d.comb += Assert(dut.write.en == Past(m, payload_byte, name="payload_due"),
                           "a buffer write is not 'a payload byte arrived'")
        with m.If(dut.write.en):
            m.d.comb += [
                Assert(dut.write.addr == index_due,
                       "a payload byte is written at the wrong address"),
                Assert(dut.write.data == byte_due, "a payload byte is written wrong"),
            ]

        # Non-vacuity: a good request with two payload bytes checked; a bad CRC; a timeout;
        # too long; a second request after an answer.
        checks = _count(m, request.check, 2, "checks")
        m.d.comb += [
            Cover(request.check & request.crc_ok & (request.length == 2)),
            Cover(request.check & ~request.crc_ok),
            Cover(request.timeout),
            Cover(request.too_long),
            Cover(request.check & (checks == 1)),
        ]
        return m


class SenderHarness(Elaboratable):
    """:class:`~convaccel.link.framing.ResponseSender` with its
    :class:`~convaccel.link.framing.PayloadCounter`, any ``o.ready`` and any result stream.

    The decoder's side is free within its contract: ``respond`` in any cycle in which no
    response is being sent (from ``respond`` to ``done``), with any status, length (up to
    ``max_payload``), payload source and reset request; ``command`` and ``status`` held while
    a response is sent. The result queue's stream obeys the stream contract.

    Asserted:

    * ``o`` obeys the stream contract, and is valid only while a response is being sent;
    * each response is the bytes ``5A``, command, status, length (2), payload, CRC (2): the
      payload either the result stream's beats (a byte leaves exactly when a beat is taken,
      and is that beat) or the STATUS value's bytes, most significant first; the CRC is the
      CRC-16 of the bytes after ``5A`` (the harness computes it bit by bit);
    * no result beat is taken outside a payload from the queue;
    * ``done`` exactly with the last byte's transfer; ``reset`` exactly the cycle after it,
      for a response that asked for it.
    """

    def __init__(self, *, max_payload=2, make=ResponseSender):
        self._max_payload = max_payload
        self.dut = make(max_payload)
        self.counter = PayloadCounter(max_payload)

    def elaborate(self, platform):
        m = Module()
        dut = self.dut
        # (elaborated here, to reach its CRC unit for the lemma below)
        m.submodules.dut = sender = dut.elaborate(platform)
        crc_unit = sender.submodules.crc
        m.submodules.counter = counter = self.counter
        wiring.connect(m, dut.count, counter.tx)
        max_payload = self._max_payload

        request = dut.respond.payload
        for port in (dut.respond.valid, request.as_value(), dut.command, dut.status.as_value(),
                     dut.o.ready):
            m.d.comb += port.eq(AnySeq(len(port)))
        drive_stream_source(m, dut.results, name="results")
        assert_stream_source(m, dut.o, name="o")
        given = dut.o.valid & dut.o.ready
        taken = dut.results.valid & dut.results.ready

        # The response being sent: from `respond` to `done`.
        busy = Signal()
        status = Signal(8)
        length = Signal(range(max_payload + 1))
        from_queue = Signal()
        reset = Signal()
        with m.If(dut.respond.valid):
            m.d.sync += [busy.eq(1), status.eq(request.status), length.eq(request.length),
                         from_queue.eq(request.results), reset.eq(request.reset)]
        with m.Elif(dut.done):
            m.d.sync += busy.eq(0)
        m.d.comb += [
            Assume(~dut.respond.valid | ~busy),
            Assume(request.length <= max_payload),
        ]
        command_before = Past(m, dut.command, name="command_before")
        status_before = Past(m, dut.status.as_value(), name="status_before")
        with m.If(busy):
            m.d.comb += [
                Assume(dut.command == command_before),
                Assume(dut.status.as_value() == status_before),
            ]

        # Its bytes: `n` is the index of the next one; the CRC of those after the start byte.
        n = Signal(range(max_payload + 8))
        crc = Signal(16, init=0xFFFF)
        with m.If(dut.respond.valid):
            m.d.sync += [n.eq(0), crc.eq(0xFFFF)]
        with m.Elif(given):
            m.d.sync += n.eq(n + 1)
            with m.If((n >= 1) & (n < 5 + length)):
                m.d.sync += crc.eq(_crc16(m, crc, dut.o.payload))
        in_payload = busy & (n >= 5) & (n < 5 + length)
        bits = dut.status.as_value()
        status_bytes = Array(bits[8 * k:8 * k + 8] for k in reversed(range(STATUS_BYTES)))
        expected = Signal(8)
        with m.Switch(n):
            for k, value in enumerate([RESPONSE_START, dut.command, status, length >> 8,
                                       length[:8]]):
                with m.Case(k):
                    m.d.comb += expected.eq(value)
        with m.If(in_payload):
            m.d.comb += expected.eq(Mux(from_queue, dut.results.payload,
                                        status_bytes[(n - 5)[:5]]))
        with m.Elif(n == 5 + length):
            m.d.comb += expected.eq(crc[8:])
        with m.Elif(n == 6 + length):
            m.d.comb += expected.eq(crc[:8])

        m.d.comb += [
            Assert(~dut.o.valid | busy, "o: a byte outside a response"),
            Assert(~taken | (in_payload & from_queue),
                   "a result beat taken outside a payload from the queue"),
            Assert(dut.done == (busy & given & (n == 6 + length)),
                   "done is not 'the response's last byte leaves'"),
            Assert(dut.reset == Past(m, dut.done & reset, name="reset_due"),
                   "reset is not 'the cycle after a resetting response's last byte'"),
        ]
        with m.If(dut.o.valid & busy):
            m.d.comb += Assert(n <= 6 + length, "o: a byte past the response's end")
            m.d.comb += Assert(dut.o.payload == expected, "o: a response byte is wrong")
        with m.If(in_payload & from_queue):
            m.d.comb += Assert(given == taken, "a payload byte is not a result beat taken")

        # A lemma, for the solver: the sender's CRC register follows the harness's two cycles
        # later (the bytes enter it through registers), from the command byte to the CRC.
        counting = Past(m, busy & (n >= 2), name="counting")
        crc_before = Past(m, crc, name="crc_before")
        with m.If(counting):
            m.d.comb += Assert(crc_unit.crc == crc_before,
                               "lemma: the CRC register is not the response's CRC so far")

        # Non-vacuity: a response with a payload of two result beats, and one with two STATUS
        # bytes, each to its end; a byte stalled; a reset.
        m.d.comb += [
            Cover(dut.done & from_queue & (length == 2)),
            Cover(dut.done & ~from_queue & (length == 2)),
            Cover(dut.o.valid & ~dut.o.ready & in_payload),
            Cover(dut.reset),
        ]
        return m
