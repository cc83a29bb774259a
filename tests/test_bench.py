# amaranth: UnusedElaboratable=no
"""``convaccel bench``: the quick suite (amaranth.sim), its figures and its refusals.

The full bench (Verilator, builds with several seeds) takes an hour; the quick suite runs the
same code on small layers: the measured cycles must equal the model's, every output the golden
model's, and the utilization must be the one the measured cycles give."""

import dataclasses
import json
import re

import pytest

from convaccel import cli
from convaccel.bench import (LAYERS, QUICK_LAYERS, BenchTop, bench_array, bench_specs,
                             build_failure, overflow, peak_macs_per_cycle, run_bench,
                             write_results)
from convaccel.boards import get_board
from convaccel.boards.fit import _pe_dsps
from convaccel.spec import ConvSpec, Folding


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    # every quick layer on the iCEBreaker (PEs paired on SB_MAC16), two on the Tang Nano 9K
    # (an array of 40 PEs)
    results = run_bench(quick=True, boards=["icebreaker"], out=out, log=lambda *a: None)
    results = run_bench(quick=True, boards=["tangnano9k"], layers=["quick_pw", "quick_7x7_s2"],
                        out=out, previous=results, log=lambda *a: None)
    return results, out


def test_quick_cycles_equal_the_model(quick):
    results, _ = quick
    assert len(results["rows"]) == len(QUICK_LAYERS) + 2
    for row in results["rows"]:
        board = get_board(row["board"])
        layer = dataclasses.replace(QUICK_LAYERS[row["layer"]][1], name=row["layer"])
        spec = ConvSpec.of(layer, Folding(row["rows"], row["cols"]))
        assert row["sim"]["matches"], row
        # the engine's own counters, read after the frame's last result
        assert row["cycles"] == spec.cycles, row
        assert row["sim"]["macs_counted"] == spec.macs
        # the array is the fit search's, within the device's multipliers
        assert (row["rows"], row["cols"]) == bench_array(ConvSpec.of(layer), board)
        assert _pe_dsps(board.family, spec) <= board.resources["dsp"]


def test_quick_utilization_from_measured_cycles(quick):
    results, _ = quick
    for row in results["rows"]:
        pes = row["rows"] * row["cols"]
        assert row["pes"] == pes
        assert row["utilization"] == pytest.approx(row["macs"] / (pes * row["cycles"]),
                                                   abs=1e-4)
        assert row["macs_per_cycle"] == pytest.approx(row["macs"] / row["cycles"], abs=1e-3)
        assert row["ideal_cycles"] == -(-row["macs"] // pes) <= row["cycles"]
        assert 0 < row["utilization"] <= 1


def test_quick_writes_results(quick):
    results, out = quick
    paths = write_results(results, out)
    assert json.loads((out / "results.json").read_text())["rows"] == results["rows"]
    table = (out / "results.md").read_text().splitlines()
    assert len(table) == 2 + len(results["rows"])
    first = results["rows"][0]
    pes = first["rows"] * first["cols"]
    assert table[2].startswith(f"| quick_5x5_valid | icebreaker | {first['rows']} x "
                               f"{first['cols']} ({pes}) |")
    assert (out / "utilization.png") in paths and (out / "utilization.png").stat().st_size


def test_peak_is_every_multiplier():
    # iCE40 UP5K: 8 SB_MAC16, two int8 products each; ECP5 85F: 156 MULT18X18D; GW1NR-9:
    # 40 9x9 multipliers
    assert peak_macs_per_cycle(get_board("icebreaker")) == 16
    assert peak_macs_per_cycle(get_board("ulx3s-85f")) == 156
    assert peak_macs_per_cycle(get_board("tangnano9k")) == 40


def test_suite_fills_the_ice40():
    # LeNet-5's first layer takes all 8 SB_MAC16, two PEs each
    (_, _, spec), = bench_specs({"lenet5_conv1": LAYERS["lenet5_conv1"]},
                                get_board("icebreaker"))
    assert spec.pe_count == 16 and spec.rows % 2 == 0


@pytest.mark.parametrize("board", ["icebreaker", "ulx3s-85f"])
def test_bench_top_elaborates(board, tmp_path):
    # the build's design, prepared without running the tools
    board = get_board(board)
    layer = dataclasses.replace(QUICK_LAYERS["quick_pw"][1], name="quick_pw")
    spec = ConvSpec.of(layer, Folding(*bench_array(ConvSpec.of(layer), board)))
    platform = board.platform()
    plan = platform.build(BenchTop(board, spec, f_mhz=board.default_mhz), name="quick_pw",
                          build_dir=str(tmp_path), do_build=False)
    assert "nextpnr" in plan.files[f"{plan.script}.sh"].lower()


@pytest.mark.parametrize("args, message", [
    (["--layers", "lenet"], r"^convaccel: error: Unknown bench layer 'lenet'; choose from "
                            r"lenet5_conv1, lenet5_conv2, "),
    (["--quick", "--layers", "resnet_3x3"], r"^convaccel: error: Unknown bench layer "
                                            r"'resnet_3x3'; choose from quick_5x5_valid, "),
    (["--boards", "icebreaker,de10"], r"^convaccel: error: --boards: Unknown board 'de10'; "
                                      r"choose one of icebreaker, "),
    (["--seeds", "0"], r"^convaccel: error: --seeds must be a positive integer, like 3, "
                       r"not 0$"),
])
def test_bench_wrong(args, message, capsys, tmp_path):
    assert cli.main(["bench", "--no-build", "--out", str(tmp_path), *args]) == 2
    assert re.match(message, capsys.readouterr().err)


def test_bench_names_wrong(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--boards", ","])
    assert re.search(r"argument --boards: expected names separated by commas, not ','$",
                     capsys.readouterr().err.strip())


def test_overflow_from_nextpnr_log(tmp_path):
    log = tmp_path / "x.tim"
    log.write_text("Info: Device utilisation:\nInfo: \t         ICESTORM_LC:    5885/   5280   "
                   "111%\nInfo: \t        ICESTORM_RAM:      25/     30    83%\n")
    assert overflow(log) == "5885 of 5280 ICESTORM_LC (111%)"
    log.write_text("Info: \t        ICESTORM_RAM:      25/     30    83%\n")
    assert overflow(log) is None


def test_build_failure_from_logs(tmp_path):
    (tmp_path / "x.tim").write_text(
        "Info: \t                 VCC:       1/      1   100%\nInfo: \t                LUT4:    "
        "3172/   8640    36%\nInfo: \t                 DFF:    5721/   6480    88%\nERROR: Unable "
        "to find legal placement for all cells, design is probably at utilisation limit.\n")
    assert build_failure(tmp_path, "x", "gowin", 125) == (
        "nextpnr: Unable to find legal placement for all cells, design is probably at "
        "utilisation limit. (5721 of 6480 DFF used)")
    (tmp_path / "x.tim").unlink()
    (tmp_path / "x.rpt").write_text("2.46.17.7. Executing ABC_OPS\nERROR: Assert failed\n")
    assert build_failure(tmp_path, "x", "ecp5", 1) == "Yosys failed: Assert failed"
