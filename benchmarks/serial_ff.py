"""Flip-flops of the channel-serial engine as channels grow, as Yosys maps it for the ECP5.

    python benchmarks/serial_ff.py

The whole engine (:class:`~convaccel.hdl.accelerator.ConvAccelerator`, no host link) at a fixed
8 x 2 array is synthesized for the ULX3S 85F (the board's own ``synth_ecp5``): 3x3 layers of
16 -> 16, 64 -> 64 and 128 -> 128 channels on 16 x 16 frames with ``lanes = 8``, and the
engine without lanes (a pixel a beat, the register window) at 16 -> 16 for comparison. Prints a
Markdown table: flip-flops, LUTs, DSP and block RAM as Yosys counts them, and the line
buffer's words.
"""

import sys
import time

from convaccel import ConvSpec
from convaccel.boards import get_board
from convaccel.boards.cost import synth_cells
from convaccel.hdl.accelerator import ConvAccelerator


def cases():
    layer = dict(height=16, width=16, kernel=3, padding=1, rows=8, cols=2)
    for channels in (16, 64, 128):
        yield f"{channels} -> {channels}, lanes 8", ConvSpec(
            in_channels=channels, out_channels=channels, lanes=8, **layer)
    yield "16 -> 16, no lanes", ConvSpec(in_channels=16, out_channels=16, **layer)


def main(board="ulx3s-85f"):
    board = get_board(board)
    print(f"| layer (3x3, 16 x 16, 8 x 2 array) | FF | FF / PE | LUT | DSP | BRAM | "
          f"line buffer (words x bits) | cycles |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    start = time.perf_counter()
    for label, spec in cases():
        counts, _ = synth_cells(ConvAccelerator(spec), board, name="engine")
        lines = [m for m in spec.memories if m.name == "line buffer"]
        ring = ", ".join(f"{m.depth} x {m.width}" for m in lines) or "-"
        print(f"| {label} | {counts['ff']} | {counts['ff'] / spec.pe_count:.0f} | "
              f"{counts['lut']} | {counts['dsp']} | {counts['bram']} | {ring} | "
              f"{spec.cycles} |")
        sys.stdout.flush()
    print(f"\n(Yosys {time.perf_counter() - start:.0f} s, {board.device})")


if __name__ == "__main__":
    main(*sys.argv[1:])
