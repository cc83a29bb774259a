"""Runs whole frames through ConvAccelerator in amaranth.sim."""

import numpy as np

from convaccel import golden
from convaccel.beats import pixel_beats, result_array, weight_beats
from convaccel.hdl.accelerator import ConvAccelerator

from helpers import random_data, random_requant
from simutil import gaps, run_simulation, stream_get, stream_put


def run_engine(spec, frames, w, b, *, stall=0.0, seed=0, dut=None, pixel_frames=None,
               loads=None, max_cycles=None, requant=None, pads=None):
    """Load `w`, `b`, then run `frames` (input arrays) back to back. Returns the result
    arrays, the counters read after each frame, and the dut.

    `pixel_frames` overrides the beats sent for each frame (to send malformed frames);
    `loads` is a list of weight-load beat lists sent one after the other instead of the one
    load of `w` and `b`; `pads` (a layer with run-time pad values) is a list of pad values,
    one per frame: the load is sent again with them before each frame."""
    dut = dut or ConvAccelerator(spec)
    if pixel_frames is None:
        pixel_frames = [pixel_beats(x, spec) for x in frames]
    results, counters = [], []
    loaded = []

    async def load(ctx):
        idle = gaps(seed + 1, stall)
        for beats in loads or [weight_beats(w, b, spec, requant, pads and pads[0])]:
            for value, last in beats:
                await stream_put(ctx, dut.weights, {"data": value, "last": last}, idle)
        await ctx.tick()                  # error events reach the flag a cycle later
        loaded.append(ctx.get(dut.error))

    async def feed(ctx):
        while not loaded:
            await ctx.tick()
        idle = gaps(seed + 2, stall)
        for n, beats in enumerate(pixel_frames):
            if pads and n:
                # (taken once the previous frame is done, before this one can start)
                for value, last in weight_beats(w, b, spec, requant, pads[n]):
                    await stream_put(ctx, dut.weights, {"data": value, "last": last}, idle)
            for channels, last in beats:
                await stream_put(ctx, dut.pixels, {"data": channels, "last": last}, idle)

    async def collect(ctx):
        stalls = gaps(seed + 3, stall)
        for _ in pixel_frames:
            beats = []
            for n in range(spec.result_beats):
                payload = await stream_get(ctx, dut.results, stalls)
                beats.append([int(v) for v in payload.data])
                assert bool(payload.last) == (n == spec.result_beats - 1), \
                    f"last on result {n} of {spec.result_beats}"
            # Read in the cycle after the last result: the next frame may start in it and
            # reset the counters at its end.
            counters.append({name: ctx.get(getattr(dut, name)) for name in
                             ("cycles", "input_stalls", "output_stalls", "macs", "busy",
                              "done", "error")})
            results.append(result_array(beats, spec))

    deadline = None if max_cycles is None else max_cycles * 1e-6
    run_simulation(dut, load, feed, collect, deadline=deadline)
    return results, counters, loaded[0] if loaded else None


def check_engine(spec, *, seed=0, stall=0.0, frames=1, pad=None):
    """Random data through the engine, compared with the golden model; `pad` (a layer with
    run-time pad values) is what each frame is padded with: values, or "mean"."""
    rng = np.random.default_rng(seed)
    x, w, b = random_data(rng, spec)
    requant, requant_bias = random_requant(rng, spec)
    if requant is not None:
        b = requant_bias
    xs = [x] + [random_data(rng, spec)[0] for _ in range(frames - 1)]
    pads = None if pad is None else [golden.resolve_pad(spec, pad, x) for x in xs]
    results, counters, _ = run_engine(spec, xs, w, b, stall=stall, seed=seed, requant=requant,
                                      pads=pads)
    for n, (x, y, c) in enumerate(zip(xs, results, counters)):
        np.testing.assert_array_equal(y, golden.conv2d(x, w, b, spec, requant,
                                                       pads and pads[n]))
        assert c["macs"] == spec.macs
        assert c["error"] == 0 and c["done"] == 1 and c["busy"] == 0
    return counters
