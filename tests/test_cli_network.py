"""The command line given a whole .tflite network: `spec`'s per-stage table and `golden`."""

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli as run

pytest.importorskip("ai_edge_litert")

DIGITS = Path(__file__).parents[1] / "examples" / "digits" / "digits.tflite"


def test_spec_network():
    result = run("spec", DIGITS)
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
    assert lines[-1].startswith("folding: not yet chosen")
    doc = json.loads(run("spec", DIGITS, "--json").stdout)["network"]
    assert [s["operator"] for s in doc["stages"]] == ["CONV_2D", "CONV_2D", "MAX_POOL_2D",
                                                      "RESHAPE", "FULLY_CONNECTED"]
    assert doc["macs"] == sum(s["macs"] for s in doc["stages"]) == 8 * 8 * 8 * 9 + \
        8 * 8 * 16 * 72 + 2560


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
    (["spec", DIGITS, "--array", "2x2"],
     r"--array: a network's stages each get their own folding \(chosen by the network "
     r"compiler\); --array folds a single layer"),
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
