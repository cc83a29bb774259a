# amaranth: UnusedElaboratable=no
"""Fuzzing the generator with hypothesis: random valid layers go through every figure, the golden
model, Verilog generation and lint, and simulation bit-exact (amaranth.sim, and cocotb on
Verilator); random invalid layers are refused with an error that names what is wrong.

The normal suite runs a few fixed (derandomized) examples of each. ``CONVACCEL_FUZZ=N`` (what
``make fuzz`` sets, through ``tests/fuzz/run.py``, which prints the counts) runs N random
examples of the cheap properties and fewer of the costly ones (:data:`SHARES`);
``CONVACCEL_FUZZ_COCOTB=M`` sets the number of cocotb simulations.
"""

import os
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from convaccel import ConfigError, ConvSpec, golden
from convaccel.cli import format_spec
from convaccel.generate import generate, lint
from convaccel.quant import OUTPUT_RANGE
from convaccel.tools import verilator_bin

from fuzz.strategies import bad_layers, layers, sim_layers
from helpers import need_simulator, random_data, random_requant

# the amaranth.sim engine bench lives beside the engine's tests (imported where used)
sys.path.insert(0, str(Path(__file__).parent / "hdl"))

FUZZ = int(os.environ.get("CONVACCEL_FUZZ") or 0)
#: Examples per property: in the normal suite, and as a share of CONVACCEL_FUZZ.
SHARES = {
    "figures":  (100, 1.0),
    "refused":  (300, 1.0),
    "generate": (3, 0.1),
    "engine":   (6, 0.15),
    "cocotb":   (1, 0.005),
}


def fuzz_settings(prop):
    normal, share = SHARES[prop]
    common = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                        HealthCheck.too_slow])
    if not FUZZ:
        return settings(max_examples=normal, derandomize=True, database=None, **common)
    examples = max(1, round(FUZZ * share))
    if prop == "cocotb" and os.environ.get("CONVACCEL_FUZZ_COCOTB"):
        examples = int(os.environ["CONVACCEL_FUZZ_COCOTB"])
    return settings(max_examples=examples, print_blob=True, **common)


# `make fuzz` runs with `--dist loadgroup`: the two costliest properties on different workers,
# each with cheaper ones (a test is one pytest item, whatever its examples).
costly_a = pytest.mark.xdist_group("fuzz-a")
costly_b = pytest.mark.xdist_group("fuzz-b")


@pytest.fixture
def counts(request):
    """What one property did over its examples, handed to `tests/fuzz/run.py` in the test's
    report (`user_properties` travel from pytest-xdist's workers)."""
    counter = Counter()
    yield counter
    request.node.user_properties.append(("fuzz_counts", dict(counter)))


class _Example:
    """Counts one example: tried, then failed if the body raises."""

    def __init__(self, counts, kind):
        self._counts, self._kind = counts, kind

    def __enter__(self):
        self._counts["tried"] += 1
        self._counts[f"tried_{self._kind}"] += 1

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._counts["failed"] += 1
        return False


def names_parameter(message, param):
    """Whether `message` names `param` as a word (not inside another name)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(param)}(?![A-Za-z0-9_])", message)


def layer_data(spec, seed, extreme=False):
    """Input, weights, the bias and the requantization (or None) for `spec`."""
    rng = np.random.default_rng(seed)
    x, w, b = random_data(rng, spec, extreme=extreme)
    requant, requant_bias = random_requant(rng, spec)
    if requant is not None:
        b = requant_bias
    return x, w, b, requant


seeds = st.integers(0, 2**32 - 1)


# -- valid layers ----------------------------------------------------------------------------

@costly_a
@fuzz_settings("figures")
@given(spec=layers(), seed=seeds, extreme=st.booleans())
def test_valid_layer_figures(counts, spec, seed, extreme):
    with _Example(counts, "valid"):
        figures = spec.figures()
        assert all(isinstance(v, (int, float, list)) for v in figures.values())
        for axis, size in enumerate((spec.height, spec.width)):
            top_or_left, bottom_or_right = spec.pads[2 * axis:2 * axis + 2]
            span = size + top_or_left + bottom_or_right - spec.kernel_eff[axis]
            assert span >= 0 and span % spec.stride[axis] == 0
            assert spec.output_size[axis] == span // spec.stride[axis] + 1
            if spec.padding == "same":
                assert spec.output_size[axis] == -(-size // spec.stride[axis])
        assert spec.cycles >= spec.output_pixels * spec.cycles_per_pixel
        assert 0 < spec.utilization <= 1
        assert format_spec(spec)
        # the normalized parameters rebuild the same layer, as arguments and as a TOML file
        params = spec.parameters()
        assert ConvSpec(**params) == spec
        doc = {"layer": {k: v for k, v in params.items() if k in ConvSpec._LAYER_KEYS},
               "array": {"rows": spec.rows, "cols": spec.cols}}
        if spec.name is not None:
            doc["name"] = spec.name
        assert ConvSpec.from_dict(doc) == spec

        x, w, b, requant = layer_data(spec, seed, extreme)
        y = golden.conv2d(x, w, b, spec, requant)
        assert y.shape == spec.output_shape
        lo, hi = spec.output_range
        assert lo <= y.min() and y.max() <= hi
        if requant is not None:
            assert OUTPUT_RANGE[0] <= requant.act_min <= y.min()
            assert y.max() <= requant.act_max <= OUTPUT_RANGE[1]
        counts["golden"] += 1


@costly_b
@fuzz_settings("generate")
@given(spec=layers())
def test_valid_layer_generates(counts, spec, tmp_path_factory):
    with _Example(counts, "valid"):
        name = spec.name or "convaccel"
        text = generate(spec)
        assert re.search(rf"^module \\?{re.escape(name)}\b", text, re.M), \
            f"no top module {name!r}"
        counts["generated"] += 1
        if verilator_bin() is None:
            return
        path = tmp_path_factory.mktemp("lint") / f"{name}.v"
        path.write_text(text)
        ok, messages = lint(path, name)
        assert ok, messages
        counts["linted"] += 1


def _engine_deadline(spec, frames, stall):
    """A bound on the cycles of a load and `frames` frames, well above the model's even with
    gaps and stalls: an engine that hangs fails instead of running forever."""
    slow = 1 / (1 - stall) ** 2
    return int(4 * slow * (spec.load_beats + frames * (spec.cycles + spec.input_pixels))) + 2000


@costly_b
@fuzz_settings("engine")
@given(spec=sim_layers(), seed=seeds, stall=st.sampled_from([0.0, 0.25, 0.5]),
       frames=st.integers(1, 2))
def test_valid_layer_engine(counts, spec, seed, stall, frames):
    """The engine in amaranth.sim, frames back to back with random gaps and stalls, equals
    the golden model; with none, each frame takes exactly the model's cycles."""
    from enginebench import run_engine

    with _Example(counts, "valid"):
        x, w, b, requant = layer_data(spec, seed)
        rng = np.random.default_rng(seed + 1)
        xs = [x] + [random_data(rng, spec)[0] for _ in range(frames - 1)]
        results, counters, _ = run_engine(spec, xs, w, b, stall=stall, seed=seed % 1000,
                                          requant=requant,
                                          max_cycles=_engine_deadline(spec, frames, stall))
        counts["simulated_amaranth"] += 1
        assert len(results) == frames, \
            f"the engine gave {len(results)} of {frames} frames before the deadline"
        for n, (x, y, c) in enumerate(zip(xs, results, counters)):
            np.testing.assert_array_equal(y, golden.conv2d(x, w, b, spec, requant),
                                          err_msg=f"frame {n}")
            assert c["macs"] == spec.macs
            assert c["error"] == 0 and c["done"] == 1 and c["busy"] == 0
            if stall == 0:
                assert c["cycles"] == spec.cycles, f"frame {n}: cycles against the model"


@costly_a
@fuzz_settings("cocotb")
@given(spec=sim_layers(max_cycles=1000), seed=seeds)
def test_valid_layer_cocotb(counts, spec, seed):
    """The generated Verilog under cocotb on Verilator, two frames with random stalls, equals
    the golden model beat by beat."""
    need_simulator("verilator")
    from convaccel.simulate import simulate

    with _Example(counts, "valid"):
        x, w, b, requant = layer_data(spec, seed)
        x2 = random_data(np.random.default_rng(seed + 1), spec)[0]
        result = simulate(spec, np.stack([x, x2]), w, b, requant=requant, stall=0.25,
                          seed=seed % 100000)
        counts["simulated_cocotb"] += 1
        assert result.matches, result.message


# -- invalid layers --------------------------------------------------------------------------

@costly_a
@fuzz_settings("refused")
@given(bad=bad_layers())
def test_invalid_layer_refused(counts, bad):
    """A layer with one thing wrong is refused, by ConvSpec with a TypeError or ValueError, by
    a TOML document with a ConfigError, whose message names the wrong parameter or key."""
    with _Example(counts, "invalid"):
        try:
            spec = bad.build()
        except (TypeError, ValueError) as e:
            if bad.doc is not None:
                assert isinstance(e, ConfigError), f"{type(e).__name__}: {e}"
            assert names_parameter(str(e), bad.param), \
                f"{bad.kind}: the message does not name {bad.param!r}: {e}"
            if bad.kind == "unknown TOML key":
                assert repr(bad.param) in str(e)
        else:
            raise AssertionError(f"{bad.kind} ({bad.param}) accepted: {spec!r}")
        counts["refused"] += 1
