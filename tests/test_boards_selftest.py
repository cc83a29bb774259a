"""The board self-test in cocotb, on its generated Verilog, for the default layer: it passes
frame after frame, and fails when one word of its expected-output ROM is corrupted."""

import pytest
from amaranth.back import verilog
from convaccel.boards.selftest import SelfTest, selftest_data

from convaccel import DEFAULT_SPEC, golden
from convaccel.tools import setup_environment


def _run(tmp_path, expected, expect, frames=2):
    runner = pytest.importorskip("convaccel.sim.runner")
    spec = DEFAULT_SPEC
    x, w, b = selftest_data(spec)
    setup_environment()                          # Amaranth's Verilog back end runs Yosys
    text = verilog.convert(SelfTest(spec, x, w, b, expected=expected), name="selftest")
    path = tmp_path / "selftest.v"
    path.write_text(text)
    simulator = runner.default_simulator()
    build_dir = runner.cache_dir() / "sim" / \
        f"selftest-{simulator}-{runner.build_key(text, simulator)}"
    try:
        result = runner.run_cocotb(
            path, "selftest", "convaccel.boards.tb_selftest", build_dir=build_dir,
            test_dir=tmp_path / "run", simulator=simulator,
            extra_env={"SELFTEST_EXPECT": expect, "SELFTEST_FRAMES": frames,
                       "SELFTEST_FRAME_CYCLES": spec.cycles})
    except runner.SimulatorMissing as e:
        pytest.skip(str(e))
    assert result.tests == 1 and result.failures == 0, (result.test_dir / "sim.log").read_text()


def test_selftest_passes_in_cocotb(tmp_path):
    _run(tmp_path, None, "pass")


def test_selftest_fails_with_a_corrupt_rom_in_cocotb(tmp_path):
    x, w, b = selftest_data(DEFAULT_SPEC)
    expected = golden.conv2d(x, w, b, DEFAULT_SPEC)
    expected[5, 9, 3] ^= 1 << 4                  # one bit of one word, mid-frame
    _run(tmp_path, expected, "fail")
