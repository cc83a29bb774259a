"""Boards: the registry, board tops hosting the engine, the open build flow, programming.

Each supported board is one module here that registers a :class:`Board`; to add one, write
such a module (copy the nearest board of the same family) and add it to the import below.
"""

# The supported boards, in the order `convaccel boards` lists them; importing registers them.
from . import icebreaker, ulx3s, orangecrab, tangnano9k
from .board import FAMILIES, RESOURCE_NAMES, Board, boards, get_board, register

__all__ = ["Board", "FAMILIES", "RESOURCE_NAMES", "register", "get_board", "boards",
           "DEFAULT_BOARD", "icebreaker", "ulx3s", "orangecrab", "tangnano9k"]

#: The board `convaccel build` uses when none is given, and `make demo` builds for.
DEFAULT_BOARD = "icebreaker"
