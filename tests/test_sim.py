"""cocotb on the generated Verilog: every output beat checked in the cycle it appears."""

import numpy as np
import pytest

from convaccel import DEFAULT_SPEC, ConvSpec, golden
from convaccel.generate import generate
from convaccel.simulate import run_engine_bench, simulate

from convaccel.quant import random_requant

from helpers import extreme_data, need_simulator, random_data

SIMULATORS = ["verilator", "icarus"]

#: The geometries the generated Verilog runs under cocotb. The geometry space is covered by
#: the engine's amaranth.sim matrix (tests/hdl/test_accelerator.py); these exist to test the
#: Verilog back end and the simulator flow on what the Verilog could get wrong: signed and
#: unsigned arithmetic of odd widths, a padding value, asymmetric kernels and padding, stride
#: and dilation, folding on both axes with idle lanes, frames back to back under stalls.
GEOMETRIES = {
    "k3x5_padval": dict(height=5, width=7, in_channels=2, out_channels=3, kernel=(3, 5),
                        padding=(1, 0, 2, 1), pad_value=-9, rows=3, cols=2),
    "unsigned": dict(height=5, width=4, in_channels=2, out_channels=2, kernel=(2, 3),
                     input_signed=False, pad_value=200, padding=(1, 0, 1, 1), rows=3, cols=2),
    "stride_dil_widths": dict(height=10, width=6, in_channels=3, out_channels=5, kernel=(3, 2),
                              stride=(2, 1), dilation=(1, 2), padding=(1, 0, 1, 1),
                              input_bits=5, weight_bits=6, bias_bits=12, rows=4, cols=2),
}


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", GEOMETRIES)
def test_matrix(name, simulator, stall=0.25):
    need_simulator(simulator)
    spec = ConvSpec(**GEOMETRIES[name], name=name)
    rng = np.random.default_rng(len(name))
    frames = [random_data(rng, spec)[0] for _ in range(2)]
    _, w, b = random_data(rng, spec)
    result = simulate(spec, np.stack(frames), w, b, simulator=simulator, stall=stall, seed=7)
    assert result.matches, result.message
    for frame, out in zip(frames, result.output):
        np.testing.assert_array_equal(out, golden.conv2d(frame, w, b, spec))
    assert len(result.counters) == 2
    assert all(c["cycles"] >= spec.cycles for c in result.counters)
    assert sum(c["input_stalls"] + c["output_stalls"] for c in result.counters) > 0


#: Requantized layers (int8 out, TFLite's arithmetic) under cocotb: the requantizer's unit and
#: pass counts (one unit taking two channels a group, a unit per column when a group arrives
#: every cycle, five units), stride, dilation, rectangular kernels, zero points as pad values.
#: (A sixth, the example .tflite model, runs in tests/test_cli.py, checked against LiteRT.)
REQUANTIZED = {
    "q_every_cycle": dict(height=6, width=5, in_channels=2, out_channels=6, kernel=1,
                          rows=2, cols=3),
    "q_five_units": dict(height=4, width=4, in_channels=1, out_channels=10, kernel=1,
                         rows=1, cols=5),
    "q_stride2": dict(height=9, width=9, in_channels=3, out_channels=4, kernel=3, stride=2,
                      padding="same", pad_value=-7, rows=5, cols=2),
    "q_dilation2": dict(height=8, width=8, in_channels=2, out_channels=3, kernel=3,
                        dilation=2, padding=2, pad_value=11, rows=4, cols=3),
    "q_rect_valid": dict(height=6, width=7, in_channels=4, out_channels=5, kernel=(1, 3),
                         padding="valid", rows=2, cols=2),
}


# (each is a Verilator build: two of them in the default suite, the others under full; the
# amaranth.sim matrix runs every requantized geometry)
@pytest.mark.parametrize("name", [
    pytest.param(name, marks=() if name in ("q_stride2", "q_dilation2") else pytest.mark.full)
    for name in REQUANTIZED])
def test_requantized(name, stall=0.25):
    need_simulator("verilator")
    spec = ConvSpec(**REQUANTIZED[name], requantize=True, name=name)
    rng = np.random.default_rng(len(name) + 100)
    frames = [random_data(rng, spec)[0] for _ in range(2)]
    _, w, _ = random_data(rng, spec)
    requant, b = random_requant(rng, spec)
    result = simulate(spec, np.stack(frames), w, b, requant=requant, stall=stall, seed=5)
    assert result.matches, result.message
    for frame, out in zip(frames, result.output):
        expected = golden.conv2d(frame, w, b, spec, requant)
        np.testing.assert_array_equal(out, expected)
        # outputs spread over the int8 range, not all clamped
        assert len(np.unique(expected)) > min(16, expected.size // 4)
    assert all(c["cycles"] >= spec.cycles for c in result.counters)
    assert sum(c["input_stalls"] + c["output_stalls"] for c in result.counters) > 0


#: Grouped layers under cocotb: the groups in turn through the Verilog, the column blocks of a
#: group whose filters do not fill the columns, frames back to back under stalls. A Verilator
#: build each: they run with `-m full`, the engine's amaranth.sim matrix covering such
#: geometries in the default suite, where a depthwise model (groups = in_channels) runs under
#: cocotb (test_depthwise_model_equals_litert below).
GROUPED = {
    "g2_partial": dict(height=5, width=4, in_channels=4, out_channels=6, kernel=(3, 2),
                       padding=(1, 1, 0, 1), pad_value=-3, groups=2, rows=4, cols=2),
    "g4_stride_dil": dict(height=9, width=7, in_channels=8, out_channels=8, kernel=3, stride=2,
                          dilation=(1, 2), padding=2, groups=4, rows=3, cols=2, input_bits=6,
                          weight_bits=5, bias_bits=12),
    "dw_unsigned_idle": dict(height=6, width=6, in_channels=3, out_channels=3, kernel=3,
                             padding="same", input_signed=False, pad_value=17, groups=3, rows=9,
                             cols=2),
}


@pytest.mark.full
@pytest.mark.parametrize("name", GROUPED)
def test_grouped(name, stall=0.25):
    need_simulator("verilator")
    spec = ConvSpec(**GROUPED[name], name=name)
    rng = np.random.default_rng(len(name) + 200)
    frames = [random_data(rng, spec)[0] for _ in range(2)]
    _, w, b = random_data(rng, spec)
    result = simulate(spec, np.stack(frames), w, b, stall=stall, seed=11)
    assert result.matches, result.message
    for frame, out in zip(frames, result.output):
        np.testing.assert_array_equal(out, golden.conv2d(frame, w, b, spec))
    assert all(c["cycles"] >= spec.cycles for c in result.counters)
    assert sum(c["input_stalls"] + c["output_stalls"] for c in result.counters) > 0


def test_depthwise_model_equals_litert(tmp_path):
    # A DEPTHWISE_CONV_2D (4 channels, multiplier 2: groups = in_channels = 4) as a user hands
    # it to `convaccel simulate`: its Verilog under cocotb with stalls, the output against
    # LiteRT's reference kernels.
    need_simulator("verilator")
    pytest.importorskip("ai_edge_litert")
    from convaccel.tflite import depthwise_model

    from helpers import run_cli
    from tflite_models import run_reference
    rng = np.random.default_rng(16)
    weights = rng.integers(-127, 128, (1, 3, 3, 8)).astype(np.int8)
    data = depthwise_model(weights, rng.integers(-2000, 2000, 8).astype(np.int32),
                           (1, 6, 5, 4), padding="SAME", input_quant=(0.03, -7),
                           filter_scales=rng.uniform(0.002, 0.01, 8), output_quant=(0.03, 4),
                           activation="RELU", name="dw_model")
    (tmp_path / "dw.tflite").write_bytes(data)
    x = rng.integers(-128, 128, (1, 6, 5, 4)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    result = run_cli("simulate", tmp_path / "dw.tflite", "--array", "3x2", "--stall", "0.25",
                     "--seed", "3", "--input", tmp_path / "x.npy", "--output",
                     tmp_path / "y.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout
    y, expected = np.load(tmp_path / "y.npy"), run_reference(data, x)
    np.testing.assert_array_equal(y, expected)
    assert len(np.unique(expected)) > 16
#: Padding taken from the frame and pad values loaded at run time (issue #16) under cocotb:
#: the edge padder's row memory and its exact first pixel in Verilog (reflect, the deeper
#: memory and the longer start, at stride 2 and dilation 2), with no stalls, so that the bench
#: holds each frame to the model's cycles. (A run-time pad value, each frame's mean, goes
#: through the simulated board in tests/link/test_link.py.) More under `full`, with stalls:
#: a run-time pad load before each frame, replicate at stride 2 and dilation 2, per-channel
#: values fixed at generation, reflect requantized, the host's own values.
PADDING = {
    "refl_s2_dil2": (dict(height=9, width=8, in_channels=2, out_channels=2, kernel=3,
                          stride=2, dilation=2, padding=(3, 3, 2, 3), padding_mode="reflect",
                          rows=3, cols=1), None),
}
PADDING_FULL = {
    "mean_runtime": (dict(height=6, width=5, in_channels=3, out_channels=2, kernel=(3, 2),
                          padding=(1, 1, 1, 0), pad_value=[9, -9, 0], pad_runtime=True,
                          input_bits=6, rows=3, cols=2), "mean"),
    "rep_s2_dil2": (dict(height=8, width=9, in_channels=2, out_channels=2, kernel=(2, 3),
                         stride=2, dilation=2, padding=(2, 1, 3, 3), padding_mode="replicate",
                         rows=3, cols=2), None),
    "per_channel": (dict(height=5, width=6, in_channels=3, out_channels=2, kernel=3,
                         padding=(1, 1, 2, 0), pad_value=[-100, 0, 77], rows=4, cols=2), None),
    "q_reflect": (dict(height=6, width=6, in_channels=2, out_channels=3, kernel=3,
                       padding="same", padding_mode="reflect", rows=5, cols=3,
                       requantize=True), None),
    "host_values": (dict(height=5, width=5, in_channels=2, out_channels=2, kernel=3, padding=2,
                         input_signed=False, pad_runtime=True, rows=2, cols=2), [255, 3]),
}


def check_padding(name, kw, pad, stall):
    need_simulator("verilator")
    spec = ConvSpec(**kw, name=name)
    rng = np.random.default_rng(len(name) + 200)
    frames = [random_data(rng, spec)[0] for _ in range(2)]
    _, w, b = random_data(rng, spec)
    requant = None
    if spec.requantize:
        requant, b = random_requant(rng, spec)
    result = simulate(spec, np.stack(frames), w, b, requant=requant, pad=pad, stall=stall,
                      seed=9)
    assert result.matches, result.message
    for frame, out in zip(frames, result.output):
        np.testing.assert_array_equal(out, golden.conv2d(frame, w, b, spec, requant, pad))
    if pad == "mean":
        # each frame had its own pad values, and they mattered
        assert golden.pad_mean(frames[0]) != golden.pad_mean(frames[1])
        assert not np.array_equal(result.output[0], golden.conv2d(frames[0], w, b, spec))
    if stall:
        assert all(c["cycles"] >= spec.cycles for c in result.counters)
        assert sum(c["input_stalls"] + c["output_stalls"] for c in result.counters) > 0
    else:
        # (the bench held each frame to the model's cycles, the edge padder's start included)
        assert [c["cycles"] for c in result.counters] == [spec.cycles] * 2


@pytest.mark.parametrize("name", PADDING)
def test_padding(name):
    check_padding(name, *PADDING[name], stall=0.0)


@pytest.mark.full
@pytest.mark.parametrize("name", PADDING_FULL)
def test_padding_full(name):
    check_padding(name, *PADDING_FULL[name], stall=0.25)


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_extreme_values(simulator):
    need_simulator(simulator)
    spec = ConvSpec(height=4, width=4, in_channels=3, out_channels=2, kernel=3, padding=1,
                    pad_value=-128, rows=4, cols=2, name="extreme")
    x, w, b = extreme_data(spec)
    result = simulate(spec, x, w, b, simulator=simulator, seed=3)
    assert result.matches, result.message
    assert result.output.max() == spec.acc_range[1]


def test_broken_pe_is_caught():
    need_simulator("verilator")
    spec = ConvSpec(height=5, width=5, in_channels=2, out_channels=3, kernel=3, padding=1,
                    rows=2, cols=2, name="broken")
    x, w, b = random_data(np.random.default_rng(1), spec)
    run, report, outputs, seed, _, _ = run_engine_bench(
        spec, generate(spec, faulty_pe=(1, 1)), [x], w, b, seed=99)
    assert run.tests == 1 and run.failures == 1
    message = run.results_xml.read_text()
    # the first wrong beat, named by position, channel, values and cycle, with the seed
    assert "frame 0, output pixel (row 0, column 0), channel 1: expected" in message
    assert "in cycle" in message and "(seed 99)" in message


def test_simulate_result_fields():
    need_simulator("verilator")
    spec = DEFAULT_SPEC
    x, w, b = random_data(np.random.default_rng(2), spec)
    result = simulate(spec, x, w, b, seed=5)
    assert result.matches, result.message
    assert result.output.shape == spec.output_shape
    assert result.cycles == result.predicted_cycles == spec.cycles
    assert result.utilization == pytest.approx(spec.utilization)
    assert result.seed == 5 and result.simulator == "verilator"


def test_simulate_bad_input_wrong():
    spec = DEFAULT_SPEC
    with pytest.raises(ValueError, match=r"^x must have the shape \(4, 16, 16\)"):
        simulate(spec, np.zeros((4, 16, 15), int), np.zeros(spec.weight_shape, int))
    with pytest.raises(ValueError, match=r"^stall must be a probability from 0 up to"):
        simulate(spec, np.zeros(spec.input_shape, int), np.zeros(spec.weight_shape, int),
                 stall=1.0)


@pytest.mark.parametrize("suffix", [".fst", ".vcd"])
def test_waves(tmp_path, suffix):
    need_simulator("verilator")
    from convaccel.simulate import fst_supported
    if suffix == ".fst" and not fst_supported():
        pytest.skip("Verilator's FST writer needs lz4.h (Debian: apt-get install liblz4-dev)")
    spec = ConvSpec(height=3, width=3, in_channels=1, out_channels=1, kernel=3, rows=1, cols=1,
                    name="waves")
    x, w, b = random_data(np.random.default_rng(3), spec)
    result = simulate(spec, x, w, b, seed=1, waves=tmp_path / f"out{suffix}")
    assert result.matches
    data = result.waves.read_bytes()
    assert len(data) > 100
    if suffix == ".vcd":
        assert b"$enddefinitions" in data and b"results__valid" in data


#: The channel-serial engine (``lanes``) in Verilog: chunks 2, two vectors a beat, two result
#: blocks a pixel, stride 2 and a pad value. One Verilator build for both runs: without stalls
#: (the bench holds each frame to the model's cycles) and, under `full`, with random stalls
#: (the amaranth.sim matrix runs stalled serial geometries in the default suite).
SERIAL = dict(height=7, width=6, in_channels=4, out_channels=4, kernel=3, stride=(2, 1),
              padding=(1, 1, 1, 1), pad_value=-5, rows=1, cols=2, lanes=2, name="serial")


@pytest.mark.parametrize("stall", [0.0, pytest.param(0.25, marks=pytest.mark.full)])
def test_serial(stall):
    need_simulator("verilator")
    spec = ConvSpec(**SERIAL)
    rng = np.random.default_rng(31)
    frames = [random_data(rng, spec)[0] for _ in range(2)]
    _, w, b = random_data(rng, spec)
    result = simulate(spec, np.stack(frames), w, b, stall=stall, seed=13)
    assert result.matches, result.message
    for frame, out in zip(frames, result.output):
        np.testing.assert_array_equal(out, golden.conv2d(frame, w, b, spec))
    if stall:
        assert all(c["cycles"] >= spec.cycles for c in result.counters)
        assert sum(c["input_stalls"] + c["output_stalls"] for c in result.counters) > 0
    else:
        assert [c["cycles"] for c in result.counters] == [spec.cycles] * 2
