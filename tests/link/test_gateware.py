# amaranth: UnusedElaboratable=no
"""HostLink and SerialAccelerator: the parts composed, a whole exchange in amaranth.sim."""

import numpy as np
import pytest
from linkutil import feed, status_wire
from simutil import gaps, run_simulation, stream_get

from convaccel import ConvSpec, golden
from convaccel.beats import weight_beats
from convaccel.hdl.accelerator import ConvAccelerator
from convaccel.hdl.stage import MemoryShape
from convaccel.link.gateware import HostLink, SerialAccelerator
from convaccel.link.protocol import (
    RESPONSE_START,
    Command,
    LinkFormat,
    Status,
    crc16,
    decode_status,
    encode_request,
)

SPEC = ConvSpec(height=4, width=5, in_channels=2, out_channels=3, kernel=3, padding=1,
                rows=2, cols=2)


def test_memories():
    link = HostLink(SPEC, max_payload=256, result_queue=100)
    engine = ConvAccelerator(SPEC).memories
    # (the two packet buffers are the halves of one memory)
    assert link.memories == (MemoryShape("link packet buffers", 8, 512),
                             MemoryShape("link result queue", 8, 99, no_rw_check=True), *engine)
    serial = SerialAccelerator(SPEC, divisor=8)
    assert serial.memories == HostLink(SPEC).memories
    assert serial.memories[:2] == (MemoryShape("link packet buffers", 8, 2048),
                                   MemoryShape("link result queue", 8, 511, no_rw_check=True))
    # on the ECP5 two of the result queue's bytes are registers at its head
    ecp5 = HostLink(SPEC, max_payload=256, result_queue=100, family="ecp5")
    assert ecp5.memories == (MemoryShape("link packet buffers", 8, 512),
                             MemoryShape("link result queue", 8, 97, no_rw_check=True),
                             MemoryShape("link result head", 8, 2), *engine)


class Host:
    """The host's side of the protocol on the link's byte streams, in a testbench."""

    def __init__(self, ctx, link, seed):
        self.ctx, self.link = ctx, link
        self.idle, self.stall = gaps(seed, 0.2), gaps(seed + 1, 0.2)

    async def request(self, command, payload=b""):
        await feed(self.ctx, self.link.i, encode_request(command, payload), self.idle)
        get = [await stream_get(self.ctx, self.link.o, self.stall) for _ in range(5)]
        assert get[0] == RESPONSE_START and get[1] == command
        length = int.from_bytes(bytes(get[3:5]), "big")
        rest = [await stream_get(self.ctx, self.link.o, self.stall) for _ in range(length + 2)]
        body = bytes(get[1:] + rest[:-2])
        assert crc16(body) == int.from_bytes(bytes(rest[-2:]), "big")
        return Status(get[2]), bytes(rest[:-2])


@pytest.mark.parametrize("spec", [
    SPEC,
    # the channel-serial engine: a pixel is two beats of 2 channels in, two column blocks out
    ConvSpec(height=4, width=5, in_channels=4, out_channels=4, kernel=3, padding=1,
             pad_value=-2, rows=2, cols=2, lanes=2),
], ids=["pixels", "serial"])
def test_exchange_through_the_parts(spec):
    # Small packet buffers and result queue: loads and frames span several packets, chunks
    # are refused BUSY while results wait to be read, and the engine waits for READ.
    rng = np.random.default_rng(9)
    x = rng.integers(*spec.input_range, endpoint=True, size=spec.input_shape)
    w = rng.integers(*spec.weight_range, endpoint=True, size=spec.weight_shape)
    b = rng.integers(*spec.bias_range, endpoint=True, size=spec.bias_shape)
    fmt = LinkFormat(spec, 24)
    link = HostLink(spec, max_payload=24, result_queue=2 * fmt.result_pixel_bytes,
                    timeout=200)
    results, statuses, answers = [], [], {}

    async def host(ctx):
        host = Host(ctx, link, 3)

        async def read():
            status, payload = await host.request(Command.READ, fmt.max_read().to_bytes(2, "big"))
            assert status == Status.OK
            results.extend(fmt.results(payload))

        answers["frame before the weights"] = (await host.request(
            Command.FRAME, fmt.frame_payloads(fmt.pixels(x)[:1])[0]))[0]
        for payload in fmt.weight_payloads(weight_beats(w, b, spec)):
            assert await host.request(Command.LOAD, payload) == (Status.OK, b"")
        statuses.append((await host.request(Command.STATUS))[1])
        busy = 0
        for payload in fmt.frame_payloads(fmt.pixels(x)):
            while (status := (await host.request(Command.FRAME, payload))[0]) == Status.BUSY:
                busy += 1
                await read()
            assert status == Status.OK
            await read()
        while len(results) < spec.output_pixels:
            await read()
        answers["busy"] = busy
        statuses.append((await host.request(Command.STATUS))[1])
        answers["reset"] = (await host.request(Command.RESET))[0]
        await ctx.tick().repeat(3)
        statuses.append((await host.request(Command.STATUS))[1])

    run_simulation(link, host)
    assert answers["frame before the weights"] == Status.BAD_STATE
    assert answers["busy"] > 0 and answers["reset"] == Status.OK
    y = fmt.result_array(results)
    np.testing.assert_array_equal(y, golden.conv2d(x, w, b, spec))
    loaded, done = (decode_status(s) for s in statuses[:2])
    assert loaded["loaded"] and not loaded["done"] and loaded["beats_loaded"] == 0
    assert done["done"] and done["loaded"] and not done["error"] and not done["busy"]
    assert done["macs"] == spec.macs and done["results_ready"] == done["pixels_sent"] == 0
    # the bytes on the wire, field by field as docs/protocol.md tables them
    counters = {name: done[name] for name in ("cycles", "input_stalls", "output_stalls")}
    assert statuses[1] == status_wire({"macs": spec.macs, **counters}, ("done", "loaded"))
    assert statuses[2] == status_wire({})                # RESET: no weights, nothing done
