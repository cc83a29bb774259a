# amaranth: UnusedElaboratable=no
# (The pooling stage builds its parts in its constructor, so that their figures are known before
# elaboration.)
import numpy as np
from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .padder import Padder, pixel_in_layout
from .stage import MemoryShape

__all__ = ["LineReduce", "MaxPool", "AvgPool", "exact_reciprocal"]

_INT8 = (-128, 127)


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


def _pair(name, value):
    """``value`` as an ``(h, w)`` pair of positive integers (an integer is both)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be an integer or an (h, w) pair, not {value!r}")
    return tuple(_positive(f"{name}[{n}]", v) for n, v in enumerate(value))


def _clamp_bounds(act_min, act_max):
    for name, value in (("act_min", act_min), ("act_max", act_max)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer, not {value!r}")
        if not _INT8[0] <= value <= _INT8[1]:
            raise ValueError(f"{name} must be in -128..127 (int8), not {value}")
    if act_min > act_max:
        raise ValueError(f"act_min {act_min} is above act_max {act_max}")


class LineReduce(wiring.Component):
    """The maximum (or the sum) over ``taps`` consecutive positions along one axis of a stream,
    at every ``stride``-th window: one half of a separable max (or average) pooling.

    The stream is a sequence of lines of ``line`` beats: beat ``w`` of position ``p``
    (``0 .. positions - 1``, then ``p`` starts again), each beat ``lanes`` elements that are
    pooled separately. Window ``o`` (``0 .. outputs - 1``) covers positions ``o * stride ..
    o * stride + taps - 1``; when the beat ``w`` of its last position passes, its maximum over
    those positions (the same ``w``, lane by lane) leaves on ``o``: ``outputs * line`` beats per
    ``positions * line`` taken, in order ``(o, w)``. Positions past the last window are taken
    and dropped.

    What the windows need is kept in block RAM, a word (``lanes`` elements) per beat of a line:
    with overlapping windows (``stride < taps``) the ``taps - 1`` previous positions, in
    ``taps - 1`` memories of ``line`` words chained as delay lines (each beat reads them all at
    its ``w`` and shifts itself in); otherwise (``stride >= taps``) one memory of the running
    maximum (sum) of the open window. Each beat reads and writes each memory once at one address,
    so the stage takes a beat in every cycle.

    With ``mark_last`` the output beats are :func:`~convaccel.hdl.padder.pixel_in_layout`'s,
    ``last`` on the final beat of the final window; maxima are then clamped to
    ``act_min..act_max`` on their way out. With ``op = "sum"`` the output elements are
    ``out_beat``'s, wide enough for ``taps`` inputs.

    Latency: 2 cycles (the memories' synchronous read, then the output register). Throughput:
    one beat per cycle. A result made while the output waits is held in a skid register, so
    the input's ``ready`` depends on registers only, not on the output's ``ready``.

    Parameters
    ----------
    positions, line, taps, stride, outputs : int
        ``(outputs - 1) * stride + taps <= positions``.
    beat : shape-castable
        An array layout: ``lanes`` signed elements.
    op : ``"max"`` or ``"sum"``
    out_beat : shape-castable
        The output's array layout (``beat`` by default).
    mark_last : bool
    act_min, act_max : int
        Only with ``mark_last`` and ``"max"``.

    Members
    -------
    i : In(stream.Signature(beat))
    o : Out(stream.Signature(out_beat or pixel_in_layout(out_beat)))
    """

    latency = 2

    def __init__(self, *, positions, line, taps, stride, outputs, beat, op="max",
                 out_beat=None, mark_last=False, act_min=_INT8[0], act_max=_INT8[1]):
        assert (outputs - 1) * stride + taps <= positions
        assert op in ("max", "sum")
        out_beat = beat if out_beat is None else out_beat
        self._op = op
        self._out_beat = out_beat
        self._positions = positions
        self._line = line
        self._taps = taps
        self._stride = stride
        self._outputs = outputs
        self._beat = beat
        self._mark_last = mark_last
        self._act = (act_min, act_max)
        out = pixel_in_layout(out_beat) if mark_last else out_beat
        super().__init__({
            "i": In(stream.Signature(beat)),
            "o": Out(stream.Signature(out)),
        })

    @property
    def overlapping(self):
        return self._stride < self._taps

    @property
    def memory_count(self):
        """Delay lines (overlapping windows), else one running maximum (none for one tap)."""
        return self._taps - 1 if self.overlapping else min(1, self._taps - 1)

    @property
    def memories(self):
        if not self.memory_count:
            return ()
        if self.overlapping:
            name, word = "pool delay line", self._beat
        else:
            name = "pool partial maxima" if self._op == "max" else "pool partial sums"
            word = self._out_beat
        return (MemoryShape(name, Shape.cast(word).width, self._line,
                            count=self.memory_count),)

    def _table(self, predicate):
        """A constant of one bit per position."""
        return Const(sum(1 << p for p in range(self._positions) if predicate(p)),
                     self._positions)

    def elaborate(self, platform):
        m = Module()
        layout = data.Layout.cast(self._beat)
        out_layout = data.Layout.cast(self._out_beat)
        taps, stride, outputs, line = self._taps, self._stride, self._outputs, self._line
        last_pos = (outputs - 1) * stride + taps - 1

        def emits(p):
            e = p - (taps - 1)
            return e >= 0 and e % stride == 0 and e // stride < outputs

        def opens(p):
            return p % stride == 0 and p // stride < outputs

        # The next beat's place: `w` in its line, position `p`, and the flags of `p`, kept in
        # registers set from the next position (a table of constants, one bit a position).
        w = Signal(range(line))
        w_end = Signal(init=line == 1)
        p = Signal(range(self._positions))
        emit_table, open_table = self._table(emits), self._table(opens)
        emit_now = Signal(init=emits(0))
        open_now = Signal(init=opens(0))
        last_now = Signal(init=last_pos == 0)

        mems = []
        word = layout if self.overlapping else out_layout
        for t in range(self.memory_count):
            m.submodules[f"mem{t}"] = mem = memory.Memory(shape=word, depth=line, init=[])
            wr = mem.write_port()
            # (one word: the next beat reads the word the previous one writes in that cycle)
            rd = mem.read_port(transparent_for=(wr,) if line == 1 else ())
            mems.append((wr, rd))

        # stage 1: the beat taken, beside the words the memories held at its `w`
        s1_valid = Signal()
        s1_v = Signal(layout)
        s1_w = Signal(range(line))
        s1_emit = Signal()
        s1_open = Signal()
        s1_last = Signal()
        # A result may leave when the skid register (below) is empty: the input's ready does
        # not wait on the output's (a chain of them through the pool's stages and its padder
        # was the digits network's critical path on the UP5K).
        skid_valid = Signal()
        o_free = ~skid_valid
        s1_go = s1_valid & (~s1_emit | o_free)
        m.d.comb += self.i.ready.eq(~s1_valid | s1_go)
        accept = self.i.valid & self.i.ready
        for wr, rd in mems:
            m.d.comb += [rd.addr.eq(w), rd.en.eq(accept), wr.addr.eq(s1_w), wr.en.eq(s1_go)]

        with m.If(accept):
            m.d.sync += [s1_valid.eq(1), s1_v.eq(self.i.payload), s1_w.eq(w),
                         s1_emit.eq(emit_now), s1_open.eq(open_now),
                         s1_last.eq(last_now & w_end)]
            if line > 1:
                m.d.sync += [w.eq(Mux(w_end, 0, w + 1)), w_end.eq(~w_end & (w == line - 2))]
            with m.If(w_end):
                p_next = Mux(p == self._positions - 1, 0, p + 1)
                m.d.sync += [p.eq(p_next), emit_now.eq(emit_table.bit_select(p_next, 1)),
                             open_now.eq(open_table.bit_select(p_next, 1)),
                             last_now.eq(p_next == last_pos)]
        with m.Elif(s1_go):
            m.d.sync += s1_valid.eq(0)

        def combine(a, b):
            a, b = a.as_signed(), b.as_signed()
            return Mux(a > b, a, b) if self._op == "max" else a + b

        result = Signal(out_layout)
        for lane in range(layout.length):
            value = s1_v[lane].as_signed()
            if self.overlapping:
                for _, rd in mems:
                    value = combine(value, rd.data[lane])
            elif mems:
                value = Mux(s1_open, value, combine(value, mems[0][1].data[lane]))
            m.d.comb += result[lane].eq(value)
        if self.overlapping:
            # shift the beat in: the newest position first, each line one position older
            for t, (wr, _) in enumerate(mems):
                m.d.comb += wr.data.eq(s1_v if t == 0 else mems[t - 1][1].data)
        elif mems:
            m.d.comb += mems[0][0].data.eq(result)

        produced = Signal.like(self.o.payload)
        if self._mark_last and self._op == "max":
            lo, hi = self._act
            for lane in range(layout.length):
                v = result[lane].as_signed()
                m.d.comb += produced.data[lane].eq(Mux(v < lo, lo, Mux(v > hi, hi, v)))
            m.d.comb += produced.last.eq(s1_last)
        elif self._mark_last:
            m.d.comb += [produced.data.eq(result), produced.last.eq(s1_last)]
        else:
            m.d.comb += produced.eq(result)
        # The output register and a skid register behind it: a result made while the output
        # waits goes to the skid register (it is empty then: results wait for it), and from
        # there to the output when the output moves.
        skid = Signal.like(self.o.payload)
        new = s1_go & s1_emit
        with m.If(~self.o.valid | self.o.ready):
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1), skid_valid.eq(0)]
            with m.Elif(new):
                m.d.sync += [self.o.payload.eq(produced), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += self.o.valid.eq(0)
        with m.Elif(new):
            m.d.sync += [skid.eq(produced), skid_valid.eq(1)]
        return m


class MaxPool(wiring.Component):
    """TFLite's ``MAX_POOL_2D`` on a raster stream, as a separable maximum in block RAM.

    The stream is the conv engine's: beats of ``lanes`` channels in raster order, a pixel's
    ``chunks = channels / lanes`` beats in turn, ``last`` on the frame's final beat; the output
    is the pooled frame in the same format. ``Padder`` (by chunks) surrounds the frame with
    ``pads`` of -128: a padding tap never wins, and a window of padding alone (SAME and VALID
    never make one) gives ``max(-128, act_min)`` as TFLite's kernel does. Then a
    :class:`LineReduce` along each row (``line = chunks``: the window's maximum per output column)
    and one down the columns (``line = out_w * chunks``: the row maxima of the rows the windows
    still need, per output column, ``lanes`` channels a word), which clamps to
    ``act_min..act_max`` (the fused activation) and marks ``last``. Comparators: ``lanes`` per
    previous tap held, in each direction.

    A frame begins when its first beat is offered; the padder checks its length against
    ``last`` (``error`` pulses) and always hands on a whole frame.

    Latency: :attr:`latency` cycles from the padded beat that completes a window to that
    window's beat. Throughput: a padded beat per cycle, :attr:`cycles` for a frame (from its
    first beat offered to its last output beat taken, with input always valid and output
    always ready) and :attr:`interval` between the starts of frames that follow each other.

    Parameters
    ----------
    height, width, channels, lanes : int
        The input frame; ``lanes`` divides ``channels``.
    kernel, stride : int or (h, w)
    pads : (top, bottom, left, right)
        Each smaller than the kernel on its axis (as SAME and VALID make them:
        ``convaccel.tflite._tflite_axis``).
    act_min, act_max : int

    Members
    -------
    i : In(stream.Signature(pixel_in_layout(ArrayLayout(signed(8), lanes))))
    o : Out(stream.Signature(pixel_in_layout(ArrayLayout(signed(8), lanes))))
    error : Out(1)
    """

    def __init__(self, *, height, width, channels, lanes, kernel, stride, pads=(0, 0, 0, 0),
                 act_min=_INT8[0], act_max=_INT8[1]):
        for name, value in (("height", height), ("width", width), ("channels", channels),
                            ("lanes", lanes)):
            _positive(name, value)
        if channels % lanes:
            divisors = [d for d in range(1, channels + 1) if channels % d == 0]
            raise ValueError(f"lanes must divide channels ({channels}): one of {divisors}, "
                             f"not {lanes}")
        kernel, stride = _pair("kernel", kernel), _pair("stride", stride)
        if (not isinstance(pads, (tuple, list)) or len(pads) != 4
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in pads)):
            raise ValueError(f"pads must be 4 integers >= 0 (top, bottom, left, right), "
                             f"not {pads!r}")
        pads = tuple(pads)
        for axis, name in enumerate(("top", "bottom", "left", "right")):
            k = kernel[axis // 2]
            if pads[axis] >= k:
                raise ValueError(f"the {name} pad {pads[axis]} must be smaller than the kernel "
                                 f"({k}): a window would hold no pixel of the frame")
        padded = (height + pads[0] + pads[1], width + pads[2] + pads[3])
        for axis, name in enumerate(("height", "width")):
            if padded[axis] < kernel[axis]:
                raise ValueError(f"the kernel {kernel[0]}x{kernel[1]} is larger than the padded "
                                 f"frame {padded[0]}x{padded[1]}")
        _clamp_bounds(act_min, act_max)
        self._shape = (channels, height, width)
        self._lanes = lanes
        self._chunks = channels // lanes
        self._kernel, self._stride, self._pads, self._padded = kernel, stride, pads, padded
        self._act = (act_min, act_max)
        self._output_size = tuple((p - k) // s + 1 for p, k, s in zip(padded, kernel, stride))
        beat = data.ArrayLayout(signed(8), lanes)
        self._beat = beat
        self._parts = self._build(beat)
        super().__init__({
            "i": In(stream.Signature(pixel_in_layout(beat))),
            "o": Out(stream.Signature(pixel_in_layout(beat))),
            "error": Out(1),
        })

    def _build(self, beat):
        """The stages after the padder: the maxima along the rows, then down the columns."""
        (k_h, k_w), (s_h, s_w) = self._kernel, self._stride
        out_h, out_w = self._output_size
        self._padder = Padder(height=self._shape[1], width=self._shape[2], pads=self._pads,
                              pad_value=_INT8[0], pixel_shape=beat, chunks=self._chunks)
        return (
            LineReduce(positions=self._padded[1], line=self._chunks, taps=k_w, stride=s_w,
                       outputs=out_w, beat=beat),
            LineReduce(positions=self._padded[0], line=out_w * self._chunks, taps=k_h,
                       stride=s_h, outputs=out_h, beat=beat, mark_last=True,
                       act_min=self._act[0], act_max=self._act[1]),
        )

    # -- figures -------------------------------------------------------------------------------

    @property
    def beat(self):
        """The layout of a beat's channels (``ArrayLayout(signed(8), lanes)``)."""
        return self._beat

    @property
    def output_shape(self):
        """``(channels, out_h, out_w)``."""
        return (self._shape[0], *self._output_size)

    @property
    def stages(self):
        return (self._padder, *self._parts)

    @property
    def latency(self):
        """Cycles from a padded beat offered by the padder to the output beat it completes."""
        return sum(part.latency for part in self._parts)

    @property
    def input_beats(self):
        return self._shape[1] * self._shape[2] * self._chunks

    @property
    def output_beats(self):
        return self._output_size[0] * self._output_size[1] * self._chunks

    @property
    def _front(self):
        """Cycles from a frame's start to the padder offering its first padded beat."""
        return self._padder.start_cycles + self._padder.latency

    @property
    def cycles(self):
        """Cycles of a frame with input always valid and output always ready, from the cycle
        its first beat is offered (the start) to the one its last output beat is taken, both
        counted: padded beat ``b`` is offered in cycle ``front + b``, and the last window is
        complete at padded beat ``((last_row * padded_w) + last_col) * chunks + chunks - 1``
        (``last_row = (out_h - 1) * stride_h + kernel_h - 1``, likewise across)."""
        (k_h, k_w), (s_h, s_w) = self._kernel, self._stride
        out_h, out_w = self._output_size
        last_row = (out_h - 1) * s_h + k_h - 1
        last_col = (out_w - 1) * s_w + k_w - 1
        b_last = (last_row * self._padded[1] + last_col) * self._chunks + self._chunks - 1
        return self._front + b_last + self.latency + 1

    @property
    def interval(self):
        """Cycles between the starts of two frames whose beats follow each other: the
        padder's padded beats and its start cycle (it starts the next frame in the cycle
        after its last padded beat)."""
        return self._padded[0] * self._padded[1] * self._chunks + self._padder.start_cycles

    @property
    def memories(self):
        return tuple(mem for stage in self.stages for mem in stage.memories)

    def elaborate(self, platform):
        m = Module()
        m.submodules.padder = padder = self._padder
        wiring.connect(m, wiring.flipped(self.i), padder.i)
        source = padder.o
        for name, part in zip(("rows", "cols", "divide"), self._parts):
            m.submodules[name] = part
            wiring.connect(m, source, part.i)
            source = part.o
        wiring.connect(m, source, wiring.flipped(self.o))
        m.d.comb += [padder.start_ok.eq(1), self.error.eq(padder.error)]
        return m


def exact_reciprocal(divisors, limit):
    """``(reciprocals, shift)``: ``floor(x / n) == (x * reciprocals[i]) >> shift`` for every
    divisor ``n = divisors[i]`` and every ``0 <= x <= limit``, with the shortest ``shift``
    (checked on every ``x``; ``reciprocals[i] = ceil(2**shift / n)``)."""
    x = np.arange(limit + 1, dtype=np.int64)
    shift = 0
    while True:
        recips = [-(-(1 << shift) // n) for n in divisors]
        if all(np.array_equal((x * r) >> shift, x // n) for r, n in zip(recips, divisors)):
            return recips, shift
        shift += 1


class PoolDivide(wiring.Component):
    """The averages of an average pooling: window sums in, ``round(sum / n)`` out, halves away
    from zero (TFLite's ``(sum + n / 2) / n`` or ``(sum - n / 2) / n``), clamped.

    ``n`` is the window's taps inside the frame: ``row_taps[oy] * col_taps[ox]`` for output
    pixel ``(oy, ox)``. The beats arrive in raster order, ``chunks`` a pixel; counters follow
    the position, a table of the few distinct ``n`` gives a reciprocal, and the division is a
    multiplication by it (:func:`exact_reciprocal`: exact for every sum a window can make), per
    lane: no divider.

    Latency: 2 cycles (magnitude and reciprocal, then product, shift, sign and clamp), a beat a
    cycle; all registers move together when the output can.

    Members
    -------
    i : In(stream.Signature(pixel_in_layout(sum_beat)))
    o : Out(stream.Signature(pixel_in_layout(ArrayLayout(signed(8), lanes))))
    """

    latency = 2

    def __init__(self, *, row_taps, col_taps, chunks, sum_beat, act_min, act_max):
        self._row_taps, self._col_taps = tuple(row_taps), tuple(col_taps)
        self._chunks = chunks
        self._sum_beat = sum_beat
        self._act = (act_min, act_max)
        self._divisors = sorted({r * c for r in self._row_taps for c in self._col_taps})
        most = max(self._divisors)
        self._limit = 128 * most + most // 2
        self._recips, self._shift = exact_reciprocal(self._divisors, self._limit)
        lanes = data.Layout.cast(sum_beat).length
        super().__init__({
            "i": In(stream.Signature(pixel_in_layout(sum_beat))),
            "o": Out(stream.Signature(pixel_in_layout(data.ArrayLayout(signed(8), lanes)))),
        })

    @property
    def multipliers(self):
        """Per lane, (sum magnitude + half, reciprocal) widths."""
        lanes = data.Layout.cast(self._sum_beat).length
        return ((self._limit.bit_length(), max(self._recips).bit_length()),) * lanes

    memories = ()

    def elaborate(self, platform):
        m = Module()
        layout = data.Layout.cast(self._sum_beat)
        out_h, out_w = len(self._row_taps), len(self._col_taps)
        chunks = self._chunks
        # The position of the next beat, and the class (row taps, column taps) of its pixel.
        j = Signal(range(chunks))
        ox = Signal(range(out_w))
        oy = Signal(range(out_h))
        row_values = sorted(set(self._row_taps))
        col_values = sorted(set(self._col_taps))
        row_class = Array(C(row_values.index(t), range(len(row_values)))
                          for t in self._row_taps)[oy]
        col_class = Array(C(col_values.index(t), range(len(col_values)))
                          for t in self._col_taps)[ox]
        recip_bits = max(self._recips).bit_length()
        recip_of = {n: r for n, r in zip(self._divisors, self._recips)}
        recip = Array(Array(C(recip_of[r * c], recip_bits) for c in col_values)
                      for r in row_values)[row_class][col_class]
        half = Array(Array(C((r * c) // 2, range(self._limit)) for c in col_values)
                     for r in row_values)[row_class][col_class]

        en = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(en)
        accept = self.i.valid & en
        with m.If(accept):
            with m.If(j == chunks - 1):
                m.d.sync += j.eq(0)
                with m.If(ox == out_w - 1):
                    m.d.sync += [ox.eq(0), oy.eq(Mux(oy == out_h - 1, 0, oy + 1))]
                with m.Else():
                    m.d.sync += ox.eq(ox + 1)
            with m.Else():
                m.d.sync += j.eq(j + 1)

        a_valid = Signal()
        a_last = Signal()
        a_recip = Signal(recip_bits)
        mags = [Signal(self._limit.bit_length(), name=f"mag{n}") for n in range(layout.length)]
        negs = [Signal(name=f"neg{n}") for n in range(layout.length)]
        lo, hi = self._act
        with m.If(en):
            m.d.sync += [a_valid.eq(self.i.valid), a_last.eq(self.i.payload.last),
                         a_recip.eq(recip)]
            for lane in range(layout.length):
                v = self.i.payload.data[lane].as_signed()
                m.d.sync += [negs[lane].eq(v < 0), mags[lane].eq(Mux(v < 0, -v, v) + half)]
            m.d.sync += [self.o.valid.eq(a_valid), self.o.payload.last.eq(a_last)]
            for lane in range(layout.length):
                q = Signal(signed(len(mags[lane]) + 1), name=f"q{lane}")
                m.d.comb += q.eq((mags[lane] * a_recip) >> self._shift)
                v = Mux(negs[lane], -q, q)
                m.d.sync += self.o.payload.data[lane].eq(Mux(v < lo, lo, Mux(v > hi, hi, v)))
        return m


class AvgPool(MaxPool):
    """TFLite's ``AVERAGE_POOL_2D`` on a raster stream: :class:`MaxPool`'s structure with sums.

    ``Padder`` fills the border with zeros, a :class:`LineReduce` sums each row's window (the
    partial sums a word per beat of a line, wider than int8: ``8 + log2(kernel_w)`` bits an
    element), one sums down the columns, and :class:`PoolDivide` divides each window's sum by
    its taps inside the frame (fewer on a SAME border), rounding halves away from zero, and
    clamps. Figures as :class:`MaxPool`'s, the divider's 2 cycles added to the latency.

    Parameters and members as :class:`MaxPool`'s.
    """

    def _build(self, beat):
        (k_h, k_w), (s_h, s_w) = self._kernel, self._stride
        out_h, out_w = self._output_size
        top, _, left, _ = self._pads
        lanes = data.Layout.cast(beat).length
        self._padder = Padder(height=self._shape[1], width=self._shape[2], pads=self._pads,
                              pad_value=0, pixel_shape=beat, chunks=self._chunks)
        row_sum = data.ArrayLayout(signed(8 + (k_w - 1).bit_length()), lanes)
        window_sum = data.ArrayLayout(signed(8 + (k_h * k_w - 1).bit_length()), lanes)

        def taps(size, before, k, s, outputs):
            return [len(set(range(o * s - before, o * s - before + k)) & set(range(size)))
                    for o in range(outputs)]

        return (
            LineReduce(positions=self._padded[1], line=self._chunks, taps=k_w, stride=s_w,
                       outputs=out_w, beat=beat, op="sum", out_beat=row_sum),
            LineReduce(positions=self._padded[0], line=out_w * self._chunks, taps=k_h,
                       stride=s_h, outputs=out_h, beat=row_sum, op="sum",
                       out_beat=window_sum, mark_last=True),
            PoolDivide(row_taps=taps(self._shape[1], top, k_h, s_h, out_h),
                       col_taps=taps(self._shape[2], left, k_w, s_w, out_w),
                       chunks=self._chunks, sum_beat=window_sum, act_min=self._act[0],
                       act_max=self._act[1]),
        )
