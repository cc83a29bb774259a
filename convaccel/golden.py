"""The golden model: the definition of a correct answer, integer-exact, in NumPy."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["conv2d", "check_array", "check_layer_data", "check_requant"]


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


def conv2d(x, w, b, spec, requant=None):
    """The convolution of the layer ``spec`` (a :class:`~convaccel.ConvLayer`, or a
    :class:`~convaccel.ConvSpec`, whose folding does not matter here), exactly.

    ``x`` is ``(in_channels, height, width)``, ``w`` is ``(out_channels, in_channels / groups,
    kernel_h, kernel_w)``, ``b`` is ``(out_channels,)`` or ``None``; the result is
    ``(out_channels, out_height, out_width)``: cross-correlation (no kernel flip, as in PyTorch
    and TensorFlow) of the frame padded with ``spec.pad_value``, plus the bias; with ``groups``,
    each output channel reads only its group's input channels (PyTorch's meaning). The dtype is
    int64, or Python integers (``object``) when ``spec.acc_bits`` exceeds 64.

    A requantized layer (``spec.requantize``) needs ``requant`` (a
    :class:`~convaccel.quant.Requant`, one multiplier and shift per output channel): the exact
    accumulator is then requantized to int8 as the engine does (:func:`convaccel.quant.
    requantize_hw`), and ``b`` is the engine's bias (:func:`convaccel.quant.engine_bias`).
    """
    x, w, b = check_layer_data(x, w, b, spec, requant)
    dtype = np.int64 if spec.acc_bits <= 64 else object

    # (np.pad would store its constant as an np.int64 inside an object array)
    top, _, left, _ = spec.pads
    padded = np.full((spec.in_channels, *spec.padded_shape), spec.pad_value, dtype=dtype)
    padded[:, top:top + spec.height, left:left + spec.width] = x.astype(dtype)
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
