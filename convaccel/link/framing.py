"""The link's byte level: requests in, responses out, and the payload countdown they share.

:class:`RequestReceiver` checks a request's framing and CRC and reports it to the decoder;
:class:`ResponseSender` sends the response the decoder asks for. Between requests and their
responses the two state machines hand over through registers, and they take turns with one
:class:`PayloadCounter` (one of them is counting payload bytes at any time).

Both were tuned to meet the iCEBreaker's 36 MHz with the UP5K 82 % full: decisions are taken
from flip-flops (decoding register stages, registered flags, the CRC's verdict a cycle after
its last byte), so keep new logic out of the paths between a state machine and its registers.
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .protocol import CRC, REQUEST_START, RESPONSE_START, STATUS, STATUS_BYTES, Command

__all__ = [
    "PayloadCounter",
    "RequestReceiver",
    "ResponseSender",
    "buffer_write_signature",
    "countdown_signature",
    "payload_count",
    "request_signature",
    "response_layout",
]


def payload_count(max_payload):
    """The payload byte counts a link of `max_payload` must hold: its requests' payloads, and
    its responses', which include STATUS's whatever `max_payload` is."""
    return range(max(max_payload, STATUS_BYTES) + 1)


def countdown_signature(max_payload):
    """A user's end of the :class:`PayloadCounter`: it drives ``clear`` (``index`` to 0),
    ``load`` (``count`` bytes to come; ``one`` when that is 1) and ``step`` (a byte passed),
    and reads ``index``, ``last`` (the byte now due is the payload's last) and ``settled``
    (``index`` has held for a cycle)."""
    return wiring.Signature({
        "clear": Out(1),
        "load": Out(1),
        "count": Out(payload_count(max_payload)),
        "one": Out(1),
        "step": Out(1),
        "index": In(payload_count(max_payload)),
        "last": In(1),
        "settled": In(1),
    })


def buffer_write_signature(max_payload):
    """A request payload byte into the packet buffer receiving (``en`` for one cycle)."""
    return wiring.Signature({
        "addr": Out(range(max_payload + 1)),
        "data": Out(8),
        "en": Out(1),
    })


def request_signature(max_payload):
    """What the receiver tells the decoder of a request.

    Strobes (one cycle): ``check`` (the request is whole: decide, from the fields below),
    ``timeout`` (it stopped arriving), ``too_long`` (its length exceeds `max_payload`). Fields
    (registers, held until the next request): ``command``, ``length``, ``arg`` (the first two
    payload bytes, big-endian), ``units`` (whole weight-load beats or pixels for LOAD and
    FRAME, bytes otherwise), ``whole`` (no partial unit), ``crc_ok``.
    """
    return wiring.Signature({
        "check": Out(1),
        "timeout": Out(1),
        "too_long": Out(1),
        "command": Out(8),
        "length": Out(16),
        "arg": Out(16),
        "units": Out(range(max_payload + 1)),
        "whole": Out(1),
        "crc_ok": Out(1),
    })


def response_layout(max_payload):
    """A response to send: its status, payload length, whether the payload comes from the
    result queue (else it is the STATUS payload), and whether the link resets once it is
    sent."""
    return data.StructLayout({
        "status": 8,
        "length": payload_count(max_payload),
        "results": 1,
        "reset": 1,
    })


class PayloadCounter(wiring.Component):
    """The payload byte counter of the request being received or the response being sent.

    Beside the byte index it counts down the bytes still to come, so that "this is the last
    byte" is a flip-flop, not a comparison. The receiver and the sender never count at once;
    one counter serves both (a counter less of logic on a full UP5K).

    Parameters
    ----------
    max_payload : int

    Members
    -------
    rx, tx : In(countdown_signature(max_payload))
        The receiver's and the sender's ends (``tx`` wins a load in the same cycle).
    """

    def __init__(self, max_payload):
        self._max_payload = max_payload
        super().__init__({
            "rx": In(countdown_signature(max_payload)),
            "tx": In(countdown_signature(max_payload)),
        })

    def elaborate(self, platform):
        m = Module()
        index = Signal(payload_count(self._max_payload))
        remaining = Signal(payload_count(self._max_payload))
        last = Signal()
        settled = Signal()
        clear = self.rx.clear | self.tx.clear
        step = self.rx.step | self.tx.step
        with m.If(clear):
            m.d.sync += index.eq(0)
        with m.Elif(step):
            m.d.sync += [index.eq(index + 1), remaining.eq(remaining - 1),
                         last.eq(remaining == 2)]
        for port in (self.rx, self.tx):
            with m.If(port.load):
                m.d.sync += [remaining.eq(port.count), last.eq(port.one)]
        m.d.sync += settled.eq(~(clear | step))
        for port in (self.rx, self.tx):
            m.d.comb += [port.index.eq(index), port.last.eq(last), port.settled.eq(settled)]
        return m


class RequestReceiver(wiring.Component):
    """Takes request bytes: start byte, command, length, payload into a packet buffer, CRC.

    Request bytes pass one register stage, which also decodes what the state machine's next
    state depends on: the start byte, and the length (this byte and the one before) too long
    or zero. The machine then decides from flip-flops alone. The CRC's verdict is registered
    a cycle after the last CRC byte (the SETTLE state); the next cycle (CHECK) ``request.check``
    asks the decoder to decide. A request that stops arriving for `timeout` cycles ends with
    ``request.timeout``, one whose length exceeds `max_payload` with ``request.too_long``, as
    soon as its length has arrived. Then the receiver waits until ``responded``, skipping the
    bytes that arrive meanwhile, and hunts for the next start byte.

    Latency: ``check`` is high 3 cycles after the cycle in which the last CRC byte is valid
    on ``i``; ``too_long`` the cycle after the length's low byte.

    Parameters
    ----------
    max_payload : int
    timeout : int
        Clock cycles without a byte after which a partial request is dropped.
    weight_bytes, pixel_bytes : int
        The unit of a LOAD payload and of a FRAME payload, for ``request.units``.

    Members
    -------
    i : In(stream.Signature(8, always_ready=True))
    count : Out(countdown_signature(max_payload))
    write : Out(buffer_write_signature(max_payload))
    request : Out(request_signature(max_payload))
    responded : In(1)
        The response has been sent (one cycle).
    """

    def __init__(self, *, max_payload, timeout, weight_bytes, pixel_bytes):
        self._max_payload = max_payload
        self._timeout = timeout
        self._weight_bytes = weight_bytes
        self._pixel_bytes = pixel_bytes
        super().__init__({
            "i": In(stream.Signature(8, always_ready=True)),
            "count": Out(countdown_signature(max_payload)),
            "write": Out(buffer_write_signature(max_payload)),
            "request": Out(request_signature(max_payload)),
            "responded": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        max_payload = self._max_payload
        wb, pb = self._weight_bytes, self._pixel_bytes
        m.submodules.crc = crc = CRC.create()
        command = Signal(8)
        length = Signal(16)
        arg = Signal(16)                  # the first two payload bytes (READ's count)
        phase = Signal(range(max(wb, pb) + 1))
        units = Signal(range(max_payload + 1))
        unit_bytes = Signal.like(phase)
        # phase + 1 == unit_bytes, a flip-flop set a cycle ahead: a unit's end enables `units`,
        # and its compare's carry chain before that enable was the critical path at 36 MHz
        unit_end = Signal()
        idle_cycles = Signal(range(self._timeout + 1))
        response_sent = Signal()
        # (the CRC's verdict and `whole` are decoded into flip-flops: CHECK decides from them)
        crc_ok = Signal()
        whole = Signal()                  # the payload is whole beats or pixels
        m.d.sync += [crc_ok.eq(crc.match_detected), whole.eq(phase == 0)]
        m.d.comb += [
            self.request.command.eq(command), self.request.length.eq(length),
            self.request.arg.eq(arg), self.request.units.eq(units),
            self.request.whole.eq(whole), self.request.crc_ok.eq(crc_ok),
        ]

        # The register stage on the request bytes.
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
        m.d.comb += [self.write.addr.eq(self.count.index), self.write.data.eq(b)]

        # The timeout: cycles since the last byte of a request in progress.
        # (`timed_out` is registered: a cycle late on a limit of thousands.)
        timed_out = Signal()
        with m.If(got):
            m.d.sync += [idle_cycles.eq(0), timed_out.eq(0)]
        with m.Elif(~timed_out):
            m.d.sync += [idle_cycles.eq(idle_cycles + 1),
                         timed_out.eq(idle_cycles == self._timeout - 1)]

        def receive(next_state):
            """A request byte into the CRC; on to `next_state` when it arrives, TIMEOUT when
            none comes. Returns the condition of its arrival, for what else it does."""
            m.d.comb += [crc.valid.eq(got), crc.data.eq(b)]
            with m.If(got):
                m.next = next_state
            with m.Elif(timed_out):
                m.d.comb += self.request.timeout.eq(1)
                m.next = "RESPOND"
            return got

        with m.FSM(name="receiver"):
            with m.State("HUNT"):
                with m.If(got & is_start):
                    m.next = "COMMAND"
            with m.State("COMMAND"):
                m.d.comb += [crc.start.eq(1), crc.valid.eq(got), crc.data.eq(b)]
                with m.If(got):
                    m.d.comb += self.count.clear.eq(1)
                    m.d.sync += [command.eq(b), phase.eq(0), units.eq(0),
                                 unit_bytes.eq(Mux(b == Command.LOAD, wb,
                                                   Mux(b == Command.FRAME, pb, 1))),
                                 unit_end.eq(Mux(b == Command.LOAD, wb == 1,
                                                 Mux(b == Command.FRAME, pb == 1, 1)))]
                    m.next = "LENGTH_HI"
                with m.Elif(timed_out):
                    m.d.comb += self.request.timeout.eq(1)
                    m.next = "RESPOND"
            with m.State("LENGTH_HI"):
                with m.If(receive("LENGTH_LO")):
                    m.d.sync += length[8:].eq(b)
            with m.State("LENGTH_LO"):
                with m.If(receive("PAYLOAD")):
                    m.d.sync += length[:8].eq(b)
                    m.d.comb += [self.count.load.eq(1), self.count.count.eq(Cat(b, length[8:])),
                                 self.count.one.eq(Cat(b, length[8:]) == 1)]
                    with m.If(too_long):
                        m.d.comb += self.request.too_long.eq(1)
                        m.next = "RESPOND"
                    with m.Elif(is_empty):
                        m.next = "CRC_HI"
            with m.State("PAYLOAD"):
                with m.If(receive("PAYLOAD")):
                    m.d.comb += [self.write.en.eq(1), self.count.step.eq(1)]
                    with m.If(self.count.index < 2):
                        m.d.sync += arg.eq(Cat(b, arg[:8]))
                    with m.If(unit_end):
                        m.d.sync += [phase.eq(0), units.eq(units + 1),
                                     unit_end.eq(unit_bytes == 1)]
                    with m.Else():
                        m.d.sync += [phase.eq(phase + 1), unit_end.eq(phase + 2 == unit_bytes)]
                    with m.If(self.count.last):
                        m.next = "CRC_HI"
            with m.State("CRC_HI"):
                receive("CRC_LO")
            with m.State("CRC_LO"):
                receive("SETTLE")
            with m.State("SETTLE"):
                m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += self.request.check.eq(1)
                m.next = "RESPOND"
            with m.State("RESPOND"):
                # (bytes that arrive while the response goes out are skipped)
                with m.If(response_sent):
                    m.d.sync += response_sent.eq(0)
                    m.next = "HUNT"
        with m.If(self.responded):
            m.d.sync += response_sent.eq(1)
        return m


class ResponseSender(wiring.Component):
    """Sends a response: 5A, command, status, length (2), payload, CRC (2).

    A response asked for on ``respond`` is latched and sent; its payload comes from the result
    queue (``results``) or is the STATUS payload (``status``, flags byte first, each field
    big-endian: the :data:`~convaccel.link.protocol.STATUS` value cut into bytes, most
    significant first). The STATUS byte due is registered, offered only once it is fresh (a
    bubble the serial line never notices). The bytes sent enter the CRC a cycle later, through
    registers (its XOR network then starts at flip-flops, not after the result queue's read
    port); SEND_CRC waits a cycle for the last of them. When the last byte has gone, ``done``
    is high for a cycle, and after a response that asked for it ``reset`` is high for the
    next cycle.

    Parameters
    ----------
    max_payload : int

    Members
    -------
    respond : In(stream.Signature(response_layout(max_payload), always_ready=True))
    command : In(8)
        The request's command, echoed.
    status : In(STATUS)
    results : In(stream.Signature(8))
    count : Out(countdown_signature(max_payload))
    o : Out(stream.Signature(8))
    done : Out(1)
    reset : Out(1)
        Registered; it reaches every flip-flop of the engine.
    """

    def __init__(self, max_payload):
        self._max_payload = max_payload
        super().__init__({
            "respond": In(stream.Signature(response_layout(max_payload), always_ready=True)),
            "command": In(8),
            "status": In(STATUS),
            "results": In(stream.Signature(8)),
            "count": Out(countdown_signature(max_payload)),
            "o": Out(stream.Signature(8)),
            "done": Out(1),
            "reset": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = tx_crc = CRC.create()
        status = Signal(8)
        resp_len = Signal(payload_count(self._max_payload))
        from_queue = Signal()             # the response's payload comes from the result queue
        send_request = Signal()
        resetting = Signal()
        soft_reset = Signal()
        m.d.comb += self.reset.eq(soft_reset)
        with m.If(self.respond.valid):
            m.d.sync += [status.eq(self.respond.payload.status),
                         resp_len.eq(self.respond.payload.length),
                         from_queue.eq(self.respond.payload.results), send_request.eq(1)]
            with m.If(self.respond.payload.reset):
                m.d.sync += resetting.eq(1)

        # The STATUS payload byte at `index`, registered.
        bits = self.status.as_value()
        status_bytes = [bits[8 * n:8 * n + 8] for n in reversed(range(STATUS_BYTES))]
        status_byte = Signal(8)
        status_index = self.count.index[:(STATUS_BYTES - 1).bit_length()]
        m.d.sync += status_byte.eq(Array(status_bytes)[status_index])
        fresh = self.count.settled

        sent = self.o.valid & self.o.ready
        resp_empty = Signal()
        resp_one = Signal()
        m.d.sync += [resp_empty.eq(resp_len == 0), resp_one.eq(resp_len == 1)]
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
                send(self.command, "SEND_STATUS")
            with m.State("SEND_STATUS"):
                send(status, "SEND_LENGTH_HI")
            with m.State("SEND_LENGTH_HI"):
                send(resp_len[8:], "SEND_LENGTH_LO")
            with m.State("SEND_LENGTH_LO"):
                m.d.comb += [self.count.clear.eq(1), self.count.load.eq(1),
                             self.count.count.eq(resp_len), self.count.one.eq(resp_one)]
                send(resp_len[:8], "SEND_PAYLOAD")
                with m.If(sent & resp_empty):
                    m.next = "SEND_CRC"
            with m.State("SEND_PAYLOAD"):
                value = Mux(from_queue, self.results.payload, status_byte)
                m.d.comb += [self.o.valid.eq(Mux(from_queue, self.results.valid, fresh)),
                             self.o.payload.eq(value),
                             crc_valid.eq(sent), crc_data.eq(value),
                             self.results.ready.eq(from_queue & self.o.ready)]
                with m.If(sent):
                    m.d.comb += self.count.step.eq(1)
                    with m.If(self.count.last):
                        m.next = "SEND_CRC"
            with m.State("SEND_CRC"):
                m.next = "SEND_CRC_HI"
            with m.State("SEND_CRC_HI"):
                send(tx_crc.crc[8:], "SEND_CRC_LO", crc_in=False)
            with m.State("SEND_CRC_LO"):
                send(tx_crc.crc[:8], "IDLE", crc_in=False)
                with m.If(sent):
                    m.d.comb += self.done.eq(1)
                    with m.If(resetting):
                        m.d.sync += [soft_reset.eq(1), resetting.eq(0)]
        with m.If(soft_reset):
            m.d.sync += soft_reset.eq(0)
        return m
