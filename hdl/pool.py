# amaranth: UnusedElaboratable=no
# (The pooling stage builds its parts in its constructor, so that their figures are known before
# elaboration.)
from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .padder import Padder, pixel_in_layout
from .stage import MemoryShape

__all__ = ["LineMax", "MaxPool"]

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


class LineMax(wiring.Component):
    """The maximum over ``taps`` consecutive positions along one axis of a stream, at every
    ``stride``-th window: one half of a separable max pooling.

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
    maximum of the open window. Each beat reads and writes each memory once at one address,
    so the stage takes a beat in every cycle.

    With ``mark_last`` the output beats are :func:`~convaccel.hdl.padder.pixel_in_layout`'s,
    ``last`` on the final beat of the final window; the maxima are clamped to
    ``act_min..act_max`` on their way out.

    Latency: 2 cycles (the memories' synchronous read, then the output register). Throughput:
    one beat per cycle.

    Parameters
    ----------
    positions, line, taps, stride, outputs : int
        ``(outputs - 1) * stride + taps <= positions``.
    beat : shape-castable
        An array layout: ``lanes`` signed elements.
    mark_last : bool
    act_min, act_max : int
        Only with ``mark_last``.

    Members
    -------
    i : In(stream.Signature(beat))
    o : Out(stream.Signature(beat or pixel_in_layout(beat)))
    """

    latency = 2

    def __init__(self, *, positions, line, taps, stride, outputs, beat, mark_last=False,
                 act_min=_INT8[0], act_max=_INT8[1]):
        assert (outputs - 1) * stride + taps <= positions
        self._positions = positions
        self._line = line
        self._taps = taps
        self._stride = stride
        self._outputs = outputs
        self._beat = beat
        self._mark_last = mark_last
        self._act = (act_min, act_max)
        out = pixel_in_layout(beat) if mark_last else beat
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
        name = "pool delay line" if self.overlapping else "pool partial maxima"
        return (MemoryShape(name, Shape.cast(self._beat).width, self._line,
                            count=self.memory_count),)

    def _table(self, predicate):
        """A constant of one bit per position."""
        return Const(sum(1 << p for p in range(self._positions) if predicate(p)),
                     self._positions)

    def elaborate(self, platform):
        m = Module()
        layout = data.Layout.cast(self._beat)
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
        for t in range(self.memory_count):
            m.submodules[f"mem{t}"] = mem = memory.Memory(shape=layout, depth=line, init=[])
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
        o_free = ~self.o.valid | self.o.ready
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

        def vmax(a, b):
            return Mux(a.as_signed() > b.as_signed(), a, b)

        result = Signal(layout)
        for lane in range(layout.length):
            value = s1_v[lane]
            if self.overlapping:
                for _, rd in mems:
                    value = vmax(value, rd.data[lane])
            elif mems:
                value = Mux(s1_open, s1_v[lane], vmax(s1_v[lane], mems[0][1].data[lane]))
            m.d.comb += result[lane].eq(value)
        if self.overlapping:
            # shift the beat in: the newest position first, each line one position older
            for t, (wr, _) in enumerate(mems):
                m.d.comb += wr.data.eq(s1_v if t == 0 else mems[t - 1][1].data)
        elif mems:
            m.d.comb += mems[0][0].data.eq(result)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(s1_go & s1_emit):
            m.d.sync += self.o.valid.eq(1)
            if self._mark_last:
                lo, hi = self._act
                for lane in range(layout.length):
                    v = result[lane].as_signed()
                    m.d.sync += self.o.payload.data[lane].eq(
                        Mux(v < lo, lo, Mux(v > hi, hi, v)))
                m.d.sync += self.o.payload.last.eq(s1_last)
            else:
                m.d.sync += self.o.payload.eq(result)
        return m


class MaxPool(wiring.Component):
    """TFLite's ``MAX_POOL_2D`` on a raster stream, as a separable maximum in block RAM.

    The stream is the conv engine's: beats of ``lanes`` channels in raster order, a pixel's
    ``chunks = channels / lanes`` beats in turn, ``last`` on the frame's final beat; the output
    is the pooled frame in the same format. ``Padder`` (by chunks) surrounds the frame with
    ``pads`` of -128: a padding tap never wins, and a window of padding alone (SAME and VALID
    never make one) gives ``max(-128, act_min)`` as TFLite's kernel does. Then a
    :class:`LineMax` along each row (``line = chunks``: the window's maximum per output column)
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
        out_h, out_w = self._output_size
        beat = data.ArrayLayout(signed(8), lanes)
        self._beat = beat
        self._padder = Padder(height=height, width=width, pads=pads, pad_value=_INT8[0],
                              pixel_shape=beat, chunks=self._chunks)
        self._rows = LineMax(positions=padded[1], line=self._chunks, taps=kernel[1],
                             stride=stride[1], outputs=out_w, beat=beat)
        self._cols = LineMax(positions=padded[0], line=out_w * self._chunks, taps=kernel[0],
                             stride=stride[0], outputs=out_h, beat=beat, mark_last=True,
                             act_min=act_min, act_max=act_max)
        super().__init__({
            "i": In(stream.Signature(pixel_in_layout(beat))),
            "o": Out(stream.Signature(pixel_in_layout(beat))),
            "error": Out(1),
        })

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
        return (self._padder, self._rows, self._cols)

    @property
    def latency(self):
        """Cycles from a padded beat offered by the padder to the output beat it completes."""
        return self._rows.latency + self._cols.latency

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
        m.submodules.rows = rows = self._rows
        m.submodules.cols = cols = self._cols
        wiring.connect(m, wiring.flipped(self.i), padder.i)
        wiring.connect(m, padder.o, rows.i)
        wiring.connect(m, rows.o, cols.i)
        wiring.connect(m, cols.o, wiring.flipped(self.o))
        m.d.comb += [padder.start_ok.eq(1), self.error.eq(padder.error)]
        return m
