"""Put each cell of a flattened netlist (Yosys's JSON of a board build, ``<name>.json``) to the
part of the design it belongs to, by the names of its nets, and count LUTs, carries and
flip-flops per part: how :data:`convaccel.boards.fit._NETWORK_LOGIC` was calibrated.

    python benchmarks/attribute_netlist.py build/icebreaker/net_digits.json

A cell takes the hierarchical name of the first of its outputs that has one (flattening keeps
the names of the design's signals); a cell whose outputs have none (most of ABC's LUTs) takes
the part of a cell it drives, followed up to six cells on. (The fit check counts an ECP5's
LUTs as LUT4s, two per CCU2C carry cell and one per TRELLIS_DPR16X4 LUT RAM; an iCE40's
SB_CARRY shares its LUT's cell.) A network's parts: its stages (a
convolution engine's inner stages apart: its output stage, its requantizer, line buffer,
padder, array, feeder, window generator, pixel queue), its input queue and queues; the
network engine's status counters; the link and the rest of the board top.
"""

import collections
import json
import re
import sys

_PART = re.compile(r"network\.(stage\d+\.output\.requant|stage\d+\.(?:output|linebuf|padder|"
                   r"array|feeder|window|pixel_queue)|stage\d+|queue\d+|input)")


def part_of(name):
    """The part a net's hierarchical name belongs to."""
    m = _PART.search(name)
    if m:
        return m.group(1)
    if "core.app.link.engine" in name:
        return "engine (status counters)"
    return "link and board top"


def attribute(netlist):
    """``{part: Counter(lut=, carry=, ff=, ...)}`` of the top module of a Yosys JSON
    netlist."""
    top = next(m for m in netlist["modules"].values() if m.get("attributes", {}).get("top"))
    names = {}
    for name, net in top["netnames"].items():
        for bit in net["bits"]:
            if isinstance(bit, int) and (bit not in names or ("$" in names[bit]) > ("$" in name)
                                         or (("$" in names[bit]) == ("$" in name)
                                             and len(name) < len(names[bit]))):
                names[bit] = name

    def bits(cell, direction):
        return [b for port, d in cell.get("port_directions", {}).items() if d == direction
                for b in cell["connections"][port] if isinstance(b, int)]

    users = collections.defaultdict(list)
    for cname, cell in top["cells"].items():
        for b in bits(cell, "input"):
            users[b].append(cname)
    owner = {}
    for cname, cell in top["cells"].items():
        named = next((names[b] for b in bits(cell, "output")
                      if b in names and "$" not in names[b]), None)
        if named:
            owner[cname] = part_of(named)
    for _ in range(6):
        for cname, cell in top["cells"].items():
            if cname in owner:
                continue
            driven = [u for b in bits(cell, "output") for u in users.get(b, ()) if u in owner]
            if driven:
                owner[cname] = owner[driven[0]]
    counts = collections.defaultdict(collections.Counter)
    for cname, cell in top["cells"].items():
        kind = cell["type"]
        if "DFF" in kind or kind == "TRELLIS_FF":
            kind = "ff"
        elif kind in ("SB_LUT4", "LUT4"):
            kind = "lut"
        elif kind in ("SB_CARRY", "CCU2C"):
            kind = "carry"
        elif kind == "TRELLIS_DPR16X4":
            kind = "lutram"
        counts[owner.get(cname, "(unattributed)")][kind] += 1
    return counts


if __name__ == "__main__":
    counts = attribute(json.load(open(sys.argv[1])))
    print(f"{'LUT':>6} {'FF':>6} {'carry':>6} {'lutram':>6}  part")
    for part, c in sorted(counts.items()):
        print(f"{c['lut']:6d} {c['ff']:6d} {c['carry']:6d} {c['lutram']:6d}  {part}")
    print(f"{sum(c['lut'] for c in counts.values()):6d} "
          f"{sum(c['ff'] for c in counts.values()):6d} "
          f"{sum(c['carry'] for c in counts.values()):6d} "
          f"{sum(c['lutram'] for c in counts.values()):6d}  total")
