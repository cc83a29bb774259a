"""Flip-flops of the channel-serial engine as channels grow, as Yosys maps it for the ECP5.

    python benchmarks/serial_ff.py [--arrays 4x2,8x4,16x8] [--channels 16,64,128] [--no-window]

The whole engine (:class:`~convaccel.hdl.accelerator.ConvAccelerator`, no host link) at a fixed
8 x 2 array is synthesized for the ULX3S 85F (the board's own ``synth_ecp5``): 3x3 layers of
16 -> 16, 64 -> 64 and 128 -> 128 channels on 16 x 16 frames with ``lanes = 8``, and the
engine without lanes (a pixel a beat, the register window) at 16 -> 16 for comparison. Prints a
Markdown table: flip-flops, LUTs, DSP and block RAM as Yosys counts them, and the line
buffer's words.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.back import verilog

from convaccel import ConvSpec
from convaccel.boards import get_board
from convaccel.boards.cost import CostError, _ports, resource_counts, synth_cells
from convaccel.boards.report import read_yosys_stat
from convaccel.hdl.accelerator import ConvAccelerator
from convaccel.tools import setup_environment, yosys_path


def mapped_before_luts(component, board, name="engine"):
    """Resource counts after ``synth_<family>`` has mapped memories, DSPs and flip-flops but
    before ABC maps the logic: flip-flops, DSP and block RAM as the full synthesis counts them
    (ABC9 maps LUTs only), for designs on which YoWASP's ABC exits with an error."""
    setup_environment()
    text = verilog.convert(component, name=name, ports=_ports(component),
                           platform=board.platform(), emit_src=False)
    with tempfile.TemporaryDirectory(prefix="cost-", dir=Path(__file__).parent) as tmp:
        options = board.build_options
        Path(tmp, f"{name}.v").write_text(text)
        Path(tmp, f"{name}.ys").write_text("\n".join([
            f"read_verilog {name}.v",
            f"synth_{board.family} {options.get('synth_opts', '')} -top {name} "
            f"-run begin:map_luts",
            f"tee -q -o {name}.stat.json stat -json"]) + "\n")
        run = subprocess.run([yosys_path(), "-q", "-s", f"{name}.ys"], cwd=tmp,
                             capture_output=True, text=True)
        if run.returncode:
            raise CostError(run.stderr[-500:])
        cells = read_yosys_stat(Path(tmp, f"{name}.stat.json"))
    return resource_counts(board.family, cells)


def cases(arrays, channel_counts, window):
    for rows, cols in arrays:
        layer = dict(height=16, width=16, kernel=3, padding=1, rows=rows, cols=cols)
        for channels in channel_counts:
            yield f"{channels} -> {channels}, {rows} x {cols}, lanes {rows}", ConvSpec(
                in_channels=channels, out_channels=channels, lanes=rows, **layer)
        if window:
            yield f"16 -> 16, {rows} x {cols}, no lanes", ConvSpec(
                in_channels=16, out_channels=16, **layer)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arrays", default="8x2", help="e.g. 4x2,8x4,16x8 (default 8x2)")
    parser.add_argument("--channels", default="16,64,128")
    parser.add_argument("--no-window", action="store_true",
                        help="leave out the engine without lanes")
    parser.add_argument("--board", default="ulx3s-85f")
    args = parser.parse_args(argv)
    board = get_board(args.board)
    arrays = [tuple(int(n) for n in a.split("x")) for a in args.arrays.split(",")]
    channel_counts = [int(c) for c in args.channels.split(",")]
    print("| layer (3x3, 16 x 16) | PEs | FF | FF / PE | LUT | DSP | BRAM | "
          "line buffer (words x bits) | cycles |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    start = time.perf_counter()
    for label, spec in cases(arrays, channel_counts, not args.no_window):
        try:
            counts, _ = synth_cells(ConvAccelerator(spec), board, name="engine")
        except CostError:
            counts = mapped_before_luts(ConvAccelerator(spec), board)
            counts["lut"] = "(ABC failed)"
        lines = [m for m in spec.memories if m.name == "line buffer"]
        ring = ", ".join(f"{m.depth} x {m.width}" for m in lines) or "-"
        print(f"| {label} | {spec.pe_count} | {counts['ff']} | "
              f"{counts['ff'] / spec.pe_count:.0f} | {counts['lut']} | {counts['dsp']} | "
              f"{counts['bram']} | {ring} | {spec.cycles} |")
        sys.stdout.flush()
    print(f"\n(Yosys {time.perf_counter() - start:.0f} s, {board.device})")


if __name__ == "__main__":
    main()
