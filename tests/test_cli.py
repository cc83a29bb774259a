"""The command line, run as a user runs it."""

import json
from pathlib import Path

import pytest

import convaccel
from convaccel import DEFAULT_SPEC


from helpers import run_cli as run


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"convaccel {convaccel.__version__}"


def test_help_lists_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("spec", "demo", "generate"):
        assert command in result.stdout


def test_spec_default():
    result = run("spec")
    assert result.returncode == 0, result.stderr
    assert f"{DEFAULT_SPEC.cycles} per frame" in result.stdout
    assert "8 x 16 x 16 (int33, exact)" in result.stdout


def test_spec_json(tmp_path):
    path = tmp_path / "l.toml"
    path.write_text('name = "t"\n[layer]\nheight = 7\nwidth = 7\nin_channels = 2\n'
                    'out_channels = 3\nkernel = 3\nstride = 2\n')
    result = run("spec", str(path), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["parameters"]["name"] == "t"
    assert doc["figures"]["output_shape"] == [3, 3, 3]


@pytest.mark.parametrize("text, message", [
    ("[layer]\nheight = 10\nwidth = 10\nin_channels = 1\nout_channels = 1\nkernel = 3\n"
     "stride = 2\n", "Output height is not an integer"),
    ("[layer]\nheight = 10\nwidth = 10\nin_channels = 1\nout_channels = 1\nkernel = 3\n"
     "colour = 2\n", "unknown key 'colour'"),
    ("[layer\n", "not valid TOML"),
])
def test_spec_bad_config_wrong(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run("spec", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("convaccel: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_spec_missing_file_wrong(tmp_path):
    result = run("spec", str(tmp_path / "none.toml"))
    assert result.returncode == 2 and "cannot read the file" in result.stderr


def test_simulate_default_random_data():
    result = run("simulate", "--seed", "4")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"cycles          {DEFAULT_SPEC.cycles} (model: {DEFAULT_SPEC.cycles}" in result.stdout
    assert "PASS: every one of 256 output pixels matches" in result.stdout


def test_simulate_arrays_in_and_out(tmp_path):
    import numpy as np
    from convaccel import ConvSpec, golden
    config = tmp_path / "small.toml"
    config.write_text('[layer]\nheight = 4\nwidth = 4\nin_channels = 1\nout_channels = 2\n'
                      'kernel = 3\npadding = 1\n[array]\nrows = 3\ncols = 2\n')
    spec = ConvSpec.from_toml(config)
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, spec.input_shape)
    w = rng.integers(-128, 128, spec.weight_shape)
    b = rng.integers(-99, 99, spec.bias_shape)
    for name, array in (("x", x), ("w", w), ("b", b)):
        np.save(tmp_path / f"{name}.npy", array)
    result = run("simulate", str(config), "--input", str(tmp_path / "x.npy"), "--weights",
                 str(tmp_path / "w.npy"), "--bias", str(tmp_path / "b.npy"), "--output",
                 str(tmp_path / "y.npy"), "--stall", "0.2", "--seed", "8")
    assert result.returncode == 0, result.stdout + result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), golden.conv2d(x, w, b, spec))


def test_simulate_bad_array_wrong(tmp_path):
    import numpy as np
    np.save(tmp_path / "x.npy", np.zeros((4, 16, 15), dtype=np.int8))
    result = run("simulate", "--input", str(tmp_path / "x.npy"))
    assert result.returncode == 2
    assert result.stderr == ("convaccel: error: x must have the shape (4, 16, 16) "
                             "(in_channels, height, width), not (4, 16, 15)\n")


def test_simulate_missing_simulator_wrong(tmp_path):
    import os
    import shutil
    env = dict(os.environ, SIM="icarus", PATH=str(tmp_path))
    if shutil.which("iverilog", path=env["PATH"]):
        pytest.skip("iverilog is on the reduced PATH")
    result = run("simulate", env=env)
    assert result.returncode == 2
    assert "$SIM: Icarus Verilog is not installed (Debian: apt-get install iverilog)" in \
        result.stderr


def test_run_simulated_board():
    result = run("run", "--board", "icebreaker", "--simulate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS: the device's 8 x 16 x 16 result equals the golden model bit for bit" in \
        result.stdout
    assert f"(model: {DEFAULT_SPEC.cycles} when fed at full speed)" in result.stdout
    assert "KiB/s (simulated line time)" in result.stdout


def test_run_simulated_board_example_with_arrays(tmp_path):
    # A user's layer file and arrays, extreme values included, through the simulated board; the
    # saved answer is checked here against the golden model, not only by the command. (The
    # pad-mean example: its simulator build is the one its other tests use, and its frames are
    # a few hundred bytes on the simulated serial line; without --pad it pads with the layer's
    # own values.)
    import numpy as np

    from convaccel import ConvSpec, golden
    config = Path(__file__).parents[1] / "examples" / "pad_mean.toml"
    spec = ConvSpec.from_toml(config)
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, spec.input_shape)
    x[0, 0, :4] = [-128, 127, -128, 127]
    w = rng.integers(-128, 128, spec.weight_shape)
    w[0, 0, 0] = -128
    b = rng.integers(-2**(spec.bias_bits - 1), 2**(spec.bias_bits - 1), spec.bias_shape)
    b[0] = -2**(spec.bias_bits - 1)
    for name, array in (("x", x), ("w", w), ("b", b)):
        np.save(tmp_path / f"{name}.npy", array)
    result = run("run", str(config), "--board", "icebreaker", "--simulate", "--input",
                 str(tmp_path / "x.npy"), "--weights", str(tmp_path / "w.npy"), "--bias",
                 str(tmp_path / "b.npy"), "--output", str(tmp_path / "y.npy"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS: the device's 5 x 5 x 4 result equals the golden model bit for bit" in \
        result.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), golden.conv2d(x, w, b, spec))


def test_run_pad_mean_simulated_board(tmp_path):
    # A frame padded with its channels' means, loaded with the weights (tests/link/
    # test_link.py runs the same layer over two frames, on the same simulator build).
    import numpy as np

    from convaccel import ConvSpec, golden
    config = Path(__file__).parents[1] / "examples" / "pad_mean.toml"
    spec = ConvSpec.from_toml(config)
    x = np.random.default_rng(3).integers(-128, 128, spec.input_shape)
    x[1] -= 40                                    # (another mean)
    x = x.clip(-128, 127)
    assert golden.pad_mean(x) != spec.pad_values
    np.save(tmp_path / "x.npy", x)
    result = run("run", str(config), "--board", "icebreaker", "--simulate", "--pad", "mean",
                 "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"))
    assert result.returncode == 0, result.stdout + result.stderr
    means = golden.pad_mean(x)
    assert f"pad values      {', '.join(map(str, means))} (each channel's mean over the " \
        f"frame" in result.stdout
    assert "PASS: the device's 5 x 5 x 4 result equals the golden model bit for bit" in \
        result.stdout
    y = np.load(tmp_path / "y.npy")
    np.testing.assert_array_equal(y, golden.conv2d(x, *_layer_wb(spec, 1), spec, pad=list(means)))


def _layer_wb(spec, seed):
    """The weights and bias `convaccel run` draws for seed `seed` (its --seed default is 1)."""
    import numpy as np

    from convaccel.cli import random_layer
    _, w, b, _ = random_layer(spec, np.random.default_rng(seed))
    return w, b


@pytest.mark.parametrize("argv, message", [
    (["simulate", "--pad", "mean"], r"--pad needs an engine with run-time pad values: set "
                                    r"pad_runtime = true in the layer \(this one pads with its "
                                    r"pad_value, fixed at generation\)$"),
    (["run", "{example}", "--board", "icebreaker", "--simulate", "--pad", "1,2"],
     r"--pad needs one value, or 3 \(one per input channel\), not 2$"),
    (["simulate", "{example}", "--pad", "-129"],
     r"--pad: pad\[0\] = -129 is outside -128\.\.127; 3 value\(s\) of pad do not fit$"),
    (["simulate", "{model}", "--pad", "0"],
     r"--pad: a \.tflite model pads with its input zero point; give --pad with a TOML layer "
     r"that has pad_runtime = true$"),
])
def test_pad_wrong(capsys, argv, message):
    import re

    from convaccel.cli import main
    argv = [a.format(example=Path(__file__).parents[1] / "examples" / "pad_mean.toml",
                     model=EXAMPLE_MODEL) for a in argv]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert re.fullmatch(r"convaccel: error: " + message + "\n", err), err
    assert "PASS" not in out and "simulating" not in out


def test_pad_option_wrong(capsys):
    from convaccel.cli import main
    with pytest.raises(SystemExit) as e:
        main(["simulate", "--pad", "average"])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "convaccel simulate: error: argument --pad: expected 'mean' or integers separated by "
        "commas (one, or one per input channel), e.g. 0 or 3,-1,7, not 'average'")


EXAMPLE_MODEL = Path(__file__).parents[1] / "examples" / "int8_conv.tflite"


# (`run` is `full`: its simulated board is the default layer's path, which
# test_run_simulated_board runs; `simulate` checks the model against LiteRT by default.)
@pytest.mark.parametrize("verb", ["simulate", pytest.param("run", marks=pytest.mark.full)])
def test_tflite_model_equals_litert(tmp_path, verb):
    # A one-conv int8 model as a user hands it over: the input as the LiteRT interpreter takes
    # it, the output compared with what LiteRT's reference kernels answer; through the engine's
    # Verilog under cocotb with stalls, and through the simulated iCEBreaker's host link.
    import numpy as np

    from tflite_models import run_reference
    x = np.random.default_rng(5).integers(-128, 128, (1, 16, 16, 4)).astype(np.int8)
    x[0, 0, 0, :] = [-128, 127, -128, 127]
    np.save(tmp_path / "x.npy", x)
    where = ["--stall", "0.25", "--seed", "2"] if verb == "simulate" else [
        "--board", "icebreaker", "--simulate"]
    result = run(verb, str(EXAMPLE_MODEL), *where, "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 x 16 x 16 x 4 (NHWC int8) in, 1 x 16 x 16 x 8 (NHWC int8) out" in result.stdout
    if verb == "run":
        assert "PASS: the device's 1 x 16 x 16 x 8 result equals the golden model" in \
            result.stdout
    y = np.load(tmp_path / "y.npy")
    expected = run_reference(EXAMPLE_MODEL.read_bytes(), x)
    assert y.dtype == np.int8 and y.shape == expected.shape
    np.testing.assert_array_equal(y, expected)
    assert len(np.unique(y)) > 32                   # not a clamped constant


def test_tflite_spec():
    result = run("spec", str(EXAMPLE_MODEL))
    assert result.returncode == 0, result.stderr
    assert "output        8 x 16 x 16 (int8, requantized from int21 as TFLite does)" in \
        result.stdout
    assert "(value -6)" in result.stdout              # the input zero point pads the frame
    assert result.stdout.startswith("model int8_conv.tflite: one CONV_2D, int8 (full-integer "
                                    "quantization)\n  input tensor  1 x 16 x 16 x 4 int8, "
                                    "scale 0.02, zero point -6 (the pad value)\n")


@pytest.mark.parametrize("args, message", [
    (["--input", "{wrong_shape}"], r"--input .*: the model's input tensor is 1 x 16 x 16 x 4 "
                                   r"int8 \(NHWC, as the LiteRT interpreter takes it\), not "
                                   r"4 x 16 x 16 int8$"),
    (["--input", "{wrong_dtype}"], r"--input .*: the model's input tensor is 1 x 16 x 16 x 4 "
                                   r"int8 .*, not 1 x 16 x 16 x 4 int64$"),
    (["--weights", "{wrong_dtype}"], r"--weights: a \.tflite model holds its own weights"),
])
def test_tflite_bad_arrays_wrong(tmp_path, args, message):
    import re

    import numpy as np
    np.save(tmp_path / "wrong_shape.npy", np.zeros((4, 16, 16), dtype=np.int8))
    np.save(tmp_path / "wrong_dtype.npy", np.zeros((1, 16, 16, 4), dtype=np.int64))
    args = [a.format(wrong_shape=tmp_path / "wrong_shape.npy",
                     wrong_dtype=tmp_path / "wrong_dtype.npy") for a in args]
    result = run("simulate", str(EXAMPLE_MODEL), *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert re.match(r"^convaccel: error: " + message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("args, message", [
    (["--board", "nope", "--simulate"], "Unknown board 'nope'; choose one of icebreaker"),
    (["--board", "orangecrab-85f", "--simulate"], "has no USB-serial port for the host link"),
])
def test_run_wrong(args, message):
    result = run("run", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("convaccel: error: ") and message in result.stderr


def test_run_needs_port_or_simulate():
    result = run("run", "--board", "icebreaker")
    assert result.returncode == 2 and "one of the arguments --port --simulate is required" in \
        result.stderr


@pytest.mark.parametrize("argv, message", [
    (["generate", "-o", "{blocker}/out"], r"cannot write the design to .*/blocker/out: "),
    (["build", "-o", "{blocker}/out"], r"cannot write the build to .*/blocker/out: "),
    (["spec", "{binary}"], r".*/binary\.toml: the file holds binary data, not a TOML layer "
                           r"configuration"),
    (["generate", "{model}"], r".*/model\.tflite: a damaged \.tflite file \(cut short or "
                              r"corrupted"),
    (["spec", "{binary_model}"], r".*/binary\.tflite: not a \.tflite model"),
    (["simulate", "--output", "{blocker}/y.npy"], r"cannot write the output to .*/y\.npy: "),
    (["simulate", "--output", "{tmp}"], r"cannot write the output to .*: Is a directory"),
    (["simulate", "--waves", "{blocker}/w.vcd"], r"cannot write the waveform to "),
    (["run", "--board", "icebreaker", "--simulate", "--output", "{blocker}/y.npy"],
     r"cannot write the output to "),
])
def test_bad_input_at_the_door_wrong(tmp_path, argv, message):
    # What a new user may hand the command line: one clear line on stderr, exit status 2, no
    # traceback, and (for an output that cannot be written) before any simulation runs.
    import re
    blocker = tmp_path / "blocker"                 # a file where a folder is needed
    blocker.write_text("")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(128, 256)))
    model = tmp_path / "model.tflite"
    model.write_bytes(b"\x1c\x00\x00\x00TFL3\x00\x00\xff\xfe")
    binary_model = tmp_path / "binary.tflite"
    binary_model.write_bytes(bytes(range(128, 256)))
    argv = [a.format(blocker=blocker, binary=binary, model=model, binary_model=binary_model,
                     tmp=tmp_path) for a in argv]
    result = run(*argv)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert re.match(r"^convaccel: error: " + message, result.stderr), result.stderr
    assert "PASS" not in result.stdout and "cycles" not in result.stdout
