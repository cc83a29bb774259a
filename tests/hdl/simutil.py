"""Shared helpers for amaranth.sim testbenches: stream drivers with random gaps and stalls."""

import numpy as np
from amaranth.sim import Simulator


def run_simulation(dut, *testbenches, processes=(), deadline=None, vcd=None):
    """Simulate `dut` with a 1 MHz clock until the testbenches return (or `deadline`)."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for bench in testbenches:
        sim.add_testbench(bench)
    for process in processes:
        sim.add_process(process)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run_until(deadline) if deadline else sim.run()
    elif deadline:
        sim.run_until(deadline)
    else:
        sim.run()


def gaps(seed, probability):
    """An endless pattern of booleans, true with `probability` (never, when 0)."""
    rng = np.random.default_rng(seed)
    while True:
        yield bool(probability and rng.random() < probability)


async def stream_put(ctx, stream, payload, idle=None):
    """Offer `payload` on `stream` (after idle cycles drawn from `idle`) until it is taken."""
    if idle is not None:
        while next(idle):
            ctx.set(stream.valid, 0)
            await ctx.tick()
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, stall=None):
    """Take one payload from `stream`, refusing it in cycles drawn true from `stall`."""
    while True:
        ready = not (stall is not None and next(stall))
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if ready and valid:
            ctx.set(stream.ready, 0)
            return payload


def back_to_back(dut, beats, count):
    """Offer `beats` (``(data, last)``) on ``dut.i`` back to back with ``dut.o`` always ready,
    until `count` output beats have left: ``(cycle, data, last)`` of each, cycle 0 being the
    one in which the first beat is offered."""
    out = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        n, cycle = 0, 0
        ctx.set(dut.i.payload, {"data": beats[0][0], "last": beats[0][1]})
        ctx.set(dut.i.valid, 1)
        while len(out) < count:
            _, _, taken, valid, payload = await ctx.tick().sample(dut.i.ready, dut.o.valid,
                                                                  dut.o.payload)
            if n < len(beats) and taken:
                n += 1
                if n < len(beats):
                    ctx.set(dut.i.payload, {"data": beats[n][0], "last": beats[n][1]})
                else:
                    ctx.set(dut.i.valid, 0)
            if valid:
                out.append((cycle, [int(v) for v in payload.data], int(payload.last)))
            cycle += 1

    run_simulation(dut, bench)
    return out
