"""Cycle-by-cycle verification of the generated Verilog against the golden model."""

import dataclasses
import json
import os
import shutil
import tempfile
import threading
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from . import __version__, golden
from .generate import generate

__all__ = ["SimResult", "simulate", "run_engine_bench", "fst_supported", "QUICK_CYCLES",
           "NetworkSimResult", "simulate_network", "run_network_bench", "network_taps"]

#: Runs of at most this many cycles (the model's, all frames) build Verilator's model without
#: C++ optimization: the compile then dominates, and -O0 takes about a third less of it.
QUICK_CYCLES = 100_000


def fst_supported():
    """Whether Verilator can write FST here: its FST writer compiles against lz4."""
    return any(Path(d, "lz4.h").exists() for d in ("/usr/include", "/usr/local/include"))


def _wave_format(waves, simulator):
    if waves is None:
        return None
    suffix = Path(waves).suffix.lower()
    if suffix not in (".fst", ".vcd"):
        raise ValueError(f"waves must name an .fst or .vcd file, not {str(waves)!r}")
    if suffix == ".fst" and simulator == "verilator" and not fst_supported():
        raise ValueError("Verilator writes FST only with lz4's header installed (Debian: "
                         "apt-get install liblz4-dev); or ask for a .vcd file")
    return suffix[1:]


@dataclasses.dataclass
class SimResult:
    """What the hardware did with a frame.

    ``output`` is the hardware's result, ``(out_channels, out_height, out_width)`` (or one such
    array per frame when several were sent); ``matches`` is true when the testbench saw every
    beat equal the golden model's, the counters agree with what it observed, and (with no
    stalls) the cycles equal the model.
    """
    output: np.ndarray
    cycles: int
    predicted_cycles: int
    utilization: float
    matches: bool
    counters: list
    seed: int
    simulator: str
    message: str = ""
    waves: Path | None = None
    log: Path | None = None


def _failure_message(results_xml):
    try:
        root = ElementTree.parse(results_xml).getroot()
    except (OSError, ElementTree.ParseError):
        return "the simulation produced no results (see the log)"
    for failure in root.iter("failure"):
        text = failure.get("message") or failure.text or "failed"
        return text.strip().splitlines()[-1] if text.strip() else "failed"
    return ""


def run_engine_bench(spec, verilog_text, frames, w, b, *, requant=None, pads=None,
                     simulator=None, stall=0.0, seed=None, waves=None, progress=None):
    """Run the cocotb engine testbench (:mod:`convaccel.sim.tb_engine`) on ``verilog_text``.

    ``pads`` (a layer with run-time pad values) holds the pad values of each frame: the bench
    then loads the weights again with them before each frame.

    The simulator build is cached per Verilog text, simulator and waves setting under
    :func:`convaccel.sim.runner.cache_dir`, so a second run of the same design is fast.
    ``progress(done, total)`` is called now and then with the result beats checked so far.
    """
    from .sim.runner import build_key, cache_dir, default_simulator, run_cocotb, write_source

    simulator = simulator or default_simulator()
    if not 0.0 <= stall < 1.0:
        raise ValueError(f"stall must be a probability from 0 up to (not including) 1, "
                         f"not {stall!r}")
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    name = spec.name or "convaccel"
    wave_format = _wave_format(waves, simulator)
    # A short run is mostly the C++ compile: then compile without optimization (about a third
    # less time); a long one runs at Verilator's own -Os.
    cxx_opt = "-O0" if spec.cycles * len(frames) <= QUICK_CYCLES else None
    key = build_key(verilog_text, simulator, str(wave_format), str(cxx_opt), __version__)
    build_dir = cache_dir() / "sim" / f"{name}-{simulator}-{key}"
    build_dir.mkdir(parents=True, exist_ok=True)
    verilog_path = write_source(build_dir, f"{name}.v", verilog_text)

    job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=build_dir))
    (job_dir / "job.json").write_text(json.dumps({
        "spec": spec.parameters(), "stall": stall, "seed": seed}))
    arrays = {"x": np.stack([np.asarray(f, dtype=np.int64) for f in frames]),
              "w": np.asarray(w, dtype=np.int64)}
    if b is not None:
        arrays["b"] = np.asarray(b, dtype=np.int64)
    if requant is not None:
        arrays["r"] = np.array(requant.values(), dtype=np.int64)
    if pads is not None:
        arrays["p"] = np.array(pads, dtype=np.int64).reshape(len(frames), spec.in_channels)
    np.savez(job_dir / "data.npz", **arrays)

    stop = threading.Event()

    def poll():
        while not stop.wait(0.5):
            try:
                done, total = map(int, (job_dir / "progress").read_text().split())
            except (OSError, ValueError):
                continue
            progress(done, total)

    poller = None
    if progress is not None:
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
    try:
        run = run_cocotb(verilog_path, name, "convaccel.sim.tb_engine", build_dir=build_dir,
                         simulator=simulator, seed=seed, waves=wave_format, test_dir=job_dir,
                         extra_env={"CONVACCEL_TB_JOB": str(job_dir)}, cxx_opt=cxx_opt)
    finally:
        stop.set()
        if poller is not None:
            poller.join()

    report = {"frames": []}
    if (job_dir / "report.json").exists():
        report = json.loads((job_dir / "report.json").read_text())
    outputs = None
    if (job_dir / "out.npz").exists():
        outputs = np.load(job_dir / "out.npz")["y"]
    wave_path = None
    if waves and run.waves is not None:
        wave_path = Path(waves)
        shutil.copyfile(run.waves, wave_path)
    return run, report, outputs, seed, wave_path, job_dir


def simulate(spec, x, w, b=None, *, requant=None, pad=None, simulator=None, stall=0.0,
             seed=None, waves=None, progress=None):
    """Run ``x`` through the generated Verilog of ``spec``'s engine on a Verilog simulator.

    ``x`` is one frame ``(in_channels, height, width)`` or several ``(n, in_channels, height,
    width)``, sent back to back. ``stall`` is the probability of an input gap and of output
    back-pressure on each cycle. ``simulator`` is ``"verilator"`` (the default, or ``$SIM``)
    or ``"icarus"``. ``waves`` is a path to write an FST waveform to. A requantized layer
    needs ``requant`` (a :class:`~convaccel.quant.Requant`). ``pad``, for a layer with
    run-time pad values, is what each frame is padded with (:func:`convaccel.golden.
    resolve_pad`): values, or ``"mean"`` (each frame's own, computed here and loaded with the
    weights before it).
    """
    from .sim.runner import default_simulator

    simulator = simulator or default_simulator()
    x = np.asarray(x)
    frames = list(x) if x.ndim == 4 else [x]
    # (also validates the arrays)
    pads = None
    if pad is not None:
        pads = [golden.resolve_pad(spec, pad, golden.check_layer_data(f, w, b, spec, requant)[0])
                for f in frames]
    expected = [golden.conv2d(f, w, b, spec, requant, pads and pads[n])
                for n, f in enumerate(frames)]
    run, report, outputs, seed, wave_path, job_dir = run_engine_bench(
        spec, generate(spec), frames, w, b, requant=requant, pads=pads, simulator=simulator,
        stall=stall, seed=seed, waves=waves, progress=progress)
    counters = report["frames"]
    complete = outputs is not None and len(outputs) == len(frames)
    matches = (run.passed and complete and
               all(np.array_equal(o, e) for o, e in zip(outputs, expected)))
    if not complete:
        outputs = np.zeros((len(frames), *spec.output_shape), dtype=np.int64)
    cycles = counters[0]["cycles"] if counters else 0
    return SimResult(
        output=outputs if x.ndim == 4 else outputs[0],
        cycles=cycles,
        predicted_cycles=spec.cycles,
        utilization=spec.macs / (spec.pe_count * cycles) if cycles else 0.0,
        matches=matches,
        counters=counters,
        seed=seed,
        simulator=simulator,
        message="" if matches else _failure_message(run.results_xml),
        waves=wave_path,
        log=job_dir / "sim.log",
    )


# -- a whole network ---------------------------------------------------------------------------

@dataclasses.dataclass
class NetworkSimResult:
    """What a network's hardware did with its frames.

    ``outputs`` holds the output tensor of each frame (int8, as LiteRT's), or None if the run
    did not finish them all; ``matches`` is true when the testbench saw every beat at every
    stage boundary equal the golden model's, the frames back to back with no stalls left
    ``predicted_interval`` cycles apart, the error flag stayed low and every output tensor
    equals the golden model's. ``intervals`` are the measured cycles between the last output
    beats of the steady frames; ``first_frame_cycles`` those from the first frame's first input
    beat to its last output beat (both ends counted); ``loaded`` the cycle (after reset) in
    which the weight loads were done; ``beats`` the beats seen at each tap.
    """
    outputs: list | None
    matches: bool
    intervals: list
    predicted_interval: int
    first_frame_cycles: int | None
    loaded: int | None
    beats: list
    taps: list
    seed: int
    simulator: str
    message: str = ""
    waves: Path | None = None
    log: Path | None = None


def network_taps(plan):
    """The stage boundaries the network bench watches: per hardware stage of `plan`, the
    stream its output beats take (``i`` of the queue after it, as
    :class:`~convaccel.hdl.nettop.NetworkTop` names it, or the top's ``o`` for the last), its
    beat width, a title and the stage's output shape (the project's)."""
    from .network import project_shape
    taps = []
    hardware = [(n, s) for n, s in enumerate(plan.stages) if s in plan.hardware]
    for k, (n, s) in enumerate(hardware):
        last = k == len(hardware) - 1
        taps.append({"path": [] if last else [f"queue{k}"], "port": "o" if last else "i",
                     "lanes": s.out_lanes, "title": f"stage {n} ({s.operator})",
                     "shape": list(project_shape(s.stage.output_shape))})
    return taps


def run_network_bench(plan, verilog_text, frames, expected, *, name="network", steady=2,
                      stall=0.0, seed=None, simulator=None, waves=None):
    """Run the cocotb network testbench (:mod:`convaccel.sim.tb_network`) on `verilog_text`
    (the Verilog of :class:`~convaccel.hdl.nettop.NetworkTop` for `plan`, top module `name`).

    `frames` are the input beats' values of each frame (:func:`~convaccel.hdl.nettop.
    input_beats`), `expected` per frame the golden model's beats at each stage boundary
    (:func:`~convaccel.hdl.nettop.stage_beats`). The first `steady` frames go in with no gap
    and come out with no back-pressure; the rest with a gap and a stall on each cycle with
    probability `stall`. The simulator build is cached per Verilog text, as the engine
    bench's. Returns ``(run, report, output beats, seed, waves path, job folder)``.
    """
    from .sim.runner import build_key, cache_dir, default_simulator, run_cocotb, write_source

    simulator = simulator or default_simulator()
    if not 0.0 <= stall < 1.0:
        raise ValueError(f"stall must be a probability from 0 up to (not including) 1, "
                         f"not {stall!r}")
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    wave_format = _wave_format(waves, simulator)
    cycles = plan.interval * len(frames) + sum(s.cycles for s in plan.stages)
    cxx_opt = "-O0" if cycles <= QUICK_CYCLES else None
    key = build_key(verilog_text, simulator, str(wave_format), str(cxx_opt), __version__)
    build_dir = cache_dir() / "sim" / f"{name}-{simulator}-{key}"
    build_dir.mkdir(parents=True, exist_ok=True)
    verilog_path = write_source(build_dir, f"{name}.v", verilog_text)

    taps = network_taps(plan)
    loads = max((s.spec.load_beats for s in plan.stages if s.spec is not None), default=0)
    job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=build_dir))
    (job_dir / "job.json").write_text(json.dumps({
        "stall": stall, "seed": seed, "steady": steady, "interval": plan.interval,
        # (every cycle stalled a few times over, and then some)
        "limit": 50 * (loads + cycles) * (1 + int(10 * stall)),
        "in_lanes": plan.in_lanes, "taps": taps}))
    arrays = {"x": np.array(frames, dtype=np.int64)}
    for n in range(len(taps)):
        arrays[f"e{n}"] = np.array([beats[n] for beats in expected], dtype=np.int64)
    np.savez(job_dir / "data.npz", **arrays)

    run = run_cocotb(verilog_path, name, "convaccel.sim.tb_network", build_dir=build_dir,
                     simulator=simulator, seed=seed, waves=wave_format, test_dir=job_dir,
                     extra_env={"CONVACCEL_TB_JOB": str(job_dir)}, cxx_opt=cxx_opt)
    report = {}
    if (job_dir / "report.json").exists():
        report = json.loads((job_dir / "report.json").read_text())
    outputs = None
    if (job_dir / "out.npz").exists():
        outputs = np.load(job_dir / "out.npz")["y"]
    wave_path = None
    if waves and run.waves is not None:
        wave_path = Path(waves)
        shutil.copyfile(run.waves, wave_path)
    return run, report, outputs, seed, wave_path, job_dir


def simulate_network(plan, xs, *, steady=2, stall=0.0, seed=None, simulator=None, waves=None,
                     name="network", board=None):
    """Run the input tensors `xs` (each exactly LiteRT's: NHWC int8) back to back through the
    generated Verilog of the network top for `plan` (a
    :class:`~convaccel.compiler.NetworkPlan`) under cocotb, every beat of every stage
    boundary checked against the golden model's trace (:meth:`~convaccel.network.Network.
    trace`). The first `steady` frames run with no stalls (their spacing is checked against
    ``plan.interval``); the rest with random input gaps and output back-pressure (probability
    `stall` a cycle). Returns a :class:`NetworkSimResult`."""
    from .generate import generate_network
    from .hdl.nettop import input_beats, output_tensor, stage_beats
    from .sim.runner import default_simulator

    simulator = simulator or default_simulator()
    network = plan.network
    xs = [network.check_input(x) for x in xs]
    frames = [[values for values, _ in input_beats(plan, x)] for x in xs]
    traces = [network.trace(x) for x in xs]
    expected = [stage_beats(plan, trace) for trace in traces]
    verilog_text = generate_network(plan, name=name, board=board)
    run, report, beats, seed, wave_path, job_dir = run_network_bench(
        plan, verilog_text, frames, expected, name=name, steady=steady, stall=stall,
        seed=seed, simulator=simulator, waves=waves)
    outputs = None
    if beats is not None and len(beats) == len(xs):
        outputs = [output_tensor(plan, b) for b in beats]
    matches = (run.passed and outputs is not None and
               all(np.array_equal(y, network.golden(x)) for x, y in zip(xs, outputs)))
    ends, starts = report.get("ends", []), report.get("starts", [])
    message = ""
    if not matches:
        message = _failure_message(run.results_xml) if not run.passed else \
            "the output tensors differ from the golden model"
    return NetworkSimResult(
        outputs=outputs, matches=matches,
        intervals=[b - a for a, b in zip(ends[:steady], ends[1:steady])],
        predicted_interval=plan.interval,
        first_frame_cycles=ends[0] - starts[0] + 1 if ends and starts else None,
        loaded=report.get("loaded"), beats=report.get("beats", []),
        taps=network_taps(plan), seed=seed, simulator=simulator, message=message,
        waves=wave_path, log=job_dir / "sim.log")
