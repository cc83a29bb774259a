"""ECP5 primitives instantiated by hand where Yosys's mapping falls short.

Yosys's ``synth_ecp5`` maps a multiplier to a MULT18X18D with every register of the block off
(``techlibs/ecp5/dsp_map.v``) and packs no flip-flop into it: a registered product stays a
fabric register after a combinational DSP, and the path from the operands' registers through
the routing into the block, its whole multiplier and back out to the product's register is one
clock period (5.4 ns for the multiplier alone at speed grade 6, by nextpnr's timing data; the
128-PE ULX3S build of stop 21 reached 59.62 MHz of 80 on such paths). :class:`Mul18x18`
instantiates the block with its input and output registers on, which nextpnr times as
registers (its ``MULT18X18D_REGS_ALL`` timing class), so the multiplier has a clock period to
itself and the routing into and out of the block another each.

Yosys ships no simulation model of MULT18X18D in its registered modes (``cells_sim.v``'s model
refuses them), so the post-synthesis check (tests/test_postsynth.py) reads a model of the
block's documented behaviour in :data:`MULT18X18D_SIM`.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.vendor import LatticeECP5Platform

__all__ = ["MULT18X18D_SIM", "Mul18x18", "SYNTH_OPTS", "is_ecp5", "mul18_fits"]

#: ``synth_ecp5`` options for a design that holds :class:`Mul18x18`: YoWASP's Yosys 0.70 stops
#: without a message inside ABC9 on such a design (a MULT18X18D with its registers on, behind
#: Amaranth's Verilog; Debian's Yosys 0.23 maps the same file), unless ABC9 also maps the
#: flip-flops (``-dff``), which it then does.
SYNTH_OPTS = "-dff"

#: The block's operand width: both operands are read as signed 18-bit numbers here (a narrower
#: operand is sign- or zero-extended in the wiring, which costs no logic).
_WIDTH = 18


def is_ecp5(platform):
    """`platform` is an ECP5 platform, whose MULT18X18D :class:`Mul18x18` instantiates."""
    return isinstance(platform, LatticeECP5Platform)


def _signed_width(shape):
    # The bits of a two's complement number that holds every value of `shape`.
    shape = Shape.cast(shape)
    return shape.width if shape.signed else shape.width + 1


def mul18_fits(a_shape, b_shape):
    """Both operands fit the block's signed 18-bit inputs (an unsigned operand of at most 17
    bits, a signed one of at most 18)."""
    return _signed_width(a_shape) <= _WIDTH and _signed_width(b_shape) <= _WIDTH


class Mul18x18(wiring.Component):
    """The product ``p = a * b`` of two operands of up to 18 bits.

    On an ECP5 platform (and operands that :func:`mul18_fits`) this is one MULT18X18D with its
    input registers (A and B) and its output register on, the pipeline register off, both
    operands signed 18-bit. Elsewhere the same two registered stages in plain Amaranth.

    Latency: operands in cycle ``T``, their product in cycle ``T + latency``; one product per
    cycle. The registers have no reset (the block's reset input is tied off; the array that
    uses it never reads a product it did not feed).

    Parameters
    ----------
    a_shape, b_shape : shape-castable

    Members
    -------
    a : In(a_shape)
    b : In(b_shape)
    p : Out(signed(wa + wb) or unsigned(wa + wb))
        Signed if either operand is; wide enough for every product.
    """

    latency = 2

    def __init__(self, *, a_shape, b_shape):
        self._a_shape = Shape.cast(a_shape)
        self._b_shape = Shape.cast(b_shape)
        width = self._a_shape.width + self._b_shape.width
        signed_product = self._a_shape.signed or self._b_shape.signed
        super().__init__({
            "a": In(a_shape), "b": In(b_shape),
            "p": Out(signed(width) if signed_product else unsigned(width)),
        })

    def elaborate(self, platform):
        m = Module()
        if is_ecp5(platform) and mul18_fits(self._a_shape, self._b_shape):
            # Each operand in the block's top bits (an unsigned one below a zero sign bit),
            # zeros under it: a narrow operand's sign is not copied to the pins above it (an
            # int8 PE's two signs took 20 more routed pins a block, at the DSP rows where the
            # 128-PE build congested); constant pins are the interface tile's ties, not
            # routing. The product, shifted by both offsets, is read above them.
            ops, shift = [], 0
            for value, shape in ((self.a, self._a_shape), (self.b, self._b_shape)):
                width = _signed_width(shape)
                ops.append(Cat(C(0, _WIDTH - width), value, C(0, width - shape.width)))
                shift += _WIDTH - width
            a, b = ops
            ports = {
                **{f"i_A{n}": a[n] for n in range(_WIDTH)},
                **{f"i_B{n}": b[n] for n in range(_WIDTH)},
                **{f"i_C{n}": C(0, 1) for n in range(_WIDTH)},
                # Only the product's bits: Yosys's ABC9 fails (or hangs) on a design whose
                # MULT18X18D outputs go to wires that nothing reads.
                **{f"o_P{shift + n}": self.p[n] for n in range(len(self.p))},
            }
            m.submodules.mult = Instance(
                "MULT18X18D",
                p_REG_INPUTA_CLK="CLK0", p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
                p_REG_INPUTB_CLK="CLK0", p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
                p_REG_INPUTC_CLK="NONE",
                p_REG_PIPELINE_CLK="NONE",
                p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
                p_GSR="DISABLED", p_RESETMODE="SYNC", p_MULT_BYPASS="DISABLED",
                # (SOURCEB_MODE stays at its default, B_SHIFT: SOURCEB low takes B anyway, and
                # ecppack's database has no B_INPUT)
                p_CAS_MATCH_REG="FALSE",
                i_SIGNEDA=C(1, 1), i_SIGNEDB=C(1, 1), i_SOURCEA=C(0, 1), i_SOURCEB=C(0, 1),
                i_CLK0=ClockSignal(), i_CE0=C(1, 1), i_RST0=C(0, 1),
                **ports,
            )
        else:
            # The block's registers, in the same places: operands, then the product.
            a_reg = Signal(self._a_shape, reset_less=True)
            b_reg = Signal(self._b_shape, reset_less=True)
            p_reg = Signal.like(self.p, reset_less=True)
            m.d.sync += [
                a_reg.eq(self.a), b_reg.eq(self.b),
                p_reg.eq(a_reg * b_reg),
            ]
            m.d.comb += self.p.eq(p_reg)
        return m


#: A Verilog model of MULT18X18D in the configurations :class:`Mul18x18` uses (input and
#: output registers on CLK0, no pipeline register, signed operands from the A and B inputs),
#: after Lattice's ECP5 sysDSP usage guide: ``P = A * B``, registered at the inputs and at the
#: output on CLK0's rising edge while CE0 is high, cleared by RST0. Any other configuration
#: stops the simulation, so a change of parameters cannot pass unnoticed.
MULT18X18D_SIM = """
module MULT18X18D(
""" + "".join(f"  input A{n}, B{n}, C{n},\n" for n in range(_WIDTH)) + """\
  input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
  input CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3,
""" + "".join(f"  output P{n},\n" for n in range(2 * _WIDTH)) + """\
  output SIGNEDP
);
  parameter REG_INPUTA_CLK = "NONE";
  parameter REG_INPUTA_CE = "CE0";
  parameter REG_INPUTA_RST = "RST0";
  parameter REG_INPUTB_CLK = "NONE";
  parameter REG_INPUTB_CE = "CE0";
  parameter REG_INPUTB_RST = "RST0";
  parameter REG_INPUTC_CLK = "NONE";
  parameter REG_INPUTC_CE = "CE0";
  parameter REG_INPUTC_RST = "RST0";
  parameter REG_PIPELINE_CLK = "NONE";
  parameter REG_PIPELINE_CE = "CE0";
  parameter REG_PIPELINE_RST = "RST0";
  parameter REG_OUTPUT_CLK = "NONE";
  parameter REG_OUTPUT_CE = "CE0";
  parameter REG_OUTPUT_RST = "RST0";
  parameter CLK0_DIV = "ENABLED";
  parameter CLK1_DIV = "ENABLED";
  parameter CLK2_DIV = "ENABLED";
  parameter CLK3_DIV = "ENABLED";
  parameter HIGHSPEED_CLK = "NONE";
  parameter GSR = "ENABLED";
  parameter CAS_MATCH_REG = "FALSE";
  parameter SOURCEB_MODE = "B_SHIFT";
  parameter MULT_BYPASS = "DISABLED";
  parameter RESETMODE = "SYNC";
  wire [17:0] a = {""" + ", ".join(f"A{n}" for n in reversed(range(_WIDTH))) + """};
  wire [17:0] b = {""" + ", ".join(f"B{n}" for n in reversed(range(_WIDTH))) + """};
  reg [17:0] a_reg, b_reg;
  reg sa_reg, sb_reg;
  reg [35:0] p_reg;
  wire [35:0] a_ext = {{18{sa_reg & a_reg[17]}}, a_reg};
  wire [35:0] b_ext = {{18{sb_reg & b_reg[17]}}, b_reg};
  initial begin
    if (REG_INPUTA_CLK != "CLK0" || REG_INPUTB_CLK != "CLK0" || REG_OUTPUT_CLK != "CLK0"
        || REG_PIPELINE_CLK != "NONE" || REG_INPUTA_CE != "CE0" || REG_INPUTB_CE != "CE0"
        || REG_OUTPUT_CE != "CE0" || REG_INPUTA_RST != "RST0" || REG_INPUTB_RST != "RST0"
        || REG_OUTPUT_RST != "RST0" || RESETMODE != "SYNC" || MULT_BYPASS != "DISABLED") begin
      $display("MULT18X18D: configuration not modelled");
      $finish;
    end
  end
  always @(posedge CLK0) begin
    if (RST0) begin
      a_reg <= 0; b_reg <= 0; sa_reg <= 0; sb_reg <= 0; p_reg <= 0;
    end else if (CE0) begin
      a_reg <= SOURCEA ? 18'bx : a;
      b_reg <= SOURCEB ? 18'bx : b;
      sa_reg <= SIGNEDA;
      sb_reg <= SIGNEDB;
      p_reg <= a_ext * b_ext;
    end
  end
""" + "".join(f"  assign P{n} = p_reg[{n}];\n" for n in range(2 * _WIDTH)) + """\
  assign SIGNEDP = 1'b0;
endmodule
"""
