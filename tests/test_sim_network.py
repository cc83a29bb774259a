"""The whole digits network's generated Verilog under cocotb (Verilator): every beat at every
stage boundary against the golden model's trace, the output tensors against LiteRT's reference
kernels, the cycles per image against the network compiler's plan."""

import time
from pathlib import Path

import numpy as np
import pytest

from helpers import need_simulator, run_cli

pytest.importorskip("ai_edge_litert")

DIGITS = Path(__file__).parents[1] / "examples" / "digits" / "digits.tflite"

#: The default board (the iCEBreaker) has too few DSP blocks for this network; the Tang Nano
#: 9K's plan has the smallest arrays (the shortest Verilator build).
BOARD = "tangnano9k"


@pytest.fixture(scope="module")
def digits():
    from convaccel.boards import get_board
    from convaccel.compiler import compile_network
    from convaccel.network import load_network
    from tflite_models import reference_interpreter
    need_simulator()
    board = get_board(BOARD)
    net = load_network(DIGITS)
    plan = compile_network(net, board)
    xs = np.load(DIGITS.with_name("digits_test.npz"))["x"]
    return plan, board, xs, reference_interpreter(DIGITS.read_bytes())


def _simulate(digits, xs, **kw):
    from convaccel.simulate import simulate_network
    plan, board, _, _ = digits
    # (named and documented as the command line does: the same Verilog, one simulator build)
    return simulate_network(plan, xs, name="digits", board=board, **kw)


def test_digits_network_verilog(digits):
    """Three test images: two back to back with no stalls (their last output beats one frame
    interval apart, as the plan predicts), the third with random input gaps and output
    back-pressure. Every beat at every stage boundary equals the golden model's trace; every
    output tensor equals LiteRT's."""
    plan, _, xs, run = digits
    result = _simulate(digits, xs[:3], steady=2, stall=0.3, seed=5)
    assert result.matches, result.message
    for n, (x, y) in enumerate(zip(xs[:3], result.outputs)):
        np.testing.assert_array_equal(y, run(x), err_msg=f"image {n}")
    assert result.intervals == [plan.interval]
    assert result.beats == [3 * s.out_beats for s in plan.hardware]
    # The weights are baked in: no load, the input taken from the first cycle after reset.
    assert result.loaded == 0
    assert [t["title"] for t in result.taps] == [
        f"stage {n} ({s.operator})" for n, s in enumerate(plan.stages) if s in plan.hardware]


def test_network_boundary_mismatch_fails(digits):
    """The boundary check can fail: one value of the expected trace of an inner stage changed,
    the bench stops at that beat and names it."""
    from convaccel.generate import generate_network
    from convaccel.hdl.nettop import input_beats, stage_beats
    from convaccel.simulate import _failure_message, run_network_bench
    plan, board, xs, _ = digits
    x = xs[7]
    frames = [[v for v, _ in input_beats(plan, x)]]
    expected = [stage_beats(plan, plan.network.trace(x))]
    tap, beat = 1, 5
    lane = expected[0][tap].shape[1] - 1         # the beat's last lane (the plan sets the width)
    expected[0][tap][beat, lane] += 1
    run, report, _, _, _, _ = run_network_bench(
        plan, generate_network(plan, name="digits", board=board), frames, expected,
        name="digits", steady=1, seed=3)
    assert not run.passed
    assert report["beats"][tap] == beat          # it stopped at that beat
    wrong = expected[0][tap][beat].tolist()
    right = wrong.copy()
    right[lane] -= 1
    lanes = plan.hardware[tap].out_lanes
    _, _, width, channels = plan.network.stages[1].output_shape
    pixel, first = divmod(beat * lanes, channels)
    assert _failure_message(run.results_xml).startswith(
        f"stage 1 (CONV_2D) output (queue1.i), frame 0, beat {beat} (pixel "
        f"(row {pixel // width}, column {pixel % width}), channels {first}..{first + lanes - 1}): "
        f"expected {wrong}, got {right}, in cycle ")


def test_simulate_network_cli(digits, tmp_path):
    """`convaccel simulate MODEL.tflite`: LiteRT's input tensor in, its output tensor out, the
    cycles per image the plan's."""
    plan, _, xs, run = digits
    x = xs[11]
    np.save(tmp_path / "x.npy", x)
    result = run_cli("simulate", DIGITS, "--board", BOARD, "--input", tmp_path / "x.npy",
                     "--output", tmp_path / "y.npy", "--stall", "0.2", "--seed", "9")
    assert result.returncode == 0, result.stdout + result.stderr
    y = np.load(tmp_path / "y.npy")
    expected = run(x)
    assert y.dtype == np.int8 and y.shape == tuple(plan.network.output_shape)
    np.testing.assert_array_equal(y, expected)
    out = result.stdout.splitlines()
    assert f"  cycles          {plan.interval} per image, frames back to back with no stalls " \
           f"(plan: {plan.interval})" in out
    assert f"  arg-max         {int(np.argmax(expected))}" in out
    assert out[-1].startswith(f"PASS: every beat at the {len(plan.hardware)} stage boundaries "
                              f"and the 1 x 10 output tensor match the golden model bit for bit")


@pytest.mark.full
def test_digits_network_verilog_all_images(digits):
    """All 360 test images through the Verilog (four back to back with no stalls, the rest
    with random stalls at both ends): every output tensor equals LiteRT's reference kernels'."""
    plan, _, xs, run = digits
    start = time.perf_counter()
    result = _simulate(digits, xs, steady=4, stall=0.2, seed=11)
    elapsed = time.perf_counter() - start
    assert result.outputs is not None, result.message
    matched = sum(np.array_equal(y, run(x)) for x, y in zip(xs, result.outputs))
    print(f"\n{matched} of {len(xs)} output tensors equal LiteRT's (BUILTIN_REF), "
          f"{elapsed:.0f} s, intervals {result.intervals} (plan {plan.interval})")
    assert matched == len(xs)
    assert result.matches, result.message
    assert result.intervals == [plan.interval] * 3
