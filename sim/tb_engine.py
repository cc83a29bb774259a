# amaranth: UnusedElaboratable=no
"""cocotb testbench for the generated engine: every result beat checked as it appears.

The job comes in through ``CONVACCEL_TB_JOB``, a folder holding ``job.json`` (the spec's
parameters, stall probability, seed) and ``data.npz`` (input frames ``x``, weights ``w``, bias
``b``, requantization ``r`` if any, and ``p`` if any: the run-time pad values of each frame,
loaded with the weights before it). The bench writes ``out.npz`` (the hardware's output
frames) and ``report.json`` (counters, measured cycles) there, and ``progress`` as it goes.
"""

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from convaccel import ConvSpec, golden
from convaccel.beats import pixel_beats, result_array, weight_beats
from convaccel.quant import requant_from_values
from convaccel.hdl.accelerator import ConvAccelerator


def pauses(rng, probability):
    """Idle/stall pattern: true on a cycle with `probability` (never when 0)."""
    while True:
        yield probability > 0 and rng.random() < probability


class StreamDriver:
    """Drives an Amaranth stream (``<name>__valid/ready/payload``) with idle gaps."""

    def __init__(self, dut, name, clk, pause):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clk = clk
        self.pause = pause
        self.valid.value = 0

    async def send(self, words):
        for word in words:
            while next(self.pause):
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.payload.value = word
            self.valid.value = 1
            while True:
                await ReadOnly()
                taken = self.ready.value == 1
                await RisingEdge(self.clk)
                if taken:
                    break
        self.valid.value = 0


class ResultMonitor:
    """Applies back-pressure to ``results`` and hands every transferred beat to a callback
    with the cycle it transferred in."""

    def __init__(self, dut, clock, pause, callback):
        self.dut = dut
        self.clock = clock
        self.pause = pause
        self.callback = callback

    async def run(self):
        dut = self.dut
        while True:
            dut.results__ready.value = 0 if next(self.pause) else 1
            await ReadOnly()
            if dut.results__valid.value == 1 and dut.results__ready.value == 1:
                self.callback(dut.results__payload.value.to_unsigned(), self.clock.cycle)
            await RisingEdge(dut.clk)


class EngineBench:
    """Drivers, monitor, golden model and in-order scoreboard for one job."""

    def __init__(self, dut, job_dir):
        self.dut = dut
        self.job_dir = Path(job_dir)
        job = json.loads((self.job_dir / "job.json").read_text())
        arrays = np.load(self.job_dir / "data.npz", allow_pickle=False)
        self.spec = ConvSpec(**job["spec"])
        self.stall = float(job["stall"])
        self.seed = int(job["seed"])
        self.frames = list(arrays["x"])
        self.w = arrays["w"]
        self.b = arrays["b"] if "b" in arrays else None
        self.requant = requant_from_values(arrays["r"]) if "r" in arrays else None
        self.pads = [[int(v) for v in p] for p in arrays["p"]] if "p" in arrays else None
        self.expected = [golden.conv2d(x, self.w, self.b, self.spec, self.requant,
                                       self.pads and self.pads[n])
                         for n, x in enumerate(self.frames)]
        spec = self.spec
        layouts = ConvAccelerator(spec).layouts        # (the generated engine's own)
        self.pixel_layout = layouts["pixels"]
        self.load_layout = layouts["weights"]
        self.result_layout = layouts["results"]
        self.out_h, self.out_w = spec.output_size
        # result beats a pixel: one, or (the channel-serial engine) a column block each
        self.blocks = spec.pixel_result_beats
        self.received = [[] for _ in self.frames]
        self.frame = 0
        self.last_transfer = []
        self.progress = self.job_dir / "progress"
        self.total = len(self.frames) * spec.result_beats

    def check(self, word, cycle):
        """The scoreboard: called in the cycle a result beat transfers."""
        beat = self.result_layout.from_bits(word)
        frame, n = self.frame, len(self.received[self.frame])
        pixel, block = divmod(n, self.blocks)
        y, x = divmod(pixel, self.out_w)
        first = block * self.spec.result_channels
        actual = [int(v) for v in beat.data]
        expected = [int(v) for v in
                    self.expected[frame][first:first + self.spec.result_channels, y, x]]
        for channel, (a, e) in enumerate(zip(actual, expected), start=first):
            if a != e:
                raise AssertionError(
                    f"frame {frame}, output pixel (row {y}, column {x}), channel {channel}: "
                    f"expected {e}, got {a}, in cycle {cycle} (seed {self.seed})")
        is_last = n == self.spec.result_beats - 1
        if bool(beat.last) != is_last:
            raise AssertionError(
                f"frame {frame}, output pixel (row {y}, column {x}): `last` is "
                f"{int(beat.last)}, expected {int(is_last)}, in cycle {cycle} (seed {self.seed})")
        self.received[frame].append(actual)
        done = sum(len(r) for r in self.received)
        if done % 64 == 0 or done == self.total:
            self.progress.write_text(f"{done} {self.total}\n")
        if is_last:
            self.last_transfer.append(cycle)
            self.frame += 1

    async def reset(self):
        dut = self.dut
        dut.rst.value = 1
        for name in ("pixels__valid", "results__ready", "weights__valid", "error_clear"):
            getattr(dut, name).value = 0
        dut.pixels__payload.value = 0
        dut.weights__payload.value = 0
        Clock(dut.clk, 10, unit="ns").start()
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    async def run(self):
        dut = self.dut
        spec = self.spec
        rng = random.Random(self.seed)
        await self.reset()
        clock = Observer(dut)
        cocotb.start_soon(clock.run())
        monitor = ResultMonitor(dut, clock, pauses(random.Random(rng.random()), self.stall),
                                self.check)
        cocotb.start_soon(monitor.run())

        weights = StreamDriver(dut, "weights", dut.clk,
                               pauses(random.Random(rng.random()), self.stall))

        def load(pad=None):
            return weights.send(self.load_layout.const({"data": v, "last": last}).as_bits()
                                for v, last in weight_beats(self.w, self.b, spec, self.requant,
                                                            pad))

        await load(self.pads and self.pads[0])
        pixels = StreamDriver(dut, "pixels", dut.clk,
                              pauses(random.Random(rng.random()), self.stall))
        frames = [[self.pixel_layout.const({"data": c, "last": last}).as_bits()
                   for c, last in pixel_beats(x, spec)] for x in self.frames]

        async def send():
            if self.pads is None:
                await pixels.send(word for words in frames for word in words)
                return
            for n, words in enumerate(frames):
                if n:
                    # the load waits for the previous frame to end; the frame for the load
                    await load(self.pads[n])
                await pixels.send(words)

        sender = cocotb.start_soon(send())

        # Frames cannot take longer than the model with every cycle stalled a few times over.
        limit = 50 * (spec.cycles + spec.padded_shape[0] * spec.padded_shape[1]) * \
            len(self.frames) * (1 + int(10 * self.stall))
        counters = []
        for frame in range(len(self.frames)):
            while self.frame <= frame:
                await RisingEdge(dut.clk)
                if clock.cycle > limit:
                    raise AssertionError(
                        f"timed out after {clock.cycle} cycles with {self.frame} of "
                        f"{len(self.frames)} frames done (seed {self.seed})")
            # The cycle after the last result: the counters hold the frame's figures (the next
            # frame may start in this cycle and reset them at its end).
            await ReadOnly()
            counters.append({name: int(getattr(dut, name).value) for name in
                             ("cycles", "input_stalls", "output_stalls", "macs", "error")})
            counters[-1].update(clock.frame_figures(frame, self.last_transfer[frame]))
            await RisingEdge(dut.clk)
        await sender
        self.report(counters)

    def report(self, counters):
        spec = self.spec
        np.savez(self.job_dir / "out.npz",
                 y=np.array([result_array(r, spec) for r in self.received]))
        (self.job_dir / "report.json").write_text(json.dumps({"frames": counters}, indent=1))
        for n, c in enumerate(counters):
            # The performance counters agree with what the bench saw, cycle for cycle.
            assert c["cycles"] == c["seen_cycles"], \
                f"frame {n}: cycle counter {c['cycles']}, observed {c['seen_cycles']}"
            assert c["input_stalls"] == c["seen_input_stalls"], \
                f"frame {n}: input stall counter {c['input_stalls']}, observed " \
                f"{c['seen_input_stalls']}"
            assert c["output_stalls"] == c["seen_output_stalls"], \
                f"frame {n}: output stall counter {c['output_stalls']}, observed " \
                f"{c['seen_output_stalls']}"
            assert c["macs"] == spec.macs, f"frame {n}: MAC counter {c['macs']}, " \
                f"expected {spec.macs}"
            assert c["error"] == 0, f"frame {n}: error flag raised"
            if self.stall == 0:
                assert c["cycles"] == spec.cycles, \
                    f"frame {n}: {c['cycles']} cycles, the model predicts {spec.cycles}"


class Observer:
    """Counts cycles and, per frame, the start cycle and the stalls, from the ports alone.

    A frame starts in the first cycle in which the engine is idle (``busy`` low) and a pixel is
    offered; from then until its last result transfers, a cycle with ``pixels`` ready and not
    valid is an input stall, and one with ``results`` valid and not ready an output stall.
    """

    def __init__(self, dut):
        self.dut = dut
        self.cycle = 0
        self.frames = []        # [start cycle, input stalls, output stalls]
        self.in_frame = False

    async def run(self):
        dut = self.dut
        while True:
            await ReadOnly()
            busy = dut.busy.value == 1
            if not self.in_frame and not busy and dut.pixels__valid.value == 1:
                self.frames.append([self.cycle, 0, 0])
                self.in_frame = True
            if self.in_frame:
                if busy and dut.pixels__ready.value == 1 and dut.pixels__valid.value == 0:
                    self.frames[-1][1] += 1
                if dut.results__valid.value == 1 and dut.results__ready.value == 0:
                    self.frames[-1][2] += 1
                if (dut.results__valid.value == 1 and dut.results__ready.value == 1 and
                        dut.results__payload.value.to_unsigned() >> (
                            len(dut.results__payload) - 1)):
                    self.in_frame = False
            await RisingEdge(dut.clk)
            self.cycle += 1

    def frame_figures(self, frame, last_cycle):
        start, input_stalls, output_stalls = self.frames[frame]
        return {"seen_cycles": last_cycle - start + 1, "seen_input_stalls": input_stalls,
                "seen_output_stalls": output_stalls}


@cocotb.test()
async def run_job(dut):
    """Load the weights, run every frame, check every result beat as it appears."""
    bench = EngineBench(dut, os.environ["CONVACCEL_TB_JOB"])
    await bench.run()
