"""Hypothesis strategies for fuzzing the generator (`tests/test_fuzz.py`, `make fuzz`).

:func:`layer_kwargs` draws the arguments of a *valid* :class:`~convaccel.ConvSpec`, built
valid rather than filtered: each axis draws its kernel, dilation and stride, then a frame size
and padding that make the output size a whole number, so ConvSpec refusing one is a failure of
the test, never a discarded example. :func:`bad_layers` draws layers with exactly one thing
wrong and records the parameter (or TOML key) that the refusal must name.
"""

import dataclasses
import math

from hypothesis import strategies as st

from convaccel import ConvSpec

__all__ = ["MAX_SIZE", "layer_kwargs", "layers", "sim_layers", "BadLayer", "bad_layers",
           "toml_doc"]

MAX_SIZE = 12
AXES = ("height", "width")
SHAPE_FIELDS = ("height", "width", "in_channels", "out_channels", "groups")
PAIR_FIELDS = ("kernel", "stride", "dilation")
BITS_FIELDS = ("input_bits", "weight_bits", "bias_bits")
FOLD_FIELDS = ("rows", "cols")
INT_FIELDS = SHAPE_FIELDS + BITS_FIELDS + FOLD_FIELDS + ("pad_value",)
LAYER_KEYS = ConvSpec._LAYER_KEYS
ARRAY_KEYS = ConvSpec._ARRAY_KEYS

# Design names: identifiers, and a few words Verilog, C++ or Python reserve (ConvSpec accepts
# them, so the generator and the simulators must cope).
RESERVED = ("module", "reg", "wire", "input", "output", "begin", "end", "always", "int", "class",
            "new", "delete", "main", "top", "cocotb", "sim", "convaccel")
names = st.one_of(
    st.none(),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,23}", fullmatch=True),
    st.sampled_from(RESERVED),
)


def _pair_form(draw, h, w):
    """An (h, w) pair as ConvSpec takes it: an int when both are equal, a tuple or a list."""
    if h == w and draw(st.booleans()):
        return h
    return draw(st.sampled_from([tuple, list]))((h, w))


@st.composite
def _axis(draw, kind, p, max_size, max_kernel):
    """One axis: ``(size, kernel, stride, dilation, before, after)`` with a whole output size.

    ``kind`` is ``"free"`` (any padding per side), ``"sym"`` (``p`` on both sides: an int or
    pair padding, ``p = 0`` for ``"valid"``) or ``"same"``.
    """
    k = draw(st.integers(1, max_kernel))
    d = draw(st.integers(1, 3))
    s = draw(st.integers(1, 3))
    if kind == "sym" and k > 1:
        # keep a frame of at most max_size possible: k_eff - 2p <= max_size
        d = min(d, max(1, (max_size + 2 * p - 1) // (k - 1)))
    k_eff = (k - 1) * d + 1
    if kind == "free":
        size = draw(st.integers(1, max_size))
        before = draw(st.integers(0, 3))
        after = max(0, k_eff - size - before)
        after += -(size + before + after - k_eff) % s + s * draw(st.integers(0, 1))
        return size, k, s, d, before, after
    if kind == "same":
        size = draw(st.integers(1, max_size))
        # TensorFlow's "same" needs (ceil(size / s) - 1) * s + k_eff >= size: a kernel
        # narrower than the stride must not skip the frame's last pixels.
        size -= max(0, (size - 1) % s + 1 - k_eff)
        return size, k, s, d, None, None
    lowest = max(1, k_eff - 2 * p)
    size = lowest + (k_eff - 2 * p - lowest) % s
    size += s * draw(st.integers(0, (max_size - size) // s))
    return size, k, s, d, p, p


def _widths(most):
    """A width from 2 to `most`, the narrowest, int8 and the widest often."""
    return st.one_of(st.integers(2, most), st.sampled_from([2, 3, 8, most]))


@st.composite
def layer_kwargs(draw, *, max_size=MAX_SIZE, max_channels=6, max_kernel=5, max_array=6):
    """ConvSpec's keyword arguments for a random valid layer: frames 1 to ``max_size``,
    rectangular kernels, stride and dilation 1-3, every form of padding, any pad value in
    range, widths 2-16 (bias 2-32), signed or unsigned inputs, raw or requantized, any name,
    folded on 1 to ``max_array`` rows and columns; a quarter of them grouped (2 to 4 groups,
    depthwise half the time), channels still at most ``max_channels``."""
    form = draw(st.sampled_from(["int", "pair", "quad", "same", "valid"]))
    if form == "int":
        p = draw(st.integers(0, 3))
        axes = [draw(_axis("sym", p, max_size, max_kernel)) for _ in AXES]
        padding = p
    elif form == "pair":
        axes = [draw(_axis("sym", draw(st.integers(0, 3)), max_size, max_kernel))
                for _ in AXES]
        padding = _pair_form(draw, axes[0][4], axes[1][4])
    elif form == "quad":
        axes = [draw(_axis("free", None, max_size, max_kernel)) for _ in AXES]
        padding = draw(st.sampled_from([tuple, list]))(
            (axes[0][4], axes[0][5], axes[1][4], axes[1][5]))
    else:
        axes = [draw(_axis("same" if form == "same" else "sym", 0, max_size, max_kernel))
                for _ in AXES]
        padding = draw(st.sampled_from([form, form.upper(), form.capitalize()]))
    (h, kh, sh, dh, *_), (w, kw, sw, dw, *_) = axes
    input_bits = draw(_widths(16))
    input_signed = draw(st.booleans())
    lo, hi = ((-(1 << (input_bits - 1)), (1 << (input_bits - 1)) - 1) if input_signed else
              (0, (1 << input_bits) - 1))
    groups = 1
    if max_channels >= 2 and draw(st.integers(0, 3)) == 0:
        groups = draw(st.integers(2, min(4, max_channels)))
    per_group = max_channels // groups
    in_channels = groups * draw(st.integers(1, per_group) if groups == 1 else
                                st.one_of(st.just(1), st.integers(1, per_group)))
    out_channels = groups * draw(st.integers(1, per_group))
    value = st.one_of(st.just(0), st.sampled_from([lo, hi]), st.integers(lo, hi))
    kwargs = dict(
        height=h, width=w,
        in_channels=in_channels,
        out_channels=out_channels,
        groups=groups,
        kernel=_pair_form(draw, kh, kw),
        stride=_pair_form(draw, sh, sw),
        padding=padding,
        dilation=_pair_form(draw, dh, dw),
        pad_value=draw(st.one_of(value, st.lists(value, min_size=in_channels,
                                                  max_size=in_channels))),
        pad_runtime=draw(st.booleans()),
        input_bits=input_bits,
        weight_bits=draw(_widths(16)),
        bias_bits=draw(_widths(32)),
        input_signed=input_signed,
        requantize=draw(st.booleans()),
        name=draw(names),
        # (an array larger than the layer is refused from a layer file: see _array_too_large)
        rows=draw(st.integers(1, min(max_array, kh * kw * in_channels // groups))),
        cols=draw(st.integers(1, min(max_array, out_channels // groups))),
    )
    # the border taken from the frame now and then (reflect only where each side's padding
    # is smaller than the frame, PyTorch's rule); no pad value then
    mode = draw(st.sampled_from(["constant", "constant", "constant", "replicate", "reflect"]))
    if mode != "constant":
        top, bottom, left, right = ConvSpec(**kwargs).pads
        if mode == "reflect" and not (max(top, bottom) < h and max(left, right) < w):
            mode = "replicate"
        kwargs.update(pad_value=0, pad_runtime=False,
                      padding_mode=draw(st.sampled_from([mode, mode.capitalize()])))
    return kwargs


def layers(**limits):
    """Random valid :class:`~convaccel.ConvSpec` objects (limits as :func:`layer_kwargs`)."""
    return layer_kwargs(**limits).map(lambda kw: ConvSpec(**kw))


#: Cycles per frame (with no stalls) of a layer simulated in amaranth.sim: about a second.
SIM_CYCLES = 3000


def sim_layers(max_cycles=SIM_CYCLES):
    """Valid layers small enough to simulate: frames up to 8, up to 4 channels and a 4 x 4
    array, at most ``max_cycles`` cycles per frame. (The cycle bound is a filter on cost,
    not on validity; it discards few.)"""
    return layers(max_size=8, max_channels=4, max_array=4).filter(
        lambda spec: spec.cycles <= max_cycles)


def toml_doc(kw):
    """``kw`` (ConvSpec's arguments) as the document a TOML file holds: ``name`` at the top,
    the layer's keys in ``[layer]``, the folding in ``[array]``, pairs as arrays."""
    def plain(v):
        return list(v) if isinstance(v, tuple) else v
    doc = {"layer": {k: plain(v) for k, v in kw.items() if k in LAYER_KEYS},
           "array": {k: plain(v) for k, v in kw.items() if k in ARRAY_KEYS}}
    if kw.get("name") is not None:
        doc["name"] = kw["name"]
    return doc


@dataclasses.dataclass(frozen=True)
class BadLayer:
    """A layer with one thing wrong: ``kind`` says what, ``param`` is the parameter (or TOML
    key) the refusal must name. Built from ``kwargs`` by ConvSpec, or from ``doc`` by
    ``ConvSpec.from_dict`` when ``doc`` is given."""
    kind: str
    param: str
    kwargs: dict
    doc: dict | None = None

    def build(self):
        if self.doc is not None:
            return ConvSpec.from_dict(self.doc)
        return ConvSpec(**self.kwargs)


def _as_pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def _set_axis(kw, axis, size, k, s, d, before, after):
    """``kw`` (a valid layer) with one axis replaced and the padding made explicit (the other
    axis's kept)."""
    pads = list(ConvSpec(**kw).pads)
    pads[2 * axis:2 * axis + 2] = before, after
    kw = dict(kw, padding=tuple(pads))
    kw[AXES[axis]] = size
    for field, value in zip(PAIR_FIELDS, (k, s, d)):
        pair = list(_as_pair(kw[field]))
        pair[axis] = value
        kw[field] = tuple(pair)
    return kw


@st.composite
def _non_integer_output(draw, kw):
    axis = draw(st.integers(0, 1))
    k, d, s = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(2, 3))
    before, after = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    k_eff = (k - 1) * d + 1
    # span = size + before + after - k_eff >= 0 with span % s != 0
    r = draw(st.integers(1, s - 1))
    j = max(0, math.ceil((1 - (k_eff - before - after + r)) / s))
    size = k_eff - before - after + r + s * (j + draw(st.integers(0, 2)))
    return BadLayer("non-integer output size", AXES[axis],
                    _set_axis(kw, axis, size, k, s, d, before, after))


@st.composite
def _kernel_too_large(draw, kw):
    axis = draw(st.integers(0, 1))
    size, before, after = draw(st.integers(1, 6)), draw(st.integers(0, 2)), draw(st.integers(0, 2))
    d = draw(st.integers(1, 3))
    k_eff = size + before + after + draw(st.integers(1, 4))
    k = math.ceil((k_eff - 1) / d) + 1        # (k - 1) * d + 1 >= k_eff
    return BadLayer("kernel larger than the padded frame", "kernel",
                    _set_axis(kw, axis, size, k, draw(st.integers(1, 3)), d, before, after))


@st.composite
def _same_skips(draw, kw):
    # "same" with a kernel narrower than the stride, on a size whose last pixels it skips
    axis = draw(st.integers(0, 1))
    s = draw(st.integers(2, 4))
    k_eff = draw(st.integers(1, s - 1))
    size = s * draw(st.integers(0, 3)) + draw(st.integers(k_eff + 1, s))
    kw = _set_axis(kw, axis, size, k_eff, s, 1, 0, 0)
    kw["padding"] = "same"
    other = 1 - axis       # the other axis "same"-valid: kernel 1, stride 1
    for field in PAIR_FIELDS:
        pair = list(kw[field])
        pair[other] = 1
        kw[field] = tuple(pair)
    return BadLayer("'same' needs negative padding", "padding", kw)


@st.composite
def _width_out_of_range(draw, kw):
    field = draw(st.sampled_from(BITS_FIELDS))
    return BadLayer("width out of range", field,
                    dict(kw, **{field: draw(st.one_of(st.integers(max_value=1),
                                                      st.integers(min_value=33)))}))


@st.composite
def _not_positive(draw, kw):
    field = draw(st.sampled_from(SHAPE_FIELDS + FOLD_FIELDS + PAIR_FIELDS))
    bad = draw(st.integers(max_value=0))
    if field in PAIR_FIELDS and draw(st.booleans()):
        bad = tuple(draw(st.permutations([bad, draw(st.integers(1, 5))])))
    return BadLayer("not positive", field, dict(kw, **{field: bad}))


@st.composite
def _pad_value_out_of_range(draw, kw):
    lo, hi = ConvSpec(**kw).input_range
    bad = draw(st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1)))
    return BadLayer("pad value outside the input range", "pad_value", dict(kw, pad_value=bad))


@st.composite
def _pad_values_miscounted(draw, kw):
    spec = ConvSpec(**kw)
    lo, hi = spec.input_range
    n = draw(st.integers(0, 8).filter(lambda n: n != spec.in_channels))
    return BadLayer("pad values not one per input channel", "pad_value",
                    dict(kw, padding_mode="constant",
                         pad_value=draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))))


@st.composite
def _pad_value_with_edge_mode(draw, kw):
    lo, hi = ConvSpec(**kw).input_range
    bad = draw(st.one_of(st.integers(lo, hi).filter(bool),
                         st.lists(st.integers(lo, hi), min_size=ConvSpec(**kw).in_channels,
                                  max_size=ConvSpec(**kw).in_channels)))
    return BadLayer("a pad value with an edge padding mode", "pad_value",
                    dict(kw, padding_mode=draw(st.sampled_from(["replicate", "reflect"])),
                         pad_value=bad, padding=0))


@st.composite
def _circular(draw, kw):
    return BadLayer("circular padding", "padding_mode",
                    dict(kw, padding_mode=draw(st.sampled_from(["circular", "Circular"]))))


@st.composite
def _bad_padding_mode(draw, kw):
    bad = draw(st.one_of(st.text(max_size=9),
                         st.sampled_from(["edge", "zeros", "symmetric", "wrap", "mean", "same"])))
    if bad.lower() in ("constant", "replicate", "reflect", "circular"):
        bad += "x"
    return BadLayer("unknown padding mode", "padding_mode", dict(kw, padding_mode=bad))


@st.composite
def _reflect_too_wide(draw, kw):
    # one side's padding at least the frame on its axis, stride 1 so that the output size
    # stays whole
    axis = draw(st.integers(0, 1))
    size = draw(st.integers(1, 6))
    k, d = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    other = draw(st.integers(0, size - 1))
    wide = max(size + draw(st.integers(0, 2)), (k - 1) * d + 1 - size - other)
    before, after = (wide, other) if draw(st.booleans()) else (other, wide)
    kw = _set_axis(kw, axis, size, k, 1, d, before, after)
    return BadLayer("reflect padding as wide as the frame", "padding",
                    dict(kw, padding_mode="reflect", pad_value=0, pad_runtime=False))


@st.composite
def _bad_padding_string(draw, kw):
    bad = draw(st.one_of(st.text(max_size=8),
                         st.sampled_from(["full", "causal", "SAME ", " valid", "sam", "none"])))
    if bad.lower() in ("same", "valid"):
        bad += "x"
    return BadLayer("bad padding string", "padding", dict(kw, padding=bad))


@st.composite
def _negative_padding(draw, kw):
    neg = draw(st.integers(max_value=-1))
    n = draw(st.sampled_from([1, 2, 4]))
    pads = [draw(st.integers(0, 3)) for _ in range(n)]
    pads[draw(st.integers(0, n - 1))] = neg
    bad = pads[0] if n == 1 else draw(st.sampled_from([tuple, list]))(pads)
    return BadLayer("negative padding", "padding", dict(kw, padding=bad))


@st.composite
def _bool_for_int(draw, kw):
    field = draw(st.sampled_from(INT_FIELDS + PAIR_FIELDS + ("padding",)))
    bad = draw(st.booleans())
    if field in PAIR_FIELDS + ("padding",) and draw(st.booleans()):
        n = 4 if field == "padding" and draw(st.booleans()) else 2
        values = [draw(st.integers(1, 3)) for _ in range(n)]
        values[draw(st.integers(0, n - 1))] = bad
        bad = tuple(values)
    return BadLayer("bool where an integer is expected", field, dict(kw, **{field: bad}))


_NOT_INT = st.one_of(st.floats(allow_nan=False), st.text(max_size=3), st.none(),
                     st.lists(st.integers(1, 3), max_size=1),
                     st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))


@st.composite
def _wrong_type(draw, kw):
    field = draw(st.sampled_from(INT_FIELDS + PAIR_FIELDS + (
        "padding", "input_signed", "requantize", "pad_runtime", "padding_mode", "name")))
    if field in ("input_signed", "requantize", "pad_runtime"):
        bad = draw(st.one_of(st.integers(0, 1), st.text(max_size=3), st.none(),
                             st.floats(allow_nan=False)))
    elif field == "padding_mode":
        bad = draw(st.one_of(st.integers(), st.none(), st.floats(allow_nan=False),
                             st.lists(st.just("reflect"), max_size=1)))
    elif field == "name":
        bad = draw(st.one_of(st.integers(), st.floats(allow_nan=False),
                             st.just(""),
                             st.from_regex(r"[0-9]\w*|\w*[-. $]\w*", fullmatch=True)))
    elif field == "padding":
        bad = draw(st.one_of(st.floats(allow_nan=False), st.none(),
                             st.lists(st.integers(0, 3), min_size=3, max_size=3),
                             st.lists(st.integers(0, 3), min_size=5, max_size=6),
                             st.tuples(st.integers(0, 3), st.floats(allow_nan=False))))
    elif field in PAIR_FIELDS:
        bad = draw(st.one_of(st.floats(allow_nan=False), st.text(max_size=3), st.none(),
                             st.lists(st.integers(1, 3), min_size=3, max_size=4),
                             st.tuples(st.integers(1, 3), st.text(max_size=2))))
    else:
        bad = draw(_NOT_INT.filter(lambda v: not isinstance(v, list)))
    return BadLayer("wrong type", field, dict(kw, **{field: bad}))


# the variants of the layer's parameters: every key ConvSpec or a TOML file refuses
KEY_TYPOS = ("kernel_size", "kernal", "strides", "paddings", "Height", "channels", "bits",
             "dilations", "pad", "signed", "requant", "row", "columns", "size", "layers",
             "pad_mode", "mode", "pad_values", "runtime_pad")


@st.composite
def _unknown_key(draw, kw):
    where = draw(st.sampled_from(["top", "layer", "array"]))
    key = draw(st.one_of(st.sampled_from(KEY_TYPOS),
                         st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,11}", fullmatch=True)))
    valid = {"top": ("name", "layer", "array"), "layer": LAYER_KEYS,
             "array": ARRAY_KEYS}[where]
    if key in valid:
        key += "_x"
    doc = toml_doc(kw)
    value = draw(st.one_of(st.integers(0, 9), st.text(max_size=3)))
    if where == "top":
        doc[key] = value
    else:
        doc[where][key] = value
    return BadLayer("unknown TOML key", key, kw, doc)


@st.composite
def _array_too_large(draw, kw):
    doc = toml_doc(kw)
    k_h, k_w = (kw["kernel"], kw["kernel"]) if isinstance(kw["kernel"], int) else kw["kernel"]
    groups = kw.get("groups", 1)
    limits = {"rows": k_h * k_w * kw["in_channels"] // groups,
              "cols": kw["out_channels"] // groups}
    field = draw(st.sampled_from(sorted(limits)))
    doc["array"][field] = limits[field] + draw(st.integers(1, 99999))
    return BadLayer("array larger than the layer", field, kw, doc)


@st.composite
def _toml_structure(draw, kw):
    doc = toml_doc(kw)
    what = draw(st.sampled_from(["missing", "layer", "array"]))
    if what == "missing":
        key = draw(st.sampled_from(["height", "width", "in_channels", "out_channels",
                                    "kernel"]))
        del doc["layer"][key]
        return BadLayer("missing TOML key", key, kw, doc)
    doc[what] = draw(st.one_of(st.integers(), st.text(max_size=3), st.lists(st.integers(),
                                                                            max_size=2)))
    if what == "layer" and draw(st.booleans()):
        del doc["layer"]
    return BadLayer("TOML table of the wrong type", what, kw, doc)


@st.composite
def _groups_not_dividing(draw, kw):
    # groups that leave a remainder in one channel count or both
    g = draw(st.integers(2, 9).filter(
        lambda g: kw["in_channels"] % g or kw["out_channels"] % g))
    return BadLayer("groups not dividing the channels", "groups", dict(kw, groups=g))


PARAMETER_FAULTS = {
    "non-integer output size": _non_integer_output,
    "kernel larger than the padded frame": _kernel_too_large,
    "'same' needs negative padding": _same_skips,
    "width out of range": _width_out_of_range,
    "not positive": _not_positive,
    "pad value outside the input range": _pad_value_out_of_range,
    "bad padding string": _bad_padding_string,
    "pad values not one per input channel": _pad_values_miscounted,
    "a pad value with an edge padding mode": _pad_value_with_edge_mode,
    "circular padding": _circular,
    "unknown padding mode": _bad_padding_mode,
    "reflect padding as wide as the frame": _reflect_too_wide,
    "negative padding": _negative_padding,
    "bool where an integer is expected": _bool_for_int,
    "wrong type": _wrong_type,
    "groups not dividing the channels": _groups_not_dividing,
}
TOML_FAULTS = {
    "array larger than the layer": _array_too_large,
    "unknown TOML key": _unknown_key,
    "TOML structure": _toml_structure,
}


@st.composite
def bad_layers(draw):
    """A valid layer with one thing wrong (a :class:`BadLayer`). A parameter's fault goes to
    ConvSpec itself or, as a TOML document, to ``ConvSpec.from_dict``."""
    kw = draw(layer_kwargs())
    kind = draw(st.sampled_from([*PARAMETER_FAULTS, *TOML_FAULTS]))
    if kind in TOML_FAULTS:
        return draw(TOML_FAULTS[kind](kw))
    bad = draw(PARAMETER_FAULTS[kind](kw))
    if draw(st.booleans()):
        return dataclasses.replace(bad, doc=toml_doc(bad.kwargs))
    return bad
