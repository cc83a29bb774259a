"""cocotb testbench for a whole network's generated Verilog (NetworkTop): every beat of every
stage boundary checked as it transfers.

The job comes in through ``CONVACCEL_TB_JOB``, a folder holding ``job.json`` and ``data.npz``
(written by :func:`convaccel.simulate.run_network_bench`):

- ``job.json``: ``stall`` (the probability of an input gap and of output back-pressure in a
  cycle), ``seed``, ``steady`` (the first frames, fed with no gap and taken with no
  back-pressure: their end-to-end spacing is measured), ``interval`` (the cycles between two
  such frames that the plan predicts), ``limit`` (cycles before the bench gives up),
  ``in_lanes`` and ``taps``: per stage boundary, the stream watched (``path``: the instance
  names down to it, ``port``: ``i`` of a queue, or ``o`` of the top), its ``lanes``, the
  producer's ``title`` and its output ``shape`` (the project's: ``(C, H, W)`` or ``(N,)``).
- ``data.npz``: ``x``, the input beats' values ``(frames, beats, in_lanes)``, and per tap
  ``e<n>``, the golden model's beats there ``(frames, beats, lanes)``.

The bench resets the design, waits for ``loaded`` (the weights are baked in: at once), then
feeds the frames back to back and takes the output, and compares every beat that transfers
at each tap (values and ``last``) with the golden model's as it happens. It writes ``report.json``
(cycles, counted from the end of reset: ``loaded``, each frame's first input beat
``starts`` and last output beat ``ends``, the ``error`` flag, the beats seen at each tap) and
``out.npz`` (``y``: the output beats' values), also when a check fails.
"""

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from convaccel.hdl.nettop import beat_layout
from convaccel.sim.tb_engine import pauses


class Tap:
    """A stream inside (or at the output of) the design: its handshake and payload handles,
    and the golden model's beats there, checked in order as they transfer."""

    def __init__(self, dut, job, expected):
        handle = dut
        for name in job["path"]:
            handle = getattr(handle, name)
        port = job["port"]
        self.valid = getattr(handle, f"{port}__valid")
        self.ready = getattr(handle, f"{port}__ready")
        self.payload = getattr(handle, f"{port}__payload")
        self.where = ".".join([*job["path"], port])
        self.title = job["title"]
        self.shape = tuple(job["shape"])
        self.lanes = int(job["lanes"])
        self.layout = beat_layout(self.lanes)
        self.expected = expected
        self.frame = 0
        self.beat = 0
        self.seen = 0
        self.received = [[] for _ in expected]

    def location(self, beat):
        """Where beat `beat` of a frame lies in the producer's output, in its units."""
        first = beat * self.lanes
        if len(self.shape) == 3:
            channels, _, width = self.shape
            pixel, channel = divmod(first, channels)
            row, column = divmod(pixel, width)
            return (f"pixel (row {row}, column {column}), channels {channel}.."
                    f"{channel + self.lanes - 1}")
        return f"values {first}..{first + self.lanes - 1}"

    def check(self, cycle, seed):
        """The transfer of this cycle: compare it with the golden model's next beat."""
        beat = self.layout.from_bits(self.payload.value.to_unsigned())
        actual = [int(v) for v in beat.data]
        frame, n = self.frame, self.beat
        if frame >= len(self.expected):
            raise AssertionError(f"{self.title} output ({self.where}): a beat after the last "
                                 f"frame, in cycle {cycle} (seed {seed})")
        expected = [int(v) for v in self.expected[frame][n]]
        if actual != expected:
            raise AssertionError(
                f"{self.title} output ({self.where}), frame {frame}, beat {n} "
                f"({self.location(n)}): expected {expected}, got {actual}, in cycle {cycle} "
                f"(seed {seed})")
        is_last = n == len(self.expected[frame]) - 1
        if bool(beat.last) != is_last:
            raise AssertionError(
                f"{self.title} output ({self.where}), frame {frame}, beat {n}: `last` is "
                f"{int(beat.last)}, expected {int(is_last)}, in cycle {cycle} (seed {seed})")
        self.received[frame].append(actual)
        self.seen += 1
        self.beat += 1
        if is_last:
            self.frame += 1
            self.beat = 0
        return is_last


class NetworkBench:
    """Input driver, output back-pressure and the taps' in-order scoreboards for one job."""

    def __init__(self, dut, job_dir):
        self.dut = dut
        self.job_dir = Path(job_dir)
        job = json.loads((self.job_dir / "job.json").read_text())
        arrays = np.load(self.job_dir / "data.npz", allow_pickle=False)
        self.stall = float(job["stall"])
        self.seed = int(job["seed"])
        self.steady = int(job["steady"])
        self.interval = int(job["interval"])
        self.limit = int(job["limit"])
        layout = beat_layout(int(job["in_lanes"]))
        frames = arrays["x"]
        self.frames = len(frames)
        # (frame, word) of every input beat, in order
        self.words = [(f, layout.const({"data": [int(v) for v in values],
                                        "last": n == len(frame) - 1}).as_bits())
                      for f, frame in enumerate(frames) for n, values in enumerate(frame)]
        self.taps = [Tap(dut, tap, arrays[f"e{n}"]) for n, tap in enumerate(job["taps"])]
        self.loaded = None
        self.starts = []
        self.ends = []
        self.error = None

    async def reset(self):
        dut = self.dut
        dut.rst.value = 1
        dut.i__valid.value = 0
        dut.i__payload.value = 0
        dut.o__ready.value = 0
        Clock(dut.clk, 10, unit="ns").start()
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    async def run(self):
        try:
            await self._run()
        finally:
            self.report()

    async def _run(self):
        dut = self.dut
        rng = random.Random(self.seed)
        gaps = pauses(random.Random(rng.random()), self.stall)
        stalls = pauses(random.Random(rng.random()), self.stall)
        await self.reset()
        output = self.taps[-1]
        sent = 0                    # input beats taken
        offered = False
        valid = ready = 0           # what the bench drives (written only when it changes:
        cycle = 0                   # each access to the simulator costs)
        while output.frame < self.frames:
            # The input: nothing before `loaded`; then a beat held until it is taken, and
            # (after the steady frames) a random gap before each.
            if not offered and self.loaded is not None and sent < len(self.words):
                frame, word = self.words[sent]
                if frame < self.steady or not next(gaps):
                    dut.i__payload.value = word
                    offered = True
            if valid != offered:
                valid = int(offered)
                dut.i__valid.value = valid
            take = int(output.frame < self.steady or not next(stalls))
            if take != ready:
                ready = take
                dut.o__ready.value = ready
            await ReadOnly()
            if self.loaded is None and dut.loaded.value == 1:
                self.loaded = cycle
            if offered and dut.i__ready.value == 1:
                frame, _ = self.words[sent]
                if len(self.starts) == frame:
                    self.starts.append(cycle)
                sent += 1
                offered = False
            for tap in self.taps:
                if tap.valid.value == 1 and (tap is output and ready or tap.ready.value == 1):
                    if tap.check(cycle, self.seed) and tap is output:
                        self.ends.append(cycle)
            await RisingEdge(dut.clk)
            cycle += 1
            if cycle > self.limit:
                raise AssertionError(
                    f"timed out after {cycle} cycles: the weights "
                    f"{'loaded' if self.loaded is not None else 'not loaded'}, {sent} of "
                    f"{len(self.words)} input beats taken, {output.frame} of {self.frames} "
                    f"frames out (seed {self.seed})")
        dut.i__valid.value = 0
        await ReadOnly()
        self.error = int(dut.error.value)
        assert self.error == 0, f"the error flag is set after {self.frames} frames"
        for tap in self.taps:
            assert tap.frame == self.frames, \
                f"{tap.title} output ({tap.where}): {tap.frame} of {self.frames} frames seen"
        for n in range(1, min(self.steady, self.frames)):
            measured = self.ends[n] - self.ends[n - 1]
            assert measured == self.interval, \
                f"frames {n - 1} and {n} (back to back, no stalls): {measured} cycles between " \
                f"their last output beats, the plan predicts {self.interval}"

    def report(self):
        (self.job_dir / "report.json").write_text(json.dumps({
            "loaded": self.loaded, "starts": self.starts, "ends": self.ends,
            "error": self.error, "beats": [tap.seen for tap in self.taps]}, indent=1))
        output = self.taps[-1]
        done = [r for r in output.received if len(r) == len(output.expected[0])]
        if done:
            np.savez(self.job_dir / "out.npz", y=np.array(done, dtype=np.int64))


@cocotb.test()
async def run_job(dut):
    """Wait for the loads, run every frame, check every beat at every stage boundary."""
    await NetworkBench(dut, os.environ["CONVACCEL_TB_JOB"]).run()
