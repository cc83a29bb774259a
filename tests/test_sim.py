"""cocotb on the generated Verilog: every output beat checked in the cycle it appears."""

import numpy as np
import pytest

from convaccel import DEFAULT_SPEC, ConvSpec, golden
from convaccel.generate import generate
from convaccel.sim.runner import SimulatorMissing, check_simulator
from convaccel.simulate import run_engine_bench, simulate

SIMULATORS = ["verilator", "icarus"]


def need(simulator):
    try:
        check_simulator(simulator)
    except SimulatorMissing as e:
        pytest.skip(str(e))


GEOMETRIES = {
    "k1_1x1": dict(height=4, width=5, in_channels=3, out_channels=5, kernel=1,
                   rows=2, cols=2),
    "k3_same": dict(height=6, width=6, in_channels=2, out_channels=3, kernel=3,
                    padding="same", rows=4, cols=2),
    "k5_s2_asym": dict(height=9, width=8, in_channels=2, out_channels=2, kernel=5, stride=2,
                       padding=(2, 2, 1, 2), rows=5, cols=2),
    "k7_barely": dict(height=7, width=8, in_channels=1, out_channels=2, kernel=7,
                      padding=(0, 0, 0, 1), rows=7, cols=2),
    "k3x5_padval": dict(height=5, width=7, in_channels=2, out_channels=3, kernel=(3, 5),
                        padding=(1, 0, 2, 1), pad_value=-9, rows=3, cols=3),
    "k3_s3": dict(height=9, width=9, in_channels=2, out_channels=2, kernel=3, stride=3,
                  rows=3, cols=1),
    "k3_dil2": dict(height=7, width=7, in_channels=2, out_channels=3, kernel=3, dilation=2,
                    padding="same", rows=4, cols=2),
    "not_multiples": dict(height=5, width=5, in_channels=5, out_channels=7, kernel=3,
                          padding=1, rows=4, cols=3),
    "big_array": dict(height=5, width=6, in_channels=2, out_channels=2, kernel=3, padding=1,
                      rows=18, cols=2),
    "unsigned": dict(height=5, width=4, in_channels=2, out_channels=2, kernel=(2, 3),
                     input_signed=False, pad_value=200, padding=(1, 0, 1, 1), rows=3, cols=2),
    "stride_2x1_dil": dict(height=10, width=6, in_channels=1, out_channels=3, kernel=(3, 2),
                           stride=(2, 1), dilation=(1, 2), padding=(1, 0, 1, 1), rows=2, cols=2),
    "tiny_frame": dict(height=3, width=4, in_channels=2, out_channels=1, kernel=3,
                       rows=2, cols=1),
}


def layer(spec, rng, extreme=False):
    def draw(value_range, shape):
        lo, hi = value_range
        if extreme:
            return np.full(shape, lo, dtype=np.int64)
        return rng.integers(lo, hi, endpoint=True, size=shape)
    x = draw(spec.input_range, spec.input_shape)
    w = draw(spec.weight_range, spec.weight_shape)
    if extreme:
        return x, w, np.full(spec.bias_shape, spec.bias_range[1])
    return x, w, rng.integers(*spec.bias_range, endpoint=True, size=spec.bias_shape)


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("stall", [0.0, 0.25])
@pytest.mark.parametrize("name", GEOMETRIES)
def test_matrix(name, stall, simulator):
    need(simulator)
    spec = ConvSpec(**GEOMETRIES[name], name=name)
    rng = np.random.default_rng(len(name))
    frames = [layer(spec, rng)[0] for _ in range(2)]
    _, w, b = layer(spec, rng)
    result = simulate(spec, np.stack(frames), w, b, simulator=simulator, stall=stall, seed=7)
    assert result.matches, result.message
    for frame, out in zip(frames, result.output):
        np.testing.assert_array_equal(out, golden.conv2d(frame, w, b, spec))
    assert len(result.counters) == 2
    if stall == 0.0:
        assert [c["cycles"] for c in result.counters] == [spec.cycles] * 2
    else:
        assert all(c["cycles"] >= spec.cycles for c in result.counters)
        assert sum(c["input_stalls"] + c["output_stalls"] for c in result.counters) > 0


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_extreme_values(simulator):
    need(simulator)
    spec = ConvSpec(height=4, width=4, in_channels=3, out_channels=2, kernel=3, padding=1,
                    pad_value=-128, rows=4, cols=2, name="extreme")
    x, w, b = layer(spec, None, extreme=True)
    result = simulate(spec, x, w, b, simulator=simulator, seed=3)
    assert result.matches, result.message
    assert result.output.max() == spec.acc_range[1]


def test_broken_pe_is_caught():
    need("verilator")
    spec = ConvSpec(height=5, width=5, in_channels=2, out_channels=3, kernel=3, padding=1,
                    rows=2, cols=2, name="broken")
    x, w, b = layer(spec, np.random.default_rng(1))
    run, report, outputs, seed, _, _ = run_engine_bench(
        spec, generate(spec, faulty_pe=(1, 1)), [x], w, b, seed=99)
    assert run.tests == 1 and run.failures == 1
    message = run.results_xml.read_text()
    # the first wrong beat, named by position, channel, values and cycle, with the seed
    assert "frame 0, output pixel (row 0, column 0), channel 1: expected" in message
    assert "in cycle" in message and "(seed 99)" in message


def test_simulate_result_fields():
    need("verilator")
    spec = DEFAULT_SPEC
    x, w, b = layer(spec, np.random.default_rng(2))
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
    need("verilator")
    from convaccel.simulate import fst_supported
    if suffix == ".fst" and not fst_supported():
        pytest.skip("Verilator's FST writer needs lz4.h (Debian: apt-get install liblz4-dev)")
    spec = ConvSpec(height=3, width=3, in_channels=1, out_channels=1, kernel=3, rows=1, cols=1,
                    name="waves")
    x, w, b = layer(spec, np.random.default_rng(3))
    result = simulate(spec, x, w, b, seed=1, waves=tmp_path / f"out{suffix}")
    assert result.matches
    data = result.waves.read_bytes()
    assert len(data) > 100
    if suffix == ".vcd":
        assert b"$enddefinitions" in data and b"results__valid" in data
