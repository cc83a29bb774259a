# amaranth: UnusedElaboratable=no
"""A fully connected layer that consumes the pixel stream as it arrives.

LiteRT's reference ``FULLY_CONNECTED`` kernel requantizes in floating point:
``round(double(acc) * scale)`` (:func:`convaccel.quant.requantize_float`). The stage computes
an integer form of it, ``sign(acc) * ((|acc| * M + 2**(shift - 1)) >> shift)``, with one
``M`` per output and one ``shift`` (:func:`exact_requant` finds them) and proves it equal to the
floating-point form for every accumulator the layer can reach, at generation:

- both forms are monotone (non-decreasing) in the accumulator: the double product, C's
  ``round`` and the clamp are, and so is the rounded integer product on either sign;
- so outside the accumulators whose output is not clamped, both clamp alike as soon as they
  agree at one accumulator past each end of that window;
- inside the window (about ``256 / scale`` accumulators per output, intersected with those the
  weights and bias can reach from int8 inputs), every accumulator is compared.

The smallest ``shift`` for which every comparison holds is taken. A plain rounded multiplier
is not always enough: the double product is rounded to 53 bits before C's ``round``, so an
exact product within ``2**-46`` or so of a half can round the other way; the comparison finds
such accumulators, if the layer can reach one, and a longer ``M`` is then tried.
"""

import functools
import math
from fractions import Fraction

import numpy as np
from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..quant import requantize_float
from .padder import pixel_in_layout
from .pool import _clamp_bounds, _positive
from .stage import MemoryShape

__all__ = ["Dense", "exact_requant", "requantize_fixed"]

_INT8 = (-128, 127)
#: The longest multiplier :func:`exact_requant` tries.
MAX_MULTIPLIER_BITS = 48


def requantize_fixed(acc, multipliers, shift, output_zero_point, act_min, act_max):
    """The stage's requantization, bit for bit: ``clamp(sign(acc) * ((|acc| * M + 2**(shift -
    1)) >> shift) + zero point)`` (halves away from zero), ``M`` one per output (``acc``
    ``(outputs, ...)``)."""
    acc = np.asarray(acc, dtype=np.int64)
    m = np.asarray(multipliers, dtype=object).reshape(-1, *(1,) * (acc.ndim - 1))
    bound = int(np.abs(acc).max(initial=0)) * max((int(v) for v in m.ravel()), default=0)
    if bound < 1 << 62:
        mag = np.abs(acc) * m.astype(np.int64)
        q = (mag + (1 << (shift - 1))) >> shift
    else:
        q = ((np.abs(acc).astype(object) * m + (1 << (shift - 1))) >> shift).astype(np.int64)
    value = np.where(acc < 0, -q, q) + output_zero_point
    return np.clip(value, act_min, act_max).astype(np.int64)


def _windows(scales, output_zero_point, act_min, act_max, acc_ranges):
    """Per output, the accumulators to compare: those whose output is not clamped, and one
    more at each end, within the reachable range ``acc_ranges[u]``."""
    out = []
    for scale, (lo, hi) in zip(scales, acc_ranges):
        s = Fraction(scale)
        a_lo = math.floor((act_min - output_zero_point - 1) / s) - 1
        a_hi = math.ceil((act_max - output_zero_point + 1) / s) + 1
        out.append((max(lo, a_lo), min(hi, a_hi)))
    return out


def exact_requant(scales, output_zero_point, act_min, act_max, acc_ranges):
    """``(multipliers, shift)``: the integer form of LiteRT's floating-point requantization
    (:func:`requantize_fixed`) with the shortest multipliers that equal
    :func:`~convaccel.quant.requantize_float` for every accumulator in ``acc_ranges`` (one
    ``(lo, hi)`` per output; the module's doc gives the proof). Raises ``ValueError`` if no
    multiplier of up to ``MAX_MULTIPLIER_BITS`` bits does."""
    scales = [float(s) for s in scales]
    if any(not s > 0 or not math.isfinite(s) for s in scales):
        raise ValueError(f"the requantization scales must be positive, not {scales}")
    multipliers, shift = _exact_requant(tuple(scales), int(output_zero_point), int(act_min),
                                        int(act_max),
                                        tuple((int(lo), int(hi)) for lo, hi in acc_ranges))
    return list(multipliers), shift


@functools.cache
def _exact_requant(scales, output_zero_point, act_min, act_max, acc_ranges):
    windows = _windows(scales, output_zero_point, act_min, act_max, acc_ranges)
    accs = [np.arange(lo, hi + 1, dtype=np.int64) for lo, hi in windows]
    wants = [requantize_float(a[None], [s], output_zero_point, act_min, act_max)[0]
             for a, s in zip(accs, scales)]
    top = max(scales)
    # M = round(scale * 2**shift), the largest of 8 .. MAX_MULTIPLIER_BITS bits
    first = 8 - math.floor(math.log2(top)) - 1
    for shift in range(max(1, first), first + MAX_MULTIPLIER_BITS - 7):
        multipliers = [int(Fraction(s) * 2 ** shift + Fraction(1, 2)) for s in scales]
        if all(np.array_equal(requantize_fixed(a[None], [mult], shift, output_zero_point,
                                               act_min, act_max)[0], want)
               for a, mult, want in zip(accs, multipliers, wants)):
            return tuple(multipliers), shift
    raise ValueError(f"no integer multiplier of up to {MAX_MULTIPLIER_BITS} bits reproduces "
                     f"the floating-point requantization with the scales {scales}")


class Dense(wiring.Component):
    """A ``FULLY_CONNECTED`` layer (after a flatten) on a raster stream: a multiply-accumulate
    per weight as the elements arrive, no frame held.

    The input is the conv engine's stream: beats of ``lanes`` int8 elements, ``last`` on the
    frame's final beat; element ``n`` of the frame (beat ``n // lanes``) is TFLite's flattened
    ``(h, w, c)`` index, which is ``weights``' column ``n``. Each beat is held in a register
    while ``cycles_per_beat = (lanes / rows) * (units / cols)`` weight words are read from a
    ROM (block RAM) in stream order: for each block of ``cols`` units, for each ``rows``
    elements of the beat, a word of ``rows x cols`` weights; ``rows * cols`` multipliers make
    ``cols`` sums of ``rows`` products, each added to its unit's accumulator. One accumulator
    per unit, set to its bias (``bias``: TFLite's, less ``input_zero_point * sum(weights[u])``,
    :attr:`convaccel.network.Dense.engine_bias`) between frames: registers grow with the units,
    not with the frame (a 7x7x16 -> 10 classifier holds 10 accumulators and a beat).

    After the frame's last beat the accumulators are requantized, ``out_lanes`` units at a time
    (:func:`requantize_fixed`, bit-exact with LiteRT's floating-point form: the module's doc),
    and leave as beats of ``out_lanes`` int8 outputs in unit order, ``last`` on the final one:
    the format of a ``1 x 1 x units`` frame with ``out_lanes`` lanes. A new frame is taken once
    the last output beat has left. The beats keep the int8 logits a classifier wants; with
    ``out_lanes = 1`` (the default) they are bytes, the host link's unit.

    Why not fold the units over repeated passes: that needs the frame again, so a frame buffer
    (``inputs`` elements of block RAM) for a saving of ``units - cols`` accumulators; a dense
    head of a CNN has few units and many inputs.

    Latency: :attr:`latency` cycles from the frame's last beat taken to its first output beat
    offered. Throughput: a beat every ``cycles_per_beat`` cycles; :attr:`cycles` for a frame
    with input always valid and output always ready.

    Parameters
    ----------
    weights : array ``(units, inputs)``
        int8, in stream order (:attr:`convaccel.network.Dense.stream_weights`).
    bias : array ``(units,)``
        The engine's bias (int).
    scales : sequence of float
        Per unit, LiteRT's ``input_scale * filter_scale / output_scale`` (doubles).
    output_zero_point, act_min, act_max : int
    lanes : int
        Elements per input beat; divides ``inputs``.
    rows, cols : int
        Elements and units per cycle; ``rows`` divides ``lanes``, ``cols`` divides ``units``.
    out_lanes : int
        Outputs per output beat; divides ``units``.
    requant_multiplier : str
        What the requantizer multiplies with: ``"dsp"`` (the default), a product a cycle (DSP
        blocks), or ``"fabric"``, a shift-add in logic over :attr:`product_cycles` cycles (a
        bit of ``M`` a cycle, no DSP block): the requantizer works once a frame, on ``units``
        values, so on a small device its DSP blocks are better spent on the convolutions.

    Members
    -------
    i : In(stream.Signature(pixel_in_layout(ArrayLayout(signed(8), lanes))))
    o : Out(stream.Signature(pixel_in_layout(ArrayLayout(signed(8), out_lanes))))
    error : Out(1)
        Pulses when a beat's ``last`` disagrees with the frame's length (the frame is still
        counted by its length).
    """

    #: MAC pipeline: the weight read, its register, the products, their sum, the accumulation.
    mac_latency = 4

    @property
    def _ring(self):
        # The accumulators are rings, one per column (:meth:`elaborate`), where a beat's
        # outputs are heads of distinct columns: `out_lanes` divides `cols`.
        return self._cols % self._out_lanes == 0
    def __init__(self, *, weights, bias, scales, output_zero_point=0, act_min=_INT8[0],
                 act_max=_INT8[1], lanes, rows=1, cols=None, out_lanes=1,
                 requant_multiplier="dsp"):
        w = np.asarray(weights)
        if w.ndim != 2 or w.dtype.kind not in "iu" or not w.size:
            raise ValueError(f"weights must be an integer array (units, inputs), not "
                             f"{w.dtype} {w.shape}")
        if w.min() < _INT8[0] or w.max() > _INT8[1]:
            raise ValueError("weights must hold int8 values (-128..127)")
        units, inputs = w.shape
        b = np.asarray(bias)
        if b.shape != (units,) or b.dtype.kind not in "iu":
            raise ValueError(f"bias must be ({units},) integers, one per unit, not "
                             f"{b.dtype} {b.shape}")
        if len(scales) != units:
            raise ValueError(f"scales must be {units}, one per unit, not {len(scales)}")
        _clamp_bounds(act_min, act_max)
        if (isinstance(output_zero_point, bool) or not isinstance(output_zero_point, int)
                or not _INT8[0] <= output_zero_point <= _INT8[1]):
            raise ValueError(f"output_zero_point must be an integer in -128..127, not "
                             f"{output_zero_point!r}")
        if requant_multiplier not in ("dsp", "fabric"):
            raise ValueError(f"requant_multiplier must be 'dsp' or 'fabric', not "
                             f"{requant_multiplier!r}")
        cols = units if cols is None else cols
        for name, value in (("lanes", lanes), ("rows", rows), ("cols", cols),
                            ("out_lanes", out_lanes)):
            _positive(name, value)
        for name, value, whole, what in (("lanes", lanes, inputs, "inputs"),
                                         ("rows", rows, lanes, "lanes"),
                                         ("cols", cols, units, "units"),
                                         ("out_lanes", out_lanes, units, "units")):
            if whole % value:
                divisors = [d for d in range(1, whole + 1) if whole % d == 0]
                raise ValueError(f"{name} must divide {what} ({whole}): one of {divisors}, "
                                 f"not {value}")
        self._weights = w.astype(np.int64)
        self._bias = [int(v) for v in b]
        self._units, self._inputs = units, inputs
        self._lanes, self._rows, self._cols, self._out_lanes = lanes, rows, cols, out_lanes
        self._zp = output_zero_point
        self._act = (act_min, act_max)
        self._requant_multiplier = requant_multiplier
        # Every accumulator int8 inputs can make, per unit: what the requantizer must get right
        # and what the accumulator must hold.
        pos = np.where(self._weights > 0, self._weights, 0).sum(axis=1)
        neg = np.where(self._weights < 0, self._weights, 0).sum(axis=1)
        self._acc_ranges = [(bi - 128 * int(p) + 127 * int(n), bi + 127 * int(p) - 128 * int(n))
                            for bi, p, n in zip(self._bias, pos, neg)]
        bound = max(max(abs(lo), abs(hi)) for lo, hi in self._acc_ranges)
        self._acc_bits = bound.bit_length() + 1
        self._multipliers, self._shift = exact_requant(
            scales, output_zero_point, act_min, act_max, self._acc_ranges)
        beat = data.ArrayLayout(signed(8), lanes)
        super().__init__({
            "i": In(stream.Signature(pixel_in_layout(beat))),
            "o": Out(stream.Signature(pixel_in_layout(data.ArrayLayout(signed(8),
                                                                       out_lanes)))),
            "error": Out(1),
        })

    @classmethod
    def of(cls, stage, *, lanes, rows=1, cols=None, out_lanes=1, requant_multiplier="dsp"):
        """The stage for a network's :class:`convaccel.network.Dense`."""
        return cls(weights=stage.stream_weights, bias=stage.engine_bias, scales=stage.scales,
                   output_zero_point=stage.output_zero_point, act_min=stage.act_min,
                   act_max=stage.act_max, lanes=lanes, rows=rows, cols=cols,
                   out_lanes=out_lanes, requant_multiplier=requant_multiplier)

    # -- figures -------------------------------------------------------------------------------

    @property
    def units(self):
        return self._units

    @property
    def input_beats(self):
        return self._inputs // self._lanes

    @property
    def output_beats(self):
        return self._units // self._out_lanes

    @property
    def cycles_per_beat(self):
        return (self._lanes // self._rows) * (self._units // self._cols)

    @property
    def acc_bits(self):
        """Accumulator width: every sum int8 inputs can make, with its sign."""
        return self._acc_bits

    @property
    def requant(self):
        """``(multipliers, shift)`` (:func:`exact_requant`)."""
        return list(self._multipliers), self._shift

    @property
    def multiplier_bits(self):
        return max(self._multipliers).bit_length()

    @property
    def requant_multiplier(self):
        return self._requant_multiplier

    @property
    def product_cycles(self):
        """Cycles of the requantizer's product: 1 (``"dsp"``), or a bit of ``M`` a cycle
        (``"fabric"``)."""
        return 1 if self._requant_multiplier == "dsp" else self.multiplier_bits

    @property
    def requant_latency(self):
        """Requantizer pipeline: select and magnitude, the product, the rounding division,
        the sign, zero point and clamp."""
        return 3 + self.product_cycles

    @property
    def multipliers(self):
        """Operand widths of every multiplier built of DSP blocks: ``rows * cols`` of 8 x 8
        (signed), then (``requant_multiplier = "dsp"``) ``out_lanes`` of the requantizer's
        (accumulator magnitude x ``M``, unsigned)."""
        requant = ((self._acc_bits - 1, self.multiplier_bits),) * self._out_lanes \
            if self._requant_multiplier == "dsp" else ()
        return ((8, 8),) * (self._rows * self._cols) + requant

    @property
    def weight_depth(self):
        return self.input_beats * self.cycles_per_beat

    @property
    def memories(self):
        return (MemoryShape("dense weights", 8 * self._rows * self._cols, self.weight_depth,
                            rom=True),)

    @property
    def latency(self):
        """Cycles from the frame's last beat taken to its first output beat offered: that
        beat's ``cycles_per_beat`` cycles, the MAC pipeline, a cycle to start the output and the
        requantizer's pipeline."""
        return self.cycles_per_beat + self.mac_latency + 1 + self.requant_latency

    @property
    def cycles(self):
        """Cycles of a frame with input always valid and output always ready, from the cycle
        its first beat is taken to the one its last output beat is taken, both counted: a beat
        every ``cycles_per_beat`` cycles, then ``requant_latency + 1`` cycles per output beat.
        The next frame's first beat is taken in the cycle after (frames do not overlap), so
        this is also the interval between frames."""
        return (self.input_beats * self.cycles_per_beat + self.mac_latency + 1
                + self.output_beats * (self.requant_latency + 1))

    @property
    def interval(self):
        return self.cycles

    # -- the hardware --------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        lanes, rows, cols = self._lanes, self._rows, self._cols
        units, out_lanes = self._units, self._out_lanes
        subwords, blocks = lanes // rows, units // cols
        beats, depth = self.input_beats, self.weight_depth
        acc_shape = signed(self._acc_bits)

        # The ROM, word k = (beat * blocks + g) * subwords + s: word[r][c] = weights[g * cols +
        # c][beat * lanes + s * rows + r]
        w = self._weights.reshape(units, beats, subwords, rows)          # [u, beat, s, r]
        w = w.reshape(blocks, cols, beats, subwords, rows).transpose(2, 0, 3, 4, 1)
        word = data.ArrayLayout(data.ArrayLayout(signed(8), cols), rows)
        m.submodules.weights = rom = memory.Memory(
            shape=word, depth=depth, init=w.reshape(depth, rows, cols).tolist())
        rd = rom.read_port()

        # -- stage 0: the beat held, its words read in turn ------------------------------------
        beat = Signal(data.ArrayLayout(signed(8), lanes))
        busy = Signal()
        closing = Signal()          # the frame's last beat is taken: no beat until it has left
        s = Signal(range(subwords))
        s_end = Signal(init=subwords == 1)
        g = Signal(range(blocks))
        g_end = Signal(init=blocks == 1)
        k = Signal(range(depth))
        n = Signal(range(beats))    # the beat to take next
        beat_last = Signal()        # the beat held is the frame's last
        seq_last = busy & s_end & g_end
        m.d.comb += self.i.ready.eq((~busy | seq_last) & ~closing)
        take = self.i.valid & self.i.ready
        m.d.comb += self.error.eq(take & (self.i.payload.last != (n == beats - 1)))
        m.d.comb += [rd.addr.eq(k), rd.en.eq(1)]

        x1 = Signal(data.ArrayLayout(signed(8), rows))
        g1 = Signal.like(g)
        v1 = Signal()
        last1 = Signal()
        s_end1 = Signal()           # the block's last word
        m.d.sync += [v1.eq(busy), g1.eq(g), last1.eq(seq_last & beat_last), s_end1.eq(s_end)]
        parts = [beat.as_value()[j * rows * 8:(j + 1) * rows * 8] for j in range(subwords)]
        m.d.sync += x1.eq(Array(parts)[s] if subwords > 1 else parts[0])

        with m.If(busy):
            m.d.sync += k.eq(Mux(k == depth - 1, 0, k + 1))
            if subwords > 1:
                m.d.sync += [s.eq(Mux(s_end, 0, s + 1)), s_end.eq(~s_end & (s == subwords - 2))]
            if blocks > 1:
                with m.If(s_end):
                    m.d.sync += [g.eq(Mux(g_end, 0, g + 1)),
                                 g_end.eq(~g_end & (g == blocks - 2))]
            with m.If(seq_last):
                m.d.sync += busy.eq(0)
        with m.If(take):
            m.d.sync += [beat.eq(self.i.payload.data), busy.eq(1), beat_last.eq(n == beats - 1),
                         n.eq(Mux(n == beats - 1, 0, n + 1))]
            with m.If(n == beats - 1):
                m.d.sync += closing.eq(1)

        # -- stage 1: the products, summed over the rows --------------------------------------
        # The ROM's word is registered (in the block RAM's output register where it has one),
        # then each product (in the multiplier's), then their sum: a block RAM's read, a
        # multiplier and an adder tree in one cycle were 25 ns on the ECP5.
        def delayed(stage, **signals):
            out = [Signal(Value.cast(sig).shape() if not isinstance(sig, data.View)
                          else sig.shape(), name=f"{name}_{stage}")
                   for name, sig in signals.items()]
            m.d.sync += [o.eq(i) for o, i in zip(out, signals.values())]
            return out

        word = Signal(rd.data.shape())
        m.d.sync += word.eq(rd.data)
        xw, vw, gw, lastw, s_endw = delayed("w", x=x1, v=v1, g=g1, last=last1, s_end=s_end1)
        prods = [[Signal(signed(16), name=f"prod{r}_{c}") for c in range(cols)]
                 for r in range(rows)]
        m.d.sync += [prods[r][c].eq(xw[r] * word[r][c]) for r in range(rows)
                     for c in range(cols)]
        vp, gp, lastp, s_endp = delayed("p", v=vw, g=gw, last=lastw, s_end=s_endw)
        psum_shape = signed(16 + (rows - 1).bit_length() + 1)
        p2 = Signal(data.ArrayLayout(psum_shape, cols))
        g2 = Signal.like(g)
        v2 = Signal()
        last2 = Signal()
        s_end2 = Signal()
        m.d.sync += [v2.eq(vp), g2.eq(gp), last2.eq(lastp), s_end2.eq(s_endp)]
        for c in range(cols):
            m.d.sync += p2[c].eq(sum(prods[r][c] for r in range(rows)))

        # -- stage 2: the accumulators ---------------------------------------------------------
        accs = [Signal(acc_shape, init=self._bias[u], name=f"acc{u}") for u in range(units)]
        ring = self._ring
        if ring:
            # A ring of `blocks` accumulators per column c (units g * cols + c): its head is
            # the next to be added to (the blocks come in order) or read (the units leave in
            # order), and moves to the back after its block's last word or its reading. An
            # adder per column, no multiplexer of the accumulators.
            banks = [[accs[g_ * cols + c] for g_ in range(blocks)] for c in range(cols)]
            read = Signal(cols)     # (the output's: these columns' heads are read)
            for c, bank in enumerate(banks):
                head = Signal(acc_shape, name=f"head{c}")
                m.d.comb += head.eq(Mux(v2, bank[0] + p2[c], bank[0]))
                with m.If((v2 & s_end2) | read[c]):
                    m.d.sync += [a.eq(b) for a, b in zip(bank, bank[1:])]
                    m.d.sync += bank[-1].eq(head)
                with m.Elif(v2):
                    m.d.sync += bank[0].eq(head)
        else:
            for u in range(units):
                with m.If(v2 & (g2 == u // cols)):
                    m.d.sync += accs[u].eq(accs[u] + p2[u % cols])

        # -- the output: requantize `out_lanes` units a beat ----------------------------------
        out = Signal()              # the output phase
        phase = Signal(range(self.requant_latency + 1))
        ob = Signal(range(self.output_beats))
        with m.If(v2 & last2):
            m.d.sync += [out.eq(1), phase.eq(0), ob.eq(0)]

        mags = [Signal(self._acc_bits - 1, name=f"mag{lane}") for lane in range(out_lanes)]
        negs = [Signal(name=f"neg{lane}") for lane in range(out_lanes)]
        mults = [Signal(self.multiplier_bits, name=f"mult{lane}") for lane in range(out_lanes)]
        shift, zp = self._shift, self._zp
        mbits = self.multiplier_bits
        # The fabric kind's product from the least significant bit of M up, a bit dropped each
        # step (floor((t + b_j |acc|) / 2) after floor(P_j / 2**j) is floor(P_{j+1} /
        # 2**(j+1))): the register is as wide as the magnitude, not as the product. Where the
        # shift is at least M's width (scales below 1), the rounding's 2**(shift - 1) joins it
        # afterwards (or as the last step's carry); else the whole product, M's top bit first.
        lsb_first = self._requant_multiplier != "dsp" and shift >= mbits
        prods = [Signal(self._acc_bits - 1 + (0 if lsb_first else mbits), name=f"prod{lane}")
                 for lane in range(out_lanes)]
        lo, hi = self._act
        if ring:
            # the beat's units are at the heads of the `out_lanes` columns from `first` on
            first = Signal(range(cols))
            with m.If(self.o.valid & self.o.ready):
                m.d.sync += first.eq(Mux(first == cols - out_lanes, 0, first + out_lanes))
            m.d.comb += read.eq(Cat(*[out & (phase == 0)
                                      & (first == c // out_lanes * out_lanes)
                                      for c in range(cols)]))
        for lane in range(out_lanes):
            if ring:
                heads = [bank[0] for bank in banks]
                acc = Array(heads)[first + lane] if cols > 1 else heads[0]
            else:
                acc = Array(accs[b * out_lanes + lane] for b in range(self.output_beats))[ob]
            mult = Array(C(self._multipliers[b * out_lanes + lane], self.multiplier_bits)
                         for b in range(self.output_beats))[ob]
            with m.If(out & (phase == 0)):
                m.d.sync += [negs[lane].eq(acc < 0), mags[lane].eq(Mux(acc < 0, -acc, acc)),
                             mults[lane].eq(mult), prods[lane].eq(0)]
            if self._requant_multiplier == "dsp":
                with m.If(out & (phase == 1)):
                    m.d.sync += prods[lane].eq(mags[lane] * mults[lane])
            elif lsb_first:
                # Shift-add, the least significant bit of M first: one adder as wide as the
                # magnitude, no DSP block.
                carry = (phase == mbits) if shift == mbits else 0
                step = prods[lane] + Mux(mults[lane][0], mags[lane], 0) + carry
                with m.If(out & (phase >= 1) & (phase <= self.product_cycles)):
                    m.d.sync += [prods[lane].eq(step >> 1), mults[lane].eq(mults[lane] >> 1)]
            else:
                # Shift-add, the most significant bit of M first: one adder, no DSP block.
                with m.If(out & (phase >= 1) & (phase <= self.product_cycles)):
                    m.d.sync += [prods[lane].eq((prods[lane] << 1) +
                                                Mux(mults[lane][-1], mags[lane], 0)),
                                 mults[lane].eq(mults[lane] << 1)]
            if lsb_first:
                # (floor(P / 2**M), the rounding's 2**(shift - 1) being a multiple of 2**M)
                rest = shift - mbits
                q = Signal(signed(len(prods[lane]) + 2), name=f"q{lane}")
                m.d.comb += q.eq((prods[lane] + (1 << (rest - 1) if rest else 0)) >> rest)
            else:
                q = Signal(signed(max(2, len(prods[lane]) - shift + 2)), name=f"q{lane}")
                m.d.comb += q.eq((prods[lane] + (1 << (shift - 1))) >> shift)
            # The rounded magnitude (never negative) registered, saturated at 2**sat - 1: past
            # the clamp bounds' distance from the zero point, with its sign the clamp gives a
            # bound either way; then the sign, the zero point and the clamp on `sat` bits (9 for
            # int8). (The rounding's adder, the sign, the zero point and the clamp in one
            # cycle, as wide as the magnitude, were the digits network's critical path on the
            # UP5K, 27.8 MHz of 36.)
            sat = max(hi - zp, zp - lo, 1).bit_length() + 1
            q_sat = Signal(sat, name=f"q{lane}_sat")
            saturated = q[sat:].any() if len(q) > sat else 0
            with m.If(out & (phase == 1 + self.product_cycles)):
                m.d.sync += q_sat.eq(Mux(saturated, (1 << sat) - 1, q[:sat]))
            v = Signal(signed(sat + 3), name=f"v{lane}")
            m.d.comb += v.eq(Mux(negs[lane], -q_sat, q_sat) + zp)
            with m.If(out & (phase == 2 + self.product_cycles)):
                m.d.sync += self.o.payload.data[lane].eq(Mux(v < lo, lo, Mux(v > hi, hi, v)))
        with m.If(out & (phase < self.requant_latency)):
            m.d.sync += phase.eq(phase + 1)
        with m.If(out & (phase == self.requant_latency - 1)):
            m.d.sync += [self.o.valid.eq(1),
                         self.o.payload.last.eq(ob == self.output_beats - 1)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [self.o.valid.eq(0), phase.eq(0), ob.eq(ob + 1)]
            with m.If(ob == self.output_beats - 1):
                m.d.sync += [out.eq(0), closing.eq(0), ob.eq(0),
                             *(a.eq(b) for a, b in zip(accs, self._bias))]
        return m
