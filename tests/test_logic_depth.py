"""benchmarks/logic_depth.py on a hand-made iCE40 netlist: LUT levels and arrival estimates."""
import importlib.util
from pathlib import Path

import pytest
from helpers import netlist_cell

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "logic_depth.py"
_spec = importlib.util.spec_from_file_location("logic_depth", _PATH)
logic_depth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(logic_depth)


def _cell(kind, **ports):
    return netlist_cell(kind, {"Q", "O", "CO"}, **ports)


def _module():
    # ff_a -> lut_1 -> lut_2 -> ff_b.D (two levels); ff_a -> carry -> carry -> lut_3 (from a
    # carry: no route) -> ff_c.D; ff_b's enable straight from ff_a (no LUT)
    cells = {
        "ff_a": _cell("SB_DFF", C=1, D=2, Q=10),
        "lut_1": _cell("SB_LUT4", I0=10, I1="0", I2="0", I3="0", O=11),
        "lut_2": _cell("SB_LUT4", I0=11, I1=10, I2="0", I3="0", O=12),
        "ff_b": _cell("SB_DFFE", C=1, D=12, E=10, Q=13),
        "carry_1": _cell("SB_CARRY", I0=10, I1="0", CI="0", CO=20),
        "carry_2": _cell("SB_CARRY", I0="0", I1="0", CI=20, CO=21),
        "lut_3": _cell("SB_LUT4", I0="0", I1="0", I2="0", I3=21, O=22),
        "ff_c": _cell("SB_DFF", C=1, D=22, Q=23),
    }
    names = {"clk": 1, "a": 10, "x": 11, "y": 12, "b": 13, "c0": 20, "c1": 21, "s": 22, "c": 23,
             "d": 2}
    return {"cells": cells,
            "netnames": {n: {"bits": [b], "hide_name": 0} for n, b in names.items()}}


def test_levels_and_estimates():
    ld = logic_depth
    endpoints, names = ld.analyse(_module())
    found = {(e[3], e[4]): e for e in endpoints}
    t, levels, *_, path = found["ff_b", "D"]
    assert levels == 2
    assert t == pytest.approx(ld.CLK_TO_Q + 2 * (ld.LUT + ld.ROUTE) + ld.ROUTE + ld.SETUP)
    assert [names[b] for b in path] == ["a", "x", "y"]
    t, levels, *_ = found["ff_b", "E"]
    assert levels == 0 and t == pytest.approx(ld.CLK_TO_Q + ld.ROUTE + ld.SETUP)
    t, levels, *_, path = found["ff_c", "D"]
    assert levels == 1
    assert t == pytest.approx(ld.CLK_TO_Q + ld.CARRY_IN + ld.ROUTE + ld.CARRY + ld.LUT +
                              ld.ROUTE + ld.SETUP)
    assert [names[b] for b in path] == ["a", "c0", "c1", "s"]
    # undriven inputs (ff_a's D) are not timed
    assert ("ff_a", "D") not in found


def test_report(tmp_path, capsys):
    import json
    design = {"modules": {"top": {**_module(), "attributes": {"top": 1}}}}
    netlist = tmp_path / "top.json"
    netlist.write_text(json.dumps(design))
    # at 150 MHz (6.67 ns) the two-level path is late, the others are not
    logic_depth.main([str(netlist), "--mhz", "150"])
    out = capsys.readouterr().out
    assert "LUT levels: 0: 1, 1: 1, 2: 1" in out
    assert "ff_b" not in out and " b.D: a -> x -> y" in out
