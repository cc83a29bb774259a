"""RequestReceiver, ResponseSender and the PayloadCounter they share."""

import numpy as np
from amaranth import Module
from amaranth.lib import wiring
from linkutil import feed, status_wire
from simutil import gaps, run_simulation, stream_get, stream_put

from convaccel.link.framing import PayloadCounter, RequestReceiver, ResponseSender
from convaccel.link.protocol import STATUS, STATUS_BYTES, Command, crc16, encode_request

MAX_PAYLOAD, TIMEOUT, WEIGHT_BYTES, PIXEL_BYTES = 24, 60, 4, 3


def test_counter_counts_down_to_the_last_byte():
    dut = PayloadCounter(16)
    seen = []

    async def bench(ctx):
        for port, count in [(dut.rx, 5), (dut.tx, 1), (dut.rx, 16)]:
            ctx.set(port.clear, 1)
            ctx.set(port.load, 1)
            ctx.set(port.count, count)
            ctx.set(port.one, count == 1)
            await ctx.tick()
            ctx.set(port.clear, 0)
            ctx.set(port.load, 0)
            marks = []
            for _ in range(count):
                assert ctx.get(dut.rx.settled) == ctx.get(dut.tx.settled)
                marks.append((ctx.get(port.index), ctx.get(port.last)))
                ctx.set(port.step, 1)
                await ctx.tick()
                ctx.set(port.step, 0)
                assert not ctx.get(port.settled)          # the index has just moved
                await ctx.tick()
                assert ctx.get(port.settled)
            seen.append(marks)

    run_simulation(dut, bench)
    for marks, count in zip(seen, [5, 1, 16]):
        assert marks == [(n, n == count - 1) for n in range(count)]


# -- the receiver -------------------------------------------------------------------------------

def receiver():
    m = Module()
    m.submodules.receiver = dut = RequestReceiver(
        max_payload=MAX_PAYLOAD, timeout=TIMEOUT, weight_bytes=WEIGHT_BYTES,
        pixel_bytes=PIXEL_BYTES)
    m.submodules.counter = counter = PayloadCounter(MAX_PAYLOAD)
    wiring.connect(m, dut.count, counter.rx)
    return m, dut


FIELDS = ("command", "length", "arg", "units", "whole", "crc_ok")


def exchange(sends, *, idle=0.3, seed=1, respond_after=7):
    """Feed each of `sends` (bytes) to the receiver, the next once the previous one's verdict
    has been answered (``responded``, `respond_after` cycles after the verdict). Returns, per
    send, the payload writes ``[(addr, byte)]``, the verdict (``("check", {field: value})``,
    ``("timeout",)`` or ``("too_long",)``, or None) and the cycles from its last byte to the
    verdict."""
    m, dut = receiver()
    results = []
    state = {"verdicts": 0, "answered": 0, "done": False}

    async def host(ctx):
        pause = gaps(seed, idle)
        for n, data in enumerate(sends):
            await feed(ctx, dut.i, data, pause)
            while state["answered"] <= n:
                await ctx.tick()
            await ctx.tick().repeat(3)                # (as the response travels)
        state["done"] = True

    async def monitor(ctx):
        cycle, last_byte, answer_at = 0, None, None
        writes, done_at = [], None
        while done_at is None or cycle < done_at + 2 * TIMEOUT:
            assert cycle < 20_000, "no verdict"
            ctx.set(dut.responded, answer_at == cycle)
            if answer_at == cycle:
                state["answered"] += 1
            sample = await ctx.tick().sample(
                dut.i.valid, dut.write.en, dut.write.addr, dut.write.data, dut.request.check,
                dut.request.timeout, dut.request.too_long,
                *(getattr(dut.request, name) for name in FIELDS))
            valid, en, addr, data, check, timeout, too_long, *fields = sample[2:]
            if valid:
                last_byte = cycle
            if en:
                writes.append((addr, data))
            verdict = None
            if check:
                verdict = ("check", dict(zip(FIELDS, fields)))
            elif timeout:
                verdict = ("timeout",)
            elif too_long:
                verdict = ("too_long",)
            if verdict:
                assert answer_at is None or answer_at < cycle, "a verdict before the answer"
                results.append((writes, verdict, cycle - last_byte))
                writes, answer_at = [], cycle + respond_after
            cycle += 1
            if state["done"] and done_at is None:
                done_at = cycle

    run_simulation(m, host, monitor)
    return results


def expected_check(command, payload, *, crc_ok=True, arg=None):
    unit = {Command.LOAD: WEIGHT_BYTES, Command.FRAME: PIXEL_BYTES}.get(command, 1)
    fields = {"command": int(command), "length": len(payload), "units": len(payload) // unit,
              "whole": len(payload) % unit == 0, "crc_ok": crc_ok}
    if len(payload) >= 2:
        fields["arg"] = int.from_bytes(payload[:2], "big")
    return fields


def test_receiver_takes_requests_into_the_buffer():
    rng = np.random.default_rng(2)
    requests = [(Command.LOAD, bytes(rng.integers(0, 256, 12, dtype=np.uint8))),
                (Command.FRAME, bytes(rng.integers(0, 256, 7, dtype=np.uint8))),  # not whole
                (Command.READ, b"\x01\x02"),
                (Command.STATUS, b""),
                (0x7E, bytes(rng.integers(0, 256, MAX_PAYLOAD, dtype=np.uint8)))]
    noise = bytes([0x00, 0x13, 0xFF])                     # skipped while hunting
    sends = [noise + encode_request(c, p) for c, p in requests]
    results = exchange(sends)
    assert len(results) == len(requests)
    for (command, payload), (writes, verdict, latency) in zip(requests, results):
        assert writes == list(enumerate(payload))
        kind, fields = verdict
        assert kind == "check"
        expected = expected_check(command, payload)
        assert {k: fields[k] for k in expected} == expected
        # the CRC's last byte, a cycle through the register stage, SETTLE, then CHECK
        assert latency == 3


def test_receiver_reports_a_damaged_request():
    # A bit flipped in the command, the length (1032: too long; 12: more than arrives), the
    # payload or the CRC.
    for position, outcome in [(1, "check"), (2, "too_long"), (3, "timeout"), (6, "check"),
                              (12, "check")]:
        packet = bytearray(encode_request(Command.LOAD, bytes(range(8))))
        packet[position] ^= 0x04
        ((_, verdict, _),) = exchange([bytes(packet)], idle=0)
        assert verdict[0] == outcome
        if outcome == "check":
            assert not verdict[1]["crc_ok"]


def test_receiver_times_out_and_refuses_too_long():
    truncated = encode_request(Command.LOAD, bytes(8))[:7]
    too_long = bytes([0xA5, Command.LOAD]) + (MAX_PAYLOAD + 1).to_bytes(2, "big")
    good = encode_request(Command.STATUS)
    results = exchange([truncated, too_long, bytes([0xA5]), good], idle=0.2)
    assert [verdict[0] for _, verdict, _ in results] == ["timeout", "too_long", "timeout",
                                                         "check"]
    (_, _, timeout_latency), (writes, _, too_long_latency) = results[:2]
    assert TIMEOUT <= timeout_latency <= TIMEOUT + 2
    assert writes == [] and too_long_latency == 1       # as soon as the length is there
    assert results[3][1][1]["crc_ok"]


def test_receiver_skips_bytes_during_the_response():
    # A start byte and junk sent before the previous request is answered are skipped.
    m, dut = receiver()
    verdicts = []

    async def host(ctx):
        await feed(ctx, dut.i, encode_request(Command.STATUS))
        await ctx.tick().repeat(4)
        await feed(ctx, dut.i, bytes([0xA5, 0x01, 0x00]))  # during RESPOND
        ctx.set(dut.responded, 1)
        await ctx.tick()
        ctx.set(dut.responded, 0)
        await ctx.tick()
        await feed(ctx, dut.i, encode_request(Command.READ, b"\x00\x05"))
        await ctx.tick().repeat(6)

    async def monitor(ctx):
        for _ in range(60):
            _, _, check, command, arg = await ctx.tick().sample(
                dut.request.check, dut.request.command, dut.request.arg)
            if check:
                verdicts.append((command, arg))

    run_simulation(m, host, monitor)
    assert verdicts[0][0] == Command.STATUS
    assert verdicts[1:] == [(Command.READ, 5)]


# -- the sender ---------------------------------------------------------------------------------

def sender():
    m = Module()
    m.submodules.sender = dut = ResponseSender(MAX_PAYLOAD)
    m.submodules.counter = counter = PayloadCounter(MAX_PAYLOAD)
    wiring.connect(m, dut.count, counter.tx)
    return m, dut


def test_sender_frames_responses():
    # (command, status, payload from the queue or the STATUS value, reset afterwards)
    status_fields = {"results_ready": 3, "beats_loaded": 0x1234, "pixels_sent": 0x01020304,
                     "cycles": 0xDEADBEEF, "input_stalls": 5, "output_stalls": 0x80000000,
                     "macs": 0xFEDCBA9876543210}
    status_flags = ("done", "loaded", "pending")
    queued = bytes(np.random.default_rng(5).integers(0, 256, MAX_PAYLOAD + 3, dtype=np.uint8))
    responses = [
        (Command.READ, 0, queued[:MAX_PAYLOAD], False),
        (Command.STATUS, 0, status_wire(status_fields, status_flags), False),
        (Command.LOAD, 5, b"", False),
        (Command.READ, 0, queued[MAX_PAYLOAD:], False),
        (Command.RESET, 0, b"", True),
    ]
    m, dut = sender()
    got, events = [], []

    async def decoder(ctx):
        ctx.set(dut.status, STATUS.const(
            {**status_fields, "flags": {name: 1 for name in status_flags}}))
        for command, status, payload, reset in responses:
            ctx.set(dut.command, command)
            ctx.set(dut.respond.payload, {"status": status, "length": len(payload),
                                          "results": command == Command.READ, "reset": reset})
            ctx.set(dut.respond.valid, 1)
            await ctx.tick()
            ctx.set(dut.respond.valid, 0)
            while True:
                _, _, done, reset_out = await ctx.tick().sample(dut.done, dut.reset)
                assert not reset_out
                if done:
                    break
            events.append([ctx.get(dut.reset)])
            await ctx.tick()
            events[-1].append(ctx.get(dut.reset))

    async def queue(ctx):
        idle = gaps(6, 0.4)
        for byte in queued:
            await stream_put(ctx, dut.results, byte, idle)

    async def host(ctx):
        stall = gaps(7, 0.3)
        for _, _, payload, _ in responses:
            response = [await stream_get(ctx, dut.o, stall) for _ in range(len(payload) + 7)]
            got.append(bytes(response))

    run_simulation(m, decoder, queue, host)
    for (command, status, payload, reset), response, event in zip(responses, got, events):
        body = bytes([command, status]) + len(payload).to_bytes(2, "big") + payload
        assert response == bytes([0x5A]) + body + crc16(body).to_bytes(2, "big")
        assert event == [reset, False]                  # `reset` the cycle after the last byte
    assert len(got[1]) - 7 == STATUS_BYTES
