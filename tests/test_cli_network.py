"""The command line given a whole .tflite network: `spec`'s per-stage table and `golden`."""

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli as run

pytest.importorskip("ai_edge_litert")

DIGITS = Path(__file__).parents[1] / "examples" / "digits" / "digits.tflite"
DIGITS16 = Path(__file__).parents[1] / "examples" / "digits16" / "digits16.tflite"


def test_spec_network():
    result = run("spec", DIGITS, "--board", "tangnano9k")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "network digits.tflite: 5 stages, int8 (full-integer quantization)"
    assert lines[1] == "  input tensor  1 x 8 x 8 x 1 int8, scale 0.00392157, zero point -128"
    assert lines[3].split() == ["#", "operator", "input", "output", "geometry", "activation",
                                "MACs", "weights"]
    # conv 3x3 8 -> 16 on 8x8: 8 * 8 * 16 * 9 * 8 MACs, 16 * 9 * 8 weights and 16 biases
    assert lines[5].split() == ["1", "CONV_2D", "8x8x8", "8x8x16", "3x3,", "stride", "1,",
                                "SAME", "RELU", str(8 * 8 * 16 * 72), str(16 * 72 + 16)]
    assert lines[6].split()[:8] == ["2", "MAX_POOL_2D", "8x8x16", "4x4x16", "2x2,", "stride",
                                    "2,", "VALID"]
    assert lines[7].split()[:5] == ["3", "RESHAPE", "4x4x16", "256", "flatten"]
    assert lines[8].split()[:6] == ["4", "FULLY_CONNECTED", "256", "10", "256", "->"]
    assert lines[9].startswith("  total ")


def _plan(board_name):
    from convaccel.boards import get_board
    from convaccel.compiler import compile_network
    from convaccel.network import load_network
    board = get_board(board_name)
    return compile_network(load_network(DIGITS), board), board


# (the ULX3S's larger search is `full`: the same table, about 45 s of CI's budget)
@pytest.mark.parametrize("board_name", ["tangnano9k",
                                        pytest.param("ulx3s-85f", marks=pytest.mark.full)])
def test_spec_network_plan(board_name):
    """`spec --board`: the compiler's plan for the board, each figure the plan's own."""
    plan, board = _plan(board_name)
    result = run("spec", DIGITS, "--board", board_name)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    head = lines.index(f"folding for the {board.name} ({board.device}: "
                       f"{board.resources['dsp']} DSP, {board.resources['bram']} BRAM), chosen "
                       f"by the network compiler")
    assert lines[head + 1].split() == ["#", "operator", "folding", "cycles", "interval", "DSP",
                                       "BRAM"]
    for n, s in enumerate(plan.stages):
        row = lines[head + 2 + n]
        assert row.split()[:2] == [str(n), s.operator]
        assert s.folding_text in row
        assert row.split()[-4:] == [str(s.cycles), str(s.interval), str(s.dsp),
                                    str(s.bram(board))]
    queues = lines[head + 2 + len(plan.stages)]
    assert queues.split()[:2] == ["queues", ", ".join(map(str, plan.queue_depths)).split()[0]]
    assert queues.split()[-1] == str(plan.queue_bram(board))
    assert f"  total: {plan.dsp} DSP (of {board.resources['dsp']})" in result.stdout
    slowest = plan.stages[plan.bottleneck]
    assert plan.interval == slowest.interval == max(s.interval for s in plan.stages)
    assert (f"  frame interval {plan.interval} cycles (stage {plan.bottleneck}, "
            f"{slowest.operator})") in lines
    fps = board.default_mhz * 1e6 / plan.interval
    assert lines[-1] == (f"  throughput {fps:.0f} frames per second at {board.default_mhz:g} "
                         f"MHz (the board's default clock)")

    doc = json.loads(run("spec", DIGITS, "--board", board_name, "--json").stdout)
    net = doc["network"]
    assert [s["operator"] for s in net["stages"]] == ["CONV_2D", "CONV_2D", "MAX_POOL_2D",
                                                      "RESHAPE", "FULLY_CONNECTED"]
    assert net["macs"] == sum(s["macs"] for s in net["stages"]) == 8 * 8 * 8 * 9 + \
        8 * 8 * 16 * 72 + 2560
    figures = doc["plan"]
    assert figures == json.loads(json.dumps(plan.figures(board)))
    assert [s["folding"] for s in figures["stages"]] == [s.folding_text for s in plan.stages]
    assert figures["queue_depths"] == list(plan.queue_depths)
    assert figures["interval"] == plan.interval and figures["bottleneck"] == plan.bottleneck
    assert figures["frames_per_second"] == pytest.approx(fps)
    assert figures["bram"] == sum(s.bram(board) for s in plan.stages) + plan.queue_bram(board)


def test_generate_network(tmp_path):
    """`generate` of a network: the Verilog of the whole pipeline on the compiler's plan for the
    board (a module per stage and queue, as NetworkTop names them), its plan in the header and
    in the JSON."""
    import re
    plan, board = _plan("tangnano9k")
    result = run("generate", DIGITS, "--board", "tangnano9k", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    verilog = (tmp_path / "digits.v").read_text()
    assert f"wrote {tmp_path / 'digits.v'} ({verilog.count(chr(10))} lines, top module " \
           f"`digits`)" in result.stdout
    header = "\n".join(line[3:] for line in verilog.splitlines() if line.startswith("// "))
    assert plan.table(board) in header
    assert re.search(r"^module digits\(", verilog, re.M)
    modules = set(re.findall(r"^module \\digits\.(\w+) ", verilog, re.M))
    assert modules >= {f"stage{n}" for n in range(len(plan.hardware))} | \
        {f"queue{n}" for n in range(len(plan.queue_depths))}
    assert f"stage{len(plan.hardware)}" not in modules
    doc = json.loads((tmp_path / "digits.json").read_text())
    assert doc["name"] == "digits" and doc["input_shape"] == [1, 8, 8, 1]
    assert doc["plan"] == json.loads(json.dumps(plan.figures(board)))


def test_simulate_default_input(tmp_path):
    """`simulate MODEL.tflite` without --input takes the first image of the model's test set
    beside it (``<model>_test.npz``, its ``x``), when it holds the model's input tensors."""
    import shutil

    from convaccel.cli import _bundled_input
    from convaccel.network import load_network
    net = load_network(DIGITS)
    x, origin = _bundled_input(DIGITS, net)
    np.testing.assert_array_equal(x, np.load(DIGITS.with_name("digits_test.npz"))["x"][0])
    assert origin == "digits_test.npz, image 0"
    model = shutil.copy(DIGITS, tmp_path / "digits.tflite")
    assert _bundled_input(model, net) == (None, None)
    for bad in ({"x": np.zeros((3, 1, 8, 8, 2), np.int8)}, {"x": np.zeros((3, 1, 8, 8, 1))},
                {"images": np.zeros((3, 1, 8, 8, 1), np.int8)}):
        np.savez(tmp_path / "digits_test.npz", **bad)
        assert _bundled_input(model, net) == (None, None)


def test_golden_equals_litert(tmp_path):
    from tflite_models import run_reference
    x = np.load(DIGITS.with_name("digits_test.npz"))["x"][5]
    np.save(tmp_path / "x.npy", x)
    result = run("golden", DIGITS, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stderr
    y = np.load(tmp_path / "y.npy")
    expected = run_reference(DIGITS.read_bytes(), x)
    assert y.dtype == np.int8 and y.shape == (1, 10)
    np.testing.assert_array_equal(y, expected)
    assert f"  arg-max         {int(np.argmax(expected))}\n" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["spec", DIGITS16],
     r"no folding of the network fits the icebreaker board within its 8 DSP blocks: the "
     r"lightest needs \d+ logic cells \(the placer can use \d+\), \d+ block RAMs \(the "
     r"iCE40UP5K-SG48 has 30\), estimated with the host link; choose a larger board with "
     r"--board \(`convaccel boards` lists them\)"),
    (["spec", DIGITS, "--board", "nope"],
     r"Unknown board 'nope'; choose one of icebreaker, .*"),
    (["spec", "--board", "ulx3s-85f"],
     r"--board applies to a \.tflite network \(the network compiler folds its stages for the "
     r"board\); a layer's folding is --array or its file's \[array\]"),
    (["generate", DIGITS, "--array", "2x2"],
     r"--array: a network's stages each get their own folding \(chosen by the network "
     r"compiler\); --array folds a single layer"),
    (["spec", DIGITS, "--array", "2x2"],
     r"--array: a network's stages each get their own folding \(chosen by the network "
     r"compiler\); --array folds a single layer"),
    (["run", DIGITS, "--board", "tangnano9k", "--simulate", "--array", "2x2"],
     r"--array: a network's stages each get their own folding \(chosen by the network "
     r"compiler\); --array folds a single layer"),
    (["run", DIGITS, "--board", "tangnano9k", "--simulate", "--weights", "{x}"],
     r"--weights: a \.tflite model holds its own weights; give --weights with a TOML layer"),
    (["run", DIGITS, "--board", "tangnano9k", "--simulate", "--input", "{x}"],
     r"--input .*/x\.npy: the model's input tensor is 1 x 8 x 8 x 1 int8 \(NHWC, as the LiteRT "
     r"interpreter takes it\), not 8 x 8 int8"),
    (["run", DIGITS, "--board", "orangecrab-85f", "--simulate"],
     r"the .* has no USB-serial port for the host link; use a board with one "
     r"\(`convaccel boards`\)"),
    (["golden", "layer.toml"], r"golden takes an int8 \.tflite model, not 'layer\.toml'"),
    (["golden", DIGITS, "--input", "{x}"],
     r"--input .*/x\.npy: the model's input tensor is 1 x 8 x 8 x 1 int8 \(NHWC, as the LiteRT "
     r"interpreter takes it\), not 8 x 8 int8"),
    (["spec", "{softmax}"],
     r".*/softmax\.tflite: operator 1 \(SOFTMAX\) is not supported in a network; its stages "
     r"are CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D, AVERAGE_POOL_2D, FULLY_CONNECTED and "
     r"RESHAPE"),
])
def test_network_cli_wrong(tmp_path, args, message):
    import re

    from tflite_models import ChainModel, add_operator, add_tensor, model_object, pack_model
    np.save(tmp_path / "x.npy", np.zeros((8, 8), dtype=np.int8))
    model = model_object(ChainModel((1, 4), (0.1, 0)).dense(np.eye(4), None, 1.0, (0.1, 0))
                         .bytes())
    out = add_tensor(model, "probabilities", (1, 4), scale=1 / 256, zero_point=-128)
    add_operator(model, "SOFTMAX", [2], [out])
    model.subgraphs[0].outputs = [out]
    (tmp_path / "softmax.tflite").write_bytes(pack_model(model))
    args = [str(a).format(x=tmp_path / "x.npy", softmax=tmp_path / "softmax.tflite")
            for a in args]
    result = run(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert re.fullmatch(r"convaccel: error: " + message + "\n", result.stderr), result.stderr


@pytest.mark.full
def test_run_network_simulated(tmp_path):
    """`run MODEL.tflite --simulate`: the bundled test image through the simulated board top
    (link, engine, LEDs) and the host driver; its output tensor is LiteRT's (BUILTIN_REF)."""
    from tflite_models import run_reference
    result = run("run", DIGITS, "--board", "tangnano9k", "--simulate", "--output",
                 tmp_path / "y.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    x = np.load(DIGITS.with_name("digits_test.npz"))["x"][0]
    y = np.load(tmp_path / "y.npy")
    np.testing.assert_array_equal(y, run_reference(DIGITS.read_bytes(), x))
    assert "(digits_test.npz, image 0)" in result.stdout.splitlines()[0]
    assert result.stdout.splitlines()[-1] == ("PASS: the device's 1 x 10 output tensor equals "
                                              "the golden model bit for bit")
    assert f"  arg-max         {int(np.argmax(y))}\n" in result.stdout
