"""benchmarks/reset_fanout.py on a hand-made netlist: which flip-flops a reset reaches."""
import importlib.util
from pathlib import Path

from helpers import netlist_cell

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "reset_fanout.py"
_spec = importlib.util.spec_from_file_location("reset_fanout", _PATH)
reset_fanout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reset_fanout)


def _cell(kind, **ports):
    return netlist_cell(kind, {"Q", "Y"}, **ports)


def _netlist():
    # rst -> two flip-flops of core.a.ctrl (4 bits); rst | clear (an $or) -> core.b.count
    # (3 bits); a constant load decided by `load` alone (opt_dff's "reset" of logic) ->
    # core.b.pixel (8 bits); a plain $dff -> core.a.data (16 bits)
    cells = {
        "or": _cell("$or", A=1, B=2, Y=3),
        "ff1": _cell("$sdff", CLK=9, D=[20, 21], SRST=1, Q=[30, 31]),
        "ff2": _cell("$sdffe", CLK=9, D=[22, 23], EN=2, SRST=1, Q=[32, 33]),
        "ff3": _cell("$sdffce", CLK=9, D=[24, 25, 26], EN=2, SRST=3, Q=[34, 35, 36]),
        "ff4": _cell("$sdff", CLK=9, D=list(range(40, 48)), SRST=4, Q=list(range(50, 58))),
        "ff5": _cell("$dff", CLK=9, D=list(range(60, 76)), Q=list(range(80, 96))),
    }
    nets = {"rst": [1], "clear": [2], "rst_or_clear": [3], "load": [4], "clk": [9],
            "core.a.ctrl": [30, 31, 32, 33], "core.b.count": [34, 35, 36],
            "core.b.pixel": list(range(50, 58)), "core.a.data": list(range(80, 96))}
    return {"modules": {"top": {
        "attributes": {"top": 1}, "cells": cells,
        "netnames": {n: {"bits": b, "hide_name": 0} for n, b in nets.items()}}}}


def test_reset_nets_and_parts():
    nets, others = reset_fanout.reset_fanout(_netlist(), depth=2)
    assert {net: bits for net, (bits, _) in nets.items()} == {"rst": 4, "rst_or_clear": 3}
    assert dict(nets["rst"][1]) == {"a.ctrl": 4}
    assert dict(nets["rst_or_clear"][1]) == {"b.count": 3}
    # the constant load is not a reset; the plain flip-flops have none
    assert dict(others) == {"b.pixel": 8, "a.data": 16}


def test_part_names():
    assert reset_fanout.part_of("core.app.link.engine.output.acc", 3) == "app.link.engine"
    assert reset_fanout.part_of("rst", 3) == "(top)"
