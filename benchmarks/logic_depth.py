"""The iCE40 paths longer than a clock period, from the synthesized netlist alone.

nextpnr reports one critical path per clock, and its Fmax moves by several MHz from seed to
seed, so it cannot tell whether a pipeline step shortened the design's other long paths. This
script reads the JSON netlist Yosys writes for nextpnr (``build/<name>.json``) and estimates
every register's, block RAM's and DSP's input arrival time with a fixed delay a cell and a
route (from nextpnr-ice40's UP5K reports: 1.39 ns clock to Q, 0.87 ns a LUT, 0.28 ns a carry
step, and 2.3 ns a route, the average over the critical paths of the default layer's builds,
whose routes took 1.76 to 6 ns). It is an estimate, not a bound; the LUT levels are exact.

    python benchmarks/logic_depth.py build/conv3x3.json [--mhz 60] [--top 25]

prints how many endpoints have each number of LUT levels before them, and the endpoints
estimated over the period, longest first, each with its LUT levels and the nets along its path.
"""
import argparse
import json
import re
import sys
from collections import defaultdict
from functools import lru_cache

CLK_TO_Q = 1.39
LUT = 0.87
ROUTE = 2.3
CARRY = 0.28
CARRY_IN = 0.6          # a carry step's I0/I1 -> CO
SETUP = 0.1
RAM_OUT = 2.5           # SB_RAM40_4K clock to RDATA
MAC_OUT = 2.0           # a registered SB_MAC16 output (nextpnr has no figure)

REGISTERS = re.compile(r"SB_DFF\w*")
SOURCES = {"SB_RAM40_4K": RAM_OUT, "SB_MAC16": MAC_OUT, "SB_SPRAM256KA": RAM_OUT}


def load(path):
    design = json.load(open(path))
    tops = [m for m in design["modules"].values() if m.get("attributes", {}).get("top")]
    if len(tops) != 1:
        sys.exit(f"{path}: expected one top module, found {len(tops)}")
    return tops[0]


def analyse(module):
    names = {}
    for name, net in module["netnames"].items():
        for bit in net["bits"]:
            if isinstance(bit, int) and (bit not in names or
                                         (net.get("hide_name", 0) == 0 and
                                          len(name) < len(names[bit]))):
                names[bit] = name
    driver = {}
    for cname, cell in module["cells"].items():
        for port, direction in cell.get("port_directions", {}).items():
            if direction == "output":
                for bit in cell["connections"][port]:
                    if isinstance(bit, int):
                        driver[bit] = (cname, cell, port)

    @lru_cache(maxsize=None)
    def arrival(bit):
        """(ns, LUT levels, path of bits) at `bit`."""
        if not isinstance(bit, int) or bit not in driver:
            return 0.0, 0, ()
        cname, cell, port = driver[bit]
        kind = cell["type"]
        if REGISTERS.fullmatch(kind):
            return CLK_TO_Q, 0, (bit,)
        if kind in SOURCES:
            return SOURCES[kind], 0, (bit,)
        if kind == "SB_LUT4":
            best = (0.0, 0, ())
            for pin in ("I0", "I1", "I2", "I3"):
                (src,) = cell["connections"][pin]
                t, levels, path = arrival(src)
                from_carry = (isinstance(src, int) and src in driver and
                              driver[src][1]["type"] == "SB_CARRY")
                t += LUT + (0.0 if from_carry else ROUTE)
                if t > best[0]:
                    best = (t, levels + 1, path + (bit,))
            return best
        if kind == "SB_CARRY":
            best = (0.0, 0, ())
            for pin, step in (("CI", CARRY), ("I0", CARRY_IN + ROUTE), ("I1", CARRY_IN + ROUTE)):
                (src,) = cell["connections"][pin]
                t, levels, path = arrival(src)
                if t + step > best[0]:
                    best = (t + step, levels, path + (bit,))
            return best
        return 0.0, 0, ()                   # IO, PLL, constants: not timed here

    endpoints = []
    for cname, cell in module["cells"].items():
        kind = cell["type"]
        if not (REGISTERS.fullmatch(kind) or kind in SOURCES):
            continue
        for port, direction in cell.get("port_directions", {}).items():
            if direction != "input" or port in ("C", "CLK", "RCLK", "WCLK", "CLOCK"):
                continue
            for bit in cell["connections"][port]:
                t, levels, path = arrival(bit)
                if path:
                    endpoints.append((t + ROUTE + SETUP, levels, kind, cname, port, path))
    return endpoints, names


def sink_name(module, names, cname):
    """The register's output net without its bit index (a block RAM's or DSP's cell name)."""
    cell = module["cells"][cname]
    if "Q" in cell["connections"]:
        return re.sub(r"\[\d+\]$", "", names.get(cell["connections"]["Q"][0], cname))
    return cname


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("netlist")
    parser.add_argument("--mhz", type=float, default=60.0)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    module = load(args.netlist)
    endpoints, names = analyse(module)
    period = 1000.0 / args.mhz
    late = sorted((e for e in endpoints if e[0] > period), key=lambda e: -e[0])
    # one line per source -> sink pair of nets (a register's bits share their path's shape)
    groups = defaultdict(list)
    for e in late:
        groups[sink_name(module, names, e[3]), e[4]].append(e)
    print(f"{len(endpoints)} endpoints; {len(late)} over {period:.2f} ns ({args.mhz:g} MHz) by "
          f"the fixed-delay estimate, at {len(groups)} registers")
    levels = defaultdict(int)
    for e in endpoints:
        levels[e[1]] += 1
    print("LUT levels: " + ", ".join(f"{n}: {levels[n]}" for n in sorted(levels)))
    worst = max((e[0] for e in endpoints), default=0.0)
    print(f"longest: {worst:.2f} ns ({1000 / worst:.1f} MHz at best)")
    shown = sorted(groups.items(), key=lambda kv: -kv[1][0][0])[:args.top]
    for (sink, port), es in shown:
        t, levels, kind, cname, _, path = es[0]
        route = " -> ".join(names.get(b, "?") for b in path)
        print(f"{t:6.2f} ns  {levels} LUTs  {len(es):3} bits  {sink}.{port}: {route}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
