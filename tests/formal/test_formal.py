# amaranth: UnusedElaboratable=no
"""Bounded proofs of the stream contract and of the stages' beat order (docs/formal.md).

Each proof is named with its depth (``bmc<N>``: every trace of N cycles from reset); the
harnesses in harnesses.py state the properties, mutants.py holds stages with a bug put in on
purpose, which the same harnesses must catch. Skipped without SBY or Yices.
"""

import pytest
from amaranth import unsigned

from convaccel.formal import FormalToolMissing, cover, missing_tools, prove

from harnesses import OutputStageHarness, PadderHarness, QueueHarness, WindowHarness
from mutants import (LeakyQueue, OverwritingStage, RegisterStage, ShortPadder, SilentPadder,
                     StutteringQueue)

pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))

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


def test_depth_wrong():
    with pytest.raises(ValueError, match=r"^Depth must be a positive integer, not 0$"):
        prove(QueueHarness(), depth=0)


def test_missing_tools_reported(monkeypatch):
    monkeypatch.setattr("convaccel.formal.tool_path", lambda name: None)
    assert missing_tools().startswith("formal tools not found: yowasp-sby")
    with pytest.raises(FormalToolMissing, match=r"^formal tools not found: "):
        prove(QueueHarness(), depth=4)
