# amaranth: UnusedElaboratable=no
# (The link builds the engine in its constructor, so that its figures are known before
# elaboration; the fit check builds a link only to read them.)
from amaranth import *
from amaranth.hdl import ResetInserter
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..hdl.accelerator import ConvAccelerator
from ..hdl.stage import MemoryShape
from .protocol import (CRC, MAX_PAYLOAD, REQUEST_START, RESPONSE_START, STATUS, STATUS_BYTES,
                       Command, LinkFormat, Status)
from .uart import UARTRx, UARTTx

__all__ = ["HostLink", "SerialAccelerator", "RESULT_QUEUE"]

#: The status outputs (for LEDs) of both components below.
STATUS_PORTS = ("busy", "done", "error", "loaded")

#: The default result queue, in bytes.
RESULT_QUEUE = 512


class HostLink(wiring.Component):
    """The engine behind the framed request/response protocol of :mod:`convaccel.link.protocol`.

    Requests arrive on the byte stream ``i``; responses leave on ``o``. A request's payload is
    kept in one of two packet buffers and acted on only once its CRC has matched, so a damaged,
    truncated or refused packet changes nothing. An accepted LOAD or FRAME chunk is then fed to
    the engine from its buffer while the other buffer takes the next request; a chunk that
    arrives before the previous one has entered the engine is refused with BUSY (read results,
    then retry). Results leave the engine into a byte queue, from which READ returns whole
    pixels; while the queue is full the engine waits. A packet that stops arriving for
    ``timeout`` cycles is dropped with TIMEOUT; bytes between packets are skipped.

    Parameters
    ----------
    spec : ConvSpec
    max_payload : int
        Largest payload of a request or response, in bytes (each packet buffer's size).
    result_queue : int
        Bytes of results that can wait to be read.
    timeout : int
        Clock cycles without a byte after which a partial request is dropped.

    Members
    -------
    i : In(stream.Signature(8, always_ready=True))
    o : Out(stream.Signature(8))
    busy, done, error, loaded : Out(1)
        Status for LEDs: a frame in progress, the last frame done, the engine's or the link's
        error flag, the weights loaded.
    """

    def __init__(self, spec, *, max_payload=MAX_PAYLOAD, result_queue=RESULT_QUEUE,
                 timeout=100_000):
        self._spec = spec
        self._format = LinkFormat(spec, max_payload)
        self._max_payload = max_payload
        self._result_queue = max(result_queue, self._format.result_pixel_bytes)
        self._timeout = timeout
        self._engine = ConvAccelerator(spec)
        super().__init__({
            "i": In(stream.Signature(8, always_ready=True)),
            "o": Out(stream.Signature(8)),
            **{name: Out(1) for name in STATUS_PORTS},
        })

    @property
    def memories(self):
        """The link's memories (:class:`~convaccel.hdl.stage.MemoryShape`), then the engine's."""
        return (MemoryShape("link packet buffers", 8, self._max_payload, count=2),
                # (a SyncFIFOBuffered's memory is a word shorter: its output register holds one)
                MemoryShape("link result queue", 8, self._result_queue - 1),
                *self._engine.memories)

    def elaborate(self, platform):
        m = Module()
        spec, fmt = self._spec, self._format
        max_payload = self._max_payload
        load_total = spec.load_beats
        frame_total = spec.input_pixels

        soft_reset = Signal()             # registered: it reaches every flip-flop of the engine
        engine = self._engine
        m.submodules.engine = ResetInserter(soft_reset)(engine)
        m.d.comb += [self.busy.eq(engine.busy), self.done.eq(engine.done)]

        # -- packet buffers ---------------------------------------------------------------------
        buffers = []
        for n in range(2):
            mem = memory.Memory(shape=8, depth=max_payload, init=[])
            m.submodules[f"buffer{n}"] = mem
            buffers.append((mem.write_port(), mem.read_port()))
        rx_sel = Signal()                 # the buffer receiving; the other may be streaming

        # -- the chunk streamer: a buffer into the engine's weights or pixels -------------------
        pending = Signal()                # a chunk is (still) entering the engine
        chunk_sel = Signal()
        chunk_pixels = Signal()           # target: pixels (else weights)
        chunk_bytes = Signal(range(max_payload + 1))
        read_addr = Signal(range(max_payload + 1))
        fetched = Signal()                # the read port holds the byte at read_addr - 1
        unit = Signal(range(max(fmt.weight_bytes, fmt.pixel_bytes) + 1))
        word = Signal(8 * max(fmt.weight_bytes, fmt.pixel_bytes))
        beat_valid = Signal()
        load_index = Signal(range(load_total))
        pixel_index = Signal(range(frame_total))
        value_error = Signal()

        byte = Signal(8)
        request = Signal()
        for n, (_, rd) in enumerate(buffers):
            m.d.comb += [rd.addr.eq(read_addr), rd.en.eq(request & (chunk_sel == n))]
            with m.If(chunk_sel == n):
                m.d.comb += byte.eq(rd.data)

        # A byte is fetched (the read port then holds it) and consumed into `word`; a whole
        # beat waits in `word` until the engine takes it.
        unit_size = Mux(chunk_pixels, fmt.pixel_bytes, fmt.weight_bytes)
        consume = pending & fetched & ~beat_valid
        m.d.comb += request.eq(pending & (read_addr < chunk_bytes) & (~fetched | consume))
        with m.If(consume):
            m.d.sync += [word.eq(Cat(byte, word)), unit.eq(unit + 1)]
            with m.If(unit + 1 == unit_size):
                m.d.sync += [beat_valid.eq(1), unit.eq(0)]
        with m.If(request):
            m.d.sync += [read_addr.eq(read_addr + 1), fetched.eq(1)]
        with m.Elif(consume):
            m.d.sync += fetched.eq(0)

        # weights: one value of weight_bytes, big-endian, must fit the load width
        w_width = len(engine.weights.payload.data)
        w_value = word[:8 * fmt.weight_bytes].as_signed()
        m.d.comb += [
            engine.weights.payload.data.eq(w_value),
            engine.weights.payload.last.eq(load_index == load_total - 1),
            engine.weights.valid.eq(pending & beat_valid & ~chunk_pixels),
        ]
        # pixels: channel 0 first, each input_bytes big-endian, must fit the input range
        ib = 8 * fmt.input_bytes
        channels = []
        for c in range(spec.in_channels):
            lsb = (spec.in_channels - 1 - c) * ib
            raw = word[lsb:lsb + ib]
            channels.append(raw.as_signed() if spec.input_signed else raw)
            m.d.comb += engine.pixels.payload.data[c].eq(raw)
        m.d.comb += [
            engine.pixels.payload.last.eq(pixel_index == frame_total - 1),
            engine.pixels.valid.eq(pending & beat_valid & chunk_pixels),
        ]
        w_lo, w_hi = -(1 << (w_width - 1)), (1 << (w_width - 1)) - 1
        x_lo, x_hi = spec.input_range
        with m.If(engine.weights.valid & engine.weights.ready):
            m.d.sync += [beat_valid.eq(0), load_index.eq(load_index + 1)]
            with m.If(load_index == load_total - 1):
                m.d.sync += load_index.eq(0)
            with m.If((w_value < w_lo) | (w_value > w_hi)):
                m.d.sync += value_error.eq(1)
        with m.If(engine.pixels.valid & engine.pixels.ready):
            m.d.sync += [beat_valid.eq(0), pixel_index.eq(pixel_index + 1)]
            with m.If(pixel_index == frame_total - 1):
                m.d.sync += pixel_index.eq(0)
            for value in channels:
                with m.If((value < x_lo) | (value > x_hi)):
                    m.d.sync += value_error.eq(1)
        with m.If(pending & ~beat_valid & ~fetched & (read_addr == chunk_bytes)):
            m.d.sync += pending.eq(0)
        m.d.comb += self.error.eq(engine.error | value_error)

        # -- results: engine -> bytes -> queue --------------------------------------------------
        results = fifo.SyncFIFOBuffered(width=8, depth=self._result_queue)
        m.submodules.results = ResetInserter(soft_reset)(results)
        rpb = fmt.result_pixel_bytes
        # (counts are as wide as what they count; STATUS zero-extends them)
        results_ready = Signal(range(self._result_queue // rpb + 1))
        ready_inc = Signal()
        ready_dec = Signal.like(results_ready)
        # A result pixel leaves one channel at a time (channel 0 first, each big-endian): the
        # channel is picked from the engine's beat, which it holds until taken, into a shift
        # register whose top byte enters the queue. The queue's input is then a register, and
        # the only wide multiplexer (one of `out_channels` lanes) ends at flip-flops.
        rb = fmt.result_bytes
        lanes = []
        for c in range(spec.out_channels):
            lane = Signal(signed(8 * rb), name=f"result{c}")
            m.d.comb += lane.eq(engine.results.payload.data[c])      # sign-extended
            lanes.append(lane)
        channel = Signal(range(spec.out_channels))
        shifter = Signal(8 * rb)
        left = Signal(range(rb + 1))      # bytes of the channel in `shifter` not yet queued
        last_lane = Signal()              # `shifter` holds the pixel's last channel
        last_channel = channel == spec.out_channels - 1
        queued = results.w_en & results.w_rdy
        m.d.comb += [
            results.w_data.eq(shifter[-8:]),
            results.w_en.eq(left != 0),
        ]
        with m.If(queued):
            m.d.sync += [shifter.eq(shifter << 8), left.eq(left - 1)]
        # A lane is loaded only into an empty shift register (a bubble per channel that the
        # serial line never notices), so the engine's `ready` comes from registers alone.
        with m.If(engine.results.valid & (left == 0)):
            m.d.comb += engine.results.ready.eq(last_channel)
            m.d.sync += [shifter.eq(Array(lanes)[channel]), left.eq(rb),
                         last_lane.eq(last_channel),
                         channel.eq(Mux(last_channel, 0, channel + 1))]
        m.d.comb += ready_inc.eq(queued & (left == 1) & last_lane)
        m.d.sync += results_ready.eq(results_ready + ready_inc - ready_dec)

        # -- requests and responses -------------------------------------------------------------
        m.submodules.rx_crc = rx_crc = CRC.create()
        m.submodules.tx_crc = tx_crc = CRC.create()
        command = Signal(8)
        length = Signal(16)
        # The payload of the request being received or the response being sent: its byte
        # counter, and beside it the bytes still to come (loaded by `count_payload`), counted
        # down so that "this is the last byte" is a flip-flop, not a comparison.
        index = Signal(range(max_payload + 1))
        index_clear = Signal()
        index_step = Signal()
        remaining = Signal(range(max_payload + 1))
        last_byte = Signal()
        with m.If(index_clear):
            m.d.sync += index.eq(0)
        with m.Elif(index_step):
            m.d.sync += [index.eq(index + 1), remaining.eq(remaining - 1),
                         last_byte.eq(remaining == 2)]

        def count_payload(n, is_one):
            m.d.sync += [remaining.eq(n), last_byte.eq(is_one)]
        arg = Signal(16)                  # the first two payload bytes (READ's count)
        phase = Signal(range(max(fmt.weight_bytes, fmt.pixel_bytes) + 1))
        units = Signal(range(max_payload + 1))
        unit_bytes = Signal.like(phase)
        status = Signal(8)
        resp_len = Signal(range(max_payload + 1))
        idle_cycles = Signal(range(self._timeout + 1))
        beats_loaded = Signal(range(load_total + 1))
        pixels_sent = Signal(range(frame_total + 1))
        loaded = Signal()
        resetting = Signal()
        m.d.comb += self.loaded.eq(loaded)

        # Request bytes pass one register stage, which also decodes what the state machine's
        # next state depends on: the start byte, and the length (this byte and the one before)
        # too long or zero. The machine then decides from flip-flops alone.
        got = Signal()
        b = Signal(8)
        is_start = Signal()
        too_long = Signal()
        is_empty = Signal()
        m.d.sync += got.eq(self.i.valid)
        with m.If(self.i.valid):
            m.d.sync += [b.eq(self.i.payload), is_start.eq(self.i.payload == REQUEST_START),
                         too_long.eq(Cat(self.i.payload, b) > max_payload),
                         is_empty.eq(Cat(self.i.payload, b) == 0)]
        wr = [w for w, _ in buffers]
        for n, w in enumerate(wr):
            m.d.comb += [w.addr.eq(index), w.data.eq(b)]

        def receive(next_state):
            """A request byte into the CRC; on to `next_state` when it arrives, TIMEOUT when
            none comes. Returns the condition of its arrival, for what else it does."""
            m.d.comb += [rx_crc.valid.eq(got), rx_crc.data.eq(b)]
            with m.If(got):
                m.next = next_state
            with m.Elif(timed_out):
                respond(Status.TIMEOUT)
            return got

        def start_chunk(pixels):
            """The received buffer starts into the engine; the other one takes the next
            request."""
            m.d.sync += [pending.eq(1), chunk_sel.eq(rx_sel), rx_sel.eq(~rx_sel),
                         chunk_pixels.eq(pixels), chunk_bytes.eq(length),
                         read_addr.eq(0), fetched.eq(0), unit.eq(0)]

        # Two state machines, each deciding from few flip-flops: the receiver takes requests and
        # decides; the sender sends the response it is handed. They hand over through registers:
        # `send_request` (receiver to sender: status and length are set) and `response_sent`.
        from_queue = Signal()             # the response's payload comes from the result queue
        send_request = Signal()
        response_sent = Signal()

        def respond(code, payload_length=0, *, results=False):
            m.d.sync += [status.eq(code), resp_len.eq(payload_length), from_queue.eq(results),
                         send_request.eq(1)]
            m.next = "RESPOND"

        # The timeout: cycles since the last byte of a request in progress.
        # (`timed_out` is registered: a cycle late on a limit of thousands.)
        timed_out = Signal()
        with m.If(got):
            m.d.sync += [idle_cycles.eq(0), timed_out.eq(0)]
        with m.Elif(~timed_out):
            m.d.sync += [idle_cycles.eq(idle_cycles + 1),
                         timed_out.eq(idle_cycles == self._timeout - 1)]

        counters = Signal(STATUS)
        m.d.comb += [
            counters.flags.busy.eq(engine.busy),
            counters.flags.done.eq(engine.done),
            counters.flags.error.eq(self.error),
            counters.flags.loaded.eq(loaded),
            counters.flags.pending.eq(pending),
            counters.results_ready.eq(results_ready),
            counters.beats_loaded.eq(beats_loaded),
            counters.pixels_sent.eq(pixels_sent),
            counters.cycles.eq(engine.cycles),
            counters.input_stalls.eq(engine.input_stalls),
            counters.output_stalls.eq(engine.output_stalls),
            counters.macs.eq(engine.macs),
        ]
        # The payload is the whole value, big-endian (the flags byte first).
        bits = counters.as_value()
        status_bytes = [bits[8 * n:8 * n + 8] for n in reversed(range(STATUS_BYTES))]
        # The STATUS payload byte at `index`, registered: it is offered only once it is fresh,
        # the cycle after `index` settles (a bubble the serial line never notices).
        status_byte = Signal(8)
        status_index = index[:(len(status_bytes) - 1).bit_length()]
        m.d.sync += status_byte.eq(Array(status_bytes)[status_index])
        fresh = Signal()
        m.d.sync += fresh.eq(~(index_clear | index_step))

        # The CHECK state's decisions, prepared from registers in two pipeline stages: what they
        # depend on settles at the payload's last byte (or, for the result count, only grows
        # until CHECK takes some), and the CRC's two bytes take many cycles to arrive.
        load_after = Signal(range(load_total + max_payload + 1))
        frame_after = Signal(range(frame_total + max_payload + 1))
        read_ready = Signal(range(fmt.max_read() + 1))
        read_count = Signal.like(read_ready)
        read_bytes = Signal.like(resp_len)
        load_over, load_done, frame_over, frame_done = (Signal(name=name) for name in (
            "load_over", "load_done", "frame_over", "frame_done"))
        frame_open = Signal()
        empty = Signal()
        ready = Mux(arg > results_ready, results_ready, arg)
        m.d.sync += [
            load_after.eq(beats_loaded + units),
            frame_after.eq(pixels_sent + units),
            load_over.eq(load_after > load_total),
            load_done.eq(load_after == load_total),
            frame_over.eq(frame_after > frame_total),
            frame_done.eq(frame_after == frame_total),
            frame_open.eq(engine.busy | (pixels_sent != 0) | (pending & chunk_pixels)),
            empty.eq(length == 0),
            # READ: as many as asked, if they are ready and fit one response; count * rpb as
            # shifts and adds (a multiplier here would take a DSP block from the PEs)
            read_ready.eq(Mux(ready > fmt.max_read(), fmt.max_read(), ready)),
            read_count.eq(read_ready),
            read_bytes.eq(sum(read_ready << n for n in range(rpb.bit_length()) if rpb >> n & 1)),
        ]
        # The rest are decoded into flip-flops too; the CRC's verdict settles in the SETTLE
        # state, the cycle after the last CRC byte.
        crc_ok = Signal()
        whole = Signal()                  # the payload is whole beats or pixels
        length_two = Signal()
        is_command = {c: Signal(name=f"is_{c.name.lower()}") for c in Command}
        m.d.sync += [crc_ok.eq(rx_crc.match_detected), whole.eq(phase == 0),
                     length_two.eq(length == 2),
                     *(flag.eq(command == c) for c, flag in is_command.items())]

        wb, pb = fmt.weight_bytes, fmt.pixel_bytes
        with m.FSM(name="receiver"):
            with m.State("HUNT"):
                with m.If(got & is_start):
                    m.next = "COMMAND"
            with m.State("COMMAND"):
                m.d.comb += [rx_crc.start.eq(1), rx_crc.valid.eq(got), rx_crc.data.eq(b)]
                with m.If(got):
                    m.d.comb += index_clear.eq(1)
                    m.d.sync += [command.eq(b), phase.eq(0), units.eq(0),
                                 unit_bytes.eq(Mux(b == Command.LOAD, wb,
                                                   Mux(b == Command.FRAME, pb, 1)))]
                    m.next = "LENGTH_HI"
                with m.Elif(timed_out):
                    respond(Status.TIMEOUT)
            with m.State("LENGTH_HI"):
                with m.If(receive("LENGTH_LO")):
                    m.d.sync += length[8:].eq(b)
            with m.State("LENGTH_LO"):
                with m.If(receive("PAYLOAD")):
                    m.d.sync += length[:8].eq(b)
                    count_payload(Cat(b, length[8:]), Cat(b, length[8:]) == 1)
                    with m.If(too_long):
                        respond(Status.BAD_LENGTH)
                    with m.Elif(is_empty):
                        m.next = "CRC_HI"
            with m.State("PAYLOAD"):
                with m.If(receive("PAYLOAD")):
                    m.d.comb += wr[0].en.eq(rx_sel == 0)
                    m.d.comb += wr[1].en.eq(rx_sel == 1)
                    m.d.comb += index_step.eq(1)
                    with m.If(index < 2):
                        m.d.sync += arg.eq(Cat(b, arg[:8]))
                    with m.If(phase + 1 == unit_bytes):
                        m.d.sync += [phase.eq(0), units.eq(units + 1)]
                    with m.Else():
                        m.d.sync += phase.eq(phase + 1)
                    with m.If(last_byte):
                        m.next = "CRC_HI"
            with m.State("CRC_HI"):
                receive("CRC_LO")
            with m.State("CRC_LO"):
                receive("SETTLE")
            with m.State("SETTLE"):
                m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(~crc_ok):
                    respond(Status.BAD_CRC)
                with m.Elif(is_command[Command.LOAD]):
                    with m.If(frame_open):
                        respond(Status.BAD_STATE)
                    with m.Elif(pending):
                        respond(Status.BUSY)
                    with m.Elif(empty | ~whole | load_over):
                        respond(Status.BAD_LENGTH)
                    with m.Else():
                        start_chunk(pixels=False)
                        m.d.sync += [beats_loaded.eq(load_after), loaded.eq(0)]
                        with m.If(load_done):
                            m.d.sync += [beats_loaded.eq(0), loaded.eq(1)]
                        respond(Status.OK)
                with m.Elif(is_command[Command.FRAME]):
                    with m.If(~loaded):
                        respond(Status.BAD_STATE)
                    with m.Elif(pending):
                        respond(Status.BUSY)
                    with m.Elif(empty | ~whole | frame_over):
                        respond(Status.BAD_LENGTH)
                    with m.Else():
                        start_chunk(pixels=True)
                        m.d.sync += pixels_sent.eq(frame_after)
                        with m.If(frame_done):
                            m.d.sync += pixels_sent.eq(0)
                        respond(Status.OK)
                with m.Elif(is_command[Command.READ]):
                    with m.If(~length_two):
                        respond(Status.BAD_LENGTH)
                    with m.Else():
                        m.d.comb += ready_dec.eq(read_count)
                        respond(Status.OK, read_bytes, results=True)
                with m.Elif(is_command[Command.STATUS]):
                    with m.If(~empty):
                        respond(Status.BAD_LENGTH)
                    with m.Else():
                        respond(Status.OK, STATUS_BYTES)
                with m.Elif(is_command[Command.RESET]):
                    with m.If(~empty):
                        respond(Status.BAD_LENGTH)
                    with m.Else():
                        m.d.sync += resetting.eq(1)
                        respond(Status.OK)
                with m.Else():
                    respond(Status.UNKNOWN_COMMAND)
            with m.State("RESPOND"):
                # (bytes that arrive while the response goes out are skipped)
                with m.If(response_sent):
                    m.d.sync += response_sent.eq(0)
                    m.next = "HUNT"

        # Responses: 5A, command, status, length (2), payload, CRC (2).
        sent = self.o.valid & self.o.ready
        resp_empty = Signal()
        resp_one = Signal()
        m.d.sync += [resp_empty.eq(resp_len == 0), resp_one.eq(resp_len == 1)]
        # The bytes sent enter the CRC a cycle later, through registers (the CRC's XOR network
        # then starts at flip-flops, not after the result queue's read port); SEND_CRC waits a
        # cycle for the last of them.
        crc_start, crc_valid, crc_data = Signal(), Signal(), Signal(8)
        m.d.sync += [tx_crc.start.eq(crc_start), tx_crc.valid.eq(crc_valid),
                     tx_crc.data.eq(crc_data)]

        def send(value, next_state, crc_in=True):
            m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(value)]
            if crc_in:
                m.d.comb += [crc_valid.eq(sent), crc_data.eq(value)]
            with m.If(sent):
                m.next = next_state

        with m.FSM(name="sender"):
            with m.State("IDLE"):
                with m.If(send_request):
                    m.d.sync += send_request.eq(0)
                    m.next = "SEND_START"
            with m.State("SEND_START"):
                send(RESPONSE_START, "SEND_COMMAND", crc_in=False)
            with m.State("SEND_COMMAND"):
                m.d.comb += crc_start.eq(1)
                send(command, "SEND_STATUS")
            with m.State("SEND_STATUS"):
                send(status, "SEND_LENGTH_HI")
            with m.State("SEND_LENGTH_HI"):
                send(resp_len[8:], "SEND_LENGTH_LO")
            with m.State("SEND_LENGTH_LO"):
                m.d.comb += index_clear.eq(1)
                count_payload(resp_len, resp_one)
                send(resp_len[:8], "SEND_PAYLOAD")
                with m.If(sent & resp_empty):
                    m.next = "SEND_CRC"
            with m.State("SEND_PAYLOAD"):
                value = Mux(from_queue, results.r_data, status_byte)
                m.d.comb += [self.o.valid.eq(Mux(from_queue, results.r_rdy, fresh)),
                             self.o.payload.eq(value),
                             crc_valid.eq(sent), crc_data.eq(value),
                             results.r_en.eq(from_queue & self.o.ready)]
                with m.If(sent):
                    m.d.comb += index_step.eq(1)
                    with m.If(last_byte):
                        m.next = "SEND_CRC"
            with m.State("SEND_CRC"):
                m.next = "SEND_CRC_HI"
            with m.State("SEND_CRC_HI"):
                send(tx_crc.crc[8:], "SEND_CRC_LO", crc_in=False)
            with m.State("SEND_CRC_LO"):
                send(tx_crc.crc[:8], "IDLE", crc_in=False)
                with m.If(sent):
                    m.d.sync += response_sent.eq(1)
                    with m.If(resetting):
                        m.d.sync += [soft_reset.eq(1), resetting.eq(0)]

        # RESET: the engine and the link's state start afresh (the weights are gone).
        with m.If(soft_reset):
            m.d.sync += soft_reset.eq(0)
            m.d.sync += [pending.eq(0), beat_valid.eq(0), load_index.eq(0), pixel_index.eq(0),
                         beats_loaded.eq(0), pixels_sent.eq(0), loaded.eq(0),
                         value_error.eq(0), channel.eq(0), left.eq(0),
                         results_ready.eq(0)]
        return m


class SerialAccelerator(wiring.Component):
    """The engine on a serial line: :class:`UARTRx`, :class:`HostLink`, :class:`UARTTx`.

    Parameters
    ----------
    spec : ConvSpec
    divisor : int
        Clock cycles per bit (clock frequency / baud rate).
    max_payload, result_queue : int
        As for :class:`HostLink`.

    Members
    -------
    rx : In(1)
    tx : Out(1)
    busy, done, error, loaded : Out(1)
    """

    def __init__(self, spec, *, divisor, max_payload=MAX_PAYLOAD, result_queue=RESULT_QUEUE):
        self._divisor = divisor
        # A request that pauses for 50 byte times is taken as truncated.
        self._link = HostLink(spec, max_payload=max_payload, result_queue=result_queue,
                              timeout=500 * divisor)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            **{name: Out(1) for name in STATUS_PORTS},
        })

    @property
    def memories(self):
        """The link's and the engine's memories (:attr:`HostLink.memories`); the transmit
        queue is a register."""
        return self._link.memories

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = uart_rx = UARTRx(self._divisor)
        m.submodules.uart_tx = uart_tx = UARTTx(self._divisor)
        m.submodules.link = link = self._link
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        wiring.connect(m, uart_rx.o, link.i)
        # Responses pass a small queue: its registered outputs, not the link's response logic,
        # drive the transmitter.
        m.submodules.tx_queue = tx_queue = fifo.SyncFIFOBuffered(width=8, depth=2)
        wiring.connect(m, link.o, tx_queue.w_stream)
        wiring.connect(m, tx_queue.r_stream, uart_tx.i)
        m.d.comb += [getattr(self, name).eq(getattr(link, name)) for name in STATUS_PORTS]
        return m
