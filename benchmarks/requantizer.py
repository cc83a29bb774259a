"""The requantizer's cost on each device family, as Yosys maps it (the board's own synthesis).

    python benchmarks/requantizer.py

For a few foldings of the example int8 model and of the default layer requantized, the
requantizer alone is synthesized for the iCEBreaker (iCE40 UP5K), the ULX3S (ECP5 85F) and the
Tang Nano 9K (GW1NR-9), and its logic, flip-flops and DSP blocks printed per output-channel
group (``cols`` channels), beside the fit check's DSP estimate. Prints a Markdown table.
"""

import sys
import time

from amaranth import signed

from convaccel import ConvSpec, Folding
from convaccel.boards import get_board
from convaccel.boards.cost import synth_cells
from convaccel.boards.fit import _dsps, _pe_dsps
from convaccel.hdl.array import fold_tag_layout
from convaccel.hdl.requant import Requantizer

BOARDS = ("icebreaker", "ulx3s-85f", "tangnano9k")


def cases():
    from pathlib import Path

    from convaccel.tflite import load_conv
    model = load_conv(Path(__file__).parents[1] / "examples" / "int8_conv.tflite").layer
    default = dict(height=16, width=16, in_channels=4, out_channels=8, kernel=3,
                   padding="same", requantize=True)
    yield "int8_conv.tflite, 4 x 1", ConvSpec.of(model, Folding(4, 1))
    yield "int8_conv.tflite, 4 x 4", ConvSpec.of(model, Folding(4, 4))
    yield "default layer, int32 bias, 4 x 2", ConvSpec(**default, rows=4, cols=2)
    yield "1x1 conv, a group per cycle, 8 x 4", ConvSpec(
        height=8, width=8, in_channels=8, out_channels=8, kernel=1, requantize=True, rows=8,
        cols=4)


def main():
    print("| layer, array | acc bits | units x passes | board | LUT | FF | DSP (fit estimate) |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
    start = time.perf_counter()
    for label, spec in cases():
        requantizer = Requantizer(cols=spec.cols, col_folds=spec.blocks,
                                  row_folds=spec.row_folds, acc_shape=signed(spec.acc_bits),
                                  tag_shape=fold_tag_layout())
        for name in BOARDS:
            board = get_board(name)
            counts, _ = synth_cells(requantizer, board)
            estimate = _dsps(board.family, spec) - _pe_dsps(board.family, spec)
            lut = counts["lut"]
            print(f"| {label} | {spec.acc_bits} | {requantizer.units} x {requantizer.passes} | "
                  f"{board.device} | {lut} | {counts['ff']} | {counts['dsp']} ({estimate}) |")
            sys.stdout.flush()
    print(f"\n(Yosys {time.perf_counter() - start:.0f} s; DSP blocks: SB_MAC16 on iCE40, "
          f"MULT18X18D on ECP5, 9x9 sites on Gowin, a MULT18X18 taking two)")


if __name__ == "__main__":
    main()
