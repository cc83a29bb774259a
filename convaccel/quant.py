"""Integer requantization as TensorFlow Lite's reference int8 kernels do it, exactly.

TFLite scales a convolution's int32 accumulator to int8 with a per-channel fixed-point
multiplier: ``QuantizeMultiplier`` turns the real scale ``input_scale * filter_scale /
output_scale`` into a 31-bit significand ``multiplier`` (in [2**30, 2**31), or 0) and a power
of two ``shift``; ``MultiplyByQuantizedMultiplier`` applies them with gemmlowp's double rounding
(a saturating rounding doubling high multiply, then a rounding division by a power of two);
the output zero point is added and the result clamped to the fused activation's range.

The engine computes the same function in a form with narrow operands
(:func:`hardware_parameters`, :func:`requantize_hw`): a left shift (a scale of 1 or more) is
capped, and the accumulator saturated before it, where the clamp makes the difference
invisible. :func:`requantize_hw` is that form;
:func:`requantize` is TFLite's. The tests check that both agree, and that :func:`requantize`
agrees with the LiteRT interpreter's reference kernels.

All functions are exact: NumPy int64 (accumulators up to 2**53 in magnitude are exact through
the products below, which go through Python integers where int64 could overflow).
"""

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "quantize_multiplier", "saturating_rounding_doubling_high_mul", "rounding_divide_by_pot",
    "multiply_by_quantized_multiplier", "requantize", "activation_range",
    "Requant", "hardware_parameters", "requantize_hw", "requant_from_values", "engine_bias",
    "random_requant", "round_half_away", "requantize_float",
    "OUTPUT_RANGE", "MULTIPLIER_BITS", "MAX_LEFT_SHIFT", "SHIFT_RANGE", "SHIFT_BITS",
    "SATURATE_BITS", "FABRIC_MULTIPLY_CYCLES",
]

#: int8 outputs.
OUTPUT_RANGE = (-128, 127)
#: TFLite's quantized multiplier is a non-negative int32: at most 31 significant bits.
MULTIPLIER_BITS = 31
#: A left shift beyond this makes every non-zero accumulator clamp (:func:`hardware_parameters`).
MAX_LEFT_SHIFT = 9
#: The engine's shifts: right shifts down to 31, left shifts up to MAX_LEFT_SHIFT.
SHIFT_RANGE = (-31, MAX_LEFT_SHIFT)
#: Two's complement bits of a shift.
SHIFT_BITS = 6
#: Before a left shift, the engine saturates the accumulator to this many bits: beyond 256 in
#: magnitude, a scale of 1 or more clamps the output whatever the zero point.
SATURATE_BITS = 10
#: The requantizer's multiplier in logic (``requant_multiplier = "fabric"``) takes one radix-4
#: Booth digit of the multiplier a cycle: its 31 bits and a zero sign bit are 16 digits, so a
#: unit starts a value every 16 cycles.
FABRIC_MULTIPLY_CYCLES = (MULTIPLIER_BITS + 2) // 2


def _round_half_away(v):
    # TfLiteRound / std::round
    return math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1)


def quantize_multiplier(real):
    """``(multiplier, shift)`` for the real scale `real` (a float >= 0), as TFLite's
    ``QuantizeMultiplier``: ``real ~= multiplier * 2**(shift - 31)``."""
    real = float(real)
    if real < 0 or not math.isfinite(real):
        raise ValueError(f"a requantization scale must be finite and not negative, not {real}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = _round_half_away(q * (1 << 31))
    assert q_fixed <= 1 << 31
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:
        shift, q_fixed = 30, (1 << 31) - 1
    return int(q_fixed), int(shift)


def _as_int64(x):
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise TypeError(f"requantization needs integer arrays, not {x.dtype}")
    return x.astype(np.int64)


def _product_high(x, m, shift_right):
    """``(x * m + 2**(shift_right - 1)) >> shift_right`` elementwise, exact (Python integers
    where the product could leave int64)."""
    x, m = np.broadcast_arrays(_as_int64(x), _as_int64(m))
    bound = int(np.abs(x).max(initial=0)) * int(np.abs(m).max(initial=0))
    if bound < 1 << 62:
        return (x * m + (1 << (shift_right - 1))) >> shift_right
    out = np.frompyfunc(lambda a, b: (int(a) * int(b) + (1 << (shift_right - 1))) >> shift_right,
                        2, 1)(x, m)
    return out.astype(np.int64)


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp's ``SaturatingRoundingDoublingHighMul`` on int32 values: the high 32 bits of
    ``2 * a * b``, rounded half up; ``INT32_MIN * INT32_MIN`` saturates to ``INT32_MAX``.

    gemmlowp adds ``2**30`` (or ``1 - 2**30`` for a negative product) and divides by ``2**31``
    rounding toward zero; that is ``floor((a * b + 2**30) / 2**31)`` in every case.
    """
    a, b = np.broadcast_arrays(_as_int64(a), _as_int64(b))
    out = _product_high(a, b, 31)
    return np.where((a == -(1 << 31)) & (b == -(1 << 31)), (1 << 31) - 1, out)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp's ``RoundingDivideByPOT``: ``x / 2**exponent`` rounded to nearest, ties away
    from zero (``exponent`` 0..31, elementwise)."""
    x, exponent = np.broadcast_arrays(_as_int64(x), _as_int64(exponent))
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite's ``MultiplyByQuantizedMultiplier(x, multiplier, shift)`` (double rounding),
    elementwise: ``x`` scaled by ``multiplier * 2**(shift - 31)``.

    TFLite computes ``x * 2**left_shift`` in int32; here it is exact (TFLite's result is
    undefined where that overflows).
    """
    x = _as_int64(x)
    shift = _as_int64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x << left, multiplier), right)


def activation_range(activation, scale, zero_point, qmin=OUTPUT_RANGE[0], qmax=OUTPUT_RANGE[1]):
    """The clamp bounds of a fused activation on an int8 output, as TFLite's
    ``CalculateActivationRangeQuantized`` computes them: ``"NONE"``, ``"RELU"``, ``"RELU6"``
    or ``"RELU_N1_TO_1"``; ``scale`` is the output's (a float32 in the model)."""
    def quantize(f):
        return zero_point + int(_round_half_away(float(np.float32(f) / np.float32(scale))))
    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise ValueError(f"fused activation {activation!r} is not supported; "
                     f"use NONE, RELU, RELU6 or RELU_N1_TO_1")


def requantize(acc, multiplier, shift, output_zero_point, act_min, act_max):
    """TFLite's int8 output: ``clamp(MultiplyByQuantizedMultiplier(acc) + zero point)``.

    ``acc`` is ``(channels, ...)``; ``multiplier`` and ``shift`` have one value per channel.
    """
    acc = _as_int64(acc)
    tail = (1,) * (acc.ndim - 1)
    m = _as_int64(multiplier).reshape(-1, *tail)
    s = _as_int64(shift).reshape(-1, *tail)
    out = multiply_by_quantized_multiplier(acc, m, s) + output_zero_point
    return np.clip(out, act_min, act_max).astype(np.int64)


@dataclass(frozen=True)
class Requant:
    """What the engine's requantizer is loaded with: per output channel a multiplier (TFLite's,
    31 bits unsigned) and a shift (``SHIFT_RANGE``: negative to the right, positive to the
    left); the output zero point; the clamp bounds. :func:`hardware_parameters` makes one from
    TFLite's parameters."""

    multiplier: tuple
    shift: tuple
    output_zero_point: int
    act_min: int = OUTPUT_RANGE[0]
    act_max: int = OUTPUT_RANGE[1]

    def __post_init__(self):
        object.__setattr__(self, "multiplier", tuple(int(v) for v in self.multiplier))
        object.__setattr__(self, "shift", tuple(int(v) for v in self.shift))
        lo, hi = OUTPUT_RANGE
        if len(self.multiplier) != len(self.shift):
            raise ValueError(f"requantization needs one shift per multiplier: "
                             f"{len(self.multiplier)} multipliers, {len(self.shift)} shifts")
        for i, m in enumerate(self.multiplier):
            if not 0 <= m < 1 << MULTIPLIER_BITS:
                raise ValueError(f"multiplier[{i}] = {m} is outside 0..2**{MULTIPLIER_BITS}-1")
        for i, s in enumerate(self.shift):
            if not SHIFT_RANGE[0] <= s <= SHIFT_RANGE[1]:
                raise ValueError(f"shift[{i}] = {s} is outside {SHIFT_RANGE[0]}.."
                                 f"{SHIFT_RANGE[1]}")
        for name in ("output_zero_point", "act_min", "act_max"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {v!r}")
            object.__setattr__(self, name, int(v))
        if self.act_min > self.act_max:
            raise ValueError(f"act_min {self.act_min} is above act_max {self.act_max}")

    @property
    def channels(self):
        return len(self.multiplier)

    def values(self):
        """The load order after the biases: multipliers, shifts, zero point, min, max."""
        return [*self.multiplier, *self.shift, self.output_zero_point, self.act_min,
                self.act_max]


def hardware_parameters(multiplier, shift, output_zero_point, act_min=OUTPUT_RANGE[0],
                        act_max=OUTPUT_RANGE[1]):
    """The :class:`Requant` that computes TFLite's :func:`requantize` with these parameters.

    The multiplier is TFLite's. A positive TFLite ``shift`` (a scale of 1 or more) is a left
    shift of the accumulator before the multiply, capped at ``MAX_LEFT_SHIFT``: with
    ``multiplier >= 2**30``, a left shift of 9 or more scales any non-zero accumulator to at
    least 256 in magnitude, beyond the clamp whatever the zero point (-128..127), and zero stays
    zero. (:func:`requantize_hw` also saturates the shifted accumulator, for the same reason.)
    A negative ``shift`` is the rounding right shift after it.
    """
    multiplier = [int(m) for m in np.asarray(multiplier).ravel()]
    shift = [int(s) for s in np.asarray(shift).ravel()]
    for i, m in enumerate(multiplier):
        if not 0 <= m < 1 << MULTIPLIER_BITS:
            raise ValueError(f"multiplier[{i}] = {m} is not a quantized multiplier "
                             f"(0..2**31-1)")
        if m and m < 1 << (MULTIPLIER_BITS - 1):
            raise ValueError(f"multiplier[{i}] = {m} is not normalized (2**30..2**31-1, "
                             f"as QuantizeMultiplier makes it)")
    for i, s in enumerate(shift):
        if not -31 <= s <= 30:
            raise ValueError(f"shift[{i}] = {s} is outside -31..30")
    return Requant(multiplier=multiplier, shift=[min(s, MAX_LEFT_SHIFT) for s in shift],
                   output_zero_point=output_zero_point, act_min=act_min, act_max=act_max)


def requantize_hw(acc, requant):
    """The engine's requantizer (a :class:`Requant`), bit for bit. For a left shift
    (``shift > 0``) the accumulator is saturated to ``SATURATE_BITS`` and shifted; then ``H =
    (value * multiplier + 2**30) >> 31``; then, for a right shift, ``RoundingDivideByPOT(H,
    -shift)``; plus the zero point, clamped.

    Saturating cannot change an output: beyond 256 in magnitude, a scale of 1 or more takes
    the value past the clamp whatever the zero point, and saturation keeps it there."""
    acc = _as_int64(acc)
    tail = (1,) * (acc.ndim - 1)
    m = np.array(requant.multiplier, dtype=np.int64).reshape(-1, *tail)
    s = np.array(requant.shift, dtype=np.int64).reshape(-1, *tail)
    limit = 1 << (SATURATE_BITS - 1)
    left = np.maximum(s, 0)
    value = np.where(left > 0, np.clip(acc, -limit, limit - 1) << left, acc)
    high = _product_high(value, m, 31)
    out = rounding_divide_by_pot(high, np.maximum(-s, 0)) + requant.output_zero_point
    return np.clip(out, requant.act_min, requant.act_max).astype(np.int64)


def engine_bias(bias, weights, input_zero_point):
    """The bias the engine is loaded with for a requantized layer: TFLite's int32 ``bias`` plus
    ``-input_zero_point * sum(weights[c])`` per output channel.

    TFLite sums ``w * (x - input_zero_point)`` over the taps inside the frame. The engine pads
    with the zero point and sums ``w * x`` over every tap, padded ones included; the padded taps
    then contribute ``w * zero_point``, exactly what the correction removes from every tap, so
    the sums agree and the zero point costs no hardware.
    """
    weights = _as_int64(weights)
    return _as_int64(bias) - int(input_zero_point) * weights.reshape(len(weights), -1).sum(axis=1)


def requant_from_values(values):
    """The :class:`Requant` whose :meth:`Requant.values` are `values` (for files and
    testbenches), or ``None`` for an empty sequence."""
    values = [int(v) for v in np.asarray(values).ravel()]
    if not values:
        return None
    channels, odd = divmod(len(values) - 3, 2)
    if odd or channels < 1:
        raise ValueError(f"{len(values)} requantization values are not 2 per channel and 3")
    return Requant(multiplier=values[:channels], shift=values[channels:2 * channels],
                   output_zero_point=values[-3], act_min=values[-2], act_max=values[-1])


def random_requant(rng, spec):
    """``(requant, bias)`` for `spec` (``(None, None)`` for a raw layer): a requantization
    that spreads typical accumulators
    over the int8 range: per-channel scales from a fifth to 1.6 times the one that maps three
    standard deviations of a random accumulator to 100, a random zero point (-128..63), one of the
    activations' clamps; and a bias of the same typical size (a random int32 bias would
    clamp every output)."""
    if not spec.requantize:
        return None, None
    lo, hi = spec.input_range
    w_lo, w_hi = spec.weight_range
    typical = (hi - lo) / 3.5 * (w_hi - w_lo) / 3.5 * spec.reduction ** 0.5
    scales = 100 / (3 * typical) * 10 ** rng.uniform(-0.7, 0.2, size=spec.out_channels)
    multiplier, shift = zip(*(quantize_multiplier(s) for s in scales))
    zero_point = int(rng.integers(-128, 64))    # (room above it for a ReLU's outputs)
    act_min, act_max = [(-128, 127), (zero_point, 127),
                        (zero_point, min(127, zero_point + 60))][int(rng.integers(0, 3))]
    b_lo, b_hi = spec.bias_range
    bound = int(min(b_hi, typical))
    b = rng.integers(max(b_lo, -bound), bound, endpoint=True, size=spec.bias_shape)
    return hardware_parameters(multiplier, shift, zero_point, max(act_min, -128),
                               act_max), b


def round_half_away(v):
    """C's ``std::round`` on float64 values, elementwise: to the nearest integer, halves away
    from zero, exactly (``v - trunc(v)`` is exact in IEEE arithmetic, where ``floor(v +
    0.5)`` is not). Returns float64."""
    v = np.asarray(v, dtype=np.float64)
    whole = np.trunc(v)
    return whole + np.sign(v) * (np.abs(v - whole) >= 0.5)


def requantize_float(acc, scales, output_zero_point, act_min, act_max):
    """The int8 output of LiteRT's reference ``FULLY_CONNECTED`` kernel (int8, per tensor or
    per channel): ``clamp(round(double(acc) * scale) + zero point)``, ``round`` C's
    ``std::round``, with ``scale`` the double ``double(input_scale) * double(filter_scale) /
    double(output_scale)``, one per output (``acc`` ``(outputs, ...)``).

    (TFLite's reference kernel requantizes this one operator in floating point, not with
    ``MultiplyByQuantizedMultiplier`` as every convolution does: a product near a half can
    round the other way, as on 2 of the digits model's 3600 outputs. NumPy's float64 product
    is IEEE's, the C++ kernel's.)"""
    acc = _as_int64(acc)
    tail = (1,) * (acc.ndim - 1)
    scale = np.asarray(scales, dtype=np.float64).reshape(-1, *tail)
    if np.abs(acc).max(initial=0) >= 1 << 53:
        raise ValueError("accumulators beyond 2**53 are not exact in a double")
    value = round_half_away(acc.astype(np.float64) * scale)
    # (clip in float first: a huge product would not fit int64)
    value = np.clip(value, -(1 << 40), 1 << 40).astype(np.int64) + output_zero_point
    return np.clip(value, act_min, act_max).astype(np.int64)
