"""ChunkStreamer and ResultSerialiser: bytes to the engine's beats and back."""

import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.lib import data
from simutil import gaps, run_simulation, stream_get, stream_put

from convaccel.link.dataflow import ChunkStreamer, ResultSerialiser

# -- the chunk streamer -------------------------------------------------------------------------

MAX_PAYLOAD, WEIGHT_BYTES, INPUT_BYTES = 30, 3, 2
WEIGHT_BITS, CHANNELS, LOAD_BEATS, FRAME_PIXELS = 18, 3, 11, 7
ELEM = signed(12)


def streamer(elem=ELEM):
    return ChunkStreamer(max_payload=MAX_PAYLOAD, weight_bytes=WEIGHT_BYTES,
                         input_bytes=INPUT_BYTES, weight_shape=signed(WEIGHT_BITS),
                         pixel_shape=data.ArrayLayout(elem, CHANNELS), load_beats=LOAD_BEATS,
                         frame_beats=FRAME_PIXELS)


def chunks_of(kind, values, sizes, *, signed_values=True):
    """(pixels, payload) chunks of weight values or pixels, `sizes` units each."""
    out, n = [], 0
    for size in sizes:
        part = values[n:n + size]
        n += size
        if kind == "weights":
            payload = b"".join(int(v).to_bytes(WEIGHT_BYTES, "big", signed=True) for v in part)
        else:
            payload = b"".join(int(c).to_bytes(INPUT_BYTES, "big", signed=signed_values)
                               for pixel in part for c in pixel)
        out.append((kind == "pixels", payload))
    assert n == len(values)
    return out


def run_streamer(dut, chunks, *, stall=0.3, seed=0, clear_after=None):
    """Receive each chunk into a packet buffer (while the previous one streams), start it once
    the previous one has gone, and take the engine's beats with random stalls; after chunk
    `clear_after` has gone, pulse ``clear``. Returns the weight beats, the pixel beats and
    ``error`` in every cycle."""
    weights, pixels, errors = [], [], []
    n_weights = sum(len(p) // WEIGHT_BYTES for px, p in chunks if not px)
    n_pixels = sum(len(p) // (INPUT_BYTES * CHANNELS) for px, p in chunks if px)
    done = {"sent": False}

    async def receiver(ctx):
        idle = gaps(seed, 0.2)
        for n, (to_pixels, payload) in enumerate(chunks):
            for addr, byte in enumerate(payload):        # into the buffer receiving
                while next(idle):
                    await ctx.tick()
                ctx.set(dut.write.addr, addr)
                ctx.set(dut.write.data, byte)
                ctx.set(dut.write.en, 1)
                await ctx.tick()
                ctx.set(dut.write.en, 0)
            while ctx.get(dut.chunk.pending):
                await ctx.tick()
            ctx.set(dut.chunk.start, 1)
            ctx.set(dut.chunk.pixels, to_pixels)
            ctx.set(dut.chunk.length, len(payload))
            await ctx.tick()
            ctx.set(dut.chunk.start, 0)
            assert ctx.get(dut.chunk.pending)
            assert ctx.get(dut.chunk.pending_pixels) == to_pixels
            if clear_after == n:
                while ctx.get(dut.chunk.pending):
                    await ctx.tick()
                ctx.set(dut.clear, 1)
                await ctx.tick()
                ctx.set(dut.clear, 0)
        while ctx.get(dut.chunk.pending):
            await ctx.tick()
        await ctx.tick()
        done["sent"] = True

    async def weight_sink(ctx):
        stalls = gaps(seed + 1, stall)
        for _ in range(n_weights):
            beat = await stream_get(ctx, dut.weights, stalls)
            weights.append((beat.data, beat.last))

    async def pixel_sink(ctx):
        stalls = gaps(seed + 2, stall)
        for _ in range(n_pixels):
            beat = await stream_get(ctx, dut.pixels, stalls)
            pixels.append(([beat.data[c] for c in range(CHANNELS)], beat.last))

    async def monitor(ctx):
        while not done["sent"]:
            _, _, error = await ctx.tick().sample(dut.error)
            errors.append(error)

    run_simulation(dut, receiver, weight_sink, pixel_sink, monitor)
    return weights, pixels, errors


def test_streamer_sends_chunks_as_beats():
    rng = np.random.default_rng(3)
    lo, hi = -(1 << (WEIGHT_BITS - 1)), (1 << (WEIGHT_BITS - 1)) - 1
    load = [lo, hi, -1, 0, 1] + [int(v) for v in rng.integers(lo, hi + 1, 2 * LOAD_BEATS - 5)]
    frames = [[int(c) for c in rng.integers(-2048, 2048, CHANNELS)]
              for _ in range(2 * FRAME_PIXELS)]
    frames[0] = [-2048, 2047, 0]
    # two loads (in chunks of 4, 4, 3 and 10, 1 beats), then two frames (3 + 4 and 5 + 2)
    chunks = (chunks_of("weights", load, [4, 4, 3, 10, 1])
              + chunks_of("pixels", frames, [3, 4, 5, 2]))
    weights, pixels, errors = run_streamer(streamer(), chunks)
    assert not any(errors)
    assert weights == [(v, n % LOAD_BEATS == LOAD_BEATS - 1) for n, v in enumerate(load)]
    assert pixels == [(p, n % FRAME_PIXELS == FRAME_PIXELS - 1) for n, p in enumerate(frames)]


def test_streamer_flags_values_out_of_range():
    # A chunk with a value that does not fit the engine's side sets `error` until `clear`;
    # the next chunk then starts a new load or frame.
    cases = [
        ("weights", [5, 1 << (WEIGHT_BITS - 1)], [7], signed(12)),    # a weight too large
        ("weights", [-(1 << (WEIGHT_BITS - 1)) - 1], [7], signed(12)),
        ("pixels", [[0, 1, 2], [2048, 0, 0]], [[1, 2, 3]], signed(12)),
        ("pixels", [[0, -2049, 0]], [[1, 2, 3]], signed(12)),
        ("pixels", [[0, 0, 0], [0, 0, 1 << 12]], [[1, 2, 3]], unsigned(12)),
    ]
    for kind, bad, good, elem in cases:
        chunks = (chunks_of(kind, bad, [len(bad)], signed_values=elem.signed)
                  + chunks_of(kind, good, [1], signed_values=elem.signed))
        weights, pixels, errors = run_streamer(streamer(elem), chunks, clear_after=0)
        rises = [n for n in range(1, len(errors)) if errors[n] and not errors[n - 1]]
        assert errors[0] == 0 and len(rises) == 1 and errors[-1] == 0, (kind, bad)
        beats = weights if kind == "weights" else pixels
        assert beats[-1] == (good[0], False)          # the first beat of a new load or frame


# -- the result serialiser ----------------------------------------------------------------------

@pytest.mark.parametrize("beats_per_pixel", [1, 3])
def test_serialiser_sends_channel_0_first_big_endian(beats_per_pixel):
    # A pixel is one beat of 3 channels, or (a channel-serial engine's column blocks) three
    # beats of one channel each: the bytes and the pixel counts are the same.
    channels, acc_bits, result_bytes, queue_pixels = 3, 13, 2, 10
    dut = ResultSerialiser(channels=channels // beats_per_pixel, acc_shape=signed(acc_bits),
                           result_bytes=result_bytes, queue_pixels=queue_pixels,
                           beats_per_pixel=beats_per_pixel)
    rng = np.random.default_rng(4)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    results = [[int(v) for v in rng.integers(lo, hi + 1, channels)] for _ in range(20)]
    results[:2] = [[lo, hi, -1], [0, 1, lo + 1]]
    expected = b"".join(v.to_bytes(result_bytes, "big", signed=True)
                        for pixel in results for v in pixel)
    got = []
    ready_seen = []
    per_beat = channels // beats_per_pixel
    beats = [pixel[n:n + per_beat] for pixel in results for n in range(0, channels, per_beat)]

    async def engine(ctx):
        idle = gaps(1, 0.3)
        for n, beat in enumerate(beats):
            await stream_put(ctx, dut.i, {"data": beat, "last": n == len(beats) - 1}, idle)

    async def queue(ctx):
        # Reads bytes with stalls; after every third pixel, a READ claims two of those ready.
        stalls = gaps(2, 0.4)
        claimed = 0
        for n in range(len(expected)):
            got.append(await stream_get(ctx, dut.o, stalls))
            if (n + 1) % (3 * channels * result_bytes) == 0:
                await ctx.tick()                       # (the count follows a cycle later)
                pixels_out = (n + 1) // (channels * result_bytes)
                assert ctx.get(dut.ready) == pixels_out - claimed
                ctx.set(dut.claim, 2)
                await ctx.tick()
                ctx.set(dut.claim, 0)
                claimed += 2
                ready_seen.append(ctx.get(dut.ready))
        await ctx.tick()
        assert ctx.get(dut.ready) == len(results) - claimed
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        assert ctx.get(dut.ready) == 0

    run_simulation(dut, engine, queue)
    assert bytes(got) == expected
    assert ready_seen == [1, 2, 3, 4, 5, 6]
