# amaranth: UnusedElaboratable=no
# (The engine builds its stages in its constructor, so that their figures are known before
# elaboration; `engine_figures` builds an engine only to read them.)
import functools
from dataclasses import dataclass

import numpy as np
from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .array import Feeder, SystolicArray, fold_tag_layout
from .linebuf import LineBuffer
from .output import OutputStage, pixel_out_layout
from .padder import EdgePadder, Padder, pixel_in_layout
from .requant import Requantizer
from .stage import drive_registered
from .stream import Queue
from .window import WindowGen, window_layout

__all__ = ["ConvAccelerator", "EngineFigures", "engine_figures", "load_layout", "COUNTER_BITS"]

COUNTER_BITS = 32


def load_layout(value_shape):
    """A weight-load beat: one weight or bias, sign-extended to `value_shape`, ``last`` on the
    final beat."""
    return data.StructLayout({"data": value_shape, "last": 1})


@dataclass(frozen=True)
class EngineFigures:
    """What the engine's stages add up to (:func:`engine_figures`).

    Members
    -------
    front_latency : int
        Cycles from a frame's start to the cycle in which the window generator could emit a
        window completed by the first padded pixel: the padder's start and latency, the pixel
        queue's, the window generator's.
    back_latency : int
        Cycles from a vector entering the array to its output beat's transfer: the array's
        latency and the output stage's.
    cycles : int
        Cycles per frame with no stalls (:attr:`convaccel.ConvSpec.cycles`).
    output_queue_depth : int
        Output pixels the output stage queues.
    memories : tuple of MemoryShape
        Every memory of every stage.
    multipliers : tuple of (int, int)
        The operand widths (signed, unsigned) of every multiplier beside the PEs' (the
        requantizer's).
    pe_pairs : int
        Pairs of PEs that share one dual 8 x 8 multiplier (one SB_MAC16 on iCE40).
    logic : tuple of (str, int, int)
        ``(family, lut, ff)``: logic that the fit's model does not count (the requantizer's
        multipliers in logic, :attr:`~convaccel.hdl.requant.Requantizer.logic`).
    """

    front_latency: int
    back_latency: int
    cycles: int
    output_queue_depth: int
    memories: tuple
    multipliers: tuple = ()
    pe_pairs: int = 0
    logic: tuple = ()

    def extra_logic(self, family):
        """``(lut, ff)`` of :attr:`logic` for `family`."""
        return next(((lut, ff) for f, lut, ff in self.logic if f == family), (0, 0))


def engine_multipliers(spec):
    """:attr:`EngineFigures.multipliers` of the engine for `spec`, without building it: its
    output stage's requantizer's (:meth:`Requantizer.multipliers_for
    <convaccel.hdl.requant.Requantizer.multipliers_for>`), none for raw outputs. The engine's
    figures are these (it checks that its output stage has the same)."""
    if not spec.requantize:
        return ()
    return Requantizer.multipliers_for(cols=spec.cols, row_folds=spec.row_folds,
                                       acc_shape=signed(spec.acc_bits),
                                       multiplier=spec.requant_multiplier)


@functools.cache
def engine_figures(spec):
    """The figures of the engine for `spec` (:class:`EngineFigures`), read from its stages."""
    return ConvAccelerator(spec).figures


class ConvAccelerator(wiring.Component):
    """The convolution engine for one :class:`~convaccel.ConvSpec`.

    ``pixels`` (raster order, one pixel with every input channel per beat, ``last`` on the
    frame's final pixel) → :class:`Padder` → :class:`Queue` → :class:`WindowGen` →
    :class:`Feeder` → :class:`SystolicArray` → :class:`OutputStage` → ``results`` (one output
    pixel with every output channel per beat, the exact accumulator or, for a requantized
    layer, int8, ``last`` on the frame's final pixel). Every stage is connected to the next by
    a stream.

    Weights and biases arrive on ``weights`` while no frame runs: ``cycles_per_pixel * rows *
    cols`` weight beats in the order (fold address, row, column), then ``out_channels`` bias
    beats in channel order, then for a requantized layer ``out_channels`` multipliers,
    ``out_channels`` shifts, the output zero point, ``act_min`` and ``act_max``, then with
    run-time pad values (``pad_runtime``) ``in_channels`` pad values; ``last`` on the final beat
    (:func:`convaccel.beats.weight_beats` makes them). A frame starts when the engine is
    idle, no load is under way or offered, and the first pixel is valid; frames do not
    overlap: the next begins after the previous one's last result has left.

    With ``lanes`` (the channel-serial engine, ``spec.serial``) the stream beats are narrower
    and no receptive field is held in registers: ``pixels`` carries ``lanes`` channels a beat,
    a pixel's ``chunks`` beats in turn (``last`` on the frame's final beat) → :class:`Padder`
    (by chunks) → :class:`~convaccel.hdl.linebuf.LineBuffer` (a block RAM ring of padded rows,
    read by an address generator straight into the array) → :class:`SystolicArray` →
    :class:`OutputStage` → ``results``, a column block of ``cols`` channels a beat,
    ``col_folds`` beats a pixel (:func:`convaccel.beats.pixel_beats` and
    :func:`~convaccel.beats.result_array` make and read them). The weight load is the same.

    Throughput and latency follow :attr:`figures` exactly when input is always valid and
    results always ready.

    Parameters
    ----------
    spec : ConvSpec
    faulty_pe : (row, col) or None
        For tests of the verification only: that PE computes wrong products.
    fixed : (sequence of int, sequence of int, :class:`convaccel.quant.Requant` or None) or None
        The weights (as the load's beats order them), biases and requantization parameters
        baked in (a network's layer): the weight memories are ROMs
        (:class:`SystolicArray`'s ``weights``), and the biases and requantizer's
        (:class:`OutputStage`'s ``fixed``). No load is needed; one is checked and its values
        ignored.

    Members
    -------
    pixels : In(stream.Signature(pixel_in_layout(...)))
    results : Out(stream.Signature(pixel_out_layout(...)))
    weights : In(stream.Signature(load_layout(...)))
    busy : Out(1)
        A frame is in progress, or a load's last values are being written (the cycle after
        its final beat): no frame starts and no weight is taken while it is high.
    done : Out(1)
        The last frame has completed; cleared when the next starts.
    error : Out(1)
        Sticky: a frame or a weight load had the wrong length, or a weight, bias, requantization
        parameter or pad value did not fit its width. Cleared by ``error_clear``.
    error_clear : In(1)
    cycles, input_stalls, output_stalls, macs : Out(...)
        For the current (or last) frame: cycles from start to the last result, cycles in which
        the engine waited for a pixel, cycles in which a result waited for ``results.ready``,
        and multiply-accumulates that contributed to a result.
    """

    def __init__(self, spec, *, faulty_pe=None, fixed=None):
        self._spec = spec
        self._fixed = fixed
        elem = signed(spec.input_bits) if spec.input_signed else unsigned(spec.input_bits)
        tag = fold_tag_layout()
        if spec.serial:
            self._init_serial(spec, elem, tag, faulty_pe, fixed)
            return
        pixel = data.ArrayLayout(elem, spec.in_channels)
        # The stages, from the spec's parameters (each derives its own figures from them).
        if spec.padding_mode == "constant" or not any(spec.pads):
            self._padder = Padder(
                height=spec.height, width=spec.width, pads=spec.pads,
                pad_value=spec.pad_values, pixel_shape=pixel, runtime=spec.pad_runtime)
        else:
            self._padder = EdgePadder(
                height=spec.height, width=spec.width, pads=spec.pads, mode=spec.padding_mode,
                pixel_shape=pixel)
        # Two pixels of slack between padder and window generator: the padder's handshake then
        # starts from this queue's registers, not from the window and the feeder.
        self._pixel_queue = Queue(pixel, 2)
        self._window = WindowGen(
            padded=spec.padded_shape, kernel=spec.kernel, dilation=spec.dilation,
            stride=spec.stride, pixel_shape=pixel)
        self._feeder = Feeder(
            reduction=spec.reduction, rows=spec.rows, row_folds=spec.row_folds,
            col_folds=spec.col_folds, elem_shape=elem,
            window_shape=window_layout(pixel, spec.kernel), groups=spec.groups,
            in_channels=spec.in_channels)
        self._array = SystolicArray(
            rows=spec.rows, cols=spec.cols, depth=self._feeder.interval, elem_shape=elem,
            weight_shape=signed(spec.weight_bits), psum_shape=signed(spec.psum_bits),
            tag_shape=tag, faulty_pe=faulty_pe, weights=self._fixed_weights(spec, fixed))
        self._output = OutputStage(
            cols=spec.cols, channels=spec.out_channels, row_folds=spec.row_folds,
            col_folds=spec.col_folds, in_flight=self._feeder.latency + self._array.latency,
            psum_shape=signed(spec.psum_bits), acc_shape=signed(spec.acc_bits),
            bias_shape=signed(spec.bias_bits), tag_shape=tag, requantize=spec.requantize,
            requant_multiplier=spec.requant_multiplier, groups=spec.groups,
            fixed=None if fixed is None else fixed[1:])
        self._layouts = {
            "pixels": pixel_in_layout(pixel),
            "results": pixel_out_layout(signed(spec.output_bits), spec.out_channels),
            "weights": load_layout(signed(spec.load_bits)),
        }
        self._init_ports()

    def _init_serial(self, spec, elem, tag, faulty_pe, fixed):
        # The channel-serial engine: beats of `lanes` channels, vectors read from the line
        # buffer's block RAM by its address generator, results a column block a beat.
        beat = data.ArrayLayout(elem, spec.lanes)
        assert not any(spec.pads) or spec.padding_mode == "constant"   # (the spec refuses)
        self._padder = Padder(
            height=spec.height, width=spec.width, pads=spec.pads, pad_value=spec.pad_values,
            pixel_shape=beat, runtime=spec.pad_runtime, chunks=spec.chunks)
        self._linebuf = LineBuffer(
            padded=spec.padded_shape, kernel=spec.kernel, dilation=spec.dilation,
            stride=spec.stride, chunks=spec.chunks, lanes=spec.lanes, rows=spec.rows,
            col_folds=spec.col_folds, elem_shape=elem)
        assert self._linebuf.interval == spec.cycles_per_pixel
        self._array = SystolicArray(
            rows=spec.rows, cols=spec.cols, depth=self._linebuf.interval, elem_shape=elem,
            weight_shape=signed(spec.weight_bits), psum_shape=signed(spec.psum_bits),
            tag_shape=tag, faulty_pe=faulty_pe, weights=self._fixed_weights(spec, fixed))
        self._output = OutputStage(
            cols=spec.cols, channels=spec.out_channels, row_folds=spec.row_folds,
            col_folds=spec.col_folds, in_flight=self._linebuf.latency + self._array.latency,
            psum_shape=signed(spec.psum_bits), acc_shape=signed(spec.acc_bits),
            bias_shape=signed(spec.bias_bits), tag_shape=tag, requantize=spec.requantize,
            requant_multiplier=spec.requant_multiplier, serial=True,
            fixed=None if fixed is None else fixed[1:])
        self._layouts = {
            "pixels": pixel_in_layout(beat),
            "results": pixel_out_layout(signed(spec.output_bits), spec.cols),
            "weights": load_layout(signed(spec.load_bits)),
        }
        self._init_ports()

    @staticmethod
    def _fixed_weights(spec, fixed):
        # the load's weights, (fold address, row, column) in beat order, as the array's
        if fixed is None:
            return None
        weights = np.asarray(fixed[0], dtype=np.int64)
        assert weights.size == spec.cycles_per_pixel * spec.rows * spec.cols
        return weights.reshape(-1, spec.rows, spec.cols)

    def _init_ports(self):
        spec = self._spec
        super().__init__({
            "pixels": In(stream.Signature(self._layouts["pixels"])),
            "results": Out(stream.Signature(self._layouts["results"])),
            "weights": In(stream.Signature(self._layouts["weights"])),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
            "error_clear": In(1),
            "cycles": Out(COUNTER_BITS),
            "input_stalls": Out(COUNTER_BITS),
            "output_stalls": Out(COUNTER_BITS),
            "macs": Out(max(COUNTER_BITS, spec.macs.bit_length())),
        })

    @property
    def spec(self):
        return self._spec

    @property
    def layouts(self):
        """``{"pixels" | "results" | "weights": layout}``: the payloads of the three streams
        (a stream signature does not report its payload's layout), for testbenches and hosts
        that pack and unpack beats."""
        return dict(self._layouts)

    @property
    def stages(self):
        """The stages in stream order: padder, pixel queue, window generator, feeder, array,
        output stage; for the channel-serial engine padder, line buffer, array, output
        stage."""
        if self._spec.serial:
            return (self._padder, self._linebuf, self._array, self._output)
        return (self._padder, self._pixel_queue, self._window, self._feeder, self._array,
                self._output)

    @property
    def memories(self):
        """Every memory of the engine (:class:`~convaccel.hdl.stage.MemoryShape`)."""
        return tuple(mem for stage in self.stages for mem in stage.memories)

    @property
    def figures(self):
        """The cycle model and the engine's other figures, summed from its stages.

        The padder emits one padded pixel per cycle; the window generator hands a window to the
        feeder when the pixel that completes it has passed, and the feeder spends ``P``
        (its ``interval``) cycles issuing it and takes the next window in its last one. So the
        first window is taken ``front_latency + first_window`` cycles after the frame's start,
        then one every ``max(column_step, P)`` cycles along an output row and ``max(row_step,
        P)`` from the last of a row to the first of the next: the padder's pixels (padding,
        the rows and columns that stride skips) flow while the array works, and only the
        longer of the two counts. An integer output size means the last window ends at the
        last padded pixel, so no input follows it. The last window's last vector enters the
        array ``feeder.latency + P - 1`` cycles after it is taken, and its result transfers
        ``back_latency`` cycles after that; the count includes both the first and the last
        cycle.
        """
        if self._spec.serial:
            return self._serial_figures()
        padder, queue, window, feeder, array, output = self.stages
        p = feeder.interval
        front = padder.start_cycles + padder.latency + queue.latency + window.latency
        back = array.latency + output.latency
        out_h, out_w = self._spec.output_size
        last = (front + window.first_window
                + out_h * (out_w - 1) * max(window.column_step, p)
                + (out_h - 1) * max(window.row_step, p))
        cycles = last + feeder.latency + p - 1 + back + 1
        return EngineFigures(front_latency=front, back_latency=back, cycles=cycles,
                             output_queue_depth=output.queue_depth, memories=self.memories,
                             multipliers=self._multipliers(output), pe_pairs=array.pe_pairs,
                             logic=tuple((f, *n) for f, n in sorted(output.logic.items())))

    def _multipliers(self, output):
        multipliers = engine_multipliers(self._spec)
        assert multipliers == output.multipliers, (multipliers, output.multipliers)
        return multipliers

    def _serial_figures(self):
        """The channel-serial engine's cycle model: the padder offers padded beat ``b`` in
        cycle ``front_latency + b`` of the frame (its start cycle 0) unless the line buffer
        holds it back; the line buffer's own recurrence (:meth:`LineBuffer.schedule`) gives the
        cycle in which the last output pixel is taken; its last vector enters the array
        ``latency + P - 1`` cycles later, and the last result beat (that pixel's last column
        block) transfers ``back_latency`` cycles after that; the count includes both the first
        and the last cycle."""
        padder, linebuf, array, output = self.stages
        front = padder.start_cycles + padder.latency
        back = array.latency + output.latency
        last = linebuf.schedule(front)[-1]
        cycles = last + linebuf.latency + linebuf.interval - 1 + back + 1
        return EngineFigures(front_latency=front, back_latency=back, cycles=cycles,
                             output_queue_depth=output.queue_depth, memories=self.memories,
                             multipliers=self._multipliers(output), pe_pairs=array.pe_pairs,
                             logic=tuple((f, *n) for f, n in sorted(output.logic.items())))

    def elaborate(self, platform):
        m = Module()
        spec = self._spec
        rows, cols = spec.rows, spec.cols
        blocks = spec.blocks
        depth = spec.cycles_per_pixel

        if spec.serial:
            padder, linebuf, array, output = self.stages
            m.submodules.padder = padder
            m.submodules.linebuf = linebuf
            m.submodules.array = array
            m.submodules.output = output
            wiring.connect(m, wiring.flipped(self.pixels), padder.i)
            wiring.connect(m, padder.o, linebuf.i)
            wiring.connect(m, linebuf.o, array.i)
            wiring.connect(m, array.o, output.i)
            wiring.connect(m, output.o, wiring.flipped(self.results))
            # The line buffer restarts the cycle after the padder's start (a flip-flop: the
            # start's decode of the load's and the link's state is not chained into the line
            # buffer's counters, the engine's critical path at 36 MHz), still before the
            # frame's first padded beat reaches it.
            assert padder.start_cycles + padder.latency >= 2
            restart = Signal()
            m.d.sync += restart.eq(padder.start)
            m.d.comb += [
                linebuf.start.eq(restart),
                linebuf.credit.eq(output.credit),
                output.reserve.eq(linebuf.take),
            ]
            vectors = linebuf.o
        else:
            padder, pixel_queue, window, feeder, array, output = self.stages
            m.submodules.padder = padder
            m.submodules.pixel_queue = pixel_queue
            m.submodules.window = window
            m.submodules.feeder = feeder
            m.submodules.array = array
            m.submodules.output = output

            wiring.connect(m, wiring.flipped(self.pixels), padder.i)
            wiring.connect(m, padder.o, pixel_queue.i)
            wiring.connect(m, pixel_queue.o, window.i)
            wiring.connect(m, window.o, feeder.i)
            wiring.connect(m, feeder.o, array.i)
            wiring.connect(m, array.o, output.i)
            wiring.connect(m, output.o, wiring.flipped(self.results))
            m.d.comb += [
                feeder.credit.eq(output.credit),
                output.reserve.eq(feeder.i.valid & feeder.i.ready),
            ]
            vectors = feeder.o

        # -- weight and bias loading -----------------------------------------------------------
        # Every decode of the load's counters (a counter at its end, the final beat) is kept in
        # a flip-flop beside its counter, set a cycle ahead from the counter's next value, so
        # that the memories' enables and addresses start from flip-flops (the load's control
        # was the engine's critical path).
        load_k = Signal(range(depth))
        k_end = Signal(init=depth == 1)               # load_k == depth - 1
        load_bias = Signal()                          # past the weights
        # past the weights: 0 biases, then (requantized layers) 1 multipliers, 2 shifts,
        # 3 zero point and clamp bounds, then (run-time pad values) 4 pad values
        load_phase = Signal(range(5))
        final_number = 4 if spec.pad_runtime else 3 if spec.requantize else 0
        final_phase = Signal()                        # load_bias & (load_phase == final_number)
        load_scalar = Signal(range(3))
        scalar_end = Signal()                         # load_scalar == 2
        load_pad = Signal(range(spec.in_channels))    # the input channel of a pad value
        pad_end = Signal(init=spec.in_channels == 1)  # load_pad == in_channels - 1
        load_group = Signal(range(blocks))           # the column block of a bias (channel_slot)
        load_lane = Signal(range(cols))
        lane_end = Signal(init=cols == 1)             # load_lane == cols - 1
        load_discard = Signal()                       # dropping the rest of an overlong load
        load_idle = Signal(init=1)                    # at the start of a load (registered)
        # One-hot: the PE that takes the next weight (row-major, as the beats come); its last
        # bit marks a fold address's last weight.
        load_pe = Signal(rows * cols, init=1)
        load_channel = Signal(range(spec.out_channels))
        table_end = Signal(init=spec.out_channels == 1)   # load_channel == out_channels - 1
        # A block ends at its last column or at its convolution group's last channel (that is
        # at a column's end too where `cols` divides a group's channels, and at the table's end
        # with one group).
        if spec.groups > 1 and spec.out_per_group % cols:
            load_in_group = Signal(range(spec.out_per_group))
            group_end = Signal(init=spec.out_per_group == 1)  # == out_per_group - 1
            block_end = lane_end | group_end
        else:
            load_in_group = None
            block_end = lane_end
        load_final = final_phase & (pad_end if spec.pad_runtime else
                                    scalar_end if spec.requantize else table_end)

        def step(counter, end, size, *, wrap=True):
            """Advance `counter` (0..size-1, back to 0 after its end if `wrap`) and its `end`."""
            if wrap:
                m.d.sync += [counter.eq(Mux(end, 0, counter + 1)),
                             end.eq(Mux(end, size == 1, counter == size - 2))]
            else:
                m.d.sync += [counter.eq(counter + 1), end.eq(counter == size - 2)]

        def clear(counter, end, size):
            m.d.sync += [counter.eq(0), end.eq(size == 1)]

        # Each write a beat makes (enables, address, value) passes a register on its way to its
        # memory, so that the load's decode ends at flip-flops, not at the enables of every
        # weight, bias and requantizer register (the UP5K's critical path at 44.6 MHz). A frame
        # starts a cycle after the load's last write has landed (`load_restart`, `frame_ok`).
        load_restart = Signal()                       # a load has ended: start over

        def staged(port, *, enable=False):
            # (an enable's register keeps its reset, so that no write follows a reset; an
            # address's or a value's has none: it matters only beside its enable)
            early = Signal.like(port, name=f"load_{port.name}")
            drive_registered(m, port, early, reset_less=not enable)
            return early

        w_en, b_en = staged(array.w_en, enable=True), staged(output.b_en, enable=True)
        beat = self.weights.payload
        take = self.weights.valid & self.weights.ready
        m.d.comb += [
            # Loads go first: a frame starts when the engine is idle and no weight is offered.
            self.weights.ready.eq(~self.busy),
            staged(array.w_addr).eq(load_k),
            staged(array.w_data).eq(beat.data),
            staged(output.b_addr).eq(load_group),
            staged(output.b_data).eq(beat.data),
        ]
        if spec.requantize:
            m_en, s_en, c_en = (staged(output.m_en, enable=True), staged(output.s_en, enable=True),
                                staged(output.c_en, enable=True))
            m.d.comb += staged(output.q_data).eq(beat.data)
        if spec.pad_runtime:
            pad_en = staged(padder.pad_en, enable=True)
            m.d.comb += staged(padder.pad_data).eq(beat.data)
        # (the channel-serial padder's pad values: a word per chunk, `lanes` channels each)
        serial_pads = spec.serial and spec.pad_runtime and spec.chunks > 1
        if serial_pads:
            pad_lane = Signal(range(spec.lanes))
            pad_lane_end = Signal(init=spec.lanes == 1)
            pad_chunk = Signal(range(spec.chunks))
            m.d.comb += staged(padder.pad_addr).eq(pad_chunk)

        def fits(bits, signed=True):
            # the beat's value is a sign extension of its low `bits` bits (or a zero
            # extension, if not `signed`)
            top = beat.data[bits - 1 if signed else bits:]
            return (top == 0) | ((top == (1 << len(top)) - 1) if signed else 0)

        # The value checks are kept off the load's control: which one applies (the beat's kind)
        # and each one's verdict on the beat's value are registered, and combined in the next
        # cycle (the cycle in which `load_error` used to be registered).
        if spec.requantize:
            from ..quant import MULTIPLIER_BITS, SHIFT_RANGE
            value = beat.data.as_signed()
            shift_ok = (value >= SHIFT_RANGE[0]) & (value <= SHIFT_RANGE[1])
        # weights, biases, multipliers, shifts, zero point and clamp bounds, pad values: the
        # checks this layer's load has (no flip-flop, and no constant driver, for the others)
        checks = {"weight": fits(spec.weight_bits), "bias": fits(spec.bias_bits)}
        if spec.requantize:
            checks.update(multiplier=fits(MULTIPLIER_BITS, signed=False), shift=shift_ok,
                          scalar=fits(8))
        if spec.pad_runtime:
            checks["pad"] = fits(spec.input_bits, spec.input_signed)
        oks = Cat(*checks.values())
        kind = Signal(len(oks))                       # one-hot: the check for the beat taken
        check = {name: kind[n] for n, name in enumerate(checks)}
        load_error = Signal()                         # the beat's `last` is misplaced
        # The load's idle and discard flags after this cycle, for their registers and the
        # frame's start (`frame_ok`): the load is at its start again after its final beat, or
        # after an early `last`; it drops the rest of an overlong load, from a final beat
        # without `last` up to the next `last`.
        idle_next = Signal()
        discard_next = Signal()
        m.d.comb += [
            idle_next.eq(Mux(take, Mux(load_discard, beat.last, beat.last | load_final),
                             load_idle)),
            discard_next.eq(Mux(take & (load_discard | load_bias),
                                ~beat.last & (load_discard | load_final), load_discard)),
        ]
        m.d.sync += [load_idle.eq(idle_next), load_discard.eq(discard_next)]
        # A load's end (its final beat, or an early `last`) sets `load_restart`, and its counters
        # and flags start over in the next cycle, in which no beat is taken: their clears come
        # from one flip-flop, not from the beat's decode (the load's control was the UP5K's
        # critical path at 47 MHz).
        weight_take = take & ~load_discard & ~load_bias
        table_take = take & ~load_discard & load_bias
        m.d.sync += load_restart.eq(Mux(weight_take, beat.last,
                                   table_take & (load_final | beat.last)))
        with m.If(weight_take):
            m.d.comb += w_en.eq(load_pe)
            m.d.sync += load_pe.eq(load_pe.rotate_left(1))
            m.d.comb += [check["weight"].eq(1), load_error.eq(beat.last)]
            with m.If(load_pe[-1]):
                step(load_k, k_end, depth)
                with m.If(k_end):
                    m.d.sync += [load_bias.eq(1), final_phase.eq(final_number == 0)]
        with m.If(table_take):
            with m.Switch(load_phase):
                with m.Case(0):
                    m.d.comb += [b_en.eq(1 << load_lane), check["bias"].eq(1)]
                if spec.requantize:
                    with m.Case(1):
                        m.d.comb += [m_en.eq(1 << load_lane), check["multiplier"].eq(1)]
                    with m.Case(2):
                        m.d.comb += [s_en.eq(1 << load_lane), check["shift"].eq(1)]
                    with m.Case(3):
                        m.d.comb += [c_en.eq(1 << load_scalar), check["scalar"].eq(1)]
                if spec.pad_runtime:
                    with m.Case(4):
                        m.d.comb += [pad_en.eq(1 << (pad_lane if serial_pads else load_pad)),
                                     check["pad"].eq(1)]
            m.d.comb += load_error.eq(beat.last != load_final)
            with m.If(load_phase == 4):
                step(load_pad, pad_end, spec.in_channels, wrap=False)
                if serial_pads:
                    step(pad_lane, pad_lane_end, spec.lanes)
                    with m.If(pad_lane_end):
                        m.d.sync += pad_chunk.eq(pad_chunk + 1)
            with m.Elif(load_phase == 3):
                step(load_scalar, scalar_end, 3, wrap=False)
                with m.If(scalar_end):
                    m.d.sync += [load_phase.eq(4), final_phase.eq(final_number == 4)]
            with m.Else():
                step(load_lane, lane_end, cols, wrap=False)
                step(load_channel, table_end, spec.out_channels, wrap=False)
                with m.If(block_end):
                    m.d.sync += [load_lane.eq(0), lane_end.eq(cols == 1),
                                 load_group.eq(load_group + 1)]
                if load_in_group is not None:
                    step(load_in_group, group_end, spec.out_per_group)
                with m.If(table_end):
                    # (a raw layer's biases go straight on to the pad values)
                    clear(load_lane, lane_end, cols)
                    clear(load_channel, table_end, spec.out_channels)
                    m.d.sync += load_group.eq(0)
                    if spec.requantize:
                        m.d.sync += [load_phase.eq(load_phase + 1),
                                     final_phase.eq(load_phase == final_number - 1)]
                    else:
                        m.d.sync += [load_phase.eq(4), final_phase.eq(final_number == 4)]
        with m.If(load_restart):
            # (a short load's weights start over too)
            clear(load_k, k_end, depth)
            m.d.sync += load_pe.eq(1)
            clear(load_lane, lane_end, cols)
            clear(load_channel, table_end, spec.out_channels)
            clear(load_scalar, scalar_end, 3)
            clear(load_pad, pad_end, spec.in_channels)
            if serial_pads:
                clear(pad_lane, pad_lane_end, spec.lanes)
                m.d.sync += pad_chunk.eq(0)
            m.d.sync += [load_group.eq(0), load_bias.eq(0), load_phase.eq(0),
                         final_phase.eq(0)]
            if load_in_group is not None:
                clear(load_in_group, group_end, spec.out_per_group)

        # -- frames, status and counters -------------------------------------------------------
        frame_end = self.results.valid & self.results.ready & self.results.payload.last
        in_frame = Signal()
        busy_next = Mux(padder.start, 1, Mux(frame_end, 0, in_frame))
        m.d.sync += in_frame.eq(busy_next)
        m.d.comb += self.busy.eq(in_frame | load_restart)
        with m.If(padder.start):
            m.d.sync += self.done.eq(0)
        with m.Elif(frame_end):
            m.d.sync += self.done.eq(1)
        # The engine and the load are idle: a flip-flop set from their next states, so that a
        # frame's start is decoded from few signals (the load's state -> the padder's start ->
        # the line buffer was the critical path at 36 MHz on the UP5K).
        # (and no write of the load still on its way to its memory: `staged`, above)
        frame_ok = Signal(init=1)                     # ~busy & load_idle & ~load_discard
        m.d.sync += frame_ok.eq(~busy_next & idle_next & ~discard_next & ~take)
        m.d.comb += padder.start_ok.eq(frame_ok & ~self.weights.valid)

        # Error events pass a register on their way to the sticky flag (a cycle later).
        # (each source in its own flip-flops: no logic joins the padder's and the load's)
        padder_event = Signal()
        load_event = Signal()
        checked = Signal.like(kind)
        verdicts = Signal.like(oks)
        m.d.sync += [padder_event.eq(padder.error), load_event.eq(load_error),
                     checked.eq(kind), verdicts.eq(oks)]
        error_event = padder_event | load_event | (checked & ~verdicts).any()
        with m.If(self.error_clear):
            m.d.sync += self.error.eq(0)
        with m.If(error_event):
            m.d.sync += self.error.eq(1)

        # (a group's last row fold and its last column block may be partial)
        last_rows = spec.reduction - (spec.row_folds - 1) * rows
        last_cols = spec.out_per_group - (spec.col_folds - 1) * cols
        # (four constants: a multiplier here would take a DSP block from the PEs)
        tag = vectors.payload.tag
        vector_macs = Mux(tag.last_fold,
                          Mux(tag.last_col_fold, last_rows * last_cols, last_rows * cols),
                          Mux(tag.last_col_fold, rows * last_cols, rows * cols))
        with m.If(padder.start):
            m.d.sync += [
                self.cycles.eq(1),
                self.input_stalls.eq(0),
                self.output_stalls.eq(0),
                self.macs.eq(0),
            ]
        with m.Elif(in_frame):
            m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(self.pixels.ready & ~self.pixels.valid):
                m.d.sync += self.input_stalls.eq(self.input_stalls + 1)
            with m.If(self.results.valid & ~self.results.ready):
                m.d.sync += self.output_stalls.eq(self.output_stalls + 1)
            with m.If(vectors.valid):
                m.d.sync += self.macs.eq(self.macs + vector_macs)
        return m
