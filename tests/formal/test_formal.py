# amaranth: UnusedElaboratable=no
"""Bounded proofs of the stages' stream contracts, beat order, arithmetic and the link's
framing (docs/formal.md).

Each proof is named with its depth (``bmc<N>``: every trace of N cycles from reset); the
harnesses in harnesses.py state the properties, mutants.py holds stages with a bug put in on
purpose, which the same harnesses must catch. Skipped without SBY or Yices.
"""

import time
from pathlib import Path

import numpy as np
import pytest
from amaranth import Elaboratable, Module, Signal, signed, unsigned
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert
from amaranth.sim import Simulator

from convaccel.formal import FormalToolMissing, Past, cover, missing_tools, prove
from convaccel.hdl.array import SystolicArray
from convaccel.quant import MULTIPLIER_BITS, SHIFT_RANGE, Requant, requantize_hw

from harnesses import (Crc16ResidueHarness, FeederArrayHarness, OutputStageHarness,
                       PadderHarness, QueueHarness, ReceiverHarness, RequantizerHarness,
                       SenderHarness, WindowHarness, requantize_reference)
from mutants import (CreditlessFeeder, EagerSender, HalfCrcReceiver, LateTagArray, LeakyQueue,
                     OverwritingStage, RegisterStage, RoundingRequantizer, ShortPadder,
                     SilentPadder, StutteringQueue)

# Multipliers with these bits free (the others 0): the top two (the scale), either side of the
# 16-bit split into DSP partial products, and the lowest. All 31 bits are beyond the solver
# (no result in 400 s even for 2-bit accumulators).
MULTIPLIER_MASK = (0b11 << 29) | (0b11 << 15) | 1

pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))


def requant_depth(past_first_result, **harness):
    """A requantizer proof's depth: `past_first_result` cycles beyond the harness's first
    result (its parameter load, then the requantizer's latency), so that the depth follows the
    latency and a proof always reaches results (a depth short of them passes vacuously)."""
    h = RequantizerHarness(**harness)
    return h.load_cycles + h.dut.latency + past_first_result

# (name, harness factory, depth): every property of the harness, to that depth.
PROOFS = [
    # Queue(unsigned(2), 2), as the engine uses it, and a depth that is no power of two.
    ("queue2", lambda: QueueHarness(depth=2, bound=16), 16),
    ("queue3", lambda: QueueHarness(depth=3, bound=16), 16),
    # A 2x2 frame padded to 3x3 (top and right), well-formed frames: two frames and more.
    ("padder_top_right", lambda: PadderHarness(pads=(1, 0, 0, 1), bound=20), 20),
    # A 2x2 frame padded to 3x3 (bottom and left), any input: short and long frames.
    ("padder_any_input", lambda: PadderHarness(pads=(0, 1, 1, 0), wellformed=False,
                                               bound=20), 20),
    # 3x3 padded frame, 2x2 kernel: four windows a frame.
    ("window_3x3_k2", lambda: WindowHarness(padded=(3, 3), kernel=(2, 2)), 16),
    # stride 2 along the row: windows at columns 0 and 2.
    ("window_2x4_k2_s2", lambda: WindowHarness(padded=(2, 4), kernel=(2, 2),
                                               stride=(1, 2)), 16),
    # dilation 2 down the column (k_eff 3x1), a line buffer two rows deep.
    ("window_3x2_k2x1_d2", lambda: WindowHarness(padded=(3, 2), kernel=(2, 1),
                                                 dilation=(2, 1)), 16),
    # one column, two channels: two column groups a pixel; any input, even one that breaks
    # the credit protocol.
    ("output_stage", lambda: OutputStageHarness(), 20),
    # Feeder and array, 2 rows x 2 columns, 3-element windows in 2 row folds (a zero lane),
    # 2 column groups: 4 vectors a window, credit and the array's delay; three windows.
    ("feeder_array_2x2", lambda: FeederArrayHarness(cols=2, col_folds=2), 20),
    # ...with the weights written first (8 cycles): the partial sums are the dot products;
    # two windows.
    ("feeder_array_dot", lambda: FeederArrayHarness(cols=2, weights=True), 19),
    # ...one column, 2 column groups: weight addresses 0..3.
    ("feeder_array_dot_groups", lambda: FeederArrayHarness(col_folds=2, weights=True), 19),
    # Requantizer, one column, 11-bit accumulators (saturated before a left shift), every
    # shift, zero point and clamp; multipliers 0 or 2**30.
    ("requant_1col", lambda: RequantizerHarness(acc_bits=11, multiplier_mask=1 << 30),
     requant_depth(1)),
    # two columns through one unit in two passes, a group every 2 cycles.
    ("requant_2col_2pass", lambda: RequantizerHarness(cols=2, row_folds=2,
                                                      multiplier_mask=1 << 30),
     requant_depth(3, cols=2, row_folds=2)),
    # two column groups, a group every cycle: the parameters of each.
    ("requant_2groups", lambda: RequantizerHarness(col_folds=2, multiplier_mask=1 << 30),
     requant_depth(2, col_folds=2)),
    # multipliers with the bits of MULTIPLIER_MASK free.
    ("requant_multiplier", lambda: RequantizerHarness(multiplier_mask=MULTIPLIER_MASK),
     requant_depth(1)),
    # the link: the CRC residue; the receiver, 2-byte payloads, a timeout of 2 cycles;
    # the sender, 2-byte payloads.
    ("crc16_residue", lambda: Crc16ResidueHarness(), 1),
    ("receiver", lambda: ReceiverHarness(), 16),
    ("sender", lambda: SenderHarness(), 16),
]


@pytest.mark.parametrize("name, make, depth", PROOFS,
                         ids=[f"{name}-bmc{depth}" for name, _, depth in PROOFS])
def test_proof(name, make, depth, tmp_path):
    result = prove(make(), depth=depth, name=name, workdir=tmp_path)
    assert result.passed, str(result)


# Cover: each harness reaches the scenarios its assertions are about (full queue, a stall, a
# second frame, short and long frames), so the assumptions do not make the proofs vacuous.
COVERS = [
    ("queue3", lambda: QueueHarness(depth=3, bound=12), 12),
    ("padder_any_input", lambda: PadderHarness(pads=(0, 1, 1, 0), wellformed=False,
                                               bound=24), 24),
    ("window_3x3_k2", lambda: WindowHarness(padded=(3, 3), kernel=(2, 2)), 24),
    ("output_stage", lambda: OutputStageHarness(), 12),
    ("feeder_array_dot", lambda: FeederArrayHarness(cols=2, weights=True), 20),
    ("requant_1col", lambda: RequantizerHarness(acc_bits=11, multiplier_mask=1 << 30),
     requant_depth(2)),
    ("receiver", lambda: ReceiverHarness(), 24),
    ("sender", lambda: SenderHarness(), 16),
]


@pytest.mark.parametrize("name, make, depth", COVERS,
                         ids=[f"{name}-cover{depth}" for name, _, depth in COVERS])
def test_cover(name, make, depth, tmp_path):
    result = cover(make(), depth=depth, name=name, workdir=tmp_path)
    assert result.passed, str(result)


# The proofs can fail: each mutant breaks one property, and the harness that the correct stage
# passes reports it, with a counterexample.
def test_register_stage_obeys_contract(tmp_path):
    result = prove(QueueHarness(RegisterStage(unsigned(2)), depth=1, occupancy=False,
                                bound=10), depth=10, name="register", workdir=tmp_path)
    assert result.passed, str(result)


def expect_failure(result, message):
    assert not result.passed, f"the mutant passed: {result}"
    assert result.status == "FAIL", str(result)
    assert result.trace is not None and result.trace.exists()
    assert any(failure.startswith(message) for failure in result.failures), str(result)


def test_payload_changed_under_stall_fails(tmp_path):
    result = prove(QueueHarness(OverwritingStage(unsigned(2)), depth=1, occupancy=False,
                                bound=10), depth=10, name="overwriting", workdir=tmp_path)
    expect_failure(result, "o: payload changed before its transfer")


def test_lost_beat_fails(tmp_path):
    result = prove(QueueHarness(LeakyQueue(unsigned(2), 2), depth=2, occupancy=False,
                                bound=10), depth=10, name="leaky", workdir=tmp_path)
    expect_failure(result, "the n-th beat out is not the n-th beat in")


def test_duplicated_beat_fails(tmp_path):
    result = prove(QueueHarness(StutteringQueue(unsigned(2), 2), depth=2, occupancy=False,
                                bound=10), depth=10, name="stuttering", workdir=tmp_path)
    expect_failure(result, "the n-th beat out is not the n-th beat in")


def test_missing_error_pulse_fails(tmp_path):
    result = prove(PadderHarness(wellformed=False, make=SilentPadder, bound=12), depth=12,
                   name="silent", workdir=tmp_path)
    expect_failure(result, "error is not 'this input beat shows the frame wrong'")


def test_short_padded_frame_fails(tmp_path):
    result = prove(PadderHarness(pads=(1, 1, 0, 1), make=ShortPadder, bound=16), depth=16,
                   name="short", workdir=tmp_path)
    expect_failure(result, "a frame started before its predecessor was whole")


def test_credit_ignored_fails(tmp_path):
    result = prove(FeederArrayHarness(make_feeder=CreditlessFeeder), depth=12,
                   name="creditless", workdir=tmp_path)
    expect_failure(result, "a window may be taken without credit")


def test_late_tag_fails(tmp_path):
    result = prove(FeederArrayHarness(make_array=LateTagArray), depth=12, name="late_tag",
                   workdir=tmp_path)
    expect_failure(result, "array tag is not its vector's")


def test_faulty_pe_fails(tmp_path):
    def make_array(**kwargs):
        return SystolicArray(faulty_pe=(1, 0), **kwargs)
    result = prove(FeederArrayHarness(weights=True, make_array=make_array), depth=14,
                   name="faulty_pe", workdir=tmp_path)
    expect_failure(result, "array partial sums are not the dot products")


def test_rounding_nudge_fails(tmp_path):
    result = prove(RequantizerHarness(multiplier_mask=1 << 30, make=RoundingRequantizer),
                   depth=requant_depth(1), name="rounding", workdir=tmp_path)
    expect_failure(result, "column 0 is not requantize_hw of its accumulator")


def test_half_crc_check_fails(tmp_path):
    result = prove(ReceiverHarness(make=HalfCrcReceiver), depth=10, name="half_crc",
                   workdir=tmp_path)
    expect_failure(result, "crc_ok is not")


def test_stale_status_byte_fails(tmp_path):
    result = prove(SenderHarness(make=EagerSender), depth=12, name="eager", workdir=tmp_path)
    expect_failure(result, "o: ")


def test_reference_requantize_matches_model(rng):
    # The harness's reference (Amaranth arithmetic) is the NumPy model's
    # requantize_hw, also for the multipliers the proofs leave out: simulated on random
    # parameters over their whole ranges.
    acc, multiplier, shift = Signal(signed(12)), Signal(MULTIPLIER_BITS), Signal(signed(6))
    zero_point, act_min, act_max = Signal(signed(8)), Signal(signed(8)), Signal(signed(8))
    out = Signal(signed(8))
    m = Module()
    m.d.comb += out.eq(requantize_reference(acc, multiplier, shift, zero_point, act_min, act_max))
    cases = []
    for n in range(400):
        lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2))
        rq = Requant(multiplier=[int(rng.integers(0, 1 << MULTIPLIER_BITS))],
                     shift=[int(rng.integers(SHIFT_RANGE[0], SHIFT_RANGE[1] + 1))],
                     output_zero_point=int(rng.integers(-128, 128)), act_min=lo, act_max=hi)
        value = int(rng.integers(-2048, 2048) >> int(rng.integers(0, 11)))
        cases.append((value, rq, int(requantize_hw(np.array([[value]]), rq)[0, 0])))
    got = []

    async def bench(ctx):
        for value, rq, _ in cases:
            for signal, v in ((acc, value), (multiplier, rq.multiplier[0]),
                              (shift, rq.shift[0]), (zero_point, rq.output_zero_point),
                              (act_min, rq.act_min), (act_max, rq.act_max)):
                ctx.set(signal, v)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == [expected for _, _, expected in cases]


def test_past_inside_if(tmp_path):
    # `Past` called under a condition still follows its value in every cycle.
    class Harness(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            value = AnySeq(4)
            before = Signal(4)
            m.d.sync += before.eq(value)
            with m.If(AnySeq(1)):
                m.d.comb += Assert(Past(m, value) == before)
            return m
    result = prove(Harness(), depth=6, name="past", workdir=tmp_path)
    assert result.passed, str(result)


def test_timeout_stops_the_engines(tmp_path):
    # All 31 multiplier bits: far beyond 2 s. SBY is stopped, and with it its engines
    # (yosys-smtbmc and Yices, in process groups of their own): none is left running in the
    # work folder.
    result = prove(RequantizerHarness(), depth=requant_depth(1), name="slow", workdir=tmp_path,
                   timeout=2)
    assert result.status == "TIMEOUT", str(result)
    time.sleep(0.5)
    left = []
    for proc in Path("/proc").iterdir():
        try:
            if Path(proc, "cwd").resolve().is_relative_to(tmp_path.resolve()):
                left.append(Path(proc, "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            pass
    assert left == []


def test_depth_wrong():
    with pytest.raises(ValueError, match=r"^Depth must be a positive integer, not 0$"):
        prove(QueueHarness(), depth=0)


def test_missing_tools_reported(monkeypatch):
    monkeypatch.setattr("convaccel.formal.tool_path", lambda name: None)
    assert missing_tools().startswith("formal tools not found: yowasp-sby")
    with pytest.raises(FormalToolMissing, match=r"^formal tools not found: "):
        prove(QueueHarness(), depth=4)
