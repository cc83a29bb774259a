"""One summary from the tools' own machine-readable output: nextpnr's ``--report`` JSON
(Fmax per clock, utilization per BEL type) and Yosys's ``stat -json`` (cells by type)."""

import json
import re

from .board import RESOURCE_NAMES

__all__ = [
    "NEXTPNR_BELS",
    "ReportError",
    "engine_clock",
    "format_summary",
    "read_nextpnr_report",
    "read_yosys_stat",
    "resources",
    "summarize",
]


class ReportError(ValueError):
    """A tool's report is missing or not what the parser expects."""


#: Summary resource -> the nextpnr BEL types that count for it, per family.
NEXTPNR_BELS = {
    "ice40": {"logic": ("ICESTORM_LC",), "dsp": ("ICESTORM_DSP",), "bram": ("ICESTORM_RAM",),
              "spram": ("ICESTORM_SPRAM",)},
    "ecp5": {"lut": ("TRELLIS_COMB",), "ff": ("TRELLIS_FF",), "dsp": ("MULT18X18D",),
             "bram": ("DP16KD",)},
    "gowin": {"lut": ("LUT4",), "ff": ("DFF",), "dsp": ("MULT9X9",), "bram": ("BSRAM",)},
}

#: BEL types that take the sites of others, counted in those: a Gowin MULT18X18 takes two
#: MULT9X9 sites, a MULT36X36 eight (their capacities: 40, 20, 5 on the GW1NR-9).
NEXTPNR_SHARED_BELS = {
    "gowin": {"dsp": {"MULT18X18": 2, "MULT36X36": 8}},
}

#: On iCE40 a logic cell is a LUT4 and a flip-flop; Yosys's cell counts split them.
_YOSYS_CELLS = {
    "ice40": {"lut": r"SB_LUT4", "ff": r"SB_DFF\w*"},
}


def read_nextpnr_report(path):
    """nextpnr's ``--report`` JSON: ``{"fmax": {...}, "utilization": {...}}``."""
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ReportError(f"cannot read nextpnr's report {path}: {e}") from None
    if not isinstance(report.get("utilization"), dict) or "fmax" not in report:
        raise ReportError(f"{path} has no 'fmax' and 'utilization': not a nextpnr report")
    return report


def read_yosys_stat(path):
    """Yosys's ``stat -json``: cell counts by type for the whole design."""
    try:
        with open(path) as f:
            stat = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ReportError(f"cannot read Yosys's statistics {path}: {e}") from None
    design = stat.get("design") or next(iter(stat.get("modules", {}).values()), None)
    if not design or "num_cells_by_type" not in design:
        raise ReportError(f"{path} has no cell counts: not the output of `stat -json`")
    return {k: v for k, v in design["num_cells_by_type"].items() if not k.startswith("$")}


def _net_name(name):
    # ECP5 names a clock by its global buffer's net: "$glbnet$cd_sync.clk".
    return name.removeprefix("$glbnet$")


def engine_clock(report, target_mhz):
    """``(net, achieved MHz, constraint MHz)`` of the engine's clock: the clock constrained
    to the PLL's output frequency (nextpnr derives that constraint through the PLL), the
    slowest such one if several are."""
    clocks = [(_net_name(net), float(v["achieved"]), float(v["constraint"]))
              for net, v in report["fmax"].items()]
    if not clocks:
        raise ReportError("nextpnr's report has no clock: the design has no timing paths")
    engine = [c for c in clocks if abs(c[2] - target_mhz) <= 0.005 * target_mhz]
    return min(engine or clocks, key=lambda c: c[1])


def resources(family, report, stat):
    """``{name: {"used": n, "available": n}}`` from nextpnr's utilization and Yosys's cells,
    in :data:`RESOURCE_NAMES` order."""
    util = report["utilization"]
    found = {}
    for name, bels in NEXTPNR_BELS[family].items():
        present = [util[b] for b in bels if b in util]
        if present:
            shared = NEXTPNR_SHARED_BELS.get(family, {}).get(name, {})
            found[name] = {"used": sum(int(u["used"]) for u in present) +
                           sum(int(util[b]["used"]) * n for b, n in shared.items() if b in util),
                           "available": sum(int(u["available"]) for u in present)}
    for name, pattern in _YOSYS_CELLS.get(family, {}).items():
        used = sum(n for cell, n in stat.items() if re.fullmatch(pattern, cell))
        found[name] = {"used": used, "available": found["logic"]["available"]}
    return {name: found[name] for name in RESOURCE_NAMES if name in found}


def summarize(*, board, design, bitstream, report, stat, requested_mhz, pll, seed):
    """The build summary (what ``<name>.summary.json`` holds)."""
    net, achieved, constraint = engine_clock(report, pll.f_out)
    res = resources(board.family, report, stat)
    return {
        "board": board.name,
        "device": board.device,
        "design": design,
        "bitstream": str(bitstream),
        "fmax_mhz": round(achieved, 2),
        "target_mhz": round(constraint, 3),
        "requested_mhz": requested_mhz,
        "timing_met": achieved >= constraint,
        "clock_net": net,
        "pll": {"input_mhz": pll.f_in, "output_mhz": round(pll.f_out, 4),
                "vco_mhz": round(pll.f_vco, 3), **pll.dividers},
        "seed": seed,
        "resources": res,
        "clocks": {_net_name(k): {"achieved_mhz": round(float(v["achieved"]), 2),
                                  "constraint_mhz": round(float(v["constraint"]), 3)}
                   for k, v in report["fmax"].items()},
        "yosys_cells": stat,
    }


def format_summary(summary):
    """The summary as a table."""
    status = "met" if summary["timing_met"] else "MISSED"
    lines = [
        f"{summary['design']} on {summary['board']} ({summary['device']})",
        (f"  clock     {summary['fmax_mhz']:.2f} MHz achieved, {summary['target_mhz']:.2f} MHz "
         f"required ({status}; requested {summary['requested_mhz']:g} MHz, PLL "
         f"{summary['pll']['input_mhz']:g} -> {summary['pll']['output_mhz']:g} MHz)"),
    ]
    if "seeds" in summary:
        tried = ", ".join(
            f"{t['seed']}: {t['fmax_mhz']:.2f}"
            + (f" / {t['icetime_mhz']:.2f}" if "icetime_mhz" in t else "")
            + (" met" if t["met"] else " missed") for t in summary["seeds"])
        tools = ", nextpnr / icetime" if "icetime" in summary else ""
        lines.append(f"  seeds     {tried} (MHz{tools}); kept seed {summary['seed']}")
    icetime = summary.get("icetime")
    if icetime is not None and icetime["available"]:
        lines.append(f"  icetime   {icetime['fmax_mhz']:.2f} MHz ({icetime['path_ns']:.2f} ns "
                     f"critical path; {'met' if icetime['timing_met'] else 'MISSED'}; it times "
                     f"the SB_MAC16, which nextpnr does not)")
    elif icetime is not None:
        lines.append(f"  icetime   not run: {icetime['reason']}; nextpnr's Fmax alone (it "
                     f"does not time the SB_MAC16)")
    lines.append(f"  {'resource':<9} {'used':>7} {'avail':>7} {'%':>6}")
    for name, r in summary["resources"].items():
        pct = f"{100 * r['used'] / r['available']:.1f}" if r["available"] else "-"
        lines.append(f"  {name:<9} {r['used']:>7} {r['available']:>7} {pct:>6}")
    if "pe_count" in summary:
        dsp = summary["resources"].get("dsp", {}).get("used", 0)
        lines.append(f"  {summary['pe_count']} PEs on {dsp} DSP blocks")
    lines.append(f"  bitstream {summary['bitstream']}")
    return "\n".join(lines)
