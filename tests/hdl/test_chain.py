# amaranth: UnusedElaboratable=no
"""Stages chained by queues: the digits model's last stages (max pool -> flatten -> dense) fed
with the second convolution's output from Network.trace(), against LiteRT's output tensor."""

from pathlib import Path

import numpy as np
from amaranth import signed
from amaranth.lib import data

from convaccel.hdl.dense import Dense
from convaccel.hdl.chain import StageChain
from convaccel.hdl.padder import pixel_in_layout
from convaccel.hdl.pool import MaxPool
from convaccel.network import load_network

from simutil import gaps, run_simulation, stream_get, stream_put
from tflite_models import reference_interpreter

DIGITS = Path(__file__).parents[2] / "examples" / "digits"


def test_digits_pool_dense_chain():
    """Four test images through MaxPool (8 lanes, 2 chunks a pixel) -> queue -> Dense (the
    flatten costs nothing: the pool's raster beats are the dense stage's (h, w, c) order), with
    random gaps and stalls at both ends: the logits equal LiteRT's output tensor."""
    path = DIGITS / "digits.tflite"
    net = load_network(path)
    run = reference_interpreter(path.read_bytes())
    _, _, pool, _, dense = net.stages
    lanes = 8
    (_, height, width, channels) = pool.input_shape
    stages = [
        MaxPool(height=height, width=width, channels=channels, lanes=lanes,
                kernel=pool.kernel, stride=pool.stride, pads=pool.pads, act_min=pool.act_min,
                act_max=pool.act_max),
        Dense.of(dense, lanes=lanes, rows=2, cols=5),
    ]
    beat = pixel_in_layout(data.ArrayLayout(signed(8), lanes))
    out = pixel_in_layout(data.ArrayLayout(signed(8), 1))
    dut = StageChain(stages, [beat, beat, out], [4])
    xs = np.load(DIGITS / "digits_test.npz")["x"][:4]
    got = []

    async def feed(ctx):
        idle = gaps(1, 0.2)
        for x in xs:
            frame = net.trace(x)[1]                   # the second convolution's (16, 8, 8)
            flat = frame.reshape(channels, -1).T.reshape(-1, lanes)
            for n, values in enumerate(flat):
                await stream_put(ctx, dut.i, {"data": [int(v) for v in values],
                                              "last": n == len(flat) - 1}, idle)

    async def collect(ctx):
        stalls = gaps(2, 0.3)
        for _ in range(len(xs) * dense.units):
            beat = await stream_get(ctx, dut.o, stalls)
            got.append((int(beat.data[0]), int(beat.last)))

    run_simulation(dut, feed, collect)
    want = [(int(v), int(u == dense.units - 1)) for x in xs for u, v in enumerate(run(x)[0])]
    assert got == want
