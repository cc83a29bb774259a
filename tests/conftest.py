import numpy as np
import pytest

from convaccel import ConvSpec


def random_spec(rng, *, max_size=12, max_channels=5, max_kernel=5, max_array=6, **fixed):
    """A random valid layer: odd sizes, rectangular kernels, stride and dilation 1-3,
    asymmetric padding, non-zero pad values, unsigned inputs and odd widths now and then."""
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
        kw.update(fixed)
        try:
            spec = ConvSpec(**kw)
        except ValueError:
            continue
        lo, hi = spec.input_range
        if rng.random() < 0.5:
            spec = ConvSpec(**{**kw, "pad_value": int(rng.integers(lo, hi + 1))})
        return spec


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


@pytest.fixture
def rng(request):
    return np.random.default_rng(abs(hash(request.node.name)) % (1 << 32))
