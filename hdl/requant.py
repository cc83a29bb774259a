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
      chain; the digit's decode registered the cycle before); a pass every 16 cycles, so it
      needs ``row_folds >= 16``.

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
    fixed : :class:`convaccel.quant.Requant` or None
        Parameters baked in (a network's layer, whose weight load carries the same values):
        the multipliers in a ROM, each channel's shift as its index among the layer's distinct
        shifts (:meth:`shift_table`) so that only those shifts are built, the zero point and
        clamp bounds constants; the load ports are then ignored.
    slots : sequence of (int, int)
        With ``fixed``: the ``(column group, column)`` of each channel (default ``divmod(ch,
        cols)``; a grouped layer's, :func:`convaccel.spec.channel_slot`).

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

    def __init__(self, *, cols, col_folds, row_folds, acc_shape, tag_shape, multiplier="dsp",
                 fixed=None, slots=None):
        assert multiplier in ("dsp", "fabric")
        self._fixed = fixed
        if fixed is not None:
            slots = slots or [divmod(ch, cols) for ch in range(fixed.channels)]
            assert len(slots) == fixed.channels
            self._slots = slots
        self._cols = cols
        self._col_folds = col_folds
        self._acc_shape = Shape.cast(acc_shape)
        self._tag_shape = tag_shape
        self._multiplier = multiplier
        self._row_folds = row_folds
        self.units = self.units_for(cols, row_folds, multiplier)
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

    @staticmethod
    def units_for(cols, row_folds, multiplier):
        """The units of a requantizer of `cols` columns whose groups arrive every `row_folds`
        cycles: the fewest that take a group's channels within `row_folds` cycles, a value a
        cycle each (``"dsp"``) or 16 cycles a value (``"fabric"``: the spec refuses fewer than
        16 folds, and more units than 16 cycles can feed)."""
        if multiplier == "dsp":
            return -(-cols // row_folds)
        units = -(-cols // (row_folds // FABRIC_MULTIPLY_CYCLES))
        assert units <= FABRIC_MULTIPLY_CYCLES
        return units

    @classmethod
    def multipliers_for(cls, *, cols, row_folds, acc_shape, multiplier):
        """:attr:`multipliers` of the requantizer with these parameters, without building it
        (the network compiler counts the DSP blocks of a thousand candidates)."""
        if multiplier == "fabric":
            return ()
        w = cls.value_width_for(Shape.cast(acc_shape))
        # four partial products: the value's bits below its sign (complemented for a negative
        # value, :meth:`_dsp_product`) in two parts of at most 16 x (16 or 15 unsigned), given
        # as (16 or the signed rest): the blocks :func:`~convaccel.boards.fit._blocks` counts
        # (its sign apart)
        return ((16, 16), (16, MULTIPLIER_BITS - 16), (w - 16, 16),
                (w - 16, MULTIPLIER_BITS - 16)) * cls.units_for(cols, row_folds, multiplier)

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
    def PIPELINE(self):
        """Cycles from the selection of a channel to its group's departure, its result the last:
        operands (selected, unless the dsp kind takes its group in one pass, saturated,
        shifted); the product up to its high half (``"dsp"``: partial products, two sums and
        the high half; ``"fabric"``: one Booth digit a cycle, the last one's sum the high half,
        then the unit's high half selected); the rounding division's sum, its shift in two
        steps and its saturation, zero point and clamp."""
        return (3 - self._bypass + (4 if self._multiplier == "dsp" else FABRIC_MULTIPLY_CYCLES + 1)
                + 5)

    @property
    def _bypass(self):
        # One pass of the dsp kind: the group's registers are the selection (there is no
        # multiplexer to register), a cycle less.
        return self._multiplier == "dsp" and self.passes == 1

    def _issue_cycle(self, ch):
        # cycles from a group's registration to the selection of its channel `ch`: a pass a
        # cycle (dsp); the units one after another, a pass every 16 cycles (fabric)
        p, u = divmod(ch, self.units)
        if self._multiplier == "dsp":
            return p
        return p * FABRIC_MULTIPLY_CYCLES + u

    @property
    def latency(self):
        """Cycles from a group's arrival on ``i`` to its departure on ``o``: it is registered,
        its last channel selected :meth:`_issue_cycle` cycles later, and the group leaves
        ``PIPELINE`` cycles after that."""
        return 1 + self._issue_cycle(self._cols - 1) + self.PIPELINE

    @property
    def multipliers(self):
        """The operand widths ``(signed, unsigned)`` of each unit's multiplier built of DSP
        blocks: the accumulator times the multiplier (the fit check counts the DSP blocks they
        take); none for ``"fabric"``."""
        return self.multipliers_for(cols=self._cols, row_folds=self._row_folds,
                                    acc_shape=self._acc_shape, multiplier=self._multiplier)

    #: The fabric kind's logic against the dsp kind's, per device family: ``(c0, c1)`` of
    #: ``c0 + c1 * value bits`` for the ``"base"`` and each unit (``"unit"``), LUTs and
    #: flip-flops. Fitted to Yosys's mapping of the requantizer alone (the board's synthesis,
    #: :func:`convaccel.boards.cost.synth_cells`; ``lut`` counts LUT4s on iCE40), both kinds
    #: at 1 and 4 columns (1 and 4 fabric units, one dsp unit) and value widths 20 and 33, 16
    #: folds. (The dsp kind has a single unit wherever the fabric kind is allowed.) A fabric
    #: unit is about 190 LUTs and 90 flip-flops at 33 bits beyond the dsp kind's; one unit
    #: costs fewer LUTs than the dsp kind's adders, which the fabric kind does not have. (iCE40
    #: refitted after the dsp kind took the value's magnitude; ECP5's are against the dsp
    #: kind before that, which had more flip-flops.)
    FABRIC_LOGIC = {
        "ice40": {"lut": {"base": (-101.5, -5.18), "unit": (54.5, 4.026)},
                  "ff": {"base": (-0.6, -3.67), "unit": (3.67, 2.67)}},
        "ecp5": {"lut": {"base": (-168.72, -2.564), "unit": (35.26, 4.487)},
                 "ff": {"base": (-274.64, -3.385), "unit": (61.8, 3.077)}},
    }

    @property
    def logic(self):
        """``{family: (lut, ff)}``: the logic that this requantizer takes beyond the dsp
        kind's for the same layer (:data:`FABRIC_LOGIC`; the fit's logic model is calibrated
        on the dsp kind, so ``(0, 0)`` for it; ECP5's figures stand for Gowin's)."""
        families = ("ice40", "ecp5", "gowin")
        if self._multiplier == "dsp":
            return {f: (0, 0) for f in families}
        w = self._value_width
        out = {}
        for family in families:
            model = self.FABRIC_LOGIC.get(family, self.FABRIC_LOGIC["ecp5"])
            out[family] = tuple(
                round(model[k]["base"][0] + model[k]["base"][1] * w
                      + self.units * (model[k]["unit"][0] + model[k]["unit"][1] * w))
                for k in ("lut", "ff"))
        return out

    @property
    def _value_width(self):
        return self.value_width_for(self._acc_shape)

    @staticmethod
    def value_width_for(acc_shape):
        """The multiplier's signed operand for an accumulator of `acc_shape`: the accumulator,
        or a saturated one shifted left."""
        return max(Shape.cast(acc_shape).width, SATURATE_BITS + MAX_LEFT_SHIFT)

    @property
    def memories(self):
        return self.memories_for(self._cols, self._col_folds, self._fixed)

    @staticmethod
    def memories_for(cols, col_folds, fixed=None):
        """:attr:`memories` of a requantizer of `cols` columns and `col_folds` column groups,
        its parameters `fixed` (a :class:`~convaccel.quant.Requant`) or loaded (None)."""
        if fixed is None:
            return (MemoryShape("requant multipliers", cols * MULTIPLIER_BITS, col_folds),
                    MemoryShape("requant shifts", cols * SHIFT_BITS, col_folds))
        code_bits = Requantizer._code_bits(len(Requantizer.shift_table(fixed)))
        return (MemoryShape("requant multipliers", cols * MULTIPLIER_BITS, col_folds, rom=True),
                MemoryShape("requant shifts", cols * code_bits, col_folds, rom=True))

    @staticmethod
    def shift_table(fixed):
        """The distinct shifts of `fixed` (a :class:`~convaccel.quant.Requant`), ascending: a
        channel's shift is kept as its index here."""
        return sorted(set(int(s) for s in fixed.shift))

    @staticmethod
    def _code_bits(entries):
        return max((entries - 1).bit_length(), 1)

    @property
    def _shift_bits(self):
        # the width of a channel's shift code down the pipeline: the right shift's magnitude,
        # or with `fixed` its index in the shift table
        if self._fixed is None:
            return SHIFT_BITS - 1
        return self._code_bits(len(self.shift_table(self._fixed)))

    def _tables(self):
        # the words of the multipliers and of the shift codes, a word per column group
        table = self.shift_table(self._fixed)
        mults = [[0] * self._cols for _ in range(self._col_folds)]
        codes = [[0] * self._cols for _ in range(self._col_folds)]
        for ch, (group, col) in enumerate(self._slots):
            mults[group][col] = int(self._fixed.multiplier[ch])
            codes[group][col] = table.index(int(self._fixed.shift[ch]))
        return mults, codes

    def elaborate(self, platform):
        m = Module()
        cols, col_folds = self._cols, self._col_folds
        beat = self.i.payload

        fixed = self._fixed
        shift_shape = signed(SHIFT_BITS) if fixed is None else unsigned(self._shift_bits)
        mult_init, shift_init = self._tables() if fixed is not None else ([], [])
        comb_read = self.reads_tables_at_once(col_folds, fixed)
        mults = memory.Memory(shape=data.ArrayLayout(MULTIPLIER_BITS, cols),
                              depth=col_folds, init=mult_init)
        shifts = memory.Memory(shape=data.ArrayLayout(shift_shape, cols), depth=col_folds,
                               init=shift_init)
        m.submodules.mults = mults
        m.submodules.shifts = shifts
        reads = []
        for mem, en in ((mults, self.m_en), (shifts, self.s_en)):
            if fixed is None:
                wr = mem.write_port(granularity=1)
                m.d.comb += [wr.addr.eq(self.w_addr), wr.en.eq(en)]
                for c in range(cols):
                    m.d.comb += wr.data[c].eq(self.w_data)
            # (a fixed table of at most 16 words is a ROM in logic, a LUT level: read
            # combinationally, at the arriving group, no read register)
            reads.append(mem.read_port(domain="comb" if comb_read else "sync"))
        mult_rd, shift_rd = reads

        lo, hi = OUTPUT_RANGE
        if fixed is None:
            self._zero_point = Signal(signed(8))
            self._act_min = Signal(signed(8), init=lo)
            self._act_max = Signal(signed(8), init=hi)
            for bit, reg in enumerate((self._zero_point, self._act_min, self._act_max)):
                with m.If(self.c_en[bit]):
                    m.d.sync += reg.eq(self.w_data)
        else:
            self._zero_point, self._act_min, self._act_max = (
                Const(int(v), signed(8))
                for v in (fixed.output_zero_point, fixed.act_min, fixed.act_max))

        # The parameters of the arriving group are on the read ports when it arrives (the
        # address moves to the next group in the cycle a group arrives).
        group = Signal(range(col_folds))
        succ = Signal(range(col_folds))
        m.d.comb += succ.eq(Mux(group == col_folds - 1, 0, group + 1))
        next_group = Mux(beat.tag.last_group, 0, succ)
        addr = Mux(self.i.valid, next_group, group)
        read_at = group if comb_read else addr
        m.d.comb += [mult_rd.addr.eq(read_at), shift_rd.addr.eq(read_at)]
        with m.If(self.i.valid):
            m.d.sync += group.eq(next_group)

        # The group is registered as it arrives, then its channels are selected from there
        # (:meth:`_issue_cycle`).
        # (The data registers, here and in the units, have no reset: they matter only beside the
        # valid flags, which keep theirs, so that the reset net reaches the control alone.)
        values = Signal(data.ArrayLayout(self._acc_shape, cols), reset_less=True)
        params_mult = Signal(data.ArrayLayout(MULTIPLIER_BITS, cols), reset_less=True)
        params_shift = Signal(data.ArrayLayout(shift_shape, cols), reset_less=True)
        held_tag = Signal(self._tag_shape, reset_less=True)
        with m.If(self.i.valid):
            m.d.sync += [values.eq(beat.data), held_tag.eq(beat.tag),
                         params_mult.eq(mult_rd.data), params_shift.eq(shift_rd.data)]
        params = (values, params_mult, params_shift)
        results = Signal(data.ArrayLayout(signed(8), cols), reset_less=True)
        if self._multiplier == "dsp":
            last_issue = self._dsp_units(m, params, results)
        else:
            last_issue = self._fabric_units(m, params, results)

        # The group leaves PIPELINE cycles after its last channel is selected, the cycle after
        # that channel's result is written.
        tags = [Signal(self._tag_shape, name=f"tag_d{k}", reset_less=True)
                for k in range(self.PIPELINE)]
        done = [Signal(name=f"done_d{k}") for k in range(self.PIPELINE)]
        m.d.sync += [done[0].eq(last_issue), tags[0].eq(held_tag)]
        for k in range(1, self.PIPELINE):
            m.d.sync += [done[k].eq(done[k - 1]), tags[k].eq(tags[k - 1])]
        m.d.comb += [
            self.o.valid.eq(done[-1]),
            self.o.payload.data.eq(results),
            self.o.payload.tag.eq(tags[-1]),
        ]
        return m

    def _delays(self, m, index, issue, length):
        # `length` registered copies of a selection's channel index and its valid bit
        delay = [Signal.like(index, name=f"{index.name}_d{k}", reset_less=True)
                 for k in range(length)]
        valid = [Signal(name=f"valid_d{k}") for k in range(length)]
        m.d.sync += [delay[0].eq(index), valid[0].eq(issue)]
        for k in range(1, length):
            m.d.sync += [delay[k].eq(delay[k - 1]), valid[k].eq(valid[k - 1])]
        return delay, valid

    def _operands(self, m, name, sel_x, sel_m, sel_s):
        """The operands, over two more stages after the selection: saturated (where its top
        bits are not all copies of the sign: LUTs, no carry); shifted left for a positive
        shift, the right shift apart. Returns the assignments of the third stage's registers
        ``(x, shift)`` and the multiplier of the second."""
        limit = 1 << (SATURATE_BITS - 1)
        top = sel_x[SATURATE_BITS - 1:]
        sat_x = Signal(signed(SATURATE_BITS), name=f"sat_x{name}", reset_less=True)
        raw_x = Signal.like(sel_x, name=f"raw_x{name}", reset_less=True)
        sat_m = Signal.like(sel_m, name=f"sat_m{name}", reset_less=True)
        sat_s = Signal.like(sel_s, name=f"sat_s{name}", reset_less=True)
        # (where the group's registers hold the operands until the third stage has taken them,
        # no copy of them: :attr:`_held`)
        domain = m.d.comb if self._held else m.d.sync
        domain += [
            sat_x.eq(Mux((top == 0) | (top == (1 << len(top)) - 1), sel_x[:SATURATE_BITS],
                         Mux(sel_x[-1], -limit, limit - 1))),
            raw_x.eq(sel_x), sat_m.eq(sel_m), sat_s.eq(sel_s),
        ]
        if self._fixed is not None:
            # (the shift's code goes on; a left shift only where the layer has one)
            lefts = [max(v, 0) for v in self.shift_table(self._fixed)]
            if not any(lefts):
                return raw_x, sat_s, sat_m
            left = Array(Const(v, range(MAX_LEFT_SHIFT + 1)) for v in lefts)[sat_s]
            return Mux(left != 0, sat_x << left, raw_x), sat_s, sat_m
        x = Mux(sat_s > 0, sat_x << sat_s[:MAX_LEFT_SHIFT.bit_length()], raw_x)
        # A right shift past the high half's width makes 0 as that width does (the rounding
        # division of a value below 2**(e-2) in magnitude): capped there, the division's sum
        # is no wider than the value.
        cap = self._shift_cap
        shift = Mux(sat_s < 0, Mux(-sat_s > cap, cap, -sat_s), 0)
        return x, shift, sat_m

    @property
    def _held(self):
        """The operands are taken from the group's registers, not from copies of them: the
        parameters are fixed with no left shift (the value goes to the product as it is), a
        single channel is selected (the dsp kind's one pass, the fabric kind's one column) and
        the next group's registration comes after the third stage has taken them (at least
        two folds; the fabric kind has 16 or more)."""
        held = self.holds_operands(self._cols, self._row_folds, self._fixed)
        assert held == (self._fixed is not None and max(self._fixed.shift) <= 0 and (
            self._bypass and self._row_folds >= 2 if self._multiplier == "dsp"
            else self._cols == 1))
        return held

    @staticmethod
    def reads_tables_at_once(col_folds, fixed):
        """Fixed tables of `col_folds` words are read combinationally (ROMs in logic of at
        most 16 words: a LUT level), with no read register."""
        return fixed is not None and col_folds <= 16

    @staticmethod
    def holds_operands(cols, row_folds, fixed):
        """:attr:`_held` of a requantizer of `cols` columns, `row_folds` folds and parameters
        `fixed` (either kind: the dsp kind takes one column in one pass, and the fabric kind
        has 16 folds or more)."""
        return fixed is not None and max(fixed.shift) <= 0 and cols == 1 and row_folds >= 2

    @property
    def _shift_cap(self):
        # the largest right shift the division takes: the high half's width plus one
        return self._value_width + 2

    def _selection(self, name, comb=False):
        # (at least SATURATE_BITS wide, sign-extended, for the saturation's test; `comb`:
        # driven combinationally, only a name)
        return (Signal(signed(max(self._acc_shape.width, SATURATE_BITS)), name=f"sel_x{name}",
                       reset_less=True),
                Signal(MULTIPLIER_BITS, name=f"sel_m{name}", reset_less=True),
                Signal(signed(SHIFT_BITS) if self._fixed is None else self._shift_bits,
                       name=f"sel_s{name}", reset_less=True))

    def _divide_and_clamp(self, m, name, high, e_sum, neg=None):
        """RoundingDivideByPOT of the high half by `e_sum` (registered with it): add half
        (less one for a negative value), then shift right (by the multiple of 8, then by the
        rest); the result saturated to SATURATE_BITS (past them the clamp decides); then the
        zero point and the clamp. Four registers, the returned clamp combinational. `high` is
        the signed high half, or with `neg` its magnitude and sign: then the negation is the
        sum's (its complement and a carry in), ``-h + half - (h != 0)`` being ``~h + half +
        (h == 0)``."""
        limit = 1 << (SATURATE_BITS - 1)
        e_coarse = Signal.like(e_sum, name=f"e{name}_coarse", reset_less=True)
        e_fine = Signal.like(e_sum, name=f"e{name}_fine", reset_less=True)
        m.d.sync += [e_coarse.eq(e_sum), e_fine.eq(e_coarse)]
        # (the shift is capped at the value's width + 2: half and the high half fit in it)
        total = Signal(signed(self._shift_cap + 1), name=f"sum{name}", reset_less=True)
        if self._fixed is None:
            half = (Const(1, 1) << e_sum)[1:]         # 2**(e-1), or 0 for e = 0
            nonzero = e_sum != 0
        else:
            # (`e_sum` is the shift's code: the right shifts of the table, as constants)
            rights = [min(max(-v, 0), self._shift_cap) for v in self.shift_table(self._fixed)]
            half = Array(Const((1 << e) >> 1, len(total)) for e in rights)[e_sum]
            nonzero = Array(Const(e != 0, 1) for e in rights)[e_sum]
        if neg is None:
            m.d.sync += total.eq(high + half - (high[-1] & nonzero))
        else:
            mask = Cat(*[neg] * len(high))
            carry = neg & ((high == 0) | ~nonzero)
            m.d.sync += total.eq(Cat(high ^ mask, neg).as_signed() + half + carry)
        if self._fixed is None:
            # the shift in two steps: by the multiple of 8, then by the rest
            coarse = Signal.like(total, name=f"coarse{name}", reset_less=True)
            m.d.sync += coarse.eq(total >> Cat(Const(0, 3), e_coarse[3:]))
            # (registered: the fine shift's multiplexers and the saturation's test of the top
            # bits were the critical path at 36 MHz on the UP5K in one cycle)
            shifted = Signal.like(total, name=f"shifted{name}", reset_less=True)
            m.d.sync += shifted.eq(coarse >> e_fine[:3])
        else:
            # by the table's least right shift (wiring), then by the rest of the channel's
            low = min(rights)
            coarse = Signal(signed(max(len(total) - low, SATURATE_BITS + 1)),
                            name=f"coarse{name}", reset_less=True)
            m.d.sync += coarse.eq(total >> low)
            shifted = Signal.like(coarse, name=f"shifted{name}", reset_less=True)
            with m.Switch(e_fine):
                for code, e in enumerate(rights):
                    with m.Case(code):
                        m.d.sync += shifted.eq(coarse >> (e - low))
        # saturated where its top bits are not all copies of the sign (LUTs, no carry)
        top = shifted[SATURATE_BITS - 1:]
        fits = (top == 0) | (top == (1 << len(top)) - 1)
        rounded = Signal(signed(SATURATE_BITS), name=f"r{name}", reset_less=True)
        m.d.sync += rounded.eq(Mux(fits, shifted[:SATURATE_BITS],
                                   Mux(shifted[-1], -limit, limit - 1)))
        shifted_zp = Signal(signed(SATURATE_BITS + 1), name=f"z{name}")
        m.d.comb += shifted_zp.eq(rounded + self._zero_point)
        return Mux(shifted_zp < self._act_min, self._act_min,
                   Mux(shifted_zp > self._act_max, self._act_max, shifted_zp[:8]))

    def _dsp_units(self, m, params, results):
        """``units`` whole pipelines, a pass of ``units`` channels a cycle; returns the
        selection of the last pass."""
        cols, units, passes = self._cols, self.units, self.passes
        values, params_mult, params_shift = params
        # `step`: the pass to issue this cycle; `passes` when all are issued.
        step = Signal(range(passes + 1), init=passes)
        with m.If(self.i.valid):
            m.d.sync += step.eq(0)
        with m.Elif(step != passes):
            m.d.sync += step.eq(step + 1)
        issue = Signal()                               # a pass is selected this cycle
        pass_index = Signal(range(max(passes, 2)), name="pass")
        m.d.comb += [issue.eq(step != passes), pass_index.eq(step)]
        delay, valid = self._delays(m, pass_index, issue, self.PIPELINE - 1)

        for u in range(units):
            channels = [p * units + u for p in range(passes)]
            if self._bypass:
                sel_x, sel_m, sel_s = self._selection(u, comb=True)
                m.d.comb += [sel_x.eq(values[u]), sel_m.eq(params_mult[u]),
                             sel_s.eq(params_shift[u])]
            else:
                sel_x, sel_m, sel_s = self._selection(u)
                with m.Switch(pass_index):
                    for p, ch in enumerate(channels):
                        if ch < cols:
                            with m.Case(p):
                                m.d.sync += [sel_x.eq(values[ch]), sel_m.eq(params_mult[ch]),
                                             sel_s.eq(params_shift[ch])]
            x_value, shift_value, sat_m = self._operands(m, u, sel_x, sel_m, sel_s)
            # The value's bits below its sign, complemented for a negative value (|x| - 1), and
            # its sign: four unsigned partial products, the sign applied by the division's sum.
            w = self._value_width
            x = Signal(w - 1, name=f"x{u}", reset_less=True)
            neg = Signal(name=f"neg{u}", reset_less=True)
            shift1 = Signal(self._shift_bits, name=f"e{u}_1", reset_less=True)  # the right shift
            m.d.sync += [x.eq(x_value[:w - 1] ^ Cat(*[x_value[w - 1]] * (w - 1))),
                         neg.eq(x_value[w - 1]), shift1.eq(shift_value)]
            # The group's multipliers stay in its registers until the next group's arrival,
            # `row_folds` cycles after it (which is the cycle before the selection): the
            # partial products (two cycles after the selection) and the high half (five) take
            # them from there while it has not come.
            stable = self._row_folds if self._bypass else 0
            if stable >= 3:
                mult = sel_m
            else:
                mult = Signal(MULTIPLIER_BITS, name=f"m{u}", reset_less=True)
                m.d.sync += mult.eq(sat_m)
            high = Signal(w, name=f"high{u}", reset_less=True)
            high_neg = Signal(name=f"high{u}_neg", reset_less=True)
            self._dsp_product(m, u, x, mult, neg, high, high_neg, held=stable >= 6)
            e = [shift1]
            for k in range(4):                        # (aligned with the product's stages)
                e.append(Signal.like(shift1, name=f"e{u}_{k + 2}", reset_less=True))
                m.d.sync += e[-1].eq(e[-2])
            clamped = self._divide_and_clamp(m, u, high, e[-1], neg=high_neg)
            with m.Switch(delay[-1]):
                for p, ch in enumerate(channels):
                    if ch < cols:
                        with m.Case(p):
                            with m.If(valid[-1]):
                                m.d.sync += results[ch].eq(clamped)
        return issue & (pass_index == passes - 1)

    def _fabric_units(self, m, params, results):
        """One selection, ``units`` shift-add multipliers, one division and clamp: the units
        are fed one after another, a pass every 16 cycles, so their results come out one a
        cycle too; returns the selection of the last channel."""
        cols, units = self._cols, self.units
        steps = FABRIC_MULTIPLY_CYCLES
        values, params_mult, params_shift = params
        # `step`: cycles since the group's registration, up to its last selection
        last = self._issue_cycle(cols - 1)
        step = Signal(range(last + 2), init=last + 1)
        channel = Signal(range(cols), name="channel")
        unit = Signal(range(max(units, 2)), name="unit")
        issue = Signal()
        with m.If(self.i.valid):
            m.d.sync += [step.eq(0), channel.eq(0), unit.eq(0)]
        with m.Elif(step != last + 1):
            m.d.sync += step.eq(step + 1)
        with m.If(issue & ~self.i.valid):
            m.d.sync += [channel.eq(channel + 1),
                         unit.eq(Mux(unit == units - 1, 0, unit + 1))]
        # the units are selected in the first `units` cycles of each 16
        m.d.comb += issue.eq((step != last + 1) & (step[:4] < units))
        assert steps == 16                            # (`step[:4]`: the cycle of 16)
        channels, c_valid = self._delays(m, channel, issue, self.PIPELINE - 1)
        units_d, _ = self._delays(m, unit, issue, 3 + steps)

        sel_x, sel_m, sel_s = self._selection("")
        if self._held:
            m.d.comb += [sel_x.eq(values[0]), sel_m.eq(params_mult[0]),
                         sel_s.eq(params_shift[0])]
        else:
            with m.Switch(channel):
                for ch in range(cols):
                    with m.Case(ch):
                        m.d.sync += [sel_x.eq(values[ch]), sel_m.eq(params_mult[ch]),
                                     sel_s.eq(params_shift[ch])]
        x_value, shift_value, _ = self._operands(m, "", sel_x, sel_m, sel_s)
        width = self._value_width
        highs, shifts = [], []
        for u in range(units):
            # the operands are held for the unit's 16 cycles, from the selection's third stage
            load = c_valid[1] & (units_d[1] == u)
            x = Signal(signed(width), name=f"x{u}", reset_less=True)
            shift = Signal(self._shift_bits, name=f"e{u}", reset_less=True)
            with m.If(load):
                m.d.sync += [x.eq(x_value), shift.eq(shift_value)]
            high = Signal(signed(width + 1), name=f"high{u}", reset_less=True)
            # (the multiplier's digits a stage ahead of the value, from the selection)
            self._fabric_product(m, u, x, sel_m, high, load=load,
                                 load_digits=c_valid[0] & (units_d[0] == u),
                                 last_digit=c_valid[steps] & (units_d[steps] == u))
            # (the next value's load may come with the last step: the shift goes along)
            shift_high = Signal.like(shift, name=f"e{u}_high", reset_less=True)
            m.d.sync += shift_high.eq(shift)
            highs.append(high)
            shifts.append(shift_high)
        # the high half of the unit whose last step was the cycle before, and its shift
        high = Signal(signed(width + 1), name="high", reset_less=True)
        e_sum = Signal(self._shift_bits, name="e_sum", reset_less=True)
        with m.Switch(units_d[2 + steps]):
            for u in range(units):
                with m.Case(u):
                    m.d.sync += [high.eq(highs[u]), e_sum.eq(shifts[u])]
        clamped = self._divide_and_clamp(m, "", high, e_sum)
        with m.If(c_valid[-1]):
            with m.Switch(channels[-1]):
                for ch in range(cols):
                    with m.Case(ch):
                        m.d.sync += results[ch].eq(clamped)
        return issue & (channel == cols - 1)

    @staticmethod
    def _dsp_product(m, u, x, mult, neg, high, high_neg, *, held):
        # The magnitude's product |v| m, v the value and m the multiplier, from four unsigned
        # partial products of at most 16 x 16 bits of `x` (the value's bits below its sign,
        # complemented for a negative value: |v| - 1) and m (one DSP block each on iCE40,
        # nothing between it and its register), summed over two registered stages; for a
        # negative value m is added in the last stage (`held`: the multiplier is still
        # there, else a registered copy of it or 0 goes along). No stage chains more than one
        # carry, and no logic follows a DSP block. Then the high half with the rounding: for
        # v >= 0, (v m + 2**30) >> 31; for v < 0, -((|v| m + 2**30 - 1) >> 31), its negation
        # left to the division's sum (`high_neg`): floor((-P + 2**30) / 2**31) = -floor((P +
        # 2**30 - 1) / 2**31).
        w = len(x)
        # (cut in halves up to 16 bits, never below 9: Gowin's Yosys makes narrower products
        # of logic, not of the blocks that the fit check counts; w >= 18)
        cut = min(16, w // 2)
        x_lo, x_hi = x[:cut], x[cut:]
        m_lo, m_hi = mult[:16], mult[16:]
        pp = {}
        for name, a, b in (("ll", x_lo, m_lo), ("lh", x_lo, m_hi), ("hl", x_hi, m_lo),
                           ("hh", x_hi, m_hi)):
            pp[name] = Signal.like(a * b, name=f"pp_{name}{u}", reset_less=True)
            m.d.sync += pp[name].eq(a * b)
        negs = [Signal(name=f"neg{u}_{k}", reset_less=True)      # (aligned with the sums)
                for k in range(3)]
        m.d.sync += negs[0].eq(neg)
        for k in range(1, 3):
            m.d.sync += negs[k].eq(negs[k - 1])
        # what the magnitude's product needs added: m for a negative value (then |v| m), and
        # the rounding: 2**30, less one for a negative value
        if held:
            # (its sum registered the cycle before, from the multiplier still held: the
            # product's adder then has no adder before it; 35.3 MHz of 36 on the UP5K with
            # both in one cycle)
            extra = Signal(MULTIPLIER_BITS + 1, name=f"extra{u}", reset_less=True)
            m.d.sync += extra.eq(Mux(negs[1], mult, 0) + Cat(*[negs[1]] * 30, ~negs[1]))
        else:
            offset = [Signal(MULTIPLIER_BITS + 1, name=f"offset{u}_{k}", reset_less=True)
                      for k in range(3)]
            m.d.sync += offset[0].eq(Mux(neg, mult + (1 << 30) - 1, 1 << 30))
            for k in range(1, 3):
                m.d.sync += offset[k].eq(offset[k - 1])
            extra = offset[2]
        t_lo = Signal.like(pp["ll"] + (pp["lh"] << 16), name=f"t_lo{u}", reset_less=True)
        t_hi = Signal.like(pp["hl"] + (pp["hh"] << 16), name=f"t_hi{u}", reset_less=True)
        m.d.sync += [t_lo.eq(pp["ll"] + (pp["lh"] << 16)),
                     t_hi.eq(pp["hl"] + (pp["hh"] << 16))]
        # (|v| - 1) m or v m
        product = Signal(w + MULTIPLIER_BITS, name=f"p{u}", reset_less=True)
        m.d.sync += product.eq(t_lo + (t_hi << cut))
        m.d.sync += [high.eq((product + extra) >> 31), high_neg.eq(negs[2])]

    @staticmethod
    def _fabric_product(m, u, x, mult, high, *, load, load_digits, last_digit):
        # (`mult` is loaded with `load_digits`, the cycle before `x` is loaded with `load`)
        # A shift-add over the multiplier's radix-4 Booth digits d_k = -2 m[2k+1] + m[2k] +
        # m[2k-1] (m[-1] = m[31] = 0, so sum d_k 4**k = m), least significant first. `acc`
        # holds floor(x * sum_{j<k} d_j 4**j / 4**k): the bits below 4**k never change again,
        # so they are dropped, two a step. A step adds 0, x or 2x, or their complement with a
        # carry in (-x, -2x), and shifts right by 2: one carry chain, |acc| < 2/3 |x|. The
        # rounding's 2**30 = 4**15 is a carry into the last step (d_15 = m[30] + m[29] is never
        # negative, so that carry is free), whose sum, halved, is (x * m + 2**30) >> 31.
        # A digit is decoded (which multiple, negated or not, and the carry in) the cycle
        # before its step, into registers, so that a step is one LUT level of selection and
        # the carry chain (decode, selection and carry in one cycle missed 36 MHz on the UP5K).
        # The multiplier's digits are loaded (`load_digits`) two cycles before the first step,
        # the value (`load`) the cycle before it; the last step may coincide with the next
        # value's load, and its digit's decode (`last_digit`) with the next digits' load.
        width = len(x)
        # m[-1] .. m[31], shifted
        digits = Signal(MULTIPLIER_BITS + 2, name=f"booth{u}", reset_less=True)
        acc = Signal(signed(width + 1), name=f"acc{u}", reset_less=True)
        b = digits[:3]
        one, two, neg = (Signal(name=f"{n}{u}", reset_less=True) for n in ("one", "two", "neg"))
        carry = Signal(name=f"carry{u}", reset_less=True)
        m.d.sync += [
            one.eq(b[0] ^ b[1]),
            two.eq((b[2] & ~b[1] & ~b[0]) | (~b[2] & b[1] & b[0])),
            neg.eq(b[2] & ~(b[1] & b[0])),
            carry.eq((b[2] & ~(b[1] & b[0])) | last_digit),
        ]
        with m.If(load_digits):
            m.d.sync += digits.eq(Cat(Const(0, 1), mult, Const(0, 1)))
        with m.Else():
            m.d.sync += digits.eq(digits >> 2)
        term = Signal(signed(width + 1), name=f"term{u}")
        m.d.comb += term.eq(Mux(two, x << 1, Mux(one, x, 0)))
        addend = Signal(signed(width + 1), name=f"addend{u}")
        m.d.comb += addend.eq(Mux(neg, ~term, term))
        # one adder with a carry in: (2 acc + 1) + (2 addend + carry), halved
        total = Signal(signed(width + 3), name=f"step{u}")
        m.d.comb += total.eq((Cat(Const(1, 1), acc).as_signed() +
                              Cat(carry, addend).as_signed()) >> 1)
        with m.If(load):
            m.d.sync += acc.eq(0)
        with m.Else():
            m.d.sync += acc.eq(total >> 2)
        m.d.sync += high.eq(total >> 1)
