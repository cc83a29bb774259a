"""The link's decisions: what a received request does, and the answer it gets."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .framing import request_signature, response_layout
from .protocol import STATUS_BYTES, Command, Status

__all__ = ["RequestDecoder", "chunk_signature"]


def chunk_signature(max_payload):
    """The decoder's end of the chunk streamer: ``start`` (one cycle, registered) sends the
    packet buffer just received, ``length`` bytes, into the engine's pixels (``pixels``) or
    weights (both are read only with ``start``); the streamer tells whether a chunk is still
    ``pending`` and whether it is ``pending_pixels``."""
    return wiring.Signature({
        "start": Out(1),
        "pixels": Out(1),
        "length": Out(range(max_payload + 1)),
        "pending": In(1),
        "pending_pixels": In(1),
    })


class RequestDecoder(wiring.Component):
    """Decides what a request does (the CHECK state of docs/protocol.md) and which response
    it gets.

    The decisions are prepared from registers in two pipeline stages: what they depend on
    settles at the payload's last byte (or, for the result count, only grows until a READ
    takes some), and the CRC's two bytes take many cycles to arrive; at ``request.check``
    the decoder decides from flip-flops alone. In that cycle it asks for the response on
    ``respond`` (and for READ claims the result pixels it returns); an accepted LOAD or FRAME
    chunk starts on ``chunk`` the next cycle. It counts the beats of the load and the pixels of the
    frame in progress. A timeout or a too long request is answered as soon as it is reported.

    Parameters
    ----------
    max_payload : int
    load_beats : int
        Beats of a whole weight load.
    frame_pixels : int
        Pixels of an input frame.
    result_pixel_bytes : int
        Bytes of a result pixel on the wire.
    queue_pixels : int
        The most result pixels that can wait in the result queue.
    preloaded : bool
        The engine holds its weights already (a network's ROMs): ``loaded`` from reset, and a
        LOAD is refused with BAD_STATE (``load_beats`` is then 0).

    Members
    -------
    request : In(request_signature(max_payload))
    busy : In(1)
        The engine is computing a frame.
    results_ready : In(range(queue_pixels + 1))
        Result pixels queued and not yet claimed.
    chunk : Out(chunk_signature(max_payload))
    claim : Out(range(queue_pixels + 1))
        Result pixels that the READ answered in the cycle before takes (one cycle). Registered:
        the decision to the serialiser's count was the iCEBreaker link's critical path; the
        count a READ decides on is many cycles (a request's bytes) after the last claim.
    respond : Out(stream.Signature(response_layout(max_payload), always_ready=True))
    loaded : Out(1)
        The weights are loaded.
    beats_loaded : Out(range(load_beats + 1))
    pixels_sent : Out(range(frame_pixels + 1))
        Beats of the load in progress, pixels of the frame in progress.
    clear : In(1)
        The link's reset: no weights, no load or frame in progress.
    """

    def __init__(self, *, max_payload, load_beats, frame_pixels, result_pixel_bytes,
                 queue_pixels, preloaded=False):
        self._preloaded = preloaded
        self._max_payload = max_payload
        self._load_beats = load_beats
        self._frame_pixels = frame_pixels
        self._result_pixel_bytes = result_pixel_bytes
        super().__init__({
            "request": In(request_signature(max_payload)),
            "busy": In(1),
            "results_ready": In(range(queue_pixels + 1)),
            "chunk": Out(chunk_signature(max_payload)),
            "claim": Out(range(queue_pixels + 1)),
            "respond": Out(stream.Signature(response_layout(max_payload), always_ready=True)),
            "loaded": Out(1),
            "beats_loaded": Out(range(load_beats + 1)),
            "pixels_sent": Out(range(frame_pixels + 1)),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        max_payload = self._max_payload
        load_total, frame_total = self._load_beats, self._frame_pixels
        rpb = self._result_pixel_bytes
        max_read = max_payload // rpb
        request = self.request
        claim = Signal.like(self.claim)         # taken by the READ decided in this cycle
        m.d.sync += self.claim.eq(claim)
        length, units, arg = request.length, request.units, request.arg
        results_ready = self.results_ready

        beats_loaded = Signal(range(load_total + 1))
        pixels_sent = Signal(range(frame_total + 1))
        loaded = Signal(init=self._preloaded)
        m.d.comb += [self.beats_loaded.eq(beats_loaded), self.pixels_sent.eq(pixels_sent),
                     self.loaded.eq(loaded)]

        # The decisions' operands, in two pipeline stages of registers.
        load_after = Signal(range(load_total + max_payload + 1))
        frame_after = Signal(range(frame_total + max_payload + 1))
        read_ready = Signal(range(max_read + 1))
        read_count = Signal.like(read_ready)
        read_bytes = Signal(range(max_payload + 1))
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
            frame_open.eq(self.busy | (pixels_sent != 0) |
                          (self.chunk.pending & self.chunk.pending_pixels)),
            empty.eq(length == 0),
            # READ: as many as asked, if they are ready and fit one response; count * rpb as
            # shifts and adds (a multiplier here would take a DSP block from the PEs)
            read_ready.eq(Mux(ready > max_read, max_read, ready)),
            read_count.eq(read_ready),
            read_bytes.eq(sum(read_ready << n for n in range(rpb.bit_length()) if rpb >> n & 1)),
        ]
        length_two = Signal()
        is_command = {c: Signal(name=f"is_{c.name.lower()}") for c in Command}
        m.d.sync += [length_two.eq(length == 2),
                     *(flag.eq(request.command == c) for c, flag in is_command.items())]

        def respond(code, payload_length=0, *, results=False, reset=False):
            m.d.comb += [self.respond.payload.status.eq(code),
                         self.respond.payload.length.eq(payload_length),
                         self.respond.payload.results.eq(results),
                         self.respond.payload.reset.eq(reset)]

        # A chunk starts the cycle after the decision: `start` is a register, so that the
        # streamer's registers that it resets take it from a flip-flop, not from the decision
        # logic (which Yosys would otherwise make their reset and enable). Its target and
        # length are offered from registers that hold until the next request.
        start = Signal()
        m.d.sync += start.eq(0)
        m.d.comb += [self.chunk.start.eq(start), self.chunk.pixels.eq(is_command[Command.FRAME]),
                     self.chunk.length.eq(length)]

        def start_chunk():
            """The received buffer starts into the engine; the other one takes the next
            request."""
            m.d.sync += start.eq(1)

        # The three strobes come from different states of the receiver, never at once: each
        # is decided apart (an `Elif` would put the others in front of every decision).
        pending = self.chunk.pending
        m.d.comb += self.respond.valid.eq(request.timeout | request.too_long | request.check)
        with m.If(request.timeout):
            respond(Status.TIMEOUT)
        with m.If(request.too_long):
            respond(Status.BAD_LENGTH)
        with m.If(request.check):
            with m.If(~request.crc_ok):
                respond(Status.BAD_CRC)
            with m.Elif(is_command[Command.LOAD]):
                with m.If(frame_open | self._preloaded):
                    respond(Status.BAD_STATE)
                with m.Elif(pending):
                    respond(Status.BUSY)
                with m.Elif(empty | ~request.whole | load_over):
                    respond(Status.BAD_LENGTH)
                with m.Else():
                    start_chunk()
                    m.d.sync += [beats_loaded.eq(load_after), loaded.eq(0)]
                    with m.If(load_done):
                        m.d.sync += [beats_loaded.eq(0), loaded.eq(1)]
                    respond(Status.OK)
            with m.Elif(is_command[Command.FRAME]):
                with m.If(~loaded):
                    respond(Status.BAD_STATE)
                with m.Elif(pending):
                    respond(Status.BUSY)
                with m.Elif(empty | ~request.whole | frame_over):
                    respond(Status.BAD_LENGTH)
                with m.Else():
                    start_chunk()
                    m.d.sync += pixels_sent.eq(frame_after)
                    with m.If(frame_done):
                        m.d.sync += pixels_sent.eq(0)
                    respond(Status.OK)
            with m.Elif(is_command[Command.READ]):
                with m.If(~length_two):
                    respond(Status.BAD_LENGTH)
                with m.Else():
                    m.d.comb += claim.eq(read_count)
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
                    respond(Status.OK, reset=True)
            with m.Else():
                respond(Status.UNKNOWN_COMMAND)

        with m.If(self.clear):
            m.d.sync += [beats_loaded.eq(0), pixels_sent.eq(0), loaded.eq(self._preloaded)]
        return m
