"""What every stage of the engine tells about itself before it is elaborated.

A stage is a :class:`~amaranth.lib.wiring.Component` with a stream in and a stream out. Beside
its ports it exposes, from its own parameters, the figures that the rest of convaccel sums
instead of restating: ``latency`` (cycles from a beat taken at its input to the beat it makes
at its output, with nothing stalled) and ``memories`` (a tuple of :class:`MemoryShape`, what
the fit check maps to block RAM, LUT RAM or logic). Stages that shape the cycle model say how
in their own terms (the window generator its positions, the feeder its cycles per window).
"""

from dataclasses import dataclass

from amaranth.hdl import Signal, Value

__all__ = ["MemoryShape", "NO_RW_CHECK", "SCRIPT_NO_RW_CHECK", "drive_registered"]


#: The attributes of a memory that is never read at an address in the cycle that address is
#: written (or whose read in that cycle is never used): ``memory.Memory(..., attrs=NO_RW_CHECK)``.
#: Yosys's name: a block RAM's read during a write to the same address returns an undefined
#: word on iCE40 and ECP5, so without it Yosys keeps the old word in logic beside every block
#: RAM it maps a memory to (a flip-flop per bit and an address comparison: 138 flip-flops and
#: 74 LUTs for a 65-bit queue on the UP5K).
NO_RW_CHECK = {"no_rw_check": 1}

#: Yosys commands, run after reading the design and before ``synth_<family>``, that give the
#: synchronous read ports of every memory with :data:`NO_RW_CHECK` an undefined word on a
#: collision with a write port (``RD_COLLISION_X_MASK``). Yosys honours the attribute itself
#: only where it merges a read port's register into the port (``memory_dff``: the design read
#: from Verilog), and Amaranth's RTLIL has its read ports synchronous already. (Memories of up
#: to 4 read ports, all synchronous, and 2 write ports; others keep Yosys's emulation.)
SCRIPT_NO_RW_CHECK = "\n".join(
    ["proc", "memory_collect"]
    + [f"setparam -set RD_COLLISION_X_MASK {r * w}'b{'1' * (r * w)} t:$mem_v2 a:no_rw_check %i "
       f"r:RD_PORTS={r} %i r:WR_PORTS={w} %i r:RD_CLK_ENABLE={r}'b{'1' * r} %i"
       for r in range(1, 5) for w in range(1, 3)])


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
    no_rw_check : bool
        Marked :data:`NO_RW_CHECK` (never read at the address being written).
    """

    name: str
    width: int
    depth: int
    count: int = 1
    rom: bool = False
    no_rw_check: bool = False

    def __post_init__(self):
        for field in ("width", "depth", "count"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MemoryShape {field} must be a positive integer, not {value!r}")

    @property
    def bits(self):
        return self.width * self.depth * self.count


def drive_registered(m, port, value, *, reset_less=True):
    """Drive `port` from a register of `value` (in `m`'s sync domain). By default the register
    has no reset: data that matters only beside a valid flag or an enable (which keep theirs),
    so that the reset net reaches the control's flip-flops, not every data bit (on the ECP5 a
    LUT drove the 128-PE engine's reset to 9197 flip-flops through the fabric)."""
    reg = Signal.like(port, name=f"{Value.cast(port).name}_reg", reset_less=reset_less)
    m.d.sync += reg.eq(value)
    m.d.comb += port.eq(reg)
