"""Boards: the registry, board tops hosting the engine, the open build flow, programming.

Each supported board is one module here that registers a :class:`Board`; to add one, write
such a module (copy the nearest board of the same family) and add its name to
:data:`_BOARD_MODULES` below.
"""

import importlib

from .board import FAMILIES, RESOURCE_NAMES, Board, boards, get_board, register

__all__ = ["DEFAULT_BOARD", "FAMILIES", "RESOURCE_NAMES", "Board", "boards", "get_board",
           "register"]

#: The supported boards' modules, in the order `convaccel boards` lists them; importing one
#: registers its board.
_BOARD_MODULES = ("icebreaker", "ulx3s", "orangecrab", "tangnano9k")
for _module in _BOARD_MODULES:
    importlib.import_module(f".{_module}", __name__)

#: The board `convaccel build` uses when none is given, and `make demo` builds for.
DEFAULT_BOARD = "icebreaker"
