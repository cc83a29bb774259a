"""Calibrate the fit check's logic model (``convaccel.boards.fit._LOGIC_MODEL``): map the board
top with the host link for a few layers with Yosys (as the board's build does), and fit the
flip-flops and LUTs by least squares on the model's features.

    python benchmarks/calibrate_fit.py icebreaker [--out mappings.jsonl] [--from mappings.jsonl]

Each mapping takes from under a minute to a few (one at a time: run it with ``nice``). It
prints the fitted coefficients and each layer's estimate against Yosys's count.
"""

import argparse
import json
import time

import numpy as np

from convaccel import ConvSpec
from convaccel.boards import get_board
from convaccel.boards import fit as fitmod

#: Layers of different window, array and output sizes (3x3 "same" unless said).
LAYERS = [
    dict(height=16, width=16, in_channels=4, out_channels=8, rows=4, cols=2),
    dict(height=16, width=16, in_channels=8, out_channels=8, rows=4, cols=2),
    dict(height=8, width=8, in_channels=16, out_channels=16, rows=8, cols=2),
    dict(height=16, width=16, in_channels=4, out_channels=16, rows=2, cols=4),
    dict(height=8, width=8, in_channels=2, out_channels=4, rows=2, cols=2),
    dict(height=16, width=16, in_channels=16, out_channels=8, kernel=1, padding=0, rows=4,
         cols=4),
    dict(height=8, width=8, in_channels=8, out_channels=32, rows=4, cols=4),
]


def _spec(kw):
    return ConvSpec(**{"kernel": 3, "padding": "same", **kw})


def measure(board, layers):
    from convaccel.boards.cost import synth_cells
    from convaccel.boards.top import BoardCore
    from convaccel.link.gateware import SerialAccelerator
    for kw in layers:
        start = time.perf_counter()
        counts, _ = synth_cells(BoardCore(SerialAccelerator(_spec(kw), divisor=312)), board,
                                "core")
        yield {"spec": kw, "counts": counts, "t": round(time.perf_counter() - start, 1)}


def fit_model(board, rows):
    """Non-negative least-squares coefficients of ``(1, window, pe, out)`` for ``ff`` and
    ``lut``, after the part the model counts exactly (memories in logic, lane delays) is taken
    off."""
    features, targets = [], {"ff": [], "lut": []}
    saved = dict(fitmod._LOGIC_MODEL[board.family])
    fitmod._LOGIC_MODEL[board.family] = {"ff": (0, 0, 0, 0), "lut": (0, 0, 0, 0)}
    try:
        for row in rows:
            spec = _spec(row["spec"])
            mems, _, placement = fitmod._placed_memories(spec, board, "link", None)
            exact = fitmod._logic(board.family, spec, mems, placement, "link")
            features.append((1, *fitmod._logic_features(spec)))
            for key in targets:
                targets[key].append(row["counts"][key] - exact[key])
    finally:
        fitmod._LOGIC_MODEL[board.family] = saved
    # (non-negative: no register or LUT makes the design smaller; with as many layers as
    # coefficients a free fit would extrapolate with any sign)
    from scipy.optimize import nnls
    a = np.array(features, dtype=float)
    return {key: tuple(round(float(c), 3) for c in nnls(a, np.array(t, dtype=float))[0])
            for key, t in targets.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("board")
    parser.add_argument("--out", help="append the mappings to this JSON-lines file")
    parser.add_argument("--from", dest="source", help="read the mappings from this file")
    args = parser.parse_args()
    board = get_board(args.board)
    if args.source:
        rows = [json.loads(line) for line in open(args.source) if line.strip()]
    else:
        rows = []
        for row in measure(board, LAYERS):
            print(json.dumps(row), flush=True)
            rows.append(row)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
    model = fit_model(board, rows)
    print(f'"{board.family}": {json.dumps(model)}')
    fitmod._LOGIC_MODEL[board.family] = model
    for row in rows:
        est = fitmod.estimate(_spec(row["spec"]), board, app="link")
        print(row["spec"], {k: (row["counts"][k], est[k]) for k in ("ff", "lut")})


if __name__ == "__main__":
    main()
