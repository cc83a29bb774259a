"""What every stage of the engine tells about itself before it is elaborated.

A stage is a :class:`~amaranth.lib.wiring.Component` with a stream in and a stream out. Beside
its ports it exposes, from its own parameters, the figures that the rest of convaccel sums
instead of restating: ``latency`` (cycles from a beat taken at its input to the beat it makes
at its output, with nothing stalled) and ``memories`` (a tuple of :class:`MemoryShape`, what
the fit check maps to block RAM, LUT RAM or logic). Stages that shape the cycle model say how
in their own terms (the window generator its positions, the feeder its cycles per window).
"""

from dataclasses import dataclass

__all__ = ["MemoryShape"]


@dataclass(frozen=True)
class MemoryShape:
    """One memory of a stage, as the fit check needs it.

    Parameters
    ----------
    name : str
        What it holds, for reports (``"line buffer"``, ``"PE weights"``).
    width, depth : int
        Bits per word and words.
    count : int
        Identical memories (e.g. one per PE).
    rom : bool
        Read-only (its contents fixed at generation).
    """

    name: str
    width: int
    depth: int
    count: int = 1
    rom: bool = False

    def __post_init__(self):
        for field in ("width", "depth", "count"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MemoryShape {field} must be a positive integer, not {value!r}")

    @property
    def bits(self):
        return self.width * self.depth * self.count
