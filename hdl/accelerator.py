from amaranth import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .array import Feeder, SystolicArray
from .output import OutputStage, pixel_out_layout
from .padder import Padder, pixel_in_layout
from .window import WindowGen, window_layout

__all__ = ["ConvAccelerator", "load_layout", "COUNTER_BITS"]

COUNTER_BITS = 32


def load_layout(spec):
    """A weight-load beat: one weight or bias, sign-extended, ``last`` on the final beat."""
    return data.StructLayout({"data": signed(max(spec.weight_bits, spec.bias_bits)), "last": 1})


class ConvAccelerator(wiring.Component):
    """The convolution engine for one :class:`~convaccel.ConvSpec`.

    ``pixels`` (raster order, one pixel with every input channel per beat, ``last`` on the
    frame's final pixel) → :class:`Padder` → :class:`WindowGen` → :class:`Feeder` →
    :class:`SystolicArray` → :class:`OutputStage` → ``results`` (one output pixel with every
    output channel per beat, the exact accumulator, ``last`` on the frame's final pixel).

    Weights and biases arrive on ``weights`` while no frame runs: ``cycles_per_pixel * rows *
    cols`` weight beats in the order (fold address, row, column), then ``out_channels`` bias
    beats, ``last`` on the final one (:func:`convaccel.beats.weight_beats` makes them). A frame
    starts when the engine is idle, no load is under way or offered, and the first pixel is
    valid; frames do not overlap: the next begins after the previous one's last result has
    left.

    Throughput and latency follow :attr:`ConvSpec.cycles` exactly when input is always valid
    and results always ready.

    Parameters
    ----------
    spec : ConvSpec
    faulty_pe : (row, col) or None
        For tests of the verification only: that PE computes wrong products.

    Members
    -------
    pixels : In(stream.Signature(pixel_in_layout(...)))
    results : Out(stream.Signature(pixel_out_layout(...)))
    weights : In(stream.Signature(load_layout(spec)))
    busy : Out(1)
        A frame is in progress.
    done : Out(1)
        The last frame has completed; cleared when the next starts.
    error : Out(1)
        Sticky: a frame or a weight load had the wrong length, or a weight or bias did not fit
        its width. Cleared by ``error_clear``.
    error_clear : In(1)
    cycles, input_stalls, output_stalls, macs : Out(...)
        For the current (or last) frame: cycles from start to the last result, cycles in which
        the engine waited for a pixel, cycles in which a result waited for ``results.ready``,
        and multiply-accumulates that contributed to a result.
    """

    def __init__(self, spec, *, faulty_pe=None):
        self._spec = spec
        self._faulty_pe = faulty_pe
        elem = signed(spec.input_bits) if spec.input_signed else unsigned(spec.input_bits)
        self._elem_shape = elem
        self._pixel_shape = data.ArrayLayout(elem, spec.in_channels)
        super().__init__({
            "pixels": In(stream.Signature(pixel_in_layout(self._pixel_shape))),
            "results": Out(stream.Signature(
                pixel_out_layout(signed(spec.acc_bits), spec.out_channels))),
            "weights": In(stream.Signature(load_layout(spec))),
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
    def memories(self):
        """Every memory of the engine (:class:`~convaccel.hdl.stage.MemoryShape`)."""
        return engine_figures(self._spec).memories

    def elaborate(self, platform):
        m = Module()
        spec = self._spec
        rows, cols = spec.rows, spec.cols
        row_folds, col_folds = spec.row_folds, spec.col_folds
        depth = spec.cycles_per_pixel

        m.submodules.padder = padder = Padder(
            height=spec.height, width=spec.width, pads=spec.pads, pad_value=spec.pad_value,
            pixel_shape=self._pixel_shape)
        m.submodules.window = window = WindowGen(
            padded=spec.padded_shape, kernel=spec.kernel, dilation=spec.dilation,
            stride=spec.stride, pixel_shape=self._pixel_shape)
        m.submodules.feeder = feeder = Feeder(
            reduction=spec.reduction, rows=rows, row_folds=row_folds, col_folds=col_folds,
            elem_shape=self._elem_shape,
            window_shape=window_layout(self._pixel_shape, spec.kernel))
        m.submodules.array = array = SystolicArray(
            rows=rows, cols=cols, depth=depth, elem_shape=self._elem_shape,
            weight_shape=signed(spec.weight_bits), psum_shape=signed(spec.psum_bits),
            faulty_pe=self._faulty_pe)
        m.submodules.output = output = OutputStage(
            cols=cols, channels=spec.out_channels, row_folds=row_folds, col_folds=col_folds,
            queue_depth=spec.output_queue_depth, psum_shape=signed(spec.psum_bits),
            acc_shape=signed(spec.acc_bits), bias_shape=signed(spec.bias_bits))

        wiring.connect(m, wiring.flipped(self.pixels), padder.i)
        # Two pixels of slack between padder and window generator: the padder's handshake then
        # starts from this queue's registered `w_rdy`, not from the window and the feeder.
        m.submodules.pixel_queue = pixel_queue = fifo.SyncFIFO(
            width=Shape.cast(self._pixel_shape).width, depth=2)
        m.d.comb += [
            pixel_queue.w_data.eq(padder.o.payload),
            pixel_queue.w_en.eq(padder.o.valid),
            padder.o.ready.eq(pixel_queue.w_rdy),
            window.i.payload.eq(pixel_queue.r_data),
            window.i.valid.eq(pixel_queue.r_rdy),
            pixel_queue.r_en.eq(window.i.ready),
        ]
        wiring.connect(m, window.o, feeder.i)
        wiring.connect(m, output.o, wiring.flipped(self.results))
        m.d.comb += [
            array.x.eq(feeder.x),
            array.k.eq(feeder.issue.k),
            output.psums.eq(array.psums),
            feeder.credit.eq(output.credit),
            output.reserve.eq(feeder.i.valid & feeder.i.ready),
        ]
        # The issue travels beside the array and reaches the output stage a cycle before the
        # partial sums, in time to read the bias.
        issue = feeder.issue
        for n in range(array.latency - 1):
            delayed = Signal.like(feeder.issue, name=f"issue_d{n + 1}")
            m.d.sync += delayed.eq(issue)
            issue = delayed
        m.d.comb += output.issue.eq(issue)

        # -- weight and bias loading -----------------------------------------------------------
        load_k = Signal(range(depth))
        load_r = Signal(range(rows))
        load_c = Signal(range(cols))
        load_bias = Signal()                          # past the weights, into the biases
        load_group = Signal(range(col_folds))
        load_lane = Signal(range(cols))
        load_discard = Signal()                       # dropping the rest of an overlong load
        load_idle = Signal(init=1)                    # at the start of a load (registered)
        # One-hot: the PE that takes the next weight (row-major, as the beats come).
        load_pe = Signal(rows * cols, init=1)
        load_channel = Signal(range(spec.out_channels))      # = load_group * cols + load_lane
        load_final = load_bias & (load_channel == spec.out_channels - 1)

        beat = self.weights.payload
        take = self.weights.valid & self.weights.ready
        m.d.comb += [
            # Loads go first: a frame starts when the engine is idle and no weight is offered.
            self.weights.ready.eq(~self.busy),
            array.w_addr.eq(load_k),
            array.w_data.eq(beat.data),
            output.b_addr.eq(load_group),
            output.b_data.eq(beat.data),
        ]
        def fits(bits):
            # the beat's value is a sign extension of its low `bits` bits
            top = beat.data[bits - 1:]
            return (top == 0) | (top == (1 << len(top)) - 1)

        load_error = Signal()
        with m.If(take):
            # the load is at its start again after its final beat, or after an early `last`
            m.d.sync += load_idle.eq(Mux(load_discard, beat.last,
                                         beat.last | (load_bias & load_final)))
        with m.If(take & load_discard):
            with m.If(beat.last):
                m.d.sync += load_discard.eq(0)
        with m.Elif(take & ~load_bias):
            m.d.comb += array.w_en.eq(load_pe)
            m.d.sync += load_pe.eq(load_pe.rotate_left(1))
            m.d.comb += load_error.eq(~fits(spec.weight_bits) | beat.last)
            m.d.sync += load_c.eq(load_c + 1)
            with m.If(load_c == cols - 1):
                m.d.sync += [load_c.eq(0), load_r.eq(load_r + 1)]
                with m.If(load_r == rows - 1):
                    m.d.sync += [load_r.eq(0), load_k.eq(load_k + 1)]
                    with m.If(load_k == depth - 1):
                        m.d.sync += [load_k.eq(0), load_bias.eq(1)]
            with m.If(beat.last):                     # too short: start over
                m.d.sync += [load_k.eq(0), load_r.eq(0), load_c.eq(0), load_bias.eq(0),
                             load_pe.eq(1)]
        with m.Elif(take):
            m.d.comb += output.b_en.eq(1 << load_lane)
            m.d.comb += load_error.eq(~fits(spec.bias_bits) | (beat.last != load_final))
            m.d.sync += [load_lane.eq(load_lane + 1), load_channel.eq(load_channel + 1)]
            with m.If(load_lane == cols - 1):
                m.d.sync += [load_lane.eq(0), load_group.eq(load_group + 1)]
            with m.If(load_final | beat.last):
                m.d.sync += [load_lane.eq(0), load_group.eq(0), load_channel.eq(0),
                             load_bias.eq(0)]
                with m.If(~beat.last):                # too long: drop up to `last`
                    m.d.sync += load_discard.eq(1)

        # -- frames, status and counters -------------------------------------------------------
        m.d.comb += padder.start_ok.eq(~self.busy & load_idle & ~load_discard &
                                       ~self.weights.valid)
        frame_end = self.results.valid & self.results.ready & self.results.payload.last
        with m.If(padder.start):
            m.d.sync += [self.busy.eq(1), self.done.eq(0)]
        with m.Elif(frame_end):
            m.d.sync += [self.busy.eq(0), self.done.eq(1)]

        # Error events pass a register on their way to the sticky flag (a cycle later).
        error_event = Signal()
        m.d.sync += error_event.eq(padder.error | load_error)
        with m.If(self.error_clear):
            m.d.sync += self.error.eq(0)
        with m.If(error_event):
            m.d.sync += self.error.eq(1)

        last_rows = spec.reduction - (row_folds - 1) * rows
        last_cols = spec.out_channels - (col_folds - 1) * cols
        # (four constants: a multiplier here would take a DSP block from the PEs)
        vector_macs = Mux(feeder.issue.last_fold,
                          Mux(feeder.issue.last_group, last_rows * last_cols, last_rows * cols),
                          Mux(feeder.issue.last_group, rows * last_cols, rows * cols))
        with m.If(padder.start):
            m.d.sync += [
                self.cycles.eq(1),
                self.input_stalls.eq(0),
                self.output_stalls.eq(0),
                self.macs.eq(0),
            ]
        with m.Elif(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(self.pixels.ready & ~self.pixels.valid):
                m.d.sync += self.input_stalls.eq(self.input_stalls + 1)
            with m.If(self.results.valid & ~self.results.ready):
                m.d.sync += self.output_stalls.eq(self.output_stalls + 1)
            with m.If(feeder.issue.valid):
                m.d.sync += self.macs.eq(self.macs + vector_macs)
        return m
