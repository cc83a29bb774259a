"""Helpers shared by the tests: random layers and data, skipping without a simulator, running
the command line as a user does."""

import subprocess
import sys

import numpy as np
import pytest

from convaccel import ConvSpec
from convaccel.quant import random_requant

__all__ = ["random_spec", "random_data", "random_requant", "extreme_data", "need_simulator",
           "run_cli", "netlist_cell"]


def random_spec(rng, *, max_size=12, max_channels=5, max_kernel=5, max_array=6, max_groups=0,
                **fixed):
    """A random valid layer: odd sizes, rectangular kernels, stride and dilation 1-3,
    asymmetric padding, non-zero and per-channel pad values, replicate and reflect padding,
    unsigned inputs and odd widths now and then.

    With ``max_groups`` (2 or more), a grouped layer: 2 to ``max_groups`` groups, depthwise
    (one input channel a group) half the time, each group up to ``max_channels`` input and
    output channels."""
    while True:
        kw = dict(
            height=int(rng.integers(1, max_size + 1)),
            width=int(rng.integers(1, max_size + 1)),
            in_channels=int(rng.integers(1, max_channels + 1)),
            out_channels=int(rng.integers(1, max_channels + 1)),
            kernel=(int(rng.integers(1, max_kernel + 1)), int(rng.integers(1, max_kernel + 1))),
            stride=(int(rng.integers(1, 4)), int(rng.integers(1, 4))),
            dilation=(int(rng.integers(1, 4)), int(rng.integers(1, 4))),
            input_bits=int(rng.choice([2, 3, 4, 8, 8, 8, 12, 16])),
            weight_bits=int(rng.choice([2, 5, 8, 8, 8, 16])),
            bias_bits=int(rng.choice([8, 16, 32])),
            input_signed=bool(rng.random() < 0.8),
            rows=int(rng.integers(1, max_array + 1)),
            cols=int(rng.integers(1, max_array + 1)),
        )
        choice = rng.random()
        if choice < 0.15:
            kw["padding"] = "same"
        elif choice < 0.25:
            kw["padding"] = "valid"
        else:
            kw["padding"] = tuple(int(p) for p in rng.integers(0, 4, size=4))
        if max_groups >= 2:
            groups = int(rng.integers(2, max_groups + 1))
            per_group = 1 if rng.random() < 0.5 else int(rng.integers(1, max_channels + 1))
            kw.update(groups=groups, in_channels=groups * per_group,
                      out_channels=groups * int(rng.integers(1, max_channels + 1)))
        kw.update(fixed)
        try:
            spec = ConvSpec(**kw)
        except ValueError:
            continue
        lo, hi = spec.input_range
        choice = rng.random()
        if spec.padding_mode != "constant" or "pad_value" in fixed:
            pass
        elif choice < 0.4:
            kw["pad_value"] = int(rng.integers(lo, hi + 1))
        elif choice < 0.5:
            kw["pad_value"] = [int(v) for v in rng.integers(lo, hi + 1, spec.in_channels)]
        elif choice < 0.75 and not {"padding_mode", "pad_runtime"} & set(fixed):
            top, bottom, left, right = spec.pads
            fits = max(top, bottom) < spec.height and max(left, right) < spec.width
            kw["padding_mode"] = "reflect" if fits and rng.random() < 0.6 else "replicate"
        kw.update(fixed)
        return ConvSpec(**kw)


def random_data(rng, spec, extreme=False):
    """Input, weights and bias for ``spec``; ``extreme`` picks each value from the ends."""
    def draw(value_range, shape):
        lo, hi = value_range
        if extreme:
            return rng.choice(np.array([lo, hi], dtype=np.int64), size=shape)
        return rng.integers(lo, hi, endpoint=True, size=shape, dtype=np.int64)
    return (draw(spec.input_range, spec.input_shape),
            draw(spec.weight_range, spec.weight_shape),
            draw(spec.bias_range, spec.bias_shape))


def extreme_data(spec):
    """The corner that fills the accumulator: every input and weight at its most negative value
    (their products at the largest), the bias at its largest."""
    return (np.full(spec.input_shape, spec.input_range[0], dtype=np.int64),
            np.full(spec.weight_shape, spec.weight_range[0], dtype=np.int64),
            np.full(spec.bias_shape, spec.bias_range[1], dtype=np.int64))


def need_simulator(simulator="verilator"):
    """Skip the calling test, with the reason, unless `simulator` can run here."""
    from convaccel.sim.runner import SimulatorMissing, check_simulator
    try:
        check_simulator(simulator)
    except SimulatorMissing as e:
        pytest.skip(str(e))


def run_cli(*args, env=None):
    """``convaccel ARGS...`` in a fresh process, as a user runs it: the CompletedProcess with
    its text output."""
    return subprocess.run([sys.executable, "-m", "convaccel.cli", *map(str, args)],
                          capture_output=True, text=True, env=env)


def netlist_cell(kind, outputs, **ports):
    """A cell of a hand-made Yosys JSON netlist: its type, its ports' directions (those named in
    `outputs` drive) and connections (a bit or a list of bits each)."""
    return {"type": kind,
            "port_directions": {p: "output" if p in outputs else "input" for p in ports},
            "connections": {p: bits if isinstance(bits, list) else [bits]
                            for p, bits in ports.items()}}
