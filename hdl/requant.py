from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..quant import (FABRIC_MULTIPLY_CYCLES, MAX_LEFT_SHIFT, MULTIPLIER_BITS, OUTPUT_RANGE,
                     SATURATE_BITS, SHIFT_BITS)
from .stage import MemoryShape

__all__ = ["Requantizer", "group_layout", "REQUANT_DATA_BITS"]

#: The width of the requantizer's load data: a multiplier as a non-negative signed value.
REQUANT_DATA_BITS = MULTIPLIER_BITS + 1


def group_layout(value_shape, cols, tag_shape):
    """A group of ``cols`` output channels of one pixel, with the array's fold tag."""
    return data.StructLayout({"data": data.ArrayLayout(value_shape, cols), "tag": tag_shape})



class Requantizer(wiring.Component):
    """Scales complete accumulators to int8 as TFLite's reference kernels do, bit for bit
    (:func:`convaccel.quant.requantize_hw`).

    Per output channel with multiplier ``m`` and shift ``s`` (left if positive, then
    ``e = max(-s, 0)`` to the right)::

        value = saturate(acc, SATURATE_BITS) << s if s > 0 else acc
        high  = (value * m + 2**30) >> 31                   # rounding doubling high multiply
        r     = (high + 2**(e-1) - (high < 0)) >> e         # RoundingDivideByPOT (e > 0)
        out   = clamp(r + zero_point, act_min, act_max)

    Groups of ``cols`` accumulators arrive at most once every ``row_folds`` cycles (a
    reduction's folds). ``units`` multipliers take the group's channels in ``passes``
    consecutive passes, a pass every :attr:`interval` cycles, the fewest units that finish a
    group in ``row_folds`` cycles, so a group never waits: each leaves exactly :attr:`latency`
    cycles after it arrived. A unit is :attr:`PIPELINE` stages, none chaining more than one
    carry or a few LUT levels. Its product is made of

    - ``multiplier = "dsp"``: four registered partial products of at most 16 x 16 bits (a DSP
      block each on iCE40 and ECP5) and two registered sums; a pass every cycle.
    - ``multiplier = "fabric"``: no DSP block, a shift-add in logic over
      :data:`~convaccel.quant.FABRIC_MULTIPLY_CYCLES` (16) cycles, one radix-4 Booth digit of
      the multiplier a cycle (one add or subtract of the value or its double, a single carry
      chain); a pass every 16 cycles, so it needs ``row_folds >= 16``.

    The rounding division's shift takes two stages.

    The multipliers and shifts live in two memories with a word of ``cols`` values per column
    group (``col_folds`` words); the group of an arriving beat is counted here (the groups of a
    pixel arrive in order, the last tagged ``last_group``). The zero point and the clamp bounds
    are registers.

    Parameters
    ----------
    cols, col_folds, row_folds : int
        ``col_folds`` is the column groups of a pixel (the engine's column blocks: ``groups *
        col_folds`` of a grouped layer).
    acc_shape, tag_shape : shape-castable
    multiplier : str
        ``"dsp"`` or ``"fabric"`` (:attr:`convaccel.spec.Folding.requant_multiplier`).

    Members
    -------
    i : In(stream.Signature(group_layout(acc_shape, cols, tag_shape), always_ready=True))
    o : Out(stream.Signature(group_layout(signed(8), cols, tag_shape), always_ready=True))
    w_addr : In(range(col_folds))
    w_data : In(signed(REQUANT_DATA_BITS))
    m_en, s_en : In(cols)
        Write the multiplier (``m_en``) or the shift (``s_en``) of column ``c`` of group
        ``w_addr`` from ``w_data``.
    c_en : In(3)
        Write the output zero point (bit 0), ``act_min`` (bit 1) or ``act_max`` (bit 2).
    """

    def __init__(self, *, cols, col_folds, row_folds, acc_shape, tag_shape, multiplier="dsp"):
        assert multiplier in ("dsp", "fabric")
        self._cols = cols
        self._col_folds = col_folds
        self._acc_shape = Shape.cast(acc_shape)
        self._tag_shape = tag_shape
        self._multiplier = multiplier
        # (the spec refuses "fabric" with fewer folds: a unit would still be busy)
        assert row_folds >= self.interval
        # the fewest units that take a group's channels within `row_folds` cycles
        self.units = -(-cols // (row_folds // self.interval))
        self.passes = -(-cols // self.units)
        super().__init__({
            "i": In(stream.Signature(group_layout(acc_shape, cols, tag_shape),
                                     always_ready=True)),
            "o": Out(stream.Signature(group_layout(signed(8), cols, tag_shape),
                                      always_ready=True)),
            "w_addr": In(range(col_folds)),
            "w_data": In(signed(REQUANT_DATA_BITS)),
            "m_en": In(cols),
            "s_en": In(cols),
            "c_en": In(3),
        })

    @property
    def multiplier(self):
        """``"dsp"`` or ``"fabric"``: what the units' multipliers are built of."""
        return self._multiplier

    @property
    def interval(self):
        """Cycles between a unit's successive values: 1 (``"dsp"``, pipelined) or
        :data:`~convaccel.quant.FABRIC_MULTIPLY_CYCLES` (``"fabric"``)."""
        return 1 if self._multiplier == "dsp" else FABRIC_MULTIPLY_CYCLES

    @property
    def _product_stages(self):
        # registers from the operands to the high half: the partial products, two sums and the
        # high half (dsp); one per Booth digit, the last one's sum the high half (fabric)
        return 4 if self._multiplier == "dsp" else FABRIC_MULTIPLY_CYCLES

    @property
    def PIPELINE(self):
        """Cycles from the selection of a channel to its result: operands (selected,
        saturated, shifted), the product's stages up to the high half (4 or 16), the rounding
        division's sum and its shift in two steps, zero point and clamp."""
        return 3 + self._product_stages + 4

    @property
    def latency(self):
        """Cycles from a group's arrival on ``i`` to its departure on ``o``: it is registered,
        its passes issued one every :attr:`interval` cycles, the last one's results leave
        ``PIPELINE`` cycles later."""
        return 1 + (self.passes - 1) * self.interval + self.PIPELINE

    @property
    def multipliers(self):
        """The operand widths ``(signed, unsigned)`` of each unit's multiplier built of DSP
        blocks: the accumulator times the multiplier (the fit check counts the DSP blocks they
        take); none for ``"fabric"``."""
        if self._multiplier == "fabric":
            return ()
        w = self._value_width
        # four partial products: (16 unsigned or the signed rest) x (16 or 15 unsigned)
        return ((16, 16), (16, MULTIPLIER_BITS - 16), (w - 16, 16),
                (w - 16, MULTIPLIER_BITS - 16)) * self.units

    #: A fabric unit's logic per device family beyond a DSP unit's, ``(lut, ff)`` as
    #: ``(c0 + c1 * value bits)``: Yosys's mapping of the requantizer alone (the board's
    #: synthesis, :func:`convaccel.boards.cost.synth_cells`), the fabric kind's minus the dsp
    #: kind's per unit, measured at value widths 19 and 33.
    FABRIC_UNIT_LOGIC = {
        "ice40": {"lut": (0.0, 0.0), "ff": (0.0, 0.0)},
        "ecp5": {"lut": (0.0, 0.0), "ff": (0.0, 0.0)},
    }

    def logic(self, family):
        """``(lut, ff)`` that this requantizer's multipliers add to the fit's logic model
        (calibrated on the dsp kind, so 0 for it; ECP5's figures stand for Gowin's)."""
        if self._multiplier == "dsp":
            return (0, 0)
        model = self.FABRIC_UNIT_LOGIC.get(family, self.FABRIC_UNIT_LOGIC["ecp5"])
        w = self._value_width
        return tuple(self.units * (model[k][0] + model[k][1] * w) for k in ("lut", "ff"))

    @property
    def _value_width(self):
        # the multiplier's signed operand: the accumulator, or a saturated one shifted left
        return max(self._acc_shape.width, SATURATE_BITS + MAX_LEFT_SHIFT)

    @property
    def memories(self):
        return (
            MemoryShape("requant multipliers", self._cols * MULTIPLIER_BITS,
                        self._col_folds),
            MemoryShape("requant shifts", self._cols * SHIFT_BITS, self._col_folds),
        )

    def elaborate(self, platform):
        m = Module()
        cols, col_folds, units, passes = self._cols, self._col_folds, self.units, self.passes
        interval = self.interval
        beat = self.i.payload

        mults = memory.Memory(shape=data.ArrayLayout(MULTIPLIER_BITS, cols),
                              depth=col_folds, init=[])
        shifts = memory.Memory(shape=data.ArrayLayout(signed(SHIFT_BITS), cols), depth=col_folds,
                               init=[])
        m.submodules.mults = mults
        m.submodules.shifts = shifts
        reads = []
        for mem, en in ((mults, self.m_en), (shifts, self.s_en)):
            wr = mem.write_port(granularity=1)
            m.d.comb += [wr.addr.eq(self.w_addr), wr.en.eq(en)]
            for c in range(cols):
                m.d.comb += wr.data[c].eq(self.w_data)
            reads.append(mem.read_port())
        mult_rd, shift_rd = reads

        lo, hi = OUTPUT_RANGE
        zero_point = Signal(signed(8))
        act_min = Signal(signed(8), init=lo)
        act_max = Signal(signed(8), init=hi)
        for bit, reg in enumerate((zero_point, act_min, act_max)):
            with m.If(self.c_en[bit]):
                m.d.sync += reg.eq(self.w_data)

        # The parameters of the arriving group are on the read ports when it arrives (the
        # address moves to the next group in the cycle a group arrives).
        group = Signal(range(col_folds))
        succ = Signal(range(col_folds))
        m.d.comb += succ.eq(Mux(group == col_folds - 1, 0, group + 1))
        next_group = Mux(beat.tag.last_group, 0, succ)
        addr = Mux(self.i.valid, next_group, group)
        m.d.comb += [mult_rd.addr.eq(addr), shift_rd.addr.eq(addr)]
        with m.If(self.i.valid):
            m.d.sync += group.eq(next_group)

        # The group is registered as it arrives, then its channels pass through the units
        # from there, a pass every `interval` cycles.
        values = Signal(data.ArrayLayout(self._acc_shape, cols))
        params_mult = Signal(data.ArrayLayout(MULTIPLIER_BITS, cols))
        params_shift = Signal(data.ArrayLayout(signed(SHIFT_BITS), cols))
        held_tag = Signal(self._tag_shape)
        # `step`: the pass to issue (`passes` when all are issued); `wait`: cycles before it
        step = Signal(range(passes + 1), init=passes)
        wait = Signal(range(interval))
        with m.If(self.i.valid):
            m.d.sync += [values.eq(beat.data), held_tag.eq(beat.tag),
                         params_mult.eq(mult_rd.data), params_shift.eq(shift_rd.data),
                         step.eq(0), wait.eq(0)]
        with m.Elif(step != passes):
            if interval == 1:
                m.d.sync += step.eq(step + 1)
            else:
                with m.If(wait == interval - 1):
                    m.d.sync += [step.eq(step + 1), wait.eq(0)]
                with m.Else():
                    m.d.sync += wait.eq(wait + 1)

        issue = Signal()                               # a pass is selected this cycle
        pass_index = Signal(range(max(passes, 2)))
        m.d.comb += [
            issue.eq((step != passes) & (wait == 0)),
            pass_index.eq(step),
        ]

        # Per unit, PIPELINE registers (see there).
        width = self._value_width
        limit = 1 << (SATURATE_BITS - 1)
        results = Signal(data.ArrayLayout(signed(8), cols))
        delay = [Signal(range(max(passes, 2)), name=f"pass_d{k}")
                 for k in range(self.PIPELINE - 1)]
        valid = [Signal(name=f"valid_d{k}") for k in range(self.PIPELINE - 1)]
        m.d.sync += [delay[0].eq(pass_index), valid[0].eq(issue)]
        for k in range(1, self.PIPELINE - 1):
            m.d.sync += [delay[k].eq(delay[k - 1]), valid[k].eq(valid[k - 1])]

        for u in range(units):
            channels = [p * units + u for p in range(passes)]
            # Operands, over three stages: this pass's channel; saturated (where its top bits
            # are not all copies of the sign: LUTs, no carry); shifted left for a positive
            # shift, the right shift apart.
            # (at least SATURATE_BITS wide, sign-extended, for the saturation's test)
            sel_x = Signal(signed(max(self._acc_shape.width, SATURATE_BITS)), name=f"sel_x{u}")
            sel_m = Signal(MULTIPLIER_BITS, name=f"sel_m{u}")
            sel_s = Signal(signed(SHIFT_BITS), name=f"sel_s{u}")
            with m.Switch(pass_index):
                for p, ch in enumerate(channels):
                    if ch < cols:
                        with m.Case(p):
                            m.d.sync += [sel_x.eq(values[ch]), sel_m.eq(params_mult[ch]),
                                         sel_s.eq(params_shift[ch])]
            top = sel_x[SATURATE_BITS - 1:]
            sat_x = Signal(signed(SATURATE_BITS), name=f"sat_x{u}")
            raw_x = Signal.like(sel_x, name=f"raw_x{u}")
            sat_m = Signal.like(sel_m, name=f"sat_m{u}")
            sat_s = Signal.like(sel_s, name=f"sat_s{u}")
            m.d.sync += [
                sat_x.eq(Mux((top == 0) | (top == (1 << len(top)) - 1), sel_x[:SATURATE_BITS],
                             Mux(sel_x[-1], -limit, limit - 1))),
                raw_x.eq(sel_x), sat_m.eq(sel_m), sat_s.eq(sel_s),
            ]
            x = Signal(signed(width), name=f"x{u}")
            shift1 = Signal(SHIFT_BITS - 1, name=f"e{u}_1")      # the right shift
            operands = [
                x.eq(Mux(sat_s > 0, sat_x << sat_s[:MAX_LEFT_SHIFT.bit_length()], raw_x)),
                shift1.eq(Mux(sat_s < 0, -sat_s, 0)),
            ]
            # `high` and `e_sum` (the right shift) are aligned: the rounding division's first
            # stage reads them.
            high = Signal(signed(width + 1), name=f"high{u}")
            e_sum = Signal.like(shift1, name=f"e{u}_sum")
            if self._multiplier == "dsp":
                mult = Signal(MULTIPLIER_BITS, name=f"m{u}")
                m.d.sync += [*operands, mult.eq(sat_m)]
                self._dsp_product(m, u, x, mult, high)
                e = [shift1]
                for k in range(4):
                    e.append(Signal.like(shift1, name=f"e{u}_{k + 2}"))
                    m.d.sync += e[-1].eq(e[-2])
                m.d.comb += e_sum.eq(e[-1])
            else:
                # the operands are held for the unit's 16 cycles, from the pass's third stage
                with m.If(valid[1]):
                    m.d.sync += operands
                self._fabric_product(m, u, x, sat_m, high, load=valid[1],
                                     last=valid[1 + FABRIC_MULTIPLY_CYCLES])
                m.d.sync += e_sum.eq(shift1)
            # RoundingDivideByPOT: add half (less one for a negative value), then shift right;
            # the result saturated to SATURATE_BITS (past them the clamp decides).
            e_coarse = Signal.like(shift1, name=f"e{u}_coarse")
            e_fine = Signal.like(shift1, name=f"e{u}_fine")
            m.d.sync += [e_coarse.eq(e_sum), e_fine.eq(e_coarse)]
            half = (Const(1, 1) << e_sum)[1:]         # 2**(e-1), or 0 for e = 0
            total = Signal(signed(max(width + 1, 32) + 1), name=f"sum{u}")
            m.d.sync += total.eq(high + half - (high[-1] & (e_sum != 0)))
            # the shift in two steps: by the multiple of 8, then by the rest
            coarse = Signal.like(total, name=f"coarse{u}")
            m.d.sync += coarse.eq(total >> Cat(Const(0, 3), e_coarse[3:]))
            shifted = Signal.like(total, name=f"shifted{u}")
            m.d.comb += shifted.eq(coarse >> e_fine[:3])
            # saturated where its top bits are not all copies of the sign (LUTs, no carry)
            top = shifted[SATURATE_BITS - 1:]
            fits = (top == 0) | (top == (1 << len(top)) - 1)
            rounded = Signal(signed(SATURATE_BITS), name=f"r{u}")
            m.d.sync += rounded.eq(Mux(fits, shifted[:SATURATE_BITS],
                                       Mux(shifted[-1], -limit, limit - 1)))
            shifted_zp = Signal(signed(SATURATE_BITS + 1), name=f"z{u}")
            m.d.comb += shifted_zp.eq(rounded + zero_point)
            clamped = Mux(shifted_zp < act_min, act_min,
                          Mux(shifted_zp > act_max, act_max, shifted_zp[:8]))
            with m.Switch(delay[-1]):
                for p, ch in enumerate(channels):
                    if ch < cols:
                        with m.Case(p):
                            with m.If(valid[-1]):
                                m.d.sync += results[ch].eq(clamped)

        # The group leaves the cycle after its last pass's results are written.
        tags = [Signal(self._tag_shape, name=f"tag_d{k}") for k in range(self.PIPELINE)]
        last_pass = Signal()
        m.d.comb += last_pass.eq(issue & (pass_index == passes - 1))
        done = [Signal(name=f"done_d{k}") for k in range(self.PIPELINE)]
        m.d.sync += [done[0].eq(last_pass), tags[0].eq(held_tag)]
        for k in range(1, self.PIPELINE):
            m.d.sync += [done[k].eq(done[k - 1]), tags[k].eq(tags[k - 1])]
        m.d.comb += [
            self.o.valid.eq(done[-1]),
            self.o.payload.data.eq(results),
            self.o.payload.tag.eq(tags[-1]),
        ]
        return m

    @staticmethod
    def _dsp_product(m, u, x, mult, high):
        # The product from four partial products of at most 16 x 16 bits (one DSP block each
        # on iCE40), summed over two registered stages: no stage chains more than one carry;
        # then the rounding doubling high multiply.
        x_lo, x_hi = x[:16], x[16:].as_signed()
        m_lo, m_hi = mult[:16], mult[16:]
        pp = {}
        for name, a, b in (("ll", x_lo, m_lo), ("lh", x_lo, m_hi), ("hl", x_hi, m_lo),
                           ("hh", x_hi, m_hi)):
            pp[name] = Signal.like(a * b, name=f"pp_{name}{u}")
            m.d.sync += pp[name].eq(a * b)
        t_lo = Signal.like(pp["ll"] + (pp["lh"] << 16), name=f"t_lo{u}")
        t_hi = Signal.like(pp["hl"] + (pp["hh"] << 16), name=f"t_hi{u}")
        m.d.sync += [t_lo.eq(pp["ll"] + (pp["lh"] << 16)),
                     t_hi.eq(pp["hl"] + (pp["hh"] << 16))]
        product = Signal(signed(len(x) + MULTIPLIER_BITS + 1), name=f"p{u}")
        m.d.sync += product.eq(t_lo + (t_hi << 16))
        m.d.sync += high.eq((product + (1 << 30)) >> 31)

    @staticmethod
    def _fabric_product(m, u, x, mult, high, *, load, last):
        # (`x` is loaded with `load`, from the stage that presents `mult`)
        # A shift-add over the multiplier's radix-4 Booth digits d_k = -2 m[2k+1] + m[2k] +
        # m[2k-1] (m[-1] = m[31] = 0, so sum d_k 4**k = m), least significant first. `acc`
        # holds floor(x * sum_{j<k} d_j 4**j / 4**k): the bits below 4**k never change again,
        # so they are dropped, two a step. A step adds 0, x or 2x, or their complement with a
        # carry in (-x, -2x), and shifts right by 2: one carry chain, |acc| < 2/3 |x|. The
        # rounding's 2**30 = 4**15 is a carry into the last step (d_15 = m[30] + m[29] is never
        # negative, so that carry is free), whose sum, halved, is (x * m + 2**30) >> 31.
        # The operands are loaded (`load`) the cycle before the first step; the last step
        # (`last`) may coincide with the next value's load.
        width = len(x)
        digits = Signal(MULTIPLIER_BITS + 2, name=f"booth{u}")    # m[-1] .. m[31], shifted
        acc = Signal(signed(width + 1), name=f"acc{u}")
        b = digits[:3]
        one = b[0] ^ b[1]
        two = (b[2] & ~b[1] & ~b[0]) | (~b[2] & b[1] & b[0])
        neg = b[2] & ~(b[1] & b[0])
        term = Signal(signed(width + 1), name=f"term{u}")
        m.d.comb += term.eq(Mux(two, x << 1, Mux(one, x, 0)))
        addend = Signal(signed(width + 1), name=f"addend{u}")
        m.d.comb += addend.eq(Mux(neg, ~term, term))
        carry = neg | last
        # one adder with a carry in: (2 acc + 1) + (2 addend + carry), halved
        total = Signal(signed(width + 3), name=f"step{u}")
        m.d.comb += total.eq((Cat(Const(1, 1), acc).as_signed() +
                              Cat(carry, addend).as_signed()) >> 1)
        with m.If(load):
            m.d.sync += [digits.eq(Cat(Const(0, 1), mult, Const(0, 1))), acc.eq(0)]
        with m.Else():
            m.d.sync += [digits.eq(digits >> 2), acc.eq(total >> 2)]
        m.d.sync += high.eq(total >> 1)
