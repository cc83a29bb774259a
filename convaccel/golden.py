"""The golden model: the definition of a correct answer, integer-exact, in NumPy."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["conv2d", "pad_frame", "pad_mean", "resolve_pad", "check_array",
           "check_layer_data", "check_requant", "max_pool2d", "avg_pool2d", "dense"]


def check_array(name, array, shape, value_range, what):
    """``array`` as an integer ndarray of ``shape`` whose values lie in ``value_range``.

    Raises ``TypeError`` for a non-integer array and ``ValueError`` for a wrong shape or an
    out-of-range value, naming the array and the first offending element.
    """
    array = np.asarray(array)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, not {array.dtype}")
    if array.shape != tuple(shape):
        raise ValueError(f"{name} must have the shape {tuple(shape)} ({what}), "
                         f"not {array.shape}")
    lo, hi = value_range
    if array.size:
        bad = np.argwhere((array < lo) | (array > hi))
        if len(bad):
            index = tuple(int(i) for i in bad[0])
            raise ValueError(f"{name}{list(index)} = {array[index]} is outside {lo}..{hi}; "
                             f"{len(bad)} value(s) of {name} do not fit")
    return array


def check_layer_data(x, w, b, spec, requant=None):
    """``(x, w, b)`` checked as :func:`conv2d` takes them (and ``requant`` with them): the
    errors of :func:`check_array` and :func:`check_requant`, before any work."""
    check_requant(requant, spec)
    x = check_array("x", x, spec.input_shape, spec.input_range,
                    "in_channels, height, width")
    w = check_array("w", w, spec.weight_shape, spec.weight_range, spec.weight_axes)
    if b is not None:
        b = check_array("b", b, spec.bias_shape, spec.bias_range, "out_channels")
    return x, w, b


def conv2d(x, w, b, spec, requant=None, pad=None):
    """The convolution of the layer ``spec`` (a :class:`~convaccel.ConvLayer`, or a
    :class:`~convaccel.ConvSpec`, whose folding does not matter here), exactly.

    ``x`` is ``(in_channels, height, width)``, ``w`` is ``(out_channels, in_channels / groups,
    kernel_h, kernel_w)``, ``b`` is ``(out_channels,)`` or ``None``; the result is
    ``(out_channels, out_height, out_width)``: cross-correlation (no kernel flip, as in PyTorch
    and TensorFlow) of the frame padded as ``spec.padding_mode`` says (:func:`pad_frame`), plus
    the bias; with ``groups``, each output channel reads only its group's input channels
    (PyTorch's meaning). The dtype is int64, or Python integers (``object``) when
    ``spec.acc_bits`` exceeds 64.

    A requantized layer (``spec.requantize``) needs ``requant`` (a
    :class:`~convaccel.quant.Requant`, one multiplier and shift per output channel): the exact
    accumulator is then requantized to int8 as the engine does (:func:`convaccel.quant.
    requantize_hw`), and ``b`` is the engine's bias (:func:`convaccel.quant.engine_bias`).

    ``pad``, for a layer with run-time pad values (``spec.pad_runtime``), is what the host
    loads for this frame (:func:`resolve_pad`): one value, one per input channel, or
    ``"mean"``; ``None`` is the layer's ``pad_value``.
    """
    x, w, b = check_layer_data(x, w, b, spec, requant)
    dtype = np.int64 if spec.acc_bits <= 64 else object
    padded = pad_frame(x.astype(dtype), spec, resolve_pad(spec, pad, x))
    # (in_channels, out_h', out_w', k_eff_h, k_eff_w), then keep the output positions (stride)
    # and the taps (dilation).
    windows = sliding_window_view(padded, spec.kernel_eff, axis=(1, 2))
    (s_h, s_w), (d_h, d_w) = spec.stride, spec.dilation
    windows = windows[:, ::s_h, ::s_w, ::d_h, ::d_w]
    w = w.astype(dtype)
    # Group g: output channels g * out_per_group.. read input channels g * in_per_group..
    # (one group, all channels, for a dense layer).
    c_in, c_out = spec.in_per_group, spec.out_per_group
    out = np.zeros(spec.output_shape, dtype=dtype)
    for g in range(spec.groups):
        w_g = w[g * c_out:(g + 1) * c_out]
        win_g = windows[g * c_in:(g + 1) * c_in]
        if dtype is object:
            # NumPy's dot on object arrays goes through C longs; sum tap by tap instead, each
            # tap still vectorized over every output pixel and filter.
            for i, r, c in np.ndindex(*w.shape[1:]):
                out[g * c_out:(g + 1) * c_out] += (w_g[:, i, r, c][:, None, None]
                                                   * win_g[i, :, :, r, c][None])
        else:
            out[g * c_out:(g + 1) * c_out] = np.tensordot(w_g, win_g, axes=([1, 2, 3], [0, 3, 4]))
    if b is not None:
        out = out + b.astype(dtype)[:, None, None]
    assert out.shape == spec.output_shape
    if spec.requantize:
        from .quant import requantize_hw
        out = requantize_hw(out, requant)
    return out


def pad_frame(x, spec, values=None):
    """The frame ``x`` ``(in_channels, height, width)`` padded to ``spec.padded_shape``: each
    padded row and column taken from the frame where ``spec.source_index`` says, the
    constant padding of channel ``c`` filled with ``values[c]`` (default
    ``spec.pad_values``). The dtype is ``x``'s."""
    rows, cols = (spec.source_index(axis) for axis in (0, 1))
    if values is None:
        values = spec.pad_values
    padded = np.empty((spec.in_channels, *spec.padded_shape), dtype=x.dtype)
    for c, value in enumerate(values):
        # (np.full would store an np.int64 inside an object array)
        padded[c] = int(value)
    inside_r = [n for n, r in enumerate(rows) if r is not None]
    inside_c = [n for n, c in enumerate(cols) if c is not None]
    source = x[:, [rows[n] for n in inside_r]][:, :, [cols[n] for n in inside_c]]
    padded[np.ix_(range(spec.in_channels), inside_r, inside_c)] = source
    return padded


def pad_mean(x):
    """Per channel, the mean of the frame ``x`` ``(in_channels, height, width)`` rounded to an
    integer, halves away from zero (as TFLite's average pooling rounds): ``(sum + n // 2) //
    n`` for a sum at or above zero, ``-((-sum + n // 2) // n)`` below, over ``n = height *
    width`` pixels. It lies within the inputs' range, so it is a valid pad value."""
    x = np.asarray(x)
    n = x.shape[1] * x.shape[2]
    means = []
    for total in x.reshape(x.shape[0], -1).astype(object).sum(axis=1):
        total = int(total)
        means.append((total + n // 2) // n if total >= 0 else -((-total + n // 2) // n))
    return tuple(means)


def resolve_pad(spec, pad, x=None):
    """The pad values (one per input channel) for a frame ``x`` of the layer ``spec``: its own
    (``pad`` ``None``) or, for a layer with ``pad_runtime``, ``pad``: one integer, one per
    input channel, or ``"mean"`` (:func:`pad_mean` of ``x``). Raises ``ValueError`` (naming
    ``pad``) for values a layer cannot take."""
    if pad is None:
        return spec.pad_values
    if not spec.pad_runtime:
        raise ValueError(
            "pad values for a frame need a layer with run-time pad values (set pad_runtime = "
            "true in the layer); this one pads with its pad_value, fixed at generation")
    if isinstance(pad, str):
        if pad != "mean":
            raise ValueError(f"pad must be 'mean', an integer or one integer per input "
                             f"channel, not {pad!r}")
        if x is None:
            raise ValueError("pad='mean' needs the frame whose mean it is")
        return pad_mean(x)
    values = np.asarray(pad)
    if values.dtype.kind not in "iu" or values.ndim > 1:
        raise ValueError(f"pad must be 'mean', an integer or one integer per input channel, "
                         f"not {pad!r}")
    if values.ndim == 0:
        values = np.full(spec.in_channels, values)
    values = check_array("pad", values, (spec.in_channels,), spec.input_range,
                         "one value per input channel")
    return tuple(int(v) for v in values)


def check_requant(requant, spec):
    """Raise ``ValueError`` unless `requant` suits `spec`: a :class:`~convaccel.quant.Requant`
    with one multiplier per output channel for a requantized layer, ``None`` for a raw one."""
    from .quant import Requant
    if not spec.requantize:
        if requant is not None:
            raise ValueError("requantization parameters were given for a raw layer "
                             "(set requantize = true in the layer to use them)")
        return
    if not isinstance(requant, Requant):
        raise ValueError("a requantized layer (requantize = true) needs its requantization "
                         "parameters (a convaccel.quant.Requant)")
    if requant.channels != spec.out_channels:
        raise ValueError(f"requantization parameters for {requant.channels} channels were "
                         f"given for a layer with out_channels = {spec.out_channels}")


# -- the other stages of a network ------------------------------------------------------------

def _pool_windows(x, kernel, stride, pads, fill):
    """The pooling windows of the frame ``x`` ``(C, H, W)``: ``(C, out_h, out_w, k_h, k_w)``,
    the taps outside the frame (``pads`` ``(top, bottom, left, right)``) set to ``fill``."""
    top, bottom, left, right = pads
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right)), constant_values=fill)
    (s_h, s_w) = stride
    return sliding_window_view(padded, tuple(kernel), axis=(1, 2))[:, ::s_h, ::s_w]


def max_pool2d(x, kernel, stride, pads, act_min=-128, act_max=127):
    """Max pooling of the frame ``x`` ``(C, H, W)`` as TFLite's reference kernel
    (``reference_integer_ops::MaxPool``) computes it: per output pixel and channel the largest
    of the ``kernel`` ``(k_h, k_w)`` taps inside the frame (those in the padding ``pads``
    ``(top, bottom, left, right)`` are skipped), clamped to ``act_min..act_max`` (the fused
    activation). The output is ``(C, out_h, out_w)`` int64, ``out = (size + pads - k) //
    stride + 1`` per axis.

    (A padder filling with -128 gives the same maxima on int8 data: every SAME or VALID window
    holds a tap inside the frame.)"""
    x = np.asarray(x).astype(np.int64)
    windows = _pool_windows(x, kernel, stride, pads, np.iinfo(np.int64).min)
    return np.clip(windows.max(axis=(3, 4)), act_min, act_max)


def avg_pool2d(x, kernel, stride, pads, act_min=-128, act_max=127):
    """Average pooling of the frame ``x`` ``(C, H, W)`` as TFLite's reference kernel
    (``reference_integer_ops::AveragePool``) computes it: per output pixel and channel the sum
    of the ``n`` taps inside the frame (the padding ``pads`` is skipped, so a window on the
    border averages fewer taps), divided by ``n`` rounding halves away from zero (``(sum + n /
    2) / n`` for a sum above zero, ``(sum - n / 2) / n`` otherwise, C's truncating division),
    clamped to ``act_min..act_max``. The output is ``(C, out_h, out_w)`` int64.

    Raises ``ValueError`` for a window that holds no tap of the frame (TFLite's kernel fails
    there; SAME and VALID never make one)."""
    x = np.asarray(x).astype(np.int64)
    sums = _pool_windows(x, kernel, stride, pads, 0).sum(axis=(3, 4))
    ones = np.ones((1, *x.shape[1:]), dtype=np.int64)
    counts = _pool_windows(ones, kernel, stride, pads, 0).sum(axis=(3, 4))
    if not counts.all():
        raise ValueError(f"a {kernel[0]}x{kernel[1]} pooling window with the padding {pads} "
                         f"holds no pixel of the {x.shape[1]}x{x.shape[2]} frame")
    half = counts // 2
    means = np.where(sums > 0, (sums + half) // counts, -((-sums + half) // counts))
    return np.clip(means, act_min, act_max)


def dense(x, w, b, scales=None, output_zero_point=0, act_min=-128, act_max=127):
    """A fully connected layer: ``sum(w[u] * x) + b[u]`` for every output ``u``, exactly
    (int64), over all the elements of ``x`` (any shape; ``w`` is ``(units, *x.shape)``, so
    that ``w[u]`` lines up with ``x`` whatever its layout); ``b`` is ``(units,)`` or ``None``.

    With ``scales`` (one per output), the sums are requantized to int8 as LiteRT's reference
    ``FULLY_CONNECTED`` kernel does (:func:`convaccel.quant.requantize_float`, with the
    output zero point and the clamp ``act_min..act_max``); ``b`` is then the engine's bias
    (:func:`convaccel.quant.engine_bias`), which folds the input zero point in.

    Raises ``ValueError`` for shapes that do not line up."""
    x, w = np.asarray(x), np.asarray(w)
    if w.shape[1:] != x.shape:
        raise ValueError(f"the weights {w.shape} must be (units, *{x.shape}), one per input "
                         f"element and output")
    acc = np.tensordot(w.astype(np.int64), x.astype(np.int64), axes=x.ndim)
    if b is not None:
        b = np.asarray(b)
        if b.shape != acc.shape:
            raise ValueError(f"the bias must be ({len(acc)},), one per output, not {b.shape}")
        acc = acc + b.astype(np.int64)
    if scales is None:
        return acc
    from .quant import requantize_float
    if len(scales) != len(acc):
        raise ValueError(f"{len(scales)} requantization scales were given for a dense layer "
                         f"of {len(acc)} outputs")
    return requantize_float(acc, scales, output_zero_point, act_min, act_max)
