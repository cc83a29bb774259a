"""Runs images through the network top (NetworkTop) in amaranth.sim."""

from amaranth.sim import Simulator

from convaccel.hdl.nettop import NetworkTop, input_beats, output_tensor

from simutil import gaps, stream_put


def run_network(plan, xs, *, stall=0.0, seed=0, steady=0):
    """Feed the input tensors `xs` back to back (after the loads) and collect the output
    tensors; with `stall`, random gaps at the input and random stalls at the output, but for
    the first `steady` frames (input always valid, output always ready). Returns the outputs,
    the cycle (counted from reset) of each frame's last output beat, the cycle `loaded` rose,
    and the error flag at the end."""
    dut = NetworkTop(plan)
    outs, ends, loaded, error = [], [], [], []
    per_frame = plan.stages[-1].out_beats

    async def feed(ctx):
        idle = gaps(seed + 1, stall)
        for n, x in enumerate(xs):
            for values, last in input_beats(plan, x):
                await stream_put(ctx, dut.i, {"data": values, "last": last},
                                 idle if n >= steady else None)

    async def watch(ctx):
        cycle = 0
        while not ctx.get(dut.loaded):
            await ctx.tick()
            cycle += 1
        loaded.append(cycle)

    async def collect(ctx):
        stalls = gaps(seed + 2, stall)
        never = gaps(0, 0)
        cycle = 0
        for frame, _ in enumerate(xs):
            beats = []
            pattern = stalls if frame >= steady else never
            for n in range(per_frame):
                ready = not next(pattern)
                while True:
                    ctx.set(dut.o.ready, ready)
                    _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
                    cycle += 1
                    if ready and valid:
                        break
                    ready = not next(pattern)
                ctx.set(dut.o.ready, 0)
                beats.append([int(v) for v in payload.data])
                assert bool(payload.last) == (n == per_frame - 1), f"last on beat {n}"
            ends.append(cycle)
            outs.append(output_tensor(plan, beats))
        error.append(ctx.get(dut.error))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for bench in (feed, watch, collect):
        sim.add_testbench(bench)
    sim.run()
    return outs, ends, loaded[0], error[0]
