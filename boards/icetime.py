"""icetime (Project IceStorm's timing analysis) on an iCE40 build: a second opinion on Fmax.

nextpnr-ice40 has no timing data for the SB_MAC16: it times every DSP port as a register, so
its Fmax is optimistic for paths through a DSP block. icetime has the block's delays. It is not
on PyPI (Debian: ``apt-get install fpga-icestorm``); the build runs it when it is installed
(``$ICETIME``, else ``icetime`` on PATH) and says so when it is not.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["ICETIME_HINT", "find_icetime", "icetime_device", "parse_icetime", "run_icetime"]

ICETIME_HINT = "icetime is not installed (Debian/Ubuntu: apt-get install fpga-icestorm)"


def find_icetime():
    """``$ICETIME``, else ``icetime`` on PATH; None if there is none."""
    return os.environ.get("ICETIME") or shutil.which("icetime")


def icetime_device(device):
    """icetime's ``-d`` name of an iCE40 part (``"iCE40UP5K"`` -> ``"up5k"``)."""
    name = device.lower().removeprefix("ice40")
    if not re.fullmatch(r"(lp|hx|up|u)\d+k|lp384", name):
        raise ValueError(f"icetime does not know the iCE40 part {device!r}")
    return name


_TOTAL = re.compile(r"Total path delay: ([\d.]+) ns \(([\d.]+) MHz\)")
_STEP = re.compile(r"^\s*([\d.]+) ns (\S+)(?: \((.+)\))?\s*$")


def parse_icetime(text):
    """``(path delay in ns, MHz, [(ns, net) of each step of the critical path]``) from icetime's
    ``-t`` report; a net is named by the design's name for it where icetime knows one."""
    total = _TOTAL.search(text)
    if total is None:
        raise ValueError("icetime's report has no 'Total path delay': not an icetime report")
    steps = [(float(m.group(1)), m.group(3) or m.group(2))
             for m in map(_STEP.match, text.split("Resolvable net names")[0].splitlines())
             if m]
    return float(total.group(1)), float(total.group(2)), steps


def run_icetime(platform, folder, name, target_mhz):
    """icetime on ``<folder>/<name>.asc`` (and its ``.pcf``), interior paths only (the I/O pins
    are asynchronous or synchronized): ``{"available": True, "fmax_mhz", "path_ns",
    "timing_met", "critical_path": [{"ns", "net"}, ...], "report"}``, or ``{"available":
    False, "reason"}`` when icetime is not installed."""
    icetime = find_icetime()
    if icetime is None:
        return {"available": False, "reason": ICETIME_HINT}
    folder = Path(folder)
    report = f"{name}.icetime.rpt"
    command = [icetime, "-d", icetime_device(platform.device), "-P", platform.package.lower(),
               "-p", f"{name}.pcf", "-i", "-t", "-r", report, f"{name}.asc"]
    run = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    if run.returncode != 0 or not (folder / report).exists():
        detail = (run.stderr or run.stdout).strip().splitlines()
        return {"available": False,
                "reason": f"icetime failed ({detail[-1] if detail else run.returncode})"}
    path_ns, mhz, steps = parse_icetime((folder / report).read_text())
    return {"available": True, "fmax_mhz": round(mhz, 2), "path_ns": round(path_ns, 3),
            "timing_met": mhz >= target_mhz,
            "critical_path": [{"ns": ns, "net": net} for ns, net in steps],
            "report": str(folder / report)}
