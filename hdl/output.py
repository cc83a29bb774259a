from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .array import issue_layout

__all__ = ["pixel_out_layout", "OutputStage"]


def pixel_out_layout(acc_shape, channels):
    """An output beat: every output channel of one pixel, ``last`` on the frame's final one."""
    return data.StructLayout({"data": data.ArrayLayout(acc_shape, channels), "last": 1})


class OutputStage(wiring.Component):
    """Accumulates the array's partial sums across folds, adds the bias and queues whole pixels.

    Each column's accumulator starts from the bias of its output channel on a reduction's first
    fold and adds one partial sum per fold; after the last fold the group's ``cols`` results
    are complete. Groups are collected until the pixel's last group completes, then the pixel's
    ``channels`` exact results enter an output queue. The array cannot stall, so the queue must
    have room for every pixel in flight: ``credit`` says whether one more may be started
    (``reserve``), and a reservation ends when its pixel leaves on ``o``.

    Latency: partial sums arriving in cycle ``t`` (with ``issue`` presented a cycle earlier,
    in ``t - 1``, to read the bias) leave, if they complete a pixel and the queue was empty, in
    cycle ``t + latency``.

    Parameters
    ----------
    cols, channels, row_folds, col_folds, queue_depth : int
    psum_shape, acc_shape, bias_shape : shape-castable

    Members
    -------
    psums : In(data.ArrayLayout(psum_shape, cols))
    issue : In(issue_layout(...))
        One cycle ahead of ``psums``.
    b_addr : In(range(col_folds))
    b_data : In(bias_shape)
    b_en : In(cols)
        Bias memory write port: group ``b_addr``, one enable per column.
    o : Out(stream.Signature(pixel_out_layout(acc_shape, channels)))
    reserve : In(1)
    credit : Out(1)
    """

    latency = 4

    def __init__(self, *, cols, channels, row_folds, col_folds, queue_depth, psum_shape,
                 acc_shape, bias_shape):
        self._cols = cols
        self._channels = channels
        self._row_folds = row_folds
        self._col_folds = col_folds
        self._queue_depth = queue_depth
        self._acc_shape = acc_shape
        self._bias_shape = bias_shape
        super().__init__({
            "psums": In(data.ArrayLayout(psum_shape, cols)),
            "issue": In(issue_layout(row_folds=row_folds, col_folds=col_folds)),
            "b_addr": In(range(col_folds)),
            "b_data": In(bias_shape),
            "b_en": In(cols),
            "o": Out(stream.Signature(pixel_out_layout(acc_shape, channels))),
            "reserve": In(1),
            "credit": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cols, channels, col_folds = self._cols, self._channels, self._col_folds

        m.submodules.bias = bias = memory.Memory(
            shape=data.ArrayLayout(self._bias_shape, cols), depth=col_folds, init=[])
        bias_wr = bias.write_port(granularity=1)
        bias_rd = bias.read_port()
        m.d.comb += [
            bias_wr.addr.eq(self.b_addr),
            bias_wr.en.eq(self.b_en),
            bias_rd.addr.eq(self.issue.group),
        ]
        for c in range(cols):
            m.d.comb += bias_wr.data[c].eq(self.b_data)

        # Stage 1: the partial sums meet their issue and the bias.
        issue = Signal.like(self.issue)
        m.d.sync += issue.eq(self.issue)

        # Stage 2: accumulators.
        acc = Signal(data.ArrayLayout(self._acc_shape, cols))
        acc_issue = Signal.like(self.issue)
        m.d.sync += acc_issue.eq(issue)
        with m.If(issue.valid):
            for c in range(cols):
                m.d.sync += acc[c].eq(Mux(issue.first, bias_rd.data[c], acc[c]) +
                                      self.psums[c])

        # Stage 3: complete groups enter the queue memory, a pixel's groups in consecutive
        # words, room for `queue_depth` pixels. Its groups are read back in order: all but the
        # last into registers, the last stays on the read port's output until the pixel leaves.
        # (A block RAM, not flip-flops: the queue is the engine's widest storage.)
        words = self._queue_depth * col_folds
        group_layout = data.StructLayout({
            "data": data.ArrayLayout(self._acc_shape, cols), "last": 1})
        m.submodules.queue = queue = memory.Memory(shape=group_layout, depth=words, init=[])
        wr = queue.write_port()
        rd = queue.read_port()
        w_addr = Signal(range(words))
        r_addr = Signal(range(words))
        r_group = Signal(range(col_folds))
        stored = Signal(range(words + 1))             # words written and not yet read
        write = acc_issue.valid & acc_issue.last_fold
        read = (stored != 0) & ~(self.o.valid & ~self.o.ready)
        m.d.comb += [
            wr.addr.eq(w_addr),
            wr.data.data.eq(acc),
            wr.data.last.eq(acc_issue.last_pixel),
            wr.en.eq(write),
            rd.addr.eq(r_addr),
            rd.en.eq(read),
        ]
        m.d.sync += stored.eq(stored + write - read)
        with m.If(write):
            m.d.sync += w_addr.eq(Mux(w_addr == words - 1, 0, w_addr + 1))
        with m.If(read):
            m.d.sync += [r_addr.eq(Mux(r_addr == words - 1, 0, r_addr + 1)),
                         r_group.eq(Mux(r_group == col_folds - 1, 0, r_group + 1))]

        collected = [Signal(data.ArrayLayout(self._acc_shape, cols), name=f"group{g}")
                     for g in range(col_folds - 1)]
        fetched = Signal()                            # rd.data holds the word read last cycle
        fetched_group = Signal.like(r_group)
        m.d.sync += [fetched.eq(read), fetched_group.eq(r_group)]
        with m.If(fetched):
            with m.Switch(fetched_group):
                for g in range(col_folds - 1):
                    with m.Case(g):
                        m.d.sync += collected[g].eq(rd.data.data)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(read & (r_group == col_folds - 1)):
            m.d.sync += self.o.valid.eq(1)
        lanes = ([lane for group in collected for lane in group] +
                 [rd.data.data[c] for c in range(cols)])
        for ch in range(channels):
            m.d.comb += self.o.payload.data[ch].eq(lanes[ch])
        m.d.comb += self.o.payload.last.eq(rd.data.last)

        # Credits: pixels reserved and not yet out.
        # (`credit` is registered, computed from the count's next value.)
        in_flight = Signal(range(self._queue_depth + 1))
        next_in_flight = in_flight + self.reserve - (self.o.valid & self.o.ready)
        credit = Signal(init=1)
        m.d.sync += [in_flight.eq(next_in_flight), credit.eq(next_in_flight < self._queue_depth)]
        m.d.comb += self.credit.eq(credit)
        return m
