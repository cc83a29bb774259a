"""The engine's stream formats, host side: arrays to beats and back.

One definition, used by the simulation tests, the cocotb testbench and the host driver.
"""

import numpy as np

from .golden import check_array, check_requant, resolve_pad

__all__ = ["pixel_beats", "weight_beats", "weight_sections", "result_beats", "result_array"]


def pixel_beats(x, spec):
    """The input frame as beats: ``(channels, last)``, raster order, ``beat_channels``
    channels a beat: a whole pixel, or for the channel-serial engine (``lanes``) a pixel's
    ``chunks`` beats in turn, beat ``j`` holding channels ``j * lanes .. (j + 1) * lanes -
    1``. ``last`` on the frame's final beat."""
    x = check_array("x", x, spec.input_shape, spec.input_range, "in_channels, height, width")
    beats = x.reshape(spec.in_channels, -1).T.reshape(-1, spec.beat_channels)
    return [([int(v) for v in beat], n == len(beats) - 1) for n, beat in enumerate(beats)]


def weight_beats(w, b, spec, requant=None, pad=None):
    """Weights and biases in the engine's load order, as ``(value, last)`` beats.

    First ``cycles_per_pixel * rows * cols`` weights: for each fold address ``k = (g *
    col_folds + j) * row_folds + fold`` (convolution group ``g``, its column fold ``j``), each
    array row ``r`` and column ``c``, the weight of output channel ``g * out_per_group + j *
    cols + c`` at its group's reduction index ``fold * rows + r`` (zero past the group's
    filters or reduction). The reduction index ``n`` of tap ``(kh, kw)`` and input channel
    ``i`` of the group is ``(kh * kernel_w + kw) * in_per_group + i``. Then the
    ``out_channels`` biases (zeros when ``b`` is None), in channel order. For a requantized
    layer, then `requant`'s values (:meth:`convaccel.quant.Requant.values`). For a layer with
    run-time pad values (``pad_runtime``), then one pad value per input channel: ``pad`` (one
    integer or one per channel, :func:`convaccel.golden.resolve_pad`), else the layer's
    ``pad_value``. ``last`` marks the final beat. (A dense layer is one group: ``k = j *
    row_folds + fold``.) The values are :func:`weight_sections`' in turn.
    """
    values = [v for section in weight_sections(w, b, spec, requant, pad) for v in section]
    return [(v, n == len(values) - 1) for n, v in enumerate(values)]


def weight_sections(w, b, spec, requant=None, pad=None):
    """:func:`weight_beats`' values in the sections of the load whose values are alike in
    width: the weights, the biases, a requantized layer's multipliers and then its shifts,
    zero point and clamp bounds, the run-time pad values (a section that would be empty is
    left out). A list of lists of int."""
    check_requant(requant, spec)
    w = check_array("w", w, spec.weight_shape, spec.weight_range, spec.weight_axes)
    if b is None:
        b = np.zeros(spec.bias_shape, dtype=np.int64)
    b = check_array("b", b, spec.bias_shape, spec.bias_range, "out_channels")
    # (groups, out_per_group, reduction) with n = (kh * kernel_w + kw) * in_per_group + i
    flat = w.transpose(0, 2, 3, 1).reshape(spec.groups, spec.out_per_group, spec.reduction)
    padded = np.zeros((spec.groups, spec.col_folds * spec.cols, spec.row_folds * spec.rows),
                      dtype=np.int64)
    padded[:, :spec.out_per_group, :spec.reduction] = flat
    # [g, j, c, fold, r] -> order (g, j, fold, r, c)
    ordered = padded.reshape(spec.groups, spec.col_folds, spec.cols, spec.row_folds, spec.rows)
    sections = [[int(v) for v in ordered.transpose(0, 1, 3, 4, 2).ravel()],
                [int(v) for v in b]]
    if requant is not None:
        values = requant.values()
        sections += [values[:requant.channels], values[requant.channels:]]
    pads = resolve_pad(spec, pad)
    if spec.pad_runtime:
        sections.append([int(v) for v in pads])
    sections = [section for section in sections if section]
    assert sum(map(len, sections)) == spec.load_beats
    return sections


def result_beats(y, spec):
    """The output array `y` as the engine's result beats (lists of ``result_channels``
    integers, raster order): :func:`result_array`'s inverse."""
    pixels = np.asarray(y).reshape(spec.out_channels, -1).T
    per = spec.result_channels
    return [[int(v) for v in pixel[n:n + per]] for pixel in pixels
            for n in range(0, spec.out_channels, per)]


def result_array(beats, spec):
    """The output array from result beats (lists of ``result_channels`` integers, raster
    order: a whole pixel each, or for the channel-serial engine a pixel's column blocks of
    ``cols`` channels in turn)."""
    if len(beats) != spec.result_beats:
        raise ValueError(f"a frame has {spec.result_beats} result beats, not {len(beats)}")
    flat = np.array(beats, dtype=np.int64 if spec.output_bits <= 64 else object)
    return flat.reshape(-1, spec.out_channels).T.reshape(spec.output_shape)
