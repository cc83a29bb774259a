"""RequestDecoder: every decision of CHECK against a model of docs/protocol.md."""

import numpy as np
from simutil import run_simulation

from convaccel.link.decoder import RequestDecoder
from convaccel.link.protocol import STATUS_BYTES, Command, Status

MAX_PAYLOAD, LOAD_BEATS, FRAME_PIXELS, RESULT_PIXEL_BYTES, QUEUE_PIXELS = 40, 23, 11, 6, 9
MAX_READ = MAX_PAYLOAD // RESULT_PIXEL_BYTES


class Model:
    """What the decoder decides, as docs/protocol.md says it."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.loaded, self.beats_loaded, self.pixels_sent = False, 0, 0

    def decide(self, r, busy, pending, pending_pixels, results_ready):
        """(status, response length, from the queue, reset, chunk (pixels, length) or None,
        claimed pixels) for request `r`."""
        if r["event"] == "timeout":
            return Status.TIMEOUT, 0, False, False, None, 0
        if r["event"] == "too_long":
            return Status.BAD_LENGTH, 0, False, False, None, 0
        if not r["crc_ok"]:
            return Status.BAD_CRC, 0, False, False, None, 0
        command, length, units = r["command"], r["length"], r["units"]
        refused = (Status.BAD_LENGTH, 0, False, False, None, 0)
        if command in (Command.LOAD, Command.FRAME):
            pixels = command == Command.FRAME
            frame_open = busy or self.pixels_sent != 0 or (pending and pending_pixels)
            if (frame_open if not pixels else not self.loaded):
                return Status.BAD_STATE, 0, False, False, None, 0
            if pending:
                return Status.BUSY, 0, False, False, None, 0
            count, total = ((self.pixels_sent, FRAME_PIXELS) if pixels
                            else (self.beats_loaded, LOAD_BEATS))
            if length == 0 or not r["whole"] or count + units > total:
                return refused
            count = (count + units) % total
            if pixels:
                self.pixels_sent = count
            else:
                self.beats_loaded, self.loaded = count, count == 0
            return Status.OK, 0, False, False, (pixels, length), 0
        if command == Command.READ:
            if length != 2:
                return refused
            n = min(r["arg"], results_ready, MAX_READ)
            return Status.OK, n * RESULT_PIXEL_BYTES, True, False, None, n
        if command in (Command.STATUS, Command.RESET):
            if length != 0:
                return refused
            if command == Command.STATUS:
                return Status.OK, STATUS_BYTES, False, False, None, 0
            return Status.OK, 0, False, True, None, 0
        return Status.UNKNOWN_COMMAND, 0, False, False, None, 0


def random_request(rng, model):
    event = rng.choice(["check"] * 18 + ["timeout", "too_long"])
    command = int(rng.choice([Command.LOAD] * 4 + [Command.FRAME] * 4 + list(Command) + [0x7E]))
    r = {"event": event, "command": command, "crc_ok": rng.random() > 0.1,
         "arg": int(rng.integers(0, 1 << 16)) if rng.random() < 0.2
         else int(rng.integers(0, 12)), "whole": rng.random() > 0.1}
    if command in (Command.LOAD, Command.FRAME):
        total, count = ((FRAME_PIXELS, model.pixels_sent) if command == Command.FRAME
                        else (LOAD_BEATS, model.beats_loaded))
        # (now and then more than the load or frame needs; never more than a packet holds)
        # (often the rest of it, so that loads complete and frames follow)
        units = total - count if rng.random() < 0.4 else int(rng.integers(0, total - count + 2))
        r["units"] = min(units, (MAX_PAYLOAD - 1) // 3)
        r["length"] = r["units"] * 3 + int(not r["whole"])
    else:
        r["length"] = int(rng.choice([0, 0, 1, 2, 2, 3, 29]))
        r["units"] = r["length"]
    return r


def test_decisions_follow_the_protocol():
    dut = RequestDecoder(max_payload=MAX_PAYLOAD, load_beats=LOAD_BEATS,
                         frame_pixels=FRAME_PIXELS, result_pixel_bytes=RESULT_PIXEL_BYTES,
                         queue_pixels=QUEUE_PIXELS)
    rng = np.random.default_rng(8)
    model = Model()
    seen = {}

    async def bench(ctx):
        for n in range(600):
            r = random_request(rng, model)
            busy, pending = rng.random() < 0.15, rng.random() < 0.2
            pending_pixels, ready = rng.random() < 0.5, int(rng.integers(0, QUEUE_PIXELS + 1))
            clear = rng.random() < 0.02
            for name in ("command", "length", "arg", "units", "whole", "crc_ok"):
                ctx.set(getattr(dut.request, name), r[name])
            ctx.set(dut.busy, busy)
            ctx.set(dut.chunk.pending, pending)
            ctx.set(dut.chunk.pending_pixels, pending_pixels)
            ctx.set(dut.results_ready, ready)
            # The fields hold for the cycles of the CRC's bytes and SETTLE before CHECK.
            await ctx.tick().repeat(3)
            ctx.set(getattr(dut.request, r["event"]), 1)
            status, length, results, reset, chunk, claim = model.decide(
                r, busy, pending, pending_pixels, ready)
            assert ctx.get(dut.respond.valid)
            assert ctx.get(dut.respond.payload.status) == status, (n, r)
            assert ctx.get(dut.respond.payload.length) == length
            assert (ctx.get(dut.respond.payload.results), ctx.get(dut.respond.payload.reset)) \
                == (results, reset)
            assert ctx.get(dut.claim) == 0      # (the claim is registered)
            assert not ctx.get(dut.chunk.start)
            key = (Command(r["command"]).name if r["command"] in set(Command) else "?",
                   Status(status).name, r["whole"])
            seen[key] = seen.get(key, 0) + 1
            await ctx.tick()
            ctx.set(getattr(dut.request, r["event"]), 0)
            assert not ctx.get(dut.respond.valid)
            assert ctx.get(dut.claim) == claim
            # an accepted chunk starts the next cycle
            assert ctx.get(dut.chunk.start) == (chunk is not None)
            if chunk is not None:
                assert (ctx.get(dut.chunk.pixels), ctx.get(dut.chunk.length)) == chunk
            if clear:
                ctx.set(dut.clear, 1)
                await ctx.tick()
                ctx.set(dut.clear, 0)
                model.reset()
            assert (ctx.get(dut.loaded), ctx.get(dut.beats_loaded), ctx.get(dut.pixels_sent)) \
                == (model.loaded, model.beats_loaded, model.pixels_sent)

    run_simulation(dut, bench)
    # every answer was exercised, and LOAD and FRAME both accepted and refused as not whole
    assert {status for _, status, _ in seen} == {s.name for s in Status}, seen
    for command in ("LOAD", "FRAME"):
        assert seen.get((command, "OK", True), 0) >= 10, seen
        assert seen.get((command, "BAD_LENGTH", False), 0) >= 3, seen
