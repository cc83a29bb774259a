"""The board registry: what convaccel needs to know about a board beyond its amaranth-boards
platform (device capacities, default clock, LEDs, host-link pins, programmer).

Each supported board is one small module in this package that calls :func:`register`.
"""

import re
from dataclasses import dataclass, field

__all__ = ["FAMILIES", "RESOURCE_NAMES", "Board", "boards", "get_board", "register"]

#: The FPGA families the build flow knows: their toolchain and PLL.
FAMILIES = ("ice40", "ecp5", "gowin")

#: The device resources in a summary, in order: name -> what it counts.
RESOURCE_NAMES = {
    "logic": "logic cells (LUT4 + flip-flop pairs) or LUT4s",
    "lut": "4-input LUTs",
    "ff": "flip-flops",
    "dsp": "DSP multiplier blocks",
    "bram": "block RAMs",
    "spram": "single-port RAMs (iCE40 UltraPlus)",
}


@dataclass(frozen=True)
class Board:
    """A board convaccel builds for.

    Parameters
    ----------
    name : str
        The name the command line takes (``--board``).
    title : str
        The board's full name.
    platform : callable
        Returns a fresh amaranth-boards platform instance.
    family : str
        One of :data:`FAMILIES`.
    device : str
        The FPGA part, as the summary reports it.
    resources : dict
        Device capacities: ``{"logic"|"lut"|"ff"|"dsp"|"bram"|"spram": count}``.
    bram_bits : int
        Bits of one block RAM.
    clock_mhz : float
        The board oscillator.
    default_mhz : float
        The engine clock when ``--freq`` is not given (made by the PLL).
    pll_pad : bool
        iCE40 only: the oscillator pin is a PLL pad (``SB_PLL40_PAD``).
    leds : dict
        Status role (``"pass"``, ``"fail"``, ``"busy"``, ``"done"``, ``"error"``,
        ``"heartbeat"``) ->
        ``(resource, number)`` or ``(resource, number, subsignal)``.
    extra_resources : str or None
        Name of a platform attribute with resources to add (e.g. a break-off PMOD).
    uart : bool
        The board has ``uart`` 0: the host link's pins (TX held idle until the link lands).
    programmer : tuple
        openFPGALoader arguments before the bitstream (e.g. ``("-b", "ice40_generic")``);
        empty if openFPGALoader cannot program this board.
    bitstream_ext : str
        The extension of the file to program (``"bin"``, ``"bit"``, ``"fs"``).
    build_options : dict
        Extra keyword overrides for ``platform.build`` (e.g. ``synth_opts``).
    """

    name: str
    title: str
    platform: object
    family: str
    device: str
    resources: dict
    bram_bits: int
    clock_mhz: float
    default_mhz: float
    leds: dict
    programmer: tuple = ()
    bitstream_ext: str = "bit"
    pll_pad: bool = False
    extra_resources: str | None = None
    uart: bool = True
    build_options: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", self.name):
            raise ValueError(f"Board name must be lower-case letters, digits and '-', "
                             f"like 'icebreaker', not {self.name!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"Board family must be one of {', '.join(FAMILIES)}, "
                             f"not {self.family!r}")
        unknown = sorted(set(self.resources) - set(RESOURCE_NAMES))
        if unknown:
            raise ValueError(f"Board resource {unknown[0]!r} is unknown; use "
                             f"{', '.join(RESOURCE_NAMES)}")


_REGISTRY = {}


def register(board):
    """Add `board` to the registry (its name must be new); returns it."""
    if not isinstance(board, Board):
        raise TypeError(f"register() takes a Board, not {board!r}")
    if board.name in _REGISTRY:
        raise ValueError(f"A board named {board.name!r} is already registered")
    _REGISTRY[board.name] = board
    return board


def boards():
    """Every registered board, in registration order."""
    return list(_REGISTRY.values())


def get_board(name):
    """The board called `name`; a ValueError lists the valid names."""
    if name not in _REGISTRY:
        raise ValueError(f"Unknown board {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]
