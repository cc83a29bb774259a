# amaranth: UnusedElaboratable=no
"""Queue: every beat in order under random gaps and stalls, cycle by cycle against a model of
its occupancy and its latency."""

from collections import deque

import numpy as np
import pytest
from amaranth import unsigned
from amaranth.lib import data

from convaccel.hdl.stream import REGISTER_DEPTH, Queue

from simutil import run_simulation


def _run(depth, shape, beats, p_gap, p_stall, seed):
    """Random valid/ready patterns on both sides, checked every cycle against the model:
    ``o.valid`` exactly when a beat has been held for ``latency - 1`` cycles, ``i.ready``
    exactly when there is room, and the beats out equal the beats in, in order."""
    dut = Queue(shape, depth)
    rng = np.random.default_rng(seed)
    got = []

    async def bench(ctx):
        held = deque()          # (value, cycle taken) of the beats inside
        n, cycle = 0, 0
        while len(got) < len(beats):
            offer = n < len(beats) and rng.random() >= p_gap
            ready = rng.random() >= p_stall
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload, beats[n])
            ctx.set(dut.o.ready, ready)
            _, _, i_ready, o_valid, o_payload = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.payload)
            # (the model's state is the one before this edge)
            offered = bool(held) and cycle - held[0][1] >= dut.latency
            assert o_valid == offered, f"cycle {cycle}: o.valid {o_valid}, model {offered}"
            assert i_ready == (len(held) < depth), \
                f"cycle {cycle}: i.ready {i_ready} with {len(held)} of {depth} held"
            if o_valid and ready:
                value, _ = held.popleft()
                assert o_payload == value, f"cycle {cycle}: beat {len(got)}"
                got.append(o_payload)
            if offer and i_ready:
                held.append((beats[n], cycle))
                n += 1
            cycle += 1

    run_simulation(dut, bench)
    assert got == beats


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 16, 37])
@pytest.mark.parametrize("p_gap, p_stall", [(0.0, 0.0), (0.3, 0.0), (0.0, 0.5), (0.4, 0.4),
                                            (0.1, 0.8)])
def test_queue_random_stalls(depth, p_gap, p_stall):
    rng = np.random.default_rng(depth)
    beats = [int(v) for v in rng.integers(0, 1 << 9, size=4 * depth + 20)]
    _run(depth, unsigned(9), beats, p_gap, p_stall, seed=depth * 7 + int(10 * p_stall))


def test_queue_struct_payload():
    """A layout keeps its fields through the memory."""
    layout = data.StructLayout({"data": data.ArrayLayout(unsigned(8), 3), "last": 1})
    rng = np.random.default_rng(5)
    beats = [layout.const({"data": [int(v) for v in rng.integers(0, 256, 3)],
                           "last": int(rng.integers(0, 2))}) for _ in range(40)]
    dut_beats = [layout.from_bits(b.as_bits()) for b in beats]
    _run(9, layout, dut_beats, 0.3, 0.3, seed=5)


def test_queue_throughput():
    """Input always valid and output always ready: a beat a cycle, after the latency."""
    for depth in (2, 3, 64):
        dut = Queue(unsigned(8), depth)
        out = []

        async def bench(ctx):
            ctx.set(dut.o.ready, 1)
            ctx.set(dut.i.valid, 1)
            for cycle in range(40):
                ctx.set(dut.i.payload, cycle)
                _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
                if valid:
                    out.append((cycle, payload))

        run_simulation(dut, bench)
        assert out == [(c, c - dut.latency) for c in range(dut.latency, 40)], depth


def test_queue_storage():
    """Past REGISTER_DEPTH the queue keeps all but its head beat in a memory."""
    assert Queue(unsigned(8), REGISTER_DEPTH).latency == 1
    assert Queue(unsigned(8), REGISTER_DEPTH).memories[0].depth == REGISTER_DEPTH
    deep = Queue(unsigned(8), 64)
    assert deep.latency == 2 and deep.memories[0].depth == 63


@pytest.mark.parametrize("depth", [0, -1, 2.0, True])
def test_queue_depth_wrong(depth):
    with pytest.raises(ValueError, match=r"^Queue depth must be a positive integer, not "):
        Queue(unsigned(8), depth)
