# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth import Shape, signed
from amaranth.hdl import Fragment
from amaranth.hdl._mem import MemoryInstance
from amaranth.lib import data

from convaccel import ConvSpec
from convaccel.hdl.accelerator import ConvAccelerator
from convaccel.hdl.window import WindowGen

from simutil import gaps, run_simulation, stream_get, stream_put


def expected_windows(padded, kernel, dilation, stride):
    """Every window of a padded (channels, h, w) frame, as lists of k_h * k_w pixels."""
    (k_h, k_w), (d_h, d_w), (s_h, s_w) = kernel, dilation, stride
    _, h, w = padded.shape
    keff_h, keff_w = (k_h - 1) * d_h + 1, (k_w - 1) * d_w + 1
    windows = []
    for y in range(0, h - keff_h + 1, s_h):
        for x in range(0, w - keff_w + 1, s_w):
            windows.append([padded[:, y + kh * d_h, x + kw * d_w].tolist()
                            for kh in range(k_h) for kw in range(k_w)])
    return windows


@pytest.mark.parametrize("padded, kernel, dilation, stride, stall", [
    ((5, 6), (3, 3), (1, 1), (1, 1), 0.0),
    ((5, 6), (3, 3), (1, 1), (1, 1), 0.5),
    ((7, 9), (3, 2), (2, 3), (2, 1), 0.3),
    ((6, 7), (1, 1), (1, 1), (1, 3), 0.3),
    ((4, 1), (2, 1), (1, 1), (1, 1), 0.3),     # one-column frame: read and write collide
    ((3, 8), (3, 5), (1, 1), (1, 3), 0.2),
])
def test_windows(padded, kernel, dilation, stride, stall):
    channels = 2
    dut = WindowGen(padded=padded, kernel=kernel, dilation=dilation, stride=stride,
                    pixel_shape=data.ArrayLayout(signed(8), channels))
    rng = np.random.default_rng(sum(padded) + int(stall * 10))
    frames = [rng.integers(-128, 128, (channels, *padded)) for _ in range(2)]
    expected = [expected_windows(f, kernel, dilation, stride) for f in frames]
    got = []

    async def feed(ctx):
        idle = gaps(1, stall)
        for frame in frames:
            for pixel in frame.reshape(channels, -1).T:
                await stream_put(ctx, dut.i, [int(v) for v in pixel], idle)

    async def collect(ctx):
        stalls = gaps(2, stall)
        for windows in expected:
            for n in range(len(windows)):
                payload = await stream_get(ctx, dut.o, stalls)
                got.append([[int(v) for v in pixel] for pixel in payload.data])
                assert payload.last == (n == len(windows) - 1)

    run_simulation(dut, feed, collect)
    assert got == expected[0] + expected[1]


def memories(top):
    """{path: (depth, width)} of every memory in the elaborated design."""
    def walk(fragment, path=()):
        for sub, name, *_ in fragment.subfragments:
            yield path + (name,), sub
            yield from walk(sub, path + (name,))
    return {"/".join(path): (f._data.depth, Shape.cast(f._data.shape).width)
            for path, f in walk(Fragment.get(top, None)) if isinstance(f, MemoryInstance)}


@pytest.mark.parametrize("kw", [
    dict(kernel=3, padding=1), dict(kernel=(5, 3), dilation=(2, 1), padding=(4, 4, 1, 1)),
    dict(kernel=1), dict(kernel=(3, 5), stride=(1, 2), padding=(1, 1, 2, 2)),
    dict(kernel=3, padding=1, padding_mode="replicate"),
    dict(kernel=(5, 3), stride=2, padding=(4, 2, 1, 1), padding_mode="reflect"),
])
def test_memories_match_the_spec(kw):
    spec = ConvSpec(height=9, width=9, in_channels=3, out_channels=5, input_bits=6, rows=3,
                    cols=2, **kw)
    engine = ConvAccelerator(spec)
    mems = memories(engine)
    # The stages' own figures (which the fit check counts) are what they elaborate to.
    elaborated = sorted((width, depth) for depth, width in mems.values())
    declared = sorted((m.width, m.depth) for m in engine.memories for _ in range(m.count))
    assert elaborated == declared
    assert engine.memories == spec.memories
    line_buffer = mems.pop("window/line_buffer", (0, 0))
    # exactly (k_eff_h - 1) padded rows of every channel, in one block RAM, no frame buffer
    assert line_buffer[0] * line_buffer[1] == spec.line_buffer_bits
    assert line_buffer[0] in (0, spec.padded_shape[1])
    weights = {p: m for p, m in mems.items() if p.startswith("array/")}
    # one per PE, or per pair of PEs on one dual multiplier (byte-wide operands: all of them
    # but the odd last row)
    assert spec.engine.pe_pairs == (spec.rows // 2) * spec.cols
    assert len(weights) == spec.pe_count - spec.engine.pe_pairs
    assert sum(d * w for d, w in weights.values()) == spec.weight_memory_bits
    assert mems["output/bias"][0] * mems["output/bias"][1] == spec.bias_memory_bits
    # an edge padding mode's rows: a few input rows (never the frame), in one block RAM
    rows = mems.get("padder/rows", (0, 0))
    assert rows[0] * rows[1] == spec.padder_memory_bits
    assert rows[0] in (0, 2 * spec.width, 5 * spec.width)


def test_window_geometry_wrong():
    # The frame's last window carries `last` because it ends at the frame's last pixel: a
    # geometry whose strided windows stop short of the edge is refused (the formal proof of
    # WindowGen found that it would leave without `last`).
    import pytest

    from convaccel.hdl.window import WindowGen
    with pytest.raises(ValueError, match=r"^the strided windows on the width axis do not end at "
                                         r"the padded frame's edge: \(padded 2 - kernel 1\) is "
                                         r"not a multiple of stride 2"):
        WindowGen(padded=(1, 2), kernel=(1, 1), dilation=(1, 1), stride=(1, 2), pixel_shape=8)
