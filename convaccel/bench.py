# amaranth: UnusedElaboratable=no
# (The bench builds engines to read their figures and, in --quick, simulates them.)
"""``convaccel bench``: the engine on a fixed suite of real layers, on each board.

For each layer and board the array is sized to the device by the fit search
(:func:`bench_array`), then:

- the generated Verilog runs a random frame under cocotb on Verilator (no stalls), bit-exact
  against the golden model; its cycles (the engine's own cycle counter, checked by the bench
  against what it observed) are compared with the cycle model (``ConvSpec.cycles``) and with
  the ideal ``MACs / PEs``: utilization ``MACs / (PEs * cycles)``;
- unless ``build=False``, the engine is built for the board (:class:`BenchTop`: the engine fed
  by a pseudo-random stimulus, its outputs folded into an LED, on the board's PLL clock) with
  the open tools: Yosys once, nextpnr once per seed (Fmax: the median over the seeds; icetime
  beside it on iCE40), LUT/FF/DSP/BRAM from the first seed's report;
- M MAC/s = ``MACs / cycles`` (achieved MACs per cycle) x Fmax, against the device's peak:
  every multiplier busy at the same clock (:func:`peak_macs_per_cycle`).

``quick=True`` runs small layers through the engine in amaranth.sim instead (no Verilator, no
builds): what the test suite checks.
"""

import dataclasses
import json
import os
import platform as host_platform
import re
import statistics
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
from amaranth import *
from amaranth.lib import io

from . import __version__, golden
from .beats import pixel_beats, result_array, weight_beats
from .spec import ConfigError, ConvLayer, ConvSpec, Folding

__all__ = ["LAYERS", "QUICK_LAYERS", "BENCH_MHZ", "BenchTop", "bench_array", "bench_specs",
           "measure_amaranth", "measure_cocotb", "build_bench", "peak_macs_per_cycle",
           "machine", "run_bench", "write_results"]

_INT8 = dict(input_bits=8, weight_bits=8, bias_bits=32)

#: The fixed suite: name -> (description, the layer). Int8 inputs and weights, int32 bias,
#: exact accumulators out (no requantizer: its multipliers would take DSP blocks from the PEs).
LAYERS = {
    "lenet5_conv1": ("LeNet-5 C1: 5x5, 1 -> 6, 32x32 valid",
                     ConvLayer(height=32, width=32, in_channels=1, out_channels=6, kernel=5,
                               padding="valid", **_INT8)),
    "lenet5_conv2": ("LeNet-5 C3: 5x5, 6 -> 16, 14x14 valid",
                     ConvLayer(height=14, width=14, in_channels=6, out_channels=16, kernel=5,
                               padding="valid", **_INT8)),
    "mobilenet_dw_s2": ("MobileNet: depthwise 3x3 stride 2, 16 ch, 32x32 same",
                        ConvLayer(height=32, width=32, in_channels=16, out_channels=16,
                                  kernel=3, stride=2, padding="same", groups=16, **_INT8)),
    "mobilenet_pw": ("MobileNet: pointwise 1x1, 16 -> 32, 16x16",
                     ConvLayer(height=16, width=16, in_channels=16, out_channels=32, kernel=1,
                               **_INT8)),
    "resnet_3x3": ("ResNet: 3x3, 16 -> 16, 32x32 same",
                   ConvLayer(height=32, width=32, in_channels=16, out_channels=16, kernel=3,
                             padding="same", **_INT8)),
    "stem_7x7_s2": ("Stem: 7x7 stride 2, 3 -> 16, 32x32 same",
                    ConvLayer(height=32, width=32, in_channels=3, out_channels=16, kernel=7,
                              stride=2, padding="same", **_INT8)),
}

#: ``--quick``: the same kinds of layer, small enough for amaranth.sim in seconds.
QUICK_LAYERS = {
    "quick_5x5_valid": ("5x5 valid, 1 -> 2, 8x8",
                        ConvLayer(height=8, width=8, in_channels=1, out_channels=2, kernel=5,
                                  padding="valid", **_INT8)),
    "quick_dw_s2": ("depthwise 3x3 stride 2, 4 ch, 8x8 same",
                    ConvLayer(height=8, width=8, in_channels=4, out_channels=4, kernel=3,
                              stride=2, padding="same", groups=4, **_INT8)),
    "quick_pw": ("pointwise 1x1, 4 -> 8, 4x4",
                 ConvLayer(height=4, width=4, in_channels=4, out_channels=8, kernel=1, **_INT8)),
    "quick_3x3_same": ("3x3 same, 4 -> 4, 6x6",
                       ConvLayer(height=6, width=6, in_channels=4, out_channels=4, kernel=3,
                                 padding="same", **_INT8)),
    "quick_7x7_s2": ("7x7 stride 2, 2 -> 4, 10x10 same",
                     ConvLayer(height=10, width=10, in_channels=2, out_channels=4, kernel=7,
                               stride=2, padding="same", **_INT8)),
}

#: The engine clock each family's builds are constrained to (issue #15's goals): nextpnr
#: reports the Fmax it achieved whatever the constraint, which steers its effort.
BENCH_MHZ = {"ice40": 60.0, "ecp5": 125.0, "gowin": 80.0}

#: Simulated clock period of the cocotb engine bench (sim/tb_engine.py), in ns.
_TB_PERIOD_NS = 10


def bench_array(spec, board):
    """``(rows, cols)``: the array the bench runs `spec` on, on `board`.

    The fit search's largest array (the most PEs, then the fewest cycles), counting the block
    RAM a host link beside the engine would take (the self-test's ROMs would hold whole frames,
    which the larger layers do not leave room for). The one place the bench sizes an array.
    """
    from .boards.fit import largest_array
    return largest_array(spec, board, app="link")


def peak_macs_per_cycle(board):
    """Multiply-accumulates per cycle with every multiplier of `board`'s device busy: two int8
    products per SB_MAC16 on iCE40 (its dual 8 x 8 mode), one per MULT18X18D on ECP5, one per
    9 x 9 multiplier on Gowin (the board registry's ``dsp`` counts them in those units)."""
    return board.resources["dsp"] * (2 if board.family == "ice40" else 1)


def bench_specs(layers, board):
    """``[(name, description, spec or None)]``: each of `layers` (name -> (description,
    ConvLayer)) on its :func:`bench_array` for `board` (None if nothing fits)."""
    specs = []
    for name, (description, layer) in layers.items():
        fold = bench_array(ConvSpec.of(dataclasses.replace(layer, name=name)), board)
        spec = None if fold is None else ConvSpec.of(
            dataclasses.replace(layer, name=name), Folding(*fold))
        specs.append((name, description, spec))
    return specs


def _random_data(spec, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(*spec.input_range, endpoint=True, size=spec.input_shape, dtype=np.int64)
    w = rng.integers(*spec.weight_range, endpoint=True, size=spec.weight_shape, dtype=np.int64)
    b = rng.integers(-(1 << 15), 1 << 15, size=spec.bias_shape, dtype=np.int64)
    return x, w, b


def measure_amaranth(spec, seed=1):
    """One random frame through the engine in amaranth.sim, input always valid and results
    always ready: ``{"cycles": the engine's cycle counter, "macs": its MAC counter, "matches":
    the output equals the golden model}``."""
    from amaranth.sim import Simulator

    from .hdl.accelerator import ConvAccelerator

    x, w, b = _random_data(spec, seed)
    dut = ConvAccelerator(spec)
    out_h, out_w = spec.output_size
    beats, counters = [], {}

    async def put(ctx, stream, payload):
        ctx.set(stream.payload, payload)
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)

    async def drive(ctx):
        for value, last in weight_beats(w, b, spec):
            await put(ctx, dut.weights, {"data": value, "last": last})
        for channels, last in pixel_beats(x, spec):
            await put(ctx, dut.pixels, {"data": channels, "last": last})

    async def collect(ctx):
        ctx.set(dut.results.ready, 1)
        for _ in range(out_h * out_w):
            _, payload = await ctx.tick().sample(
                dut.results.valid, dut.results.payload).until(dut.results.valid)
            beats.append([int(v) for v in payload.data])
        counters.update(cycles=ctx.get(dut.cycles), macs=ctx.get(dut.macs),
                        error=ctx.get(dut.error))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(drive)
    sim.add_testbench(collect)
    sim.run()
    output = result_array(beats, spec)
    return {"cycles": int(counters["cycles"]), "macs_counted": int(counters["macs"]),
            "matches": bool(np.array_equal(output, golden.conv2d(x, w, b, spec)))
            and not counters["error"]}


def _test_times(results_xml):
    """``(wall seconds, simulated ns)`` of the cocotb test in `results_xml`, or Nones."""
    try:
        case = next(ElementTree.parse(results_xml).getroot().iter("testcase"))
    except (OSError, ElementTree.ParseError, StopIteration):
        return None, None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    wall = case.get("time")
    sim_ns = None
    if props.get("sim_time_stop") is not None and props.get("sim_time_start") is not None:
        sim_ns = float(props["sim_time_stop"]) - float(props["sim_time_start"])
    return (float(wall) if wall else None), sim_ns


def measure_cocotb(spec, verilog_text, simulator="verilator", seed=1):
    """One random frame through `verilog_text` (the engine of `spec`) under cocotb with no
    stalls, in a fresh simulator build (so that its compile is timed):
    ``{"cycles", "matches", "compile_s", "run_s", "sim_cycles", "cycles_per_s"}`` (the run:
    the cocotb test alone, weight load included; ``sim_cycles`` the cycles it simulated)."""
    from .simulate import run_engine_bench

    x, w, b = _random_data(spec, seed)
    expected = golden.conv2d(x, w, b, spec)
    saved = os.environ.get("CONVACCEL_CACHE")
    with tempfile.TemporaryDirectory(prefix="convaccel-bench-") as cache:
        os.environ["CONVACCEL_CACHE"] = cache
        try:
            start = time.perf_counter()
            run, report, outputs, _, _, _ = run_engine_bench(
                spec, verilog_text, [x], w, b, simulator=simulator, seed=seed)
            total = time.perf_counter() - start
        finally:
            if saved is None:
                os.environ.pop("CONVACCEL_CACHE", None)
            else:
                os.environ["CONVACCEL_CACHE"] = saved
        wall, sim_ns = _test_times(run.results_xml)
    counters = report["frames"]
    matches = (run.passed and outputs is not None and len(outputs) == 1
               and np.array_equal(outputs[0], expected))
    sim_cycles = round(sim_ns / _TB_PERIOD_NS) if sim_ns else None
    return {"cycles": counters[0]["cycles"] if counters else None, "matches": bool(matches),
            "compile_s": round(total - wall, 2) if wall else None,
            "run_s": round(wall, 2) if wall else None, "sim_cycles": sim_cycles,
            "cycles_per_s": round(sim_cycles / wall) if wall and sim_cycles else None}


class BenchTop(Elaboratable):
    """The engine alone on a board, for its Fmax and resources: no host link, no self-test.

    A 16-bit LFSR feeds a shift register as wide as the pixel and the weight payloads (every
    payload bit a distinct flip-flop, so that synthesis can merge nothing); the engine loads
    its weights from it once after reset, then takes frames from it back to back, input always
    valid and results always ready. The result payloads, ``valid`` and the engine's status and
    counters are folded (XOR) into one register on an LED, so that nothing is optimized away.
    The clock and reset are the board top's (:class:`~convaccel.boards.top.BoardTop`): the PLL
    at `f_mhz`, the reset held until it locks and :data:`~convaccel.boards.top.POR_CYCLES`
    more cycles.
    """

    def __init__(self, board, spec, *, f_mhz):
        from .boards.pll import pll_params
        from .hdl.accelerator import ConvAccelerator
        self._board = board
        self._spec = spec
        self.pll = pll_params(board.family, board.clock_mhz, f_mhz)
        self.engine = ConvAccelerator(spec)

    def elaborate(self, platform):
        from .boards.top import clock_and_reset

        m = Module()
        board, spec = self._board, self._spec

        # -- clock and reset (as BoardTop makes them) ------------------------------------------
        clock_and_reset(m, platform, board, self.pll)

        # -- the stimulus ----------------------------------------------------------------------
        m.submodules.engine = engine = self.engine
        pixel_data = Value.cast(engine.pixels.payload.data)
        weight_data = Value.cast(engine.weights.payload.data)
        lfsr = Signal(16, init=1)
        m.d.sync += lfsr.eq(Cat(lfsr[1:], lfsr[0] ^ lfsr[2] ^ lfsr[3] ^ lfsr[5]))
        source = Signal(len(pixel_data) + len(weight_data))
        m.d.sync += source.eq(Cat(lfsr[0], source[:-1]))
        m.d.comb += [pixel_data.eq(source[:len(pixel_data)]),
                     weight_data.eq(source[len(pixel_data):])]

        loaded = Signal()
        load_count = Signal(range(spec.load_beats))
        pixel_count = Signal(range(spec.height * spec.width))
        m.d.comb += [engine.weights.valid.eq(~loaded),
                     engine.weights.payload.last.eq(load_count == spec.load_beats - 1),
                     engine.pixels.valid.eq(loaded),
                     engine.pixels.payload.last.eq(
                         pixel_count == spec.height * spec.width - 1),
                     engine.results.ready.eq(1)]
        with m.If(engine.weights.valid & engine.weights.ready):
            m.d.sync += load_count.eq(load_count + 1)
            with m.If(engine.weights.payload.last):
                m.d.sync += loaded.eq(1)
        with m.If(engine.pixels.valid & engine.pixels.ready):
            m.d.sync += pixel_count.eq(Mux(engine.pixels.payload.last, 0, pixel_count + 1))

        # -- everything observable, folded onto an LED ------------------------------------------
        folded = Signal()
        m.d.sync += folded.eq(Cat(engine.results.payload.as_value(), engine.results.valid,
                                  engine.busy, engine.done, engine.error, engine.cycles,
                                  engine.macs, engine.input_stalls,
                                  engine.output_stalls).xor())
        name, number, *sub = board.leds["pass"]
        port = platform.request(name, number, dir="-")
        if sub:
            port = getattr(port, sub[0])
        m.submodules.led = led = io.Buffer("o", port)
        m.d.comb += led.o.eq(folded)
        return m


def _nextpnr_line(script):
    """The nextpnr command of an Amaranth build script."""
    for line in script.splitlines():
        if re.search(r'"\$NEXTPNR_\w+"', line):
            return line
    raise RuntimeError("the build script runs no nextpnr")


def overflow(log_path):
    """What nextpnr's log `log_path` says the design needs beyond the device: e.g. ``"5885 of
    5280 ICESTORM_LC (111%)"``, or None."""
    try:
        text = Path(log_path).read_text(errors="replace")
    except OSError:
        return None
    over = [f"{used} of {avail} {bel} ({pct}%)" for bel, used, avail, pct in re.findall(
        r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%", text) if int(used) > int(avail)]
    return "; ".join(dict.fromkeys(over)) or None


def build_failure(output, name, family, returncode):
    """Why the build of `name` in `output` failed, from the tools' logs: a resource nextpnr
    found over (:func:`overflow`), else Yosys's error, else where to look."""
    over = overflow(Path(output) / f"{name}.tim")
    if over:
        return f"does not fit the device: needs {over}"
    try:
        errors = [line for line in Path(output, f"{name}.rpt").read_text(
            errors="replace").splitlines() if line.startswith("ERROR:")]
    except OSError:
        errors = []
    if errors:
        return f"Yosys failed: {errors[-1].removeprefix('ERROR: ')}"
    try:
        log = Path(output, f"{name}.tim").read_text(errors="replace")
    except OSError:
        log = ""
    errors = [line.removeprefix("ERROR: ") for line in log.splitlines()
              if line.startswith("ERROR:")]
    if errors:
        # (the resources at 80 % or more; not the one-of-a-kind constants)
        full = [f"{used} of {avail} {bel}" for bel, used, avail, pct in re.findall(
            r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%", log)
            if int(avail) > 1 and int(pct) >= 80]
        return f"nextpnr: {errors[-1]}" + (f" ({', '.join(full)} used)" if full else "")
    return (f"the {family} flow failed (exit status {returncode}); see "
            f"{Path(output) / (name + '.tim')}")


def build_bench(spec, board, *, output, seeds=(1, 2, 3), log=print):
    """Build :class:`BenchTop` of `spec` for `board` in `output`: Yosys and nextpnr at
    ``seeds[0]`` and the packer (the timed bitstream build), then nextpnr alone at each other
    seed. Returns ``{"seeds": [{"seed", "fmax_mhz", "icetime_mhz", "nextpnr_s"}...],
    "fmax_mhz": median, "icetime_mhz": median or None, "resources", "build_s", "target_mhz",
    "icetime": whether icetime ran}``; raises :class:`~convaccel.boards.flow.BuildError` if
    the flow fails."""
    from .boards.flow import FAMILY_TOOLS, BuildError, _environment, tool_environment
    from .boards.icetime import run_icetime
    from .boards.report import engine_clock, read_nextpnr_report, read_yosys_stat, resources
    from .tools import setup_environment

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    name = spec.name
    top = BenchTop(board, spec, f_mhz=BENCH_MHZ[board.family])
    setup_environment()
    env = tool_environment(board, output / ".tools")
    platform = board.platform()
    if board.extra_resources:
        platform.add_resources(getattr(platform, board.extra_resources))
    opts = [f"--report {name}.report.json", "--timing-allow-fail", f"--seed {seeds[0]}"]
    if board.family == "gowin":
        opts.append(f"--freq {top.pll.f_out:.4f}")   # (as the board flow does)
    overrides = dict(board.build_options)
    overrides["nextpnr_opts"] = " ".join(opts)
    overrides["script_after_synth"] = "\n".join(filter(None, [
        board.build_options.get("script_after_synth"), f"tee -q -o {name}.stat.json stat -json"]))
    stat_path = output / f"{name}.stat.json"

    def seed_result(seed, report_path, seconds):
        report = read_nextpnr_report(report_path)
        _, fmax, _ = engine_clock(report, top.pll.f_out)
        row = {"seed": seed, "fmax_mhz": round(fmax, 2), "nextpnr_s": round(seconds, 1)}
        if board.family == "ice40":
            timing = run_icetime(platform, output, name, top.pll.f_out)
            row["icetime_mhz"] = timing["fmax_mhz"] if timing["available"] else None
        return row, report

    with _environment(env):
        try:
            plan = platform.build(top, name=name, build_dir=str(output), do_build=False,
                                  **overrides)
            start = time.perf_counter()
            plan.execute_local(str(output))
            build_s = time.perf_counter() - start
        except subprocess.CalledProcessError as e:
            raise BuildError(build_failure(output, name, board.family, e.returncode)) from None
        first, report = seed_result(seeds[0], output / f"{name}.report.json", build_s)
        rows = [first]
        line = _nextpnr_line(plan.files[f"{plan.script}.sh"].decode()
                             if isinstance(plan.files[f"{plan.script}.sh"], bytes)
                             else plan.files[f"{plan.script}.sh"])
        for seed in seeds[1:]:
            report_name = f"{name}.seed{seed}.report.json"
            command = (line.replace(f"--seed {seeds[0]}", f"--seed {seed}")
                       .replace(f"--report {name}.report.json", f"--report {report_name}"))
            log(f"    nextpnr seed {seed}")
            start = time.perf_counter()
            run = subprocess.run(["sh", "-c", command], cwd=output, capture_output=True,
                                 text=True)
            if run.returncode != 0:
                raise BuildError(f"nextpnr failed at seed {seed}: "
                                 f"{(run.stderr or run.stdout).strip()[-300:]}")
            row, _ = seed_result(seed, output / report_name, time.perf_counter() - start)
            rows.append(row)
    used = resources(board.family, report, read_yosys_stat(stat_path))
    icetimes = [r["icetime_mhz"] for r in rows if r.get("icetime_mhz") is not None]
    return {"seeds": rows, "target_mhz": round(top.pll.f_out, 3),
            "fmax_mhz": round(statistics.median(r["fmax_mhz"] for r in rows), 2),
            "icetime_mhz": round(statistics.median(icetimes), 2) if icetimes else None,
            "icetime": board.family == "ice40" and bool(icetimes),
            "resources": used, "build_s": round(build_s, 1),
            "tools": {var: os.environ.get(var) or env.get(var)
                      for var in ["YOSYS", *FAMILY_TOOLS[board.family]]}}


def machine():
    """The machine the bench ran on: CPU model, cores, OS, Python, convaccel."""
    model = host_platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "os": f"{host_platform.system()} "
            f"{host_platform.release()}", "python": host_platform.python_version(),
            "convaccel": __version__}


def _figures(spec, board, cycles):
    """Utilization and throughput figures of `spec` on `board` at `cycles` a frame."""
    return {
        "macs": spec.macs,
        "ideal_cycles": -(-spec.macs // spec.pe_count),
        "model_cycles": spec.cycles,
        "cycles": cycles,
        "macs_per_cycle": round(spec.macs / cycles, 3),
        "utilization": round(spec.macs / (spec.pe_count * cycles), 4),
        "peak_macs_per_cycle": peak_macs_per_cycle(board),
    }


def run_bench(*, layers=None, boards=None, seeds=3, out="benchmarks", build=True, quick=False,
              build_dir="build/bench", previous=None, log=print):
    """Run the bench; returns the results (what :func:`write_results` writes), written to
    `out` (without the plots) after each layer, so that an interrupted run keeps what it
    measured.

    `layers` and `boards` are names (default: every one of the suite, every board); `seeds`
    the number of nextpnr seeds (1, 2, ...), the builds in ``build_dir/<board>/<layer>``.
    ``quick`` runs :data:`QUICK_LAYERS` in amaranth.sim (no Verilator, no builds).
    `previous` (earlier results) keeps its rows for the (layer, board) pairs not run now."""
    from .boards import boards as all_boards
    from .boards import get_board
    from .boards.flow import BuildError
    from .generate import generate
    from .sim.runner import SimulatorMissing, check_simulator

    suite = QUICK_LAYERS if quick else LAYERS
    layers = list(suite) if layers is None else list(layers)
    for name in layers:
        if name not in suite:
            raise ConfigError(f"Unknown bench layer {name!r}; choose from {', '.join(suite)}")
    boards = ([b.name for b in all_boards()] if boards is None else list(boards))
    boards = [get_board(b) for b in boards]
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"--seeds must be a positive integer, like 3, not {seeds!r}")
    build = build and not quick
    icarus = False
    if not quick:
        try:
            check_simulator("icarus")
            icarus = True
        except SimulatorMissing:
            pass
    run = {"boards": [b.name for b in boards], "layers": layers, "quick": quick,
           "build": build, "seeds": list(range(1, seeds + 1)) if build else [],
           "simulator": "amaranth.sim" if quick else "verilator", "icarus": icarus,
           "date": time.strftime("%Y-%m-%d")}
    results = {"machine": machine(), "quick": quick, "target_mhz": BENCH_MHZ,
               "layers": {n: suite[n][0] for n in suite}, "runs": [run], "rows": []}
    if previous is not None and previous.get("quick") == quick:
        done = {(n, b.name) for n in layers for b in boards}
        results["runs"] = previous.get("runs", []) + [run]
        results["rows"] = [r for r in previous["rows"] if (r["layer"], r["board"]) not in done]
    out = Path(out)

    def add(row):
        results["rows"].append(row)
        order = {(n, b.name): k for k, (b, n) in enumerate(
            (b, n) for b in all_boards() for n in suite)}
        results["rows"].sort(key=lambda r: order.get((r["layer"], r["board"]), 0))
        write_results(results, out, plots=False)
    for board in boards:
        log(f"{board.name} ({board.device}): peak {peak_macs_per_cycle(board)} MAC/cycle")
        chosen = {n: suite[n] for n in layers}
        for n, (name, description, spec) in enumerate(bench_specs(chosen, board)):
            row = {"layer": name, "board": board.name, "device": board.device,
                   "family": board.family}
            if spec is None:
                row["error"] = "no array fits"
                add(row)
                log(f"  {name}: no array fits")
                continue
            row.update(rows=spec.rows, cols=spec.cols, pes=spec.pe_count)
            log(f"  {name} on {spec.rows} x {spec.cols}")
            if quick:
                sim = measure_amaranth(spec)
            else:
                start = time.perf_counter()
                text = generate(spec)
                row["verilog_s"] = round(time.perf_counter() - start, 2)
                sim = measure_cocotb(spec, text)
                if icarus and n == 0:
                    row["icarus"] = measure_cocotb(spec, text, "icarus")
            row["sim"] = sim
            row.update(_figures(spec, board, sim["cycles"]))
            log(f"    cycles {sim['cycles']} (model {spec.cycles}), utilization "
                f"{row['utilization']:.1%}, {'bit-exact' if sim['matches'] else 'MISMATCH'}")
            if build:
                try:
                    row["build"] = built = build_bench(
                        spec, board, output=Path(build_dir) / board.name / name,
                        seeds=list(range(1, seeds + 1)), log=log)
                except BuildError as e:
                    row["build"] = {"error": str(e)}
                    log(f"    build failed: {e}")
                else:
                    fmax = built["fmax_mhz"]
                    if built["icetime_mhz"] is not None:
                        fmax = min(fmax, built["icetime_mhz"])   # (icetime times the DSPs)
                    row["mmacs"] = round(row["macs_per_cycle"] * fmax, 1)
                    row["peak_mmacs"] = round(row["peak_macs_per_cycle"] * fmax, 1)
                    row["of_peak"] = round(row["mmacs"] / row["peak_mmacs"], 4)
                    log(f"    Fmax {built['fmax_mhz']} MHz"
                        + (f" (icetime {built['icetime_mhz']})" if built["icetime"] else "")
                        + f": {row['mmacs']} M MAC/s, {row['of_peak']:.1%} of peak")
            add(row)
    return results


def _cell(row, key, fmt="{}"):
    return fmt.format(row[key]) if row.get(key) is not None else "-"


def markdown(results):
    """The results as Markdown tables: performance, then the tools' times."""
    lines = ["| layer | board | array (PEs) | MACs | cycles (model) | ideal | utilization "
             "| Fmax MHz | seeds | LUT (iCE40: LC) | FF | DSP | BRAM | M MAC/s | of peak |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
             "| ---: | ---: | ---: |"]
    for row in results["rows"]:
        if "error" in row:
            lines.append(f"| {row['layer']} | {row['board']} | {row['error']} |" + " |" * 12)
            continue
        built = row.get("build") or {}
        res = built.get("resources", {})
        fmax = "-"
        if "fmax_mhz" in built:
            fmax = f"{built['fmax_mhz']:.1f}"
            if built.get("icetime_mhz") is not None:
                fmax += f" (icetime {built['icetime_mhz']:.1f})"
        elif "error" in built:
            fmax = built["error"].replace("does not fit the device: ", "does not place: ")

        def used(k, res=res):
            return f"{res[k]['used']}/{res[k]['available']}" if k in res else "-"

        lut = used("logic") if "logic" in res else used("lut")     # (iCE40: logic cells)
        exact = "" if row["cycles"] == row["model_cycles"] else " ≠"
        lines.append(
            f"| {row['layer']} | {row['board']} | {row['rows']} x {row['cols']} ({row['pes']}) "
            f"| {row['macs']} | {row['cycles']} ({row['model_cycles']}{exact}) "
            f"| {row['ideal_cycles']} | {row['utilization']:.1%} | {fmax} "
            f"| {len(built.get('seeds', [])) or '-'} | {lut} "
            f"| {used('ff')} | {used('dsp')} | {used('bram')} | {_cell(row, 'mmacs', '{:.0f}')} "
            f"| {_cell(row, 'of_peak', '{:.1%}')} |")
    if results["quick"]:
        return "\n".join(lines) + "\n"
    lines += ["", "| layer | board | Verilog s | Verilator compile s | sim cycles/s (Verilator) "
              "| Icarus cycles/s | bitstream build s | nextpnr alone s, further seeds |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in results["rows"]:
        if "error" in row:
            continue
        sim, built = row["sim"], row.get("build") or {}
        icarus = row.get("icarus", {}).get("cycles_per_s")
        per_seed = ", ".join(f"{s['nextpnr_s']:.0f}" for s in built.get("seeds", [])[1:])
        lines.append(
            f"| {row['layer']} | {row['board']} | {row['verilog_s']:.2f} "
            f"| {_cell(sim, 'compile_s', '{:.1f}')} | {_cell(sim, 'cycles_per_s', '{:,}')} "
            f"| {icarus if icarus else '-'} | {_cell(built, 'build_s', '{:.0f}')} "
            f"| {per_seed or '-'} |")
    return "\n".join(lines) + "\n"


def plot(results, out):
    """PNG plots in `out`: utilization per layer and board; M MAC/s against the peak. Returns
    the paths written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["rows"] if "error" not in r]
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    boards = list(dict.fromkeys(r["board"] for r in rows))
    if not rows:
        return []
    width = 0.8 / len(boards)
    paths = []

    def bars(ax, key, scale=1.0):
        for k, board in enumerate(boards):
            xs, ys = [], []
            for i, layer in enumerate(layers):
                row = next((r for r in rows if r["layer"] == layer and r["board"] == board),
                           None)
                if row is not None and row.get(key) is not None:
                    xs.append(i + (k - (len(boards) - 1) / 2) * width)
                    ys.append(row[key] * scale)
            ax.bar(xs, ys, width, label=board)
        ax.set_xticks(range(len(layers)), layers, rotation=20, ha="right")
        ax.legend()

    fig, ax = plt.subplots(figsize=(9, 4.5))
    bars(ax, "utilization", 100)
    ax.set_ylabel("PE utilization (%), measured cycles")
    ax.set_ylim(0, 105)
    ax.set_title("MACs / (PEs x cycles) per frame")
    fig.tight_layout()
    paths.append(Path(out) / "utilization.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    built = [r for r in rows if r.get("mmacs") is not None]
    if built:
        fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(built) + 2), 4.5))
        xs = range(len(built))
        ax.bar(xs, [r["peak_mmacs"] for r in built], 0.6, fill=False, edgecolor="black",
               label="peak: every multiplier busy at that clock")
        ax.bar(xs, [r["mmacs"] for r in built], 0.6, label="achieved")
        for x, r in zip(xs, built):
            ax.annotate(f"{r['of_peak']:.1%}", (x, r["mmacs"]), ha="center", va="bottom")
        ax.set_xticks(list(xs), [f"{r['layer']}\n{r['board']}" for r in built])
        ax.set_ylabel("M MAC/s (MACs per cycle x Fmax)")
        ax.set_title("Achieved MAC rate against the device's peak")
        ax.set_ylim(0, 1.3 * max(r["peak_mmacs"] for r in built))
        ax.legend(loc="upper center")
        fig.tight_layout()
        paths.append(Path(out) / "mmacs.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


def write_results(results, out, *, plots=True):
    """Write ``results.json`` and ``results.md`` (and the plots) in `out`; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(markdown(results))
    paths = [out / "results.json", out / "results.md"]
    if plots:
        paths += plot(results, out)
    return paths

