# amaranth: UnusedElaboratable=no
"""The whole digits network as one component (NetworkTop) against LiteRT's reference
interpreter, its measured cycles per image against the compiler's prediction; the compiler's
search against a brute force over the same foldings."""

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from convaccel import ConvSpec, Folding
from convaccel.compiler import CompileError, compile_network, plan_network
from convaccel.network import Conv, Dense, load_network


from nettopbench import run_network
from tflite_models import reference_interpreter

DIGITS = Path(__file__).parents[2] / "examples" / "digits"

#: The folding the default simulation runs: small arrays (a short elaboration) and a short
#: frame interval (conv2, 8 x 4 channel-serial, is the bottleneck).
SIM_FOLDINGS = [Folding(1, 8, 1), Folding(8, 4, 8), None, None, (4, 2)]


@pytest.fixture(scope="module")
def digits():
    path = DIGITS / "digits.tflite"
    xs = np.load(DIGITS / "digits_test.npz")["x"]
    return load_network(path), reference_interpreter(path.read_bytes()), xs


def _check_network(plan, run, xs, *, steady, stall, seed=0):
    outs, ends, loaded, error = run_network(plan, xs, stall=stall, seed=seed, steady=steady)
    for n, (x, y) in enumerate(zip(xs, outs)):
        np.testing.assert_array_equal(y, run(x), err_msg=f"image {n}")
    assert error == 0
    # The weights are baked in: no load, the input taken from reset.
    assert loaded == 0
    return np.diff(ends[:steady])


def test_digits_network_top(digits):
    """Three test images through the whole network (conv -> conv -> max pool -> flatten ->
    dense): the first two with input always valid and output always ready, one frame every
    `plan.interval` cycles exactly; the third with random gaps at the input and random stalls
    at the output. Every output tensor equals LiteRT's."""
    net, run, xs = digits
    plan = plan_network(net, SIM_FOLDINGS, family="ecp5")
    intervals = _check_network(plan, run, xs[:3], steady=2, stall=0.3)
    assert list(intervals) == [plan.interval]


@pytest.mark.full
def test_digits_network_top_full(digits):
    """The compiler's own plan for 60 DSP blocks (iCE40 count): twelve images, four steady
    (three intervals measured) and eight with stalls at both ends."""
    net, run, xs = digits
    plan = compile_network(net, dsp=60, family="ice40")
    intervals = _check_network(plan, run, xs[3:15], steady=4, stall=0.4, seed=7)
    assert list(intervals) == [plan.interval] * 3


def _brute_force(net, family, budget):
    """Every combination of foldings whose PEs alone fit `budget`, with matching beat
    widths: (interval, dsp) of the best. Each stage's plan is made once (``plan_network`` on
    the stage alone would rebuild the others) and the combinations' figures are their
    maximum and sum."""
    conv1, conv2, pool, reshape, dense = net.stages
    from convaccel.boards import fit
    from convaccel.compiler import _stage_plan

    def convs(stage, lanes):
        layer = stage.layer
        folds = [Folding(r, c, lanes) for r in range(1, lanes + 1)
                 for c in range(1, layer.out_channels + 1)]
        if lanes == layer.in_channels:
            folds += [Folding(r, c) for r in range(1, layer.reduction + 1)
                      for c in range(1, layer.out_channels + 1)]
        for f in folds:
            try:
                spec = ConvSpec.of(layer, f)
            except ValueError:
                continue
            if fit._pe_dsps(family, spec) <= budget:
                yield _stage_plan(stage, lanes, f, family)

    def denses(lanes):
        for rows, cols in itertools.product(range(1, lanes + 1), range(1, dense.units + 1)):
            if lanes % rows == 0 and dense.units % cols == 0:
                yield _stage_plan(dense, lanes, (rows, cols), family)

    tails = {}
    for lanes in (1, 2, 4, 8, 16):
        p = _stage_plan(pool, lanes, None, family)
        tails[lanes] = [(max(p.interval, d.interval), p.dsp + d.dsp) for d in denses(lanes)]
    best = None
    for p1 in convs(conv1, 1):
        for p2 in convs(conv2, p1.out_lanes):
            for interval, dsp in tails[p2.out_lanes]:
                key = (max(p1.interval, p2.interval, interval), p1.dsp + p2.dsp + dsp)
                if key[1] <= budget and (best is None or key < best):
                    best = key
    return best


@pytest.mark.full
@pytest.mark.parametrize("family, budget", [("ecp5", 16), ("ice40", 20), ("ecp5", 30)])
def test_compile_digits_is_optimal(digits, family, budget):
    """The search's plan is the fastest within the budget (then the fewest DSP blocks): a
    brute force over every folding combination agrees; the beat widths chain."""
    net, _, _ = digits
    plan = compile_network(net, dsp=budget, family=family)
    assert plan.dsp <= budget
    assert (plan.interval, plan.dsp) == _brute_force(net, family, budget)
    for a, b in zip(plan.stages, plan.stages[1:]):
        assert a.out_lanes == b.in_lanes
    assert plan.interval == max(s.interval for s in plan.stages)
    assert plan.queue_depths == tuple(math.prod(s.stage.output_shape) // s.out_lanes
                                      for s in plan.hardware[:-1])


@pytest.mark.full
def test_compile_digits_ulx3s(digits):
    """The plan for the ULX3S's 156 DSP blocks: within the budget, the beat widths chain, the
    frame interval is the slowest stage's."""
    from convaccel.boards.board import get_board
    net, _, _ = digits
    board = get_board("ulx3s-85f")
    plan = compile_network(net, board)
    assert plan.dsp <= board.resources["dsp"]
    for a, b in zip(plan.stages, plan.stages[1:]):
        assert a.out_lanes == b.in_lanes
    assert plan.interval == max(s.interval for s in plan.stages)


def _fits(net, dsp):
    try:
        compile_network(net, dsp=dsp, family="ice40")
    except CompileError:
        return False
    return True


def test_compile_fabric_requantizer(digits):
    """With few DSP blocks the compiler moves requantizers into logic: on 8 ice40 DSP blocks
    (the UP5K's) the digits network needs the fabric kind somewhere (its 1 x 1 foldings with
    every requantizer in DSP blocks need more), and the plan's DSP blocks are recounted from
    its stages' components."""
    from convaccel.boards import fit
    net, _, _ = digits
    plan = compile_network(net, dsp=8, family="ice40")
    assert plan.dsp <= 8
    kinds = [s.requant_multiplier for s in plan.stages]
    assert "fabric" in kinds
    for s in plan.stages:
        if s.spec is not None:
            assert s.dsp == fit._dsps("ice40", s.spec)
            assert s.spec.requant_multiplier == s.requant_multiplier
        elif s.rows is not None:
            assert s.component().requant_multiplier == s.requant_multiplier
            assert s.dsp == sum(fit._blocks("ice40", a, b) for a, b in s.component().multipliers)


def test_compile_wrong(digits):
    net, _, _ = digits
    # the fewest DSP blocks: 1 x 1 arrays, the fabric requantizer wherever it is allowed
    least = next(n for n in range(64) if _fits(net, n))
    with pytest.raises(CompileError, match=rf"^no folding of the network fits {least - 1} DSP "
                                           rf"blocks: the smallest folding needs {least} "
                                           rf"\(ice40 count\)$"):
        compile_network(net, dsp=least - 1, family="ice40")
    import dataclasses

    from convaccel.boards.board import get_board
    # (the UP5K holds the digits network; one with fewer logic cells and block RAMs does not)
    board = get_board("icebreaker")
    assert compile_network(net, board).estimate(board)["logic"] <= 4752
    small = dataclasses.replace(board, resources={**board.resources, "logic": 4000, "bram": 20})
    with pytest.raises(CompileError, match=r"^no folding of the network fits the icebreaker "
                                           r"board within its 8 DSP blocks: the lightest needs "
                                           r"\d+ logic cells \(the placer can use 3600\), \d+ "
                                           r"block RAMs \(the iCE40UP5K-SG48 has 20\), "
                                           r"estimated with the host link$"):
        compile_network(net, small)
    with pytest.raises(ValueError, match=r"^dsp must be a non-negative integer \(DSP blocks\), "
                                         r"not -1$"):
        compile_network(net, dsp=-1, family="ecp5")


def test_plan_wrong(digits):
    net, _, _ = digits
    with pytest.raises(ValueError, match=r"^foldings must be 5, one per stage, not 2$"):
        plan_network(net, SIM_FOLDINGS[:2])
    with pytest.raises(ValueError, match=r"^the folding Folding\(rows=2, cols=4, lanes=2, "
                                         r"requant_multiplier='dsp'\) takes beats of 2 "
                                         r"channels; the stream carries 8$"):
        plan_network(net, [Folding(1, 8, 1), Folding(2, 4, 2), None, None, (1, 1)])
    assert isinstance(net.stages[0], Conv) and isinstance(net.stages[-1], Dense)
