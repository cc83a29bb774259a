"""iCE40 primitives instantiated by hand where Yosys's mapping falls short.

Yosys's ``synth_ice40 -dsp`` maps every multiplier to an SB_MAC16 in its 16 x 16 mode: one
product per block. The block also has a dual 8 x 8 mode (two independent products, each from
one byte of ``A`` and one byte of ``B``) that no Yosys pass infers, so :class:`DualMul8x8`
instantiates it.

That mapping must be kept away from the hand-made cells: its register-packing pass
(``ice40_dsp``) takes every SB_MAC16 in the design for one of its own 16 x 16 multipliers and
rewrites its whole configuration (MODE_8x8 off, registers and outputs its way: wrong products,
silently; YosysHQ/yosys#2922). A synthesis of a design that holds :class:`DualMul8x8` runs
:data:`SCRIPT_BEFORE_SYNTH` before ``synth_ice40`` (the hand-made cells become a black box of
another name, which no pass touches) and :data:`SCRIPT_AFTER_SYNTH` after it (SB_MAC16 again,
for nextpnr); the board flow, :mod:`convaccel.boards.cost` and :mod:`convaccel.boards.netlist`
do, and the post-synthesis simulation (tests/test_postsynth.py) proves the result.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.vendor import SiliconBluePlatform

from .ecp5 import Mul18x18

__all__ = ["DualMul8x8", "SCRIPT_AFTER_SYNTH", "SCRIPT_BEFORE_SYNTH", "dual_mul_fits",
           "is_ice40"]

_MAC16_PARAMS = (
    "NEG_TRIGGER", "C_REG", "A_REG", "B_REG", "D_REG", "TOP_8x8_MULT_REG", "BOT_8x8_MULT_REG",
    "PIPELINE_16x16_MULT_REG1", "PIPELINE_16x16_MULT_REG2", "TOPOUTPUT_SELECT",
    "TOPADDSUB_LOWERINPUT", "TOPADDSUB_UPPERINPUT", "TOPADDSUB_CARRYSELECT", "BOTOUTPUT_SELECT",
    "BOTADDSUB_LOWERINPUT", "BOTADDSUB_UPPERINPUT", "BOTADDSUB_CARRYSELECT", "MODE_8x8",
    "A_SIGNED", "B_SIGNED")

#: The hand-made SB_MAC16's name while Yosys synthesizes.
_HIDDEN_MAC16 = "CONVACCEL_SB_MAC16"

#: Yosys commands to run after reading a design with :class:`DualMul8x8` and before
#: ``synth_ice40`` (a Yosys script, not a ``-p`` line: it holds a here-document). Every SB_MAC16
#: at that point is a hand-made one (the multipliers that ``-dsp`` maps are still ``$mul``).
SCRIPT_BEFORE_SYNTH = (
    f"chtype -set {_HIDDEN_MAC16} t:SB_MAC16\n"
    "read_verilog -lib <<EOT\n"
    "(* blackbox *)\n"
    f"module {_HIDDEN_MAC16} (input CLK, CE, input [15:0] C, A, B, D, input AHOLD, BHOLD, "
    "CHOLD, DHOLD, IRSTTOP, IRSTBOT, ORSTTOP, ORSTBOT, OLOADTOP, OLOADBOT, ADDSUBTOP, "
    "ADDSUBBOT, OHOLDTOP, OHOLDBOT, CI, ACCUMCI, SIGNEXTIN, output [31:0] O, output CO, "
    "ACCUMCO, SIGNEXTOUT);\n"
    + "".join(f"parameter {p} = 0;\n" for p in _MAC16_PARAMS) +
    "endmodule\n"
    "EOT")

#: Yosys commands to run after ``synth_ice40``: the hand-made cells are SB_MAC16 again.
SCRIPT_AFTER_SYNTH = f"chtype -set SB_MAC16 t:{_HIDDEN_MAC16}"


def is_ice40(platform):
    """`platform` is an iCE40 (SiliconBlue) platform, whose SB_MAC16 :class:`DualMul8x8`
    instantiates."""
    return isinstance(platform, SiliconBluePlatform)


def dual_mul_fits(a_shape, b_shape):
    """Both operands fit one byte of an SB_MAC16 in its dual 8 x 8 mode: at most 8 bits each,
    signed or unsigned (the block sign-extends a byte or not, per operand)."""
    return Shape.cast(a_shape).width <= 8 and Shape.cast(b_shape).width <= 8


def _product_shape(a_shape, b_shape):
    a_shape, b_shape = Shape.cast(a_shape), Shape.cast(b_shape)
    # 8 x 8 bits make at most 16: -128 * -128 = 2^14, 255 * -128 = -32640, 255 * 255 < 2^16.
    return signed(16) if a_shape.signed or b_shape.signed else unsigned(16)


class DualMul8x8(wiring.Component):
    """Two independent products of byte-wide operands, ``p0 = a0 * b0`` and ``p1 = a1 * b1``.

    On an iCE40 platform this is one SB_MAC16 in its dual 8 x 8 mode with its input and
    multiplier registers on and both outputs the registered products (the configuration that
    iCEcube calls MUL_S_8X8_ALL_PIPELINE, unsigned operands where the shapes are): ``a0``/``b0``
    in the low bytes of ``A``/``B``, ``p0`` in ``O[15:0]``; ``a1``/``b1`` in the high bytes,
    ``p1`` in ``O[31:16]``. Elsewhere two :class:`~convaccel.hdl.ecp5.Mul18x18` with the same
    two registered stages (on ECP5 two MULT18X18D with their registers on; in simulation and
    on other families plain Amaranth, which their DSP mapping takes as any multiplier).

    Latency: operands in cycle ``T``, their products in cycle ``T + latency``; one pair of
    products per cycle. The registers have no reset (the block's have none that the
    synchronous reset could drive).

    Parameters
    ----------
    a_shape, b_shape : shape-castable
        The operands; each at most 8 bits (:func:`dual_mul_fits`).

    Members
    -------
    a0, a1 : In(a_shape)
    b0, b1 : In(b_shape)
    p0, p1 : Out(signed(16) or unsigned(16))
        Signed if either operand is.
    """

    latency = 2

    def __init__(self, *, a_shape, b_shape):
        if not dual_mul_fits(a_shape, b_shape):
            raise ValueError(f"DualMul8x8 takes operands of at most 8 bits, not "
                             f"{Shape.cast(a_shape)!r} and {Shape.cast(b_shape)!r}")
        self._a_shape = Shape.cast(a_shape)
        self._b_shape = Shape.cast(b_shape)
        product = _product_shape(a_shape, b_shape)
        super().__init__({
            "a0": In(a_shape), "a1": In(a_shape),
            "b0": In(b_shape), "b1": In(b_shape),
            "p0": Out(product), "p1": Out(product),
        })

    def _byte(self, m, value, shape):
        # One operand widened to its byte as the block reads it: sign- or zero-extended.
        byte = Signal(signed(8) if shape.signed else unsigned(8))
        m.d.comb += byte.eq(value)
        return byte

    def elaborate(self, platform):
        m = Module()
        a_shape, b_shape = self._a_shape, self._b_shape
        if is_ice40(platform):
            a = Cat(self._byte(m, self.a0, a_shape), self._byte(m, self.a1, a_shape))
            b = Cat(self._byte(m, self.b0, b_shape), self._byte(m, self.b1, b_shape))
            o = Signal(32)
            m.submodules.mac = Instance(
                "SB_MAC16",
                p_NEG_TRIGGER=C(0, 1),
                p_A_REG=C(1, 1), p_B_REG=C(1, 1), p_C_REG=C(0, 1), p_D_REG=C(0, 1),
                p_TOP_8x8_MULT_REG=C(1, 1), p_BOT_8x8_MULT_REG=C(1, 1),
                p_PIPELINE_16x16_MULT_REG1=C(0, 1), p_PIPELINE_16x16_MULT_REG2=C(0, 1),
                # 2: the 8 x 8 product (registered, above) on each half of O
                p_TOPOUTPUT_SELECT=C(2, 2), p_TOPADDSUB_LOWERINPUT=C(0, 2),
                p_TOPADDSUB_UPPERINPUT=C(0, 1), p_TOPADDSUB_CARRYSELECT=C(0, 2),
                p_BOTOUTPUT_SELECT=C(2, 2), p_BOTADDSUB_LOWERINPUT=C(0, 2),
                p_BOTADDSUB_UPPERINPUT=C(0, 1), p_BOTADDSUB_CARRYSELECT=C(0, 2),
                p_MODE_8x8=C(1, 1),
                p_A_SIGNED=C(int(a_shape.signed), 1), p_B_SIGNED=C(int(b_shape.signed), 1),
                i_CLK=ClockSignal(), i_CE=C(1, 1),
                i_A=a, i_B=b, i_C=C(0, 16), i_D=C(0, 16),
                i_AHOLD=C(0, 1), i_BHOLD=C(0, 1), i_CHOLD=C(0, 1), i_DHOLD=C(0, 1),
                i_IRSTTOP=C(0, 1), i_IRSTBOT=C(0, 1), i_ORSTTOP=C(0, 1), i_ORSTBOT=C(0, 1),
                i_OLOADTOP=C(0, 1), i_OLOADBOT=C(0, 1), i_ADDSUBTOP=C(0, 1),
                i_ADDSUBBOT=C(0, 1), i_OHOLDTOP=C(0, 1), i_OHOLDBOT=C(0, 1),
                i_CI=C(0, 1), i_ACCUMCI=C(0, 1), i_SIGNEXTIN=C(0, 1),
                o_O=o,
            )
            m.d.comb += [self.p0.eq(o[:16]), self.p1.eq(o[16:])]
        else:
            # Two multipliers with the block's registers, in the same places: operands, then
            # products (on ECP5 each a MULT18X18D with its own registers).
            for n, (a, b, p) in enumerate([(self.a0, self.b0, self.p0),
                                           (self.a1, self.b1, self.p1)]):
                m.submodules[f"mul{n}"] = mul = Mul18x18(a_shape=a_shape, b_shape=b_shape)
                m.d.comb += [mul.a.eq(a), mul.b.eq(b), p.eq(mul.p)]
        return m
