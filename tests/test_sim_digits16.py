"""The bigger model (examples/digits16: 16x16 input, three convolutions of 8, 16 and 32
channels, each followed by a max pool, then a dense classifier) as generated Verilog under
cocotb (Verilator): every beat at every stage boundary against the golden model's trace, the
output tensors against LiteRT's reference kernels, the cycles per image against the network
compiler's plan. The default suite runs a small fixed folding; the ULX3S plan the compiler
chooses (its search alone takes about a minute) runs under `full`."""

import time
from pathlib import Path

import numpy as np
import pytest

from convaccel import Folding

from helpers import need_simulator

pytest.importorskip("ai_edge_litert")

DIGITS16 = Path(__file__).parents[1] / "examples" / "digits16" / "digits16.tflite"
BOARD = "ulx3s-85f"

#: A small folding for the default suite (a short Verilator build): conv1 3 x 4 on whole
#: pixels, conv2 8 x 4 channel-serial, conv3 4 x 8 channel-serial with the fabric requantizer
#: (the kind the ULX3S plan uses), dense 4 x 2.
SIM_FOLDINGS = [Folding(3, 4), None, Folding(8, 4, 8), None, Folding(4, 8, 4, "fabric"), None,
                None, (4, 2)]


@pytest.fixture(scope="module")
def digits16():
    from convaccel.boards import get_board
    from convaccel.network import load_network
    from tflite_models import reference_interpreter
    need_simulator()
    board = get_board(BOARD)
    net = load_network(DIGITS16)
    xs = np.load(DIGITS16.with_name("digits16_test.npz"))["x"]
    return net, board, xs, reference_interpreter(DIGITS16.read_bytes())


def _simulate(plan, board, xs, **kw):
    from convaccel.simulate import simulate_network
    return simulate_network(plan, xs, name="digits16", board=board, **kw)


def _check(plan, result, xs, run, steady):
    """Every output tensor equals LiteRT's, every boundary beat the golden model's, and the
    steady frames leave exactly the plan's frame interval apart; the number of images equal
    to LiteRT's."""
    assert result.outputs is not None, result.message
    matched = sum(np.array_equal(y, run(x)) for x, y in zip(xs, result.outputs))
    for n, (x, y) in enumerate(zip(xs, result.outputs)):
        np.testing.assert_array_equal(y, run(x), err_msg=f"image {n}")
    assert result.matches, result.message
    assert result.intervals == [plan.interval] * (steady - 1)
    assert result.beats == [len(xs) * s.out_beats for s in plan.hardware]
    return matched


@pytest.mark.full        # (~75 s on 2 cores, mostly Verilator's compile; the digits network's
def test_digits16_network_verilog(digits16):  # cocotb test covers the same path by default
    """Three test images on the small folding: two back to back with no stalls (their last
    output beats one frame interval apart, as the plan predicts), the third with random input
    gaps and output back-pressure."""
    from convaccel.compiler import plan_network
    net, board, xs, run = digits16
    plan = plan_network(net, SIM_FOLDINGS, family=board.family)
    assert [s.requant_multiplier for s in plan.stages if s.spec is not None] == \
        ["dsp", "dsp", "fabric"]
    result = _simulate(plan, board, xs[:3], steady=2, stall=0.3, seed=5)
    _check(plan, result, xs[:3], run, steady=2)
    # The loads first, in parallel: the largest one, a beat a cycle.
    assert result.loaded == max(s.spec.load_beats for s in plan.stages if s.spec is not None)


def test_digits16_plan_table(digits16):
    """The plan's table keeps its columns aligned when a folding's text ("4 x 8, lanes 4,
    fabric rq") or the queue depths are wider than the column's default."""
    from convaccel.compiler import plan_network
    net, board, _, _ = digits16
    plan = plan_network(net, SIM_FOLDINGS, family=board.family)
    lines = plan.table(board).splitlines()
    rows = lines[:len(plan.stages) + 2]      # the head, a row a stage, the queues
    assert any(len(s.folding_text) > 22 for s in plan.stages)
    assert len({len(line) for line in rows}) == 1, "\n".join(rows)
    assert lines[0].index("cycles") > max(len(s.folding_text) for s in plan.stages)


@pytest.mark.full
def test_digits16_ulx3s_verilog(digits16):
    """The compiler's own plan for the ULX3S (156 DSP blocks): within the board's DSP and
    block RAM, the beat widths chain; 24 test images through its Verilog, four back to back
    with no stalls (three frame intervals measured, each exactly the plan's), the rest with
    random stalls at both ends; every output tensor equals LiteRT's."""
    from convaccel.compiler import compile_network
    net, board, xs, run = digits16
    start = time.perf_counter()
    plan = compile_network(net, board)
    compiled = time.perf_counter() - start
    assert plan.dsp <= board.resources["dsp"]
    assert plan.figures(board)["bram"] <= board.resources["bram"]
    for a, b in zip(plan.hardware, plan.hardware[1:]):
        assert a.out_lanes == b.in_lanes
    assert plan.interval == max(s.interval for s in plan.stages)
    images = xs[:24]
    start = time.perf_counter()
    result = _simulate(plan, board, images, steady=4, stall=0.2, seed=11)
    elapsed = time.perf_counter() - start
    matched = _check(plan, result, images, run, steady=4)
    print(f"\n{matched} of {len(images)} output tensors equal LiteRT's (BUILTIN_REF); "
          f"compile {compiled:.0f} s, simulation {elapsed:.0f} s; intervals "
          f"{result.intervals} (plan {plan.interval}); first frame "
          f"{result.first_frame_cycles} cycles")
    assert matched == len(images)
