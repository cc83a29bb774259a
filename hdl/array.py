from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .ecp5 import Mul18x18
from .ice40 import DualMul8x8, dual_mul_fits
from .stage import drive_registered
from .weights import (WeightMemory, device_spram, platform_family, weight_groups,
                      weight_placement)

__all__ = ["fold_tag_layout", "vector_layout", "psums_layout", "pe_pairs", "Feeder",
           "ProcessingElement", "ProcessingElementPair", "SystolicArray"]

#: Arrays of more PEs than this (the UP5K's most) pass the load's writes down a chain of
#: registers, a column a cycle (:class:`SystolicArray`).
WRITE_CHAIN_PES = 16


def fold_tag_layout():
    """What travels beside a vector through the array, to the output stage: where the vector
    stands in its output pixel's schedule."""
    return data.StructLayout({
        "first": 1,                           # first fold of a reduction: start from the bias
        "last_fold": 1,                       # last fold: the block's sums are complete
        "last_group": 1,                      # last column block: the output pixel is complete
        "last_pixel": 1,                      # the frame's final output pixel
        "last_col_fold": 1,                   # last column block of its convolution group
    })


def vector_layout(elem_shape, rows, depth, tag_shape):
    """An array input beat: ``rows`` elements, the weight address ``k`` and a tag the array
    carries through unchanged."""
    return data.StructLayout({
        "x": data.ArrayLayout(elem_shape, rows),
        "k": range(depth),
        "tag": tag_shape,
    })


def pe_pairs(rows, cols, elem_shape, weight_shape):
    """PEs of a ``rows x cols`` array that share a dual multiplier and a weight memory, in pairs
    (:class:`ProcessingElementPair`): rows ``2i`` and ``2i + 1`` of each column when the
    operands fit the multiplier's bytes, else none."""
    return (rows // 2) * cols if dual_mul_fits(elem_shape, weight_shape) else 0


def psums_layout(psum_shape, cols, tag_shape):
    """An array output beat: a partial sum per column and the tag of its vector."""
    return data.StructLayout({
        "psums": data.ArrayLayout(psum_shape, cols),
        "tag": tag_shape,
    })


class Feeder(wiring.Component):
    """Cuts each window into the vectors the array consumes.

    A window's elements are held in a register of ``groups`` segments, one per convolution
    group, each ``row_folds * rows`` lanes: a group's ``reduction`` elements (its input
    channels at every tap, tap-major, zeros past them). The vectors are issued ``rows`` lanes at
    a time from the first segment, which rotates by ``rows`` lanes a vector: ``row_folds``
    vectors a column block, ``col_folds`` blocks a group; then the segments move down by one,
    bringing in the next group's. ``interval = groups * row_folds * col_folds`` vectors, one per
    cycle. (A dense layer is one group: the window as it arrives.) The array cannot stall
    (``o`` is always ready). The next window is taken in the cycle that issues the last vector,
    so windows follow each other with no gap; ``credit`` (room downstream for one more output
    pixel) gates taking a window.

    Latency: a window taken in cycle ``h`` issues its vectors in cycles ``h + latency .. h +
    latency + interval - 1``.

    Parameters
    ----------
    reduction, rows, row_folds, col_folds : int
        Per group: the products of one output value, the array's rows, the vectors one
        reduction takes, the column blocks of a group's output channels.
    elem_shape : shape-castable
        One input element.
    window_shape : shape-castable
        The window stream's payload (``data`` and ``last``): taps of ``in_channels`` elements,
        channel innermost.
    groups, in_channels : int
        Convolution groups and the input channels of the window (``in_channels`` is needed
        only with more than one group).

    Members
    -------
    i : In(stream.Signature(window_shape))
    o : Out(stream.Signature(vector_layout(...), always_ready=True))
        The vectors, with their weight address ``k`` and :func:`fold_tag_layout` tag.
    credit : In(1)
    """

    latency = 1
    memories = ()

    def __init__(self, *, reduction, rows, row_folds, col_folds, elem_shape, window_shape,
                 groups=1, in_channels=None):
        if groups > 1:
            assert in_channels is not None and in_channels % groups == 0
            assert reduction % (in_channels // groups) == 0
        self._reduction = reduction
        self._rows = rows
        self._row_folds = row_folds
        self._col_folds = col_folds
        self._groups = groups
        self._in_channels = in_channels
        self._elem_shape = elem_shape
        super().__init__({
            "i": In(stream.Signature(window_shape)),
            "o": Out(stream.Signature(
                vector_layout(elem_shape, rows, self.interval, fold_tag_layout()),
                always_ready=True)),
            "credit": In(1),
        })

    @property
    def interval(self):
        """Cycles per window: the vectors it is cut into."""
        return self._groups * self._row_folds * self._col_folds

    def _segments(self, window):
        """The window's flat elements (tap-major, channel innermost) as the buffer's groups
        segments: pure wiring."""
        groups, width = self._groups, Shape.cast(self._elem_shape).width
        if groups == 1:
            return window                     # (zero-extended to the buffer by `eq`)
        per_group = self._in_channels // groups
        taps = self._reduction // per_group
        lanes = self._row_folds * self._rows

        def element(n):
            return window[n * width:(n + 1) * width]

        segments = []
        for g in range(groups):
            elems = [element(t * self._in_channels + g * per_group + i)
                     for t in range(taps) for i in range(per_group)]
            segments.append(Cat(*elems, C(0, (lanes - len(elems)) * width)))
        return Cat(*segments)

    def elaborate(self, platform):
        m = Module()
        rows, row_folds, col_folds, groups = (self._rows, self._row_folds, self._col_folds,
                                              self._groups)
        elem_width = Shape.cast(self._elem_shape).width
        lanes = row_folds * rows
        segment_bits = lanes * elem_width
        buffer = Signal(groups * segment_bits)
        fold = Signal(range(row_folds))
        col_fold = Signal(range(col_folds))
        k = Signal(range(self.interval))
        busy = Signal()
        last_pixel = Signal()
        # The decodes of the counters are kept in registers, set a cycle ahead, so that `ready`
        # (and through it the window's and the padder's handshakes) starts from flip-flops.
        first = Signal()
        last_fold = Signal()
        last_col_fold = Signal()
        final = Signal()              # issuing the window's last vector
        if groups > 1:
            group = Signal(range(groups))
            last_conv_group = Signal()
        else:
            last_conv_group = C(1)

        m.d.comb += self.i.ready.eq((~busy | final) & self.credit)

        # The first segment turns by a vector's lanes; the segments move down by one as a group
        # ends (its last vector is issued).
        rotated = Cat(buffer[:segment_bits].rotate_right(rows * elem_width),
                      buffer[segment_bits:])
        next_segment = buffer[segment_bits:] if groups > 1 else rotated

        window = self.i.payload.data.as_value()
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                buffer.eq(self._segments(window)),
                fold.eq(0), col_fold.eq(0), k.eq(0), busy.eq(1),
                first.eq(1),
                last_fold.eq(row_folds == 1),
                last_col_fold.eq(col_folds == 1),
                final.eq(row_folds == 1 and col_folds == 1 and groups == 1),
                last_pixel.eq(self.i.payload.last),
            ]
            if groups > 1:
                m.d.sync += [group.eq(0), last_conv_group.eq(0)]
        with m.Elif(busy):
            with m.If(final):
                m.d.sync += busy.eq(0)
            m.d.sync += [
                k.eq(k + 1),
                first.eq(last_fold),
            ]
            with m.If(last_fold & last_col_fold):
                m.d.sync += buffer.eq(next_segment)
            with m.Else():
                m.d.sync += buffer.eq(rotated)
            with m.If(last_fold):
                m.d.sync += [fold.eq(0), last_fold.eq(row_folds == 1)]
                with m.If(last_col_fold):
                    m.d.sync += [col_fold.eq(0), last_col_fold.eq(col_folds == 1)]
                    if groups > 1:
                        next_last_group = group + 1 == groups - 1
                        m.d.sync += [
                            group.eq(group + 1),
                            last_conv_group.eq(next_last_group),
                            final.eq(next_last_group & (row_folds == 1) & (col_folds == 1)),
                        ]
                with m.Else():
                    next_last_col_fold = col_fold + 1 == col_folds - 1
                    m.d.sync += [
                        col_fold.eq(col_fold + 1),
                        last_col_fold.eq(next_last_col_fold),
                        final.eq(next_last_col_fold & last_conv_group & (row_folds == 1)),
                    ]
            with m.Else():
                next_last_fold = fold + 1 == row_folds - 1
                m.d.sync += [
                    fold.eq(fold + 1),
                    last_fold.eq(next_last_fold),
                    final.eq(next_last_fold & last_col_fold & last_conv_group),
                ]

        m.d.comb += [
            self.o.valid.eq(busy),
            self.o.payload.x.eq(buffer[:rows * elem_width]),
            self.o.payload.k.eq(k),
            self.o.payload.tag.first.eq(first),
            self.o.payload.tag.last_fold.eq(last_fold),
            self.o.payload.tag.last_group.eq(last_col_fold & last_conv_group),
            self.o.payload.tag.last_col_fold.eq(last_col_fold),
            self.o.payload.tag.last_pixel.eq(last_pixel),
        ]
        return m


def _data_registers(m, pairs):
    """Each ``(port, value)`` driven from a register with no reset
    (:func:`~.stage.drive_registered`)."""
    for port, value in pairs:
        drive_registered(m, port, value)


class ProcessingElement(wiring.Component):
    """One multiply-accumulate cell of the weight-stationary systolic array.

    Holds its weight for every fold in a small memory addressed by ``k``. The input element and
    its address enter from the left and leave to the right one cycle later; the partial sum
    enters from above and leaves below. Every stage is registered: the multiplier's operands and
    product (:class:`~convaccel.hdl.ecp5.Mul18x18`: on ECP5 the registers inside a MULT18X18D;
    elsewhere fabric registers that a DSP mapping may absorb), then the sum.

    Latency: an element entering in cycle ``T`` meets the partial sum entering in ``T + 3`` and
    their sum leaves in ``T + 4``; ``x_out`` and ``k_out`` follow in ``T + 1``.

    Parameters
    ----------
    depth : int
        Folds (weight words).
    elem_shape, weight_shape, psum_shape : shape-castable
    fault : bool
        For tests of the verification only: flip the product's lowest bit.
    own_memory : bool
        Hold the weight memory (the write port below); else take the weight on ``w_in``, from
        a :class:`~convaccel.hdl.weights.WeightMemory` that the array shares between rows.

    Members
    -------
    x_in, k_in, psum_in : In
    x_out, k_out, psum_out : Out
    w_addr, w_data, w_en : In
        Weight memory write port (with its own memory).
    w_in : In(weight_shape)
        Without its own memory: the weight for the element of cycle ``T``, in cycle ``T + 1``
        (as a memory read at ``k_in`` gives it).
    """

    latency = 2 + Mul18x18.latency

    def __init__(self, *, depth, elem_shape, weight_shape, psum_shape, fault=False,
                 own_memory=True):
        self._depth = depth
        self._weight_shape = weight_shape
        self._fault = fault
        self._own_memory = own_memory
        weight_ports = {
            "w_addr": In(range(depth)),
            "w_data": In(weight_shape),
            "w_en": In(1),
        } if own_memory else {"w_in": In(weight_shape)}
        super().__init__({
            "x_in": In(elem_shape),
            "k_in": In(range(depth)),
            "psum_in": In(psum_shape),
            "x_out": Out(elem_shape),
            "k_out": Out(range(depth)),
            "psum_out": Out(psum_shape),
            **weight_ports,
        })

    def elaborate(self, platform):
        m = Module()
        if self._own_memory:
            m.submodules.weights = weights = WeightMemory(
                depth=self._depth, weight_shape=self._weight_shape, lanes=1)
            m.d.comb += [
                weights.w_addr.eq(self.w_addr), weights.w_data.eq(self.w_data),
                weights.w_en.eq(self.w_en), weights.addr.eq(self.k_in),
            ]
            weight = weights.w[0]
        else:
            weight = self.w_in
        # The multiplier's operand and product registers (on ECP5 the MULT18X18D's own).
        m.submodules.mul = mul = Mul18x18(a_shape=self.x_in.shape(),
                                          b_shape=self._weight_shape)
        m.d.comb += [mul.a.eq(self.x_out), mul.b.eq(weight)]
        _data_registers(m, [
            (self.x_out, self.x_in),
            (self.k_out, self.k_in),
            # A test-only fault (the verification must catch it): the product's lowest bit
            # flipped.
            (self.psum_out, self.psum_in + (mul.p ^ int(self._fault))),
        ])
        return m


class ProcessingElementPair(wiring.Component):
    """Two processing elements of one column, rows ``2i`` (the upper, lane 0) and ``2i + 1``
    (the lower, lane 1), on one dual multiplier and one weight memory.

    Each of the two behaves as a :class:`ProcessingElement`, with the same latency; the upper's
    partial sum goes on to the lower inside the pair. Their products come from one
    :class:`~convaccel.hdl.ice40.DualMul8x8` (on iCE40 one SB_MAC16 in its dual 8 x 8 mode,
    whose input and product registers are the PE's ``x``/``w`` and product registers). The
    lower row sees each vector one cycle after the upper (the array's skew) at the same weight
    address, so one memory holds both PEs' weights side by side, read in one word at the upper
    PE's address; the lower PE's weight waits a cycle in a register.

    Latency: as :class:`ProcessingElement`'s, for each lane: the lower lane's element enters
    one cycle after the upper's (``x_in[1]`` is the row below's element, a cycle behind),
    meets the upper's partial sum in ``T + 4`` (``T``: the upper element's cycle) and leaves
    as ``psum_out`` in ``T + 5``. ``x_out`` (each lane) and ``k_out`` follow their inputs a
    cycle later.

    Parameters
    ----------
    depth : int
        Folds (weight words).
    elem_shape, weight_shape, psum_shape : shape-castable
        The element and weight at most 8 bits each.
    fault : (bool, bool)
        For tests of the verification only: flip the lowest bit of the upper's / lower's
        product.
    own_memory : bool
        Hold the pair's weight memory (the write port below); else take the weights on
        ``w_in`` from memories the array shares between rows.

    Members
    -------
    x_in, x_out : In, Out(data.ArrayLayout(elem_shape, 2))
        The upper and lower rows' elements.
    k_in, k_out : In, Out(range(depth))
        The upper row's weight address (the lower's is the same, a cycle later).
    psum_in : In(psum_shape)
        Into the upper PE.
    psum_out : Out(psum_shape)
        From the lower PE.
    w_addr, w_data : In
    w_en : In(2)
        Weight memory write port (with its own memory): the upper's and the lower's enables.
    w_in : In(data.ArrayLayout(weight_shape, 2))
        Without its own memory: each lane's weight a cycle after its element (the lower's a
        cycle after the upper's).
    """

    latency = 2 + DualMul8x8.latency

    def __init__(self, *, depth, elem_shape, weight_shape, psum_shape, fault=(False, False),
                 own_memory=True):
        assert dual_mul_fits(elem_shape, weight_shape)
        self._depth = depth
        self._elem_shape = elem_shape
        self._weight_shape = weight_shape
        self._fault = tuple(fault)
        self._own_memory = own_memory
        weight_ports = {
            "w_addr": In(range(depth)),
            "w_data": In(weight_shape),
            "w_en": In(2),
        } if own_memory else {"w_in": In(data.ArrayLayout(weight_shape, 2))}
        super().__init__({
            "x_in": In(data.ArrayLayout(elem_shape, 2)),
            "k_in": In(range(depth)),
            "psum_in": In(psum_shape),
            "x_out": Out(data.ArrayLayout(elem_shape, 2)),
            "k_out": Out(range(depth)),
            "psum_out": Out(psum_shape),
            **weight_ports,
        })

    def elaborate(self, platform):
        m = Module()
        if self._own_memory:
            # one memory read at the upper PE's address; the lower's weight waits a cycle
            m.submodules.weights = weights = WeightMemory(
                depth=self._depth, weight_shape=self._weight_shape, lanes=2)
            m.d.comb += [
                weights.w_addr.eq(self.w_addr), weights.w_data.eq(self.w_data),
                weights.w_en.eq(self.w_en), weights.addr.eq(self.k_in),
            ]
            w_upper, w_lower = weights.w[0], weights.w[1]
        else:
            w_upper, w_lower = self.w_in[0], self.w_in[1]
        m.submodules.mul = mul = DualMul8x8(a_shape=self._elem_shape,
                                            b_shape=self._weight_shape)
        psum_mid = Signal.like(self.psum_out, reset_less=True)   # from the upper PE to the lower
        _data_registers(m, [(self.x_out, self.x_in), (self.k_out, self.k_in)])
        m.d.comb += [
            mul.a0.eq(self.x_out[0]), mul.b0.eq(w_upper),
            mul.a1.eq(self.x_out[1]), mul.b1.eq(w_lower),
        ]
        # A test-only fault (the verification must catch it): a product's lowest bit flipped.
        m.d.sync += psum_mid.eq(self.psum_in + (mul.p0 ^ int(self._fault[0])))
        _data_registers(m, [(self.psum_out, psum_mid + (mul.p1 ^ int(self._fault[1])))])
        return m


class SystolicArray(wiring.Component):
    """A ``rows x cols`` weight-stationary systolic array with skewed inputs and aligned outputs.

    Takes one vector of ``rows`` elements and its weight address per cycle, unskewed; row ``r``
    sees it ``r`` cycles later, column ``c`` ``c`` cycles later still. Column ``c`` of the
    result is the dot product of the vector with column ``c``'s weights at that address; the
    columns are de-skewed so that all of them leave together, with the vector's tag,
    ``latency`` cycles after the vector came in. Both streams are always ready: the array never
    stalls (its feeder is credit-gated instead).

    When elements and weights are at most 8 bits wide (:func:`~convaccel.hdl.ice40.
    dual_mul_fits`), rows ``2i`` and ``2i + 1`` of each column are a
    :class:`ProcessingElementPair` (one dual multiplier, one weight memory: on iCE40 one SB_MAC16
    for two PEs); the last row of an odd count, and every row of wider operands, are single
    :class:`ProcessingElement` cells. Either way each PE has the same latency.

    Parameters
    ----------
    rows, cols, depth : int
    elem_shape, weight_shape, psum_shape : shape-castable
    tag_shape : shape-castable
        What travels beside each vector, unchanged.
    placement : WeightPlacement or None
        Where the weights live: how many rows of a column share a memory, and which memories
        are in SPRAM (:func:`~convaccel.hdl.weights.weight_placement`, which decides). None:
        decided at elaboration for the platform's device (as the fit check decides it for the
        board); :attr:`memories` then lists them as on no device in particular (a pair's
        shared, no SPRAM). The cycle model does not depend on it.
    faulty_pe : (row, col) or None
        For tests of the verification only: this PE computes wrong products.
    weights : array-like of int, ``(depth, rows, cols)``, or None
        Fixed weights (a network's): the weight memories are ROMs in block RAM (no SPRAM), the
        write port unused.

    Members
    -------
    i : In(stream.Signature(vector_layout(...), always_ready=True))
    o : Out(stream.Signature(psums_layout(...), always_ready=True))
    w_addr, w_data : In
    w_en : In(rows * cols)
        Weight memory write port: one enable per PE, row-major.
    """

    def __init__(self, *, rows, cols, depth, elem_shape, weight_shape, psum_shape, tag_shape,
                 placement=None, faulty_pe=None, weights=None):
        self._faulty_pe = faulty_pe
        self._placement = placement
        self._weights = weights
        assert weights is None or len(weights) == depth
        self._rows = rows
        self._cols = cols
        self._depth = depth
        self._shapes = dict(elem_shape=elem_shape, weight_shape=weight_shape,
                            psum_shape=psum_shape)
        super().__init__({
            "i": In(stream.Signature(vector_layout(elem_shape, rows, depth, tag_shape),
                                     always_ready=True)),
            "o": Out(stream.Signature(psums_layout(psum_shape, cols, tag_shape),
                                      always_ready=True)),
            "w_addr": In(range(depth)),
            "w_data": In(weight_shape),
            "w_en": In(rows * cols),
        })

    @property
    def latency(self):
        """Cycles from a vector in to its partial sums out: the input skew of the last row, the
        PE pipeline, the chain down the rows and across the columns, the de-skew."""
        return self._rows + self._cols + ProcessingElement.latency - 2

    @property
    def pe_pairs(self):
        """Pairs of PEs on one dual multiplier (:func:`pe_pairs`)."""
        return pe_pairs(self._rows, self._cols, self._shapes["elem_shape"],
                        self._shapes["weight_shape"])

    def placement(self, platform=None):
        """Where the weights live on `platform` (:func:`~convaccel.hdl.weights.
        weight_placement` for its device), unless the array was given a placement."""
        if self._placement is not None:
            return self._placement
        return weight_placement(
            rows=self._rows, cols=self._cols, depth=self._depth,
            weight_bits=Shape.cast(self._shapes["weight_shape"]).width,
            paired=self.pe_pairs > 0, family=platform_family(platform),
            spram=device_spram(platform) if self._weights is None else 0)

    @property
    def memories(self):
        shapes, _ = self.placement().memories(
            self._rows, self._cols, self._depth, Shape.cast(self._shapes["weight_shape"]).width,
            rom=self._weights is not None)
        return shapes

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._rows, self._cols
        assert ProcessingElementPair.latency == ProcessingElement.latency

        def delayed(value, cycles, name, reset_less=True):
            for n in range(cycles):
                reg = Signal.like(value, name=f"{name}_d{n + 1}", reset_less=reset_less)
                m.d.sync += reg.eq(value)
                value = reg
            return value

        # The PEs, in units of one column: pairs of rows (2i, 2i + 1) first, then single rows.
        # `lanes[r][c]` is (unit, lane) for PE (r, c); a unit's weight address and partial sum
        # ports are its top row's and bottom row's.
        pair_rows = 2 * (self.pe_pairs // cols) if cols else 0
        placement = self.placement(platform)
        assert not pair_rows or placement.share % 2 == 0
        units = [[] for _ in range(cols)]
        lanes = [[None] * cols for _ in range(rows)]
        for c in range(cols):
            for r in range(0, pair_rows, 2):
                pe = ProcessingElementPair(
                    depth=self._depth, fault=((r, c) == self._faulty_pe,
                                              (r + 1, c) == self._faulty_pe), own_memory=False,
                    **self._shapes)
                m.submodules[f"pe_{r}_{r + 1}_{c}"] = pe
                units[c].append((r, pe))
                lanes[r][c], lanes[r + 1][c] = (pe, 0), (pe, 1)
            for r in range(pair_rows, rows):
                pe = ProcessingElement(depth=self._depth, fault=(r, c) == self._faulty_pe,
                                       own_memory=False, **self._shapes)
                m.submodules[f"pe_{r}_{c}"] = pe
                units[c].append((r, pe))
                lanes[r][c] = (pe, None)

        # The weight memories: `share` rows of a column each, read at their top row's address
        # (the unit holding that row takes it a cycle late from the column before, as it takes
        # its elements), each lane a cycle after the one above (weights.WeightMemory).
        unit_of = {(r, c): pe for c in range(cols) for r, pe in units[c]}
        # An array of more than WRITE_CHAIN_PES PEs passes the load's writes (address, value,
        # each column's enables) down a chain of registers, a column a cycle, so that no
        # flip-flop drives every PE's memory across the die (at 128 PEs on the ECP5, 12.7 ns of
        # routing from the load's value to a far column). Column c's memories are then written
        # c cycles after column 0's, as they are read c cycles after (the address skew): a
        # frame after a load reads what it wrote, as before.
        chained = rows * cols > WRITE_CHAIN_PES
        w_addr, w_data = [self.w_addr], [self.w_data]
        for c in range(1, cols):
            w_addr.append(delayed(w_addr[-1], int(chained), f"w_addr_c{c}"))
            w_data.append(delayed(w_data[-1], int(chained), f"w_data_c{c}"))
        for c in range(cols):
            for r0, n in weight_groups(rows, placement.share):
                init = None
                if self._weights is not None:
                    init = [[int(self._weights[k][r0 + i][c]) for i in range(n)]
                            for k in range(self._depth)]
                mem = WeightMemory(depth=self._depth,
                                   weight_shape=self._shapes["weight_shape"], lanes=n,
                                   spram=(r0, c) in placement.spram, init=init)
                m.submodules[f"weights_{r0}_{c}"] = mem
                w_en = Cat(self.w_en[(r0 + i) * cols + c] for i in range(n))
                m.d.comb += [
                    mem.addr.eq(unit_of[r0, c].k_in),
                    mem.w_addr.eq(w_addr[c]), mem.w_data.eq(w_data[c]),
                    mem.w_en.eq(delayed(w_en, c if chained else 0, f"w_en_{r0}_{c}",
                                        reset_less=False)),
                ]
                for i in range(n):
                    pe, lane = lanes[r0 + i][c]
                    m.d.comb += (pe.w_in if lane is None else pe.w_in[lane]).eq(mem.w[i])

        def x_port(r, c, direction):
            pe, lane = lanes[r][c]
            port = pe.x_in if direction == "in" else pe.x_out
            return port if lane is None else port[lane]

        # PE (r, c) sees the vector r + c cycles late: one chain of address registers, tapped
        # per unit at r + c (rather than each PE passing the address on to its right, which
        # would cost every PE a register as wide as the weight address: flip-flops growing
        # with the layer's weights).
        k_taps = [self.i.payload.k]
        for n in range(rows + cols - 2):
            k_taps.append(delayed(k_taps[-1], 1, f"k{n + 1}"))
        for c in range(cols):
            for n, (r, pe) in enumerate(units[c]):
                m.d.comb += pe.k_in.eq(k_taps[r + c])
                if n > 0:
                    m.d.comb += pe.psum_in.eq(units[c][n - 1][1].psum_out)
        for r in range(rows):
            m.d.comb += x_port(r, 0, "in").eq(delayed(self.i.payload.x[r], r, f"x{r}"))
            for c in range(1, cols):
                m.d.comb += x_port(r, c, "in").eq(x_port(r, c - 1, "out"))
        for c in range(cols):
            m.d.comb += self.o.payload.psums[c].eq(
                delayed(units[c][-1][1].psum_out, cols - 1 - c, f"psum{c}"))
        # The tag and `valid` travel beside the vector, aligned with its sums.
        m.d.comb += [
            self.o.payload.tag.eq(delayed(self.i.payload.tag, self.latency, "tag", False)),
            self.o.valid.eq(delayed(self.i.valid, self.latency, "valid", False)),
        ]
        return m
