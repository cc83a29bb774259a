"""The command line, run as a user runs it."""

import json
import subprocess
import sys

import pytest

import convaccel
from convaccel import DEFAULT_SPEC


def run(*args):
    return subprocess.run([sys.executable, "-m", "convaccel.cli", *args], capture_output=True,
                          text=True)


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
