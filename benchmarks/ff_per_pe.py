"""Flip-flops per PE of the engine alone (no host link), as Yosys maps it for the ULX3S's ECP5
(``synth_ecp5``, the board build's options), for arrays of 8, 32 and 128 PEs and 3x3 layers of
16 to 128 channels on a 16x16 frame: the channel-serial engine's registers must grow with the
array, not with the layer.

    .venv/bin/python benchmarks/ff_per_pe.py [--channels 16,32,64,128] [--arrays 4x2,8x4,16x8]
        [--window] [--json FILE]

``--window`` adds the register-window engine (``lanes`` unset) for comparison. Each line is one
Yosys run (seconds to minutes for 128 PEs).
"""

import argparse
import json
import time

from convaccel import ConvSpec
from convaccel.boards import get_board
from convaccel.boards.cost import synth_cells
from convaccel.hdl.accelerator import ConvAccelerator


def measure(spec, board):
    start = time.monotonic()
    counts, _ = synth_cells(ConvAccelerator(spec), board, name="engine")
    return {**counts, "seconds": round(time.monotonic() - start, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", default="16,32,64,128")
    parser.add_argument("--arrays", default="4x2,8x4,16x8")
    parser.add_argument("--window", action="store_true",
                        help="also the register-window engine (lanes unset)")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args(argv)
    board = get_board("ulx3s")
    rows_out = []
    print(f"{'engine':8} {'array':>6} {'PEs':>4} {'C':>4} {'FF':>7} {'FF/PE':>7} {'LUT':>7} "
          f"{'DSP':>4} {'BRAM':>5} {'s':>6}", flush=True)
    for array in args.arrays.split(","):
        rows, cols = (int(n) for n in array.split("x"))
        for channels in (int(c) for c in args.channels.split(",")):
            kinds = [("serial", rows)] + ([("window", None)] if args.window else [])
            for kind, lanes in kinds:
                spec = ConvSpec(height=16, width=16, in_channels=channels,
                                out_channels=channels, kernel=3, padding="same",
                                requantize=True, rows=rows, cols=cols, lanes=lanes,
                                name=f"c{channels}")
                r = measure(spec, board)
                pes = rows * cols
                row = {"engine": kind, "rows": rows, "cols": cols, "pes": pes,
                       "channels": channels, **r, "ff_per_pe": round(r["ff"] / pes, 1)}
                rows_out.append(row)
                print(f"{kind:8} {array:>6} {pes:>4} {channels:>4} {r['ff']:>7} "
                      f"{row['ff_per_pe']:>7} {r['lut']:>7} {r['dsp']:>4} {r['bram']:>5} "
                      f"{r['seconds']:>6}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows_out, f, indent=1)


if __name__ == "__main__":
    main()
