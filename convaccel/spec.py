"""The layer and its folding: frozen objects from which every shape, width and figure derives.

A :class:`ConvLayer` is the mathematics of one convolution: shapes, integer ranges, the exact
accumulator width. The golden model keys on it alone. A :class:`Folding` is how the engine
lays the layer onto hardware (the systolic array's ``rows`` and ``cols``), a choice that a
compiler can search. A :class:`ConvSpec` is the two together: a layer *and* its folding (it is a
``ConvLayer``, with ``rows`` and ``cols`` beside the layer's parameters); the engine's figures
(cycles per frame, memories, latencies) come from the engine's stages, which know them from
their own parameters (:mod:`convaccel.hdl.accelerator`).

The RTL, the golden model, the testbenches, the build flow and the reports all read these
objects; none of them re-derives a shape.
"""

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .quant import FABRIC_MULTIPLY_CYCLES

__all__ = ["ConvLayer", "Folding", "ConvSpec", "DEFAULT_SPEC", "ConfigError", "bits_for",
           "channel_slot"]


class ConfigError(ValueError):
    """A configuration file that cannot be turned into a :class:`ConvSpec`."""


_AXES = ("height", "width")

def _pair(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, tuple, list)):
        raise TypeError(f"{name} must be an integer or an (h, w) pair, not {value!r}")
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise TypeError(f"{name} must be an integer or an (h, w) pair of integers, not {value!r}")
    if any(v < 1 for v in value):
        raise ValueError(f"{name} must be a positive integer or pair of them, not {value!r}")
    return value


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


#: What a requantizer's multipliers are built of (:attr:`Folding.requant_multiplier`).
REQUANT_MULTIPLIERS = ("dsp", "fabric")


def _check_folding(folding):
    """The checks of a :class:`Folding`'s own fields (a :class:`ConvSpec` repeats them)."""
    for field in ("rows", "cols"):
        _positive(field, getattr(folding, field))
    if folding.lanes is not None:
        _positive("lanes", folding.lanes)
    kind = folding.requant_multiplier
    if not isinstance(kind, str):
        raise TypeError(f"requant_multiplier must be a string, not {kind!r}")
    if kind not in REQUANT_MULTIPLIERS:
        raise ValueError(f"requant_multiplier must be 'dsp' or 'fabric', not {kind!r}")


def _signed_range(bits):
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def bits_for(lo, hi, signed=True):
    """The smallest width that holds every integer in [lo, hi]: two's complement if `signed`,
    else unsigned (then ``lo`` must not be negative). The rule behind every derived width."""
    if not signed:
        assert lo >= 0
        return max(1, hi.bit_length())
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def channel_slot(channel, channels_per_group, cols):
    """Where output channel `channel` leaves the array: ``(block, column)``.

    The engine computes an output pixel as ``groups * col_folds`` column blocks, one after the
    other: block ``g * col_folds + j`` holds channels ``g * channels_per_group + j * cols + c``
    of convolution group ``g`` in its columns ``c`` (``col_folds = ceil(channels_per_group /
    cols)``; in the last block of a group the columns past its channels are idle). The one
    definition of that mapping, read by the spec, the output stage and the tests.
    """
    col_folds = -(-channels_per_group // cols)
    group, index = divmod(channel, channels_per_group)
    fold, column = divmod(index, cols)
    return group * col_folds + fold, column


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass(frozen=True)
class ConvLayer:
    """A 2-D convolution layer: its parameters and everything mathematical that follows.

    Layouts are PyTorch's without the batch axis: input ``(in_channels, height, width)``,
    weights ``(out_channels, in_channels / groups, kernel_h, kernel_w)``, bias
    ``(out_channels,)``, output ``(out_channels, out_height, out_width)``.

    Parameters
    ----------
    height, width, in_channels, out_channels : int
        Input frame size and channel counts.
    kernel, stride, dilation : int or (h, w)
        Stored as (h, w) pairs.
    groups : int
        PyTorch's: the input and output channels split into ``groups`` equal groups, output
        channel ``o`` reading only the input channels of its group ``o // (out_channels /
        groups)``. ``groups = in_channels`` is a depthwise convolution with a channel
        multiplier of ``out_channels / in_channels``. It must divide both channel counts.
    padding : int, (h, w), (top, bottom, left, right), ``"valid"`` or ``"same"``
        ``"same"`` follows TensorFlow: the output is ``ceil(size / stride)`` per axis, the
        total padding is ``(out - 1) * stride + effective_kernel - size`` and an odd extra row
        or column goes at the bottom or right. At stride 1 this keeps the frame size.
    pad_value : int or sequence of int
        The value of the padding pixels (``padding_mode = "constant"``): one for every channel
        (zero, or e.g. the input zero point), or one per input channel. With ``pad_runtime``
        it is the value the host loads when it is given none.
    padding_mode : str
        Where the padding pixels come from, as PyTorch's ``F.pad(mode=...)``: ``"constant"``
        (``pad_value``), ``"replicate"`` (the nearest edge pixel, NumPy's ``"edge"``) or
        ``"reflect"`` (the frame mirrored about its edge row or column, which is not repeated;
        each side's padding must then be smaller than the frame on its axis). ``"circular"``
        is refused: its top padding rows are the frame's last rows, so it needs a frame
        buffer, which this streaming engine does not have.
    pad_runtime : bool
        The pad values are loaded at run time, one per input channel after everything else
        in the weight load (:func:`convaccel.beats.weight_beats`), instead of being fixed at
        generation (constant padding only).
    input_bits, weight_bits, bias_bits : int
        Two's complement widths, 2 to 32 (inputs are unsigned if ``input_signed`` is false).
    requantize : bool
        ``False`` (raw): every output is the exact accumulator (``acc_bits`` wide). ``True``:
        outputs are int8, requantized as TensorFlow Lite's reference int8 convolution does
        (:mod:`convaccel.quant`) with a per-channel multiplier and shift, an output zero point and
        clamp bounds loaded with the weights (a :class:`convaccel.quant.Requant`). The input
        zero point is ``pad_value`` for TFLite's models (padding then contributes nothing, its
        convention) and the host folds ``-zero_point * sum(weights)`` into each bias
        (:func:`convaccel.quant.engine_bias`); that correction is exact for any padding (an
        edge mode's or a run-time value's), as the engine sums ``x * w`` over every tap,
        padded ones included.
    name : str or None
        The design's name (a Verilog identifier); ``None`` lets the caller choose.
    """

    height: int
    width: int
    in_channels: int
    out_channels: int
    kernel: int | tuple[int, int]
    stride: int | tuple[int, int] = 1
    padding: int | tuple | str = 0
    dilation: int | tuple[int, int] = 1
    groups: int = 1
    pad_value: int | tuple = 0
    padding_mode: str = "constant"
    pad_runtime: bool = False
    input_bits: int = 8
    weight_bits: int = 8
    bias_bits: int = 32
    input_signed: bool = True
    requantize: bool = False
    name: str | None = None

    def __post_init__(self):
        for field in ("height", "width", "in_channels", "out_channels", "groups"):
            _positive(field, getattr(self, field))
        self._check_groups()
        for field in ("kernel", "stride", "dilation"):
            object.__setattr__(self, field, _pair(field, getattr(self, field)))
        for field in ("input_bits", "weight_bits", "bias_bits"):
            bits = getattr(self, field)
            if isinstance(bits, bool) or not isinstance(bits, int):
                raise TypeError(f"{field} must be an integer, not {bits!r}")
            if not 2 <= bits <= 32:
                raise ValueError(f"{field} must be between 2 and 32, not {bits!r}")
        if not isinstance(self.input_signed, bool):
            raise TypeError(f"input_signed must be a bool, not {self.input_signed!r}")
        if not isinstance(self.requantize, bool):
            raise TypeError(f"requantize must be a bool, not {self.requantize!r}")
        self._check_pad_value()
        object.__setattr__(self, "padding_mode", self._normalize_mode(self.padding_mode))
        if not isinstance(self.pad_runtime, bool):
            raise TypeError(f"pad_runtime must be a bool, not {self.pad_runtime!r}")
        if self.padding_mode != "constant":
            if self.pad_value != 0:
                raise ValueError(
                    f"pad_value applies to padding_mode 'constant' only; padding_mode "
                    f"{self.padding_mode!r} takes the border from the frame: remove pad_value "
                    f"or use padding_mode 'constant'")
            if self.pad_runtime:
                raise ValueError(
                    f"pad_runtime applies to padding_mode 'constant' only; padding_mode "
                    f"{self.padding_mode!r} takes the border from the frame: remove "
                    f"pad_runtime or use padding_mode 'constant'")
        if self.name is not None:
            if not isinstance(self.name, str):
                raise TypeError(f"name must be a string (a Verilog identifier), not "
                                f"{self.name!r}")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
                raise ValueError(
                    f"name must be a Verilog identifier (letters, digits, '_', not starting "
                    f"with a digit), not {self.name!r}")
        object.__setattr__(self, "padding", self._normalize_padding(self.padding))
        for axis in (0, 1):
            self._check_axis(axis)
        if self.padding_mode == "reflect":
            for axis in (0, 1):
                self._check_reflect(axis)

    # -- validation ----------------------------------------------------------------------------

    def _check_groups(self):
        bad = [f"{name} {n}" for name, n in (("in_channels", self.in_channels),
                                             ("out_channels", self.out_channels))
               if n % self.groups]
        if not bad:
            return
        valid = sorted(set(_divisors(self.in_channels)) & set(_divisors(self.out_channels)))
        below = [g for g in valid if g < self.groups]
        above = [g for g in valid if g > self.groups]
        nearest = ([str(below[-1])] if below else []) + ([str(above[0])] if above else [])
        raise ValueError(
            f"groups {self.groups} does not divide {' and '.join(bad)}; use groups "
            f"{' or '.join(nearest)} (the values that divide both channel counts: "
            f"{', '.join(map(str, valid))})")
    _MODES = ("constant", "replicate", "reflect")

    @classmethod
    def _normalize_mode(cls, mode):
        if not isinstance(mode, str):
            raise TypeError(f"padding_mode must be 'constant', 'replicate' or 'reflect', "
                            f"not {mode!r}")
        if mode.lower() == "circular":
            raise ValueError(
                "padding_mode 'circular' needs a frame buffer (its top padding rows are the "
                "frame's last rows, which arrive last) and this engine streams without one; "
                "use padding_mode 'constant', 'replicate' or 'reflect'")
        if mode.lower() not in cls._MODES:
            raise ValueError(f"padding_mode must be 'constant', 'replicate' or 'reflect', "
                             f"not {mode!r}")
        return mode.lower()

    def _check_pad_value(self):
        value = self.pad_value
        what = "an integer or a list of one integer per input channel"
        if isinstance(value, list):
            value = tuple(value)
            object.__setattr__(self, "pad_value", value)
        if isinstance(value, tuple):
            if any(isinstance(v, bool) or not isinstance(v, int) for v in value):
                raise TypeError(f"pad_value must be {what}, not {list(value)!r}")
            if len(value) != self.in_channels:
                raise ValueError(
                    f"pad_value must have one value per input channel (in_channels = "
                    f"{self.in_channels}), not {len(value)}; or give one integer for all")
        elif isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"pad_value must be {what}, not {value!r}")
        lo, hi = self.input_range
        kind = "signed" if self.input_signed else "unsigned"
        for n, v in enumerate(value if isinstance(value, tuple) else (value,)):
            if not lo <= v <= hi:
                name = f"pad_value[{n}] =" if isinstance(value, tuple) else "pad_value"
                raise ValueError(f"{name} {v} does not fit {self.input_bits}-bit {kind} inputs "
                                 f"({lo}..{hi})")

    def _check_reflect(self, axis):
        # PyTorch's rule: reflection does not repeat the edge, so each side takes at most
        # size - 1 rows or columns from the frame.
        size = (self.height, self.width)[axis]
        sides = ("top", "bottom") if axis == 0 else ("left", "right")
        for side, pad in zip(sides, self._axis_pads(axis)):
            if pad >= size:
                raise ValueError(
                    f"padding_mode 'reflect' needs each side's padding smaller than the frame: "
                    f"padding {side} {pad} >= {_AXES[axis]} {size}; use padding of at most "
                    f"{size - 1} on the {_AXES[axis]} axis, or padding_mode 'replicate'")

    @staticmethod
    def _normalize_padding(padding):
        if isinstance(padding, str):
            if padding.lower() not in ("same", "valid"):
                raise ValueError(
                    f"padding must be an integer, a pair, a 4-tuple, 'same' or 'valid', "
                    f"not {padding!r}")
            return padding.lower()
        if isinstance(padding, bool) or not isinstance(padding, (int, tuple, list)):
            raise TypeError(
                f"padding must be an integer, a pair, a 4-tuple, 'same' or 'valid', "
                f"not {padding!r}")
        if isinstance(padding, int):
            padding = (padding,) * 4
        padding = tuple(padding)
        if any(isinstance(p, bool) or not isinstance(p, int) for p in padding):
            raise TypeError(f"padding must hold integers, not {padding!r}")
        if len(padding) == 2:
            padding = (padding[0], padding[0], padding[1], padding[1])
        if len(padding) != 4:
            raise ValueError(
                f"padding must be an integer, an (h, w) pair or a (top, bottom, left, right) "
                f"4-tuple, not {padding!r}")
        if any(p < 0 for p in padding):
            raise ValueError(f"padding must not be negative, not {padding!r}")
        return padding

    def _axis_pads(self, axis):
        size = (self.height, self.width)[axis]
        k_eff, stride = self.kernel_eff[axis], self.stride[axis]
        if self.padding == "valid":
            return 0, 0
        if self.padding == "same":
            out = -(-size // stride)
            total = (out - 1) * stride + k_eff - size
            if total < 0:
                raise ValueError(
                    f"padding='same' needs negative padding on the {_AXES[axis]} axis "
                    f"({_AXES[axis]} {size}, kernel {k_eff}, stride {stride}): a kernel "
                    f"narrower than the stride skips pixels; use padding='valid' with "
                    f"{_AXES[axis]} {size - (size - k_eff) % stride}")
            return total // 2, total - total // 2
        return self.padding[0:2] if axis == 0 else self.padding[2:4]

    def _check_axis(self, axis):
        name = _AXES[axis]
        size = (self.height, self.width)[axis]
        k, k_eff = self.kernel[axis], self.kernel_eff[axis]
        stride = self.stride[axis]
        before, after = self._axis_pads(axis)
        span = size + before + after - k_eff
        kernel_desc = f"kernel {k}" + (f" dilated to {k_eff}" if k_eff != k else "")
        if span < 0:
            raise ValueError(
                f"The {kernel_desc} is larger than the padded {name} {size + before + after} "
                f"({name} {size} + padding {before} + {after}); use a {name} of at least "
                f"{k_eff - before - after} or more padding")
        if span % stride:
            short = span % stride
            sizes = [s for s in (size - short, size + stride - short) if s >= k_eff - before - after
                     and s > 0]
            fixes = [f"{name} " + " or ".join(str(s) for s in sizes)] if sizes else []
            fixes.append(f"{stride - short} more padding on the {name} axis"
                         f" (e.g. {self._suggest_padding(axis, stride - short)})")
            raise ValueError(
                f"Output {name} is not an integer: ({name} - kernel + padding) / stride + 1 = "
                f"({size} - {k_eff} + {before} + {after}) / {stride} + 1 = "
                f"{span / stride + 1:g}; use {', or '.join(fixes)}")

    def _suggest_padding(self, axis, extra):
        pads = list(self.pads)
        pads[2 * axis + 1] += extra
        return f"padding={tuple(pads)}"

    # -- shapes --------------------------------------------------------------------------------

    @property
    def kernel_eff(self):
        """The kernel's footprint with dilation, ``(k - 1) * d + 1`` per axis."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilation))

    @property
    def pads(self):
        """Padding as ``(top, bottom, left, right)``."""
        return self._axis_pads(0) + self._axis_pads(1)

    @property
    def pad_values(self):
        """``pad_value`` as one value per input channel."""
        if isinstance(self.pad_value, tuple):
            return self.pad_value
        return (self.pad_value,) * self.in_channels

    def source_index(self, axis):
        """Where each row (``axis`` 0) or column (1) of the padded frame comes from: its index
        in the input frame, or ``None`` for a constant padding row or column. ``"replicate"``
        clamps to the edge; ``"reflect"`` mirrors about the edge without repeating it."""
        size = (self.height, self.width)[axis]
        before, after = self._axis_pads(axis)
        index = []
        for i in range(-before, size + after):
            if 0 <= i < size:
                index.append(i)
            elif self.padding_mode == "replicate":
                index.append(min(max(i, 0), size - 1))
            elif self.padding_mode == "reflect":
                index.append(-i if i < 0 else 2 * (size - 1) - i)
            else:
                index.append(None)
        return tuple(index)

    @property
    def padded_shape(self):
        """``(height, width)`` of the padded frame."""
        top, bottom, left, right = self.pads
        return self.height + top + bottom, self.width + left + right

    @property
    def output_size(self):
        """``(out_height, out_width)``."""
        return tuple((p - k) // s + 1
                     for p, k, s in zip(self.padded_shape, self.kernel_eff, self.stride))

    @property
    def input_shape(self):
        return self.in_channels, self.height, self.width

    @property
    def in_per_group(self):
        """Input channels each output channel reads: ``in_channels / groups``."""
        return self.in_channels // self.groups

    @property
    def out_per_group(self):
        """Output channels of each group: ``out_channels / groups`` (the channel multiplier
        of a depthwise layer)."""
        return self.out_channels // self.groups

    @property
    def weight_shape(self):
        return self.out_channels, self.in_per_group, *self.kernel

    @property
    def weight_axes(self):
        """What the axes of :attr:`weight_shape` are, for messages."""
        return ("out_channels, in_channels, kernel_h, kernel_w" if self.groups == 1 else
                "out_channels, in_channels / groups, kernel_h, kernel_w")

    @property
    def bias_shape(self):
        return (self.out_channels,)

    @property
    def output_shape(self):
        return (self.out_channels, *self.output_size)

    # -- number ranges and widths --------------------------------------------------------------

    @property
    def input_range(self):
        if self.input_signed:
            return _signed_range(self.input_bits)
        return 0, (1 << self.input_bits) - 1

    @property
    def weight_range(self):
        return _signed_range(self.weight_bits)

    @property
    def bias_range(self):
        return _signed_range(self.bias_bits)

    @property
    def product_range(self):
        """The smallest and largest product of one input and one weight."""
        corners = [x * w for x in self.input_range for w in self.weight_range]
        return min(corners), max(corners)

    @property
    def reduction(self):
        """Products summed for one output value: ``kernel_h * kernel_w * in_channels /
        groups``."""
        return self.kernel[0] * self.kernel[1] * self.in_per_group

    @property
    def acc_range(self):
        """The extreme values an output can take, for any inputs, weights and bias."""
        p_lo, p_hi = self.product_range
        b_lo, b_hi = self.bias_range
        return self.reduction * p_lo + b_lo, self.reduction * p_hi + b_hi

    @property
    def acc_bits(self):
        """The smallest two's complement width in which no output can overflow."""
        return bits_for(*self.acc_range)

    @property
    def output_range(self):
        """The values an output takes: the accumulator's (raw) or int8 (requantized)."""
        if self.requantize:
            from .quant import OUTPUT_RANGE
            return OUTPUT_RANGE
        return self.acc_range

    @property
    def output_bits(self):
        """The width of an output value: ``acc_bits`` (raw) or 8 (requantized)."""
        return bits_for(*self.output_range)

    @property
    def requant_beats(self):
        """Load beats after the biases: a multiplier and a shift per output channel, then the
        output zero point and the clamp bounds (:meth:`convaccel.quant.Requant.values`); none
        for a raw layer."""
        return 2 * self.out_channels + 3 if self.requantize else 0

    @property
    def pad_beats(self):
        """Load beats after everything else: a pad value per input channel with
        ``pad_runtime``, else none."""
        return self.in_channels if self.pad_runtime else 0

    @property
    def load_bits(self):
        """The width of a weight-load beat's value: a weight, a bias or, when requantizing, a
        multiplier (a non-negative signed value), or a run-time pad value (an input)."""
        bits = max(self.weight_bits, self.bias_bits)
        if self.requantize:
            from .quant import MULTIPLIER_BITS
            bits = max(bits, MULTIPLIER_BITS + 1)
        if self.pad_runtime:
            bits = max(bits, self.input_bits + (not self.input_signed))
        return bits

    @property
    def input_pixels(self):
        """Pixels of an input frame: ``height * width``."""
        return self.height * self.width

    @property
    def output_pixels(self):
        """Pixels of an output frame."""
        return self.output_size[0] * self.output_size[1]

    @property
    def macs(self):
        """Multiply-accumulates in one frame."""
        return self.output_pixels * self.out_channels * self.reduction

    @property
    def layer(self):
        """The layer alone (for a :class:`ConvSpec`, without its folding)."""
        return ConvLayer(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ConvLayer)})

    # -- reports -------------------------------------------------------------------------------

    def parameters(self):
        """The constructor's arguments, normalized, as plain data (what a TOML file holds)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    def figures(self):
        """Every derived figure, as plain data."""
        return {
            "input_shape": list(self.input_shape),
            "weight_shape": list(self.weight_shape),
            "output_shape": list(self.output_shape),
            "padded_shape": list(self.padded_shape),
            "pads": list(self.pads),
            "kernel_eff": list(self.kernel_eff),
            "reduction": self.reduction,
            "macs": self.macs,
            "acc_bits": self.acc_bits,
            "output_bits": self.output_bits,
        }


@dataclass(frozen=True)
class Folding:
    """How the engine lays a layer onto its systolic array.

    Parameters
    ----------
    rows : int
        Lanes of the reduction (``kernel_h * kernel_w * in_channels / groups``) per cycle.
    cols : int
        Output channels (of one group) at once.
    lanes : int or None
        Input channels per stream beat. None (the default): a beat is a whole pixel, and the
        engine holds its receptive fields in registers (any ``rows``; best for few channels).
        An integer: the channel-serial engine, whose beats carry ``lanes`` channels (a divisor
        of ``in_channels``) and whose line buffer is read by an address generator, ``rows``
        channels of one tap per vector (``rows`` divides ``lanes``): registers grow with the
        array, not with ``kernel_h * kernel_w * in_channels``.
    requant_multiplier : str
        What the requantizer of a requantized layer multiplies with (a raw layer has none: it
        must keep the default). ``"dsp"`` (the default): pipelined multipliers built of DSP
        blocks (four per unit on iCE40 and ECP5), the fewest units that take a group of
        ``cols`` accumulators a cycle each. ``"fabric"``: shift-add multipliers in logic, no
        DSP block, each taking a value every :data:`~convaccel.quant.FABRIC_MULTIPLY_CYCLES`
        (16) cycles: the requantizer is idle most of the time (a group arrives every
        ``row_folds`` cycles), so a few units keep up and every DSP block is left to the PEs.
        It needs ``row_folds`` of at least 16, and adds a few cycles of latency per frame.
    """

    rows: int = 4
    cols: int = 4
    lanes: int | None = None
    requant_multiplier: str = "dsp"

    def __post_init__(self):
        _check_folding(self)


@dataclass(frozen=True)
class ConvSpec(ConvLayer):
    """A layer and its folding: what one engine computes and how (:class:`ConvLayer`'s
    parameters, then :class:`Folding`'s ``rows`` and ``cols``).

    The folding's figures (partial-sum width, folds, column blocks, cycles per output pixel,
    weight-load beats) derive here; the engine's (cycles per frame, latencies, memories) are
    summed from its stages (:func:`convaccel.hdl.accelerator.engine_figures`).
    """

    rows: int = 4
    cols: int = 4
    lanes: int | None = None
    requant_multiplier: str = "dsp"

    def __post_init__(self):
        _check_folding(self)
        super().__post_init__()
        if self.lanes is not None:
            self._check_lanes()
        self._check_requant_multiplier()

    def _check_requant_multiplier(self):
        if self.requant_multiplier == "dsp":
            return
        if not self.requantize:
            raise ValueError(
                f"requant_multiplier {self.requant_multiplier!r} applies to a requantized layer "
                f"only (requantize = true); a raw layer has no requantizer: remove "
                f"requant_multiplier or leave it 'dsp'")
        if self.row_folds < FABRIC_MULTIPLY_CYCLES:
            raise ValueError(
                f"requant_multiplier 'fabric' needs a group of accumulators at most every "
                f"{FABRIC_MULTIPLY_CYCLES} cycles (row_folds >= {FABRIC_MULTIPLY_CYCLES}, a "
                f"fabric multiplier's cycles per value), not every {self.row_folds} (reduction "
                f"{self.reduction} over {self.rows} rows); use rows <= "
                f"{self.reduction // FABRIC_MULTIPLY_CYCLES} or requant_multiplier 'dsp'"
                if self.reduction >= FABRIC_MULTIPLY_CYCLES else
                f"requant_multiplier 'fabric' needs row_folds >= {FABRIC_MULTIPLY_CYCLES} (a "
                f"fabric multiplier's cycles per value), and the reduction {self.reduction} "
                f"gives at most {self.reduction} at rows = 1: use requant_multiplier 'dsp'")
        most = FABRIC_MULTIPLY_CYCLES * (self.row_folds // FABRIC_MULTIPLY_CYCLES)
        if self.cols > most:
            raise ValueError(
                f"requant_multiplier 'fabric' takes at most {most} columns with {self.row_folds} "
                f"folds (its multipliers are fed one a cycle, 16 cycles each, within a group's "
                f"{self.row_folds} cycles), not cols {self.cols}; use cols <= {most}, fewer rows "
                f"or requant_multiplier 'dsp'")

    def _check_lanes(self):
        c = self.in_channels
        if c % self.lanes:
            raise ValueError(
                f"lanes {self.lanes} does not divide in_channels {c}: a pixel is "
                f"in_channels / lanes beats; use lanes in {', '.join(map(str, _divisors(c)))}")
        if self.lanes % self.rows:
            raise ValueError(
                f"rows {self.rows} does not divide lanes {self.lanes}: the channel-serial "
                f"engine's vector is rows channels of one beat; use rows in "
                f"{', '.join(map(str, _divisors(self.lanes)))} (or leave lanes unset)")
        if self.out_channels % self.cols:
            raise ValueError(
                f"cols {self.cols} does not divide out_channels {self.out_channels}: the "
                f"channel-serial engine's output beat is one column block of cols channels; use "
                f"cols in {', '.join(map(str, _divisors(self.out_channels)))} (or leave lanes "
                f"unset)")
        if self.groups > 1:
            raise ValueError(
                f"lanes (the channel-serial engine) needs groups = 1, not {self.groups}: leave "
                f"lanes unset for a grouped layer")
        if self.padding_mode != "constant" and any(self.pads):
            raise ValueError(
                f"padding_mode {self.padding_mode!r} is not available with lanes (the "
                f"channel-serial engine pads with constant values only): use padding_mode "
                f"'constant' or leave lanes unset")

    @classmethod
    def of(cls, layer, folding=None, **changes):
        """The spec of `layer` on `folding` (a :class:`Folding`; default rows = cols = 4)."""
        folding = folding or Folding()
        return cls(**{f.name: getattr(layer, f.name) for f in dataclasses.fields(ConvLayer)},
                   **{f.name: getattr(folding, f.name) for f in dataclasses.fields(Folding)},
                   **changes)

    @property
    def folding(self):
        return Folding(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Folding)})

    @property
    def serial(self):
        """The channel-serial engine (``lanes`` given): beats of ``lanes`` channels."""
        return self.lanes is not None

    @property
    def beat_channels(self):
        """Input channels per stream beat: ``lanes``, or ``in_channels`` (a whole pixel)."""
        return self.lanes if self.serial else self.in_channels

    @property
    def chunks(self):
        """Input beats per pixel: ``in_channels / beat_channels``."""
        return self.in_channels // self.beat_channels

    @property
    def result_channels(self):
        """Output channels per result beat: ``cols`` (one column block) in the channel-serial
        engine, else ``out_channels`` (a whole pixel)."""
        return self.cols if self.serial else self.out_channels

    @property
    def pixel_result_beats(self):
        """Result beats per output pixel: ``out_channels / result_channels``."""
        return self.out_channels // self.result_channels

    @property
    def result_beats(self):
        """Result beats per frame: ``output_pixels * pixel_result_beats``."""
        return self.output_pixels * self.pixel_result_beats

    @property
    def input_beats(self):
        """Input beats per frame: ``input_pixels * chunks``."""
        return self.input_pixels * self.chunks

    def check_array(self):
        """Refuse an array a user asked for that is larger than the layer on either axis: rows
        past the reduction and columns past a group's output channels would only ever multiply
        zeros (and an absurd array takes seconds just to describe). Library callers may build
        such specs (the default 4 x 4 on a small layer); the CLI and layer files may not."""
        k_h, k_w = self.kernel
        grouped = self.groups > 1
        if self.rows > self.reduction:
            of = (f"kernel_h * kernel_w * in_channels / groups = {k_h} * {k_w} * "
                  f"{self.in_channels} / {self.groups}" if grouped else
                  f"kernel_h * kernel_w * in_channels = {k_h} * {k_w} * {self.in_channels}")
            raise ConfigError(
                f"rows {self.rows} is more than the reduction {self.reduction} ({of}): the rows "
                f"past it would only multiply zeros; use rows <= {self.reduction}")
        if self.cols > self.out_per_group:
            of = (f"a group's filters ({self.out_per_group} = out_channels {self.out_channels} / "
                  f"groups {self.groups})" if grouped else f"out_channels {self.out_channels}")
            raise ConfigError(
                f"cols {self.cols} is more than {of}: the columns past it would only multiply "
                f"zeros; use cols <= {self.out_per_group}")
        return self

    # -- the array and its schedule ------------------------------------------------------------

    @property
    def psum_bits(self):
        """Width of a partial sum leaving the array: ``rows`` products, no bias."""
        p_lo, p_hi = self.product_range
        return bits_for(self.rows * p_lo, self.rows * p_hi)

    @property
    def pe_count(self):
        return self.rows * self.cols

    @property
    def row_folds(self):
        """Vectors of ``rows`` lanes that one reduction (one group's) is cut into."""
        return math.ceil(self.reduction / self.rows)

    @property
    def col_folds(self):
        """Blocks of ``cols`` output channels that one group's channels are cut into."""
        return math.ceil(self.out_per_group / self.cols)

    @property
    def blocks(self):
        """Column blocks of an output pixel: ``groups * col_folds``, one after the other, each
        ``row_folds`` vectors (:func:`channel_slot` says which channels each holds)."""
        return self.groups * self.col_folds

    @property
    def idle_cols(self):
        """Columns that no output channel uses: where ``cols`` exceeds a group's channels."""
        return max(0, self.cols - self.out_per_group)

    @property
    def cycles_per_pixel(self):
        """Array cycles for one output pixel: ``groups * row_folds * col_folds``."""
        return self.groups * self.row_folds * self.col_folds

    @property
    def channel_slots(self):
        """``(block, column)`` of every output channel, in channel order
        (:func:`channel_slot`)."""
        return tuple(channel_slot(o, self.out_per_group, self.cols)
                     for o in range(self.out_channels))

    @property
    def load_beats(self):
        """Beats of a weight load: a weight per PE per fold address (idle lanes included),
        then a bias per output channel, then the requantization parameters if any, then the
        run-time pad values if any (:func:`convaccel.beats.weight_beats`)."""
        return (self.cycles_per_pixel * self.pe_count + self.out_channels + self.requant_beats
                + self.pad_beats)

    # -- the engine's figures, from its stages -------------------------------------------------

    @property
    def engine(self):
        """The engine's figures (:class:`convaccel.hdl.accelerator.EngineFigures`)."""
        from .hdl.accelerator import engine_figures
        return engine_figures(self)

    @property
    def front_latency(self):
        return self.engine.front_latency

    @property
    def back_latency(self):
        """Cycles from a vector entering the array to its output beat's transfer."""
        return self.engine.back_latency

    @property
    def cycles(self):
        """Cycles for one frame with no stalls: input always valid, output always ready.

        Counted from the cycle in which the idle engine first sees the frame's first input beat
        valid to the cycle in which the frame's last output beat is transferred, both included;
        summed from the engine's stages (:func:`convaccel.hdl.accelerator.engine_figures`).
        """
        return self.engine.cycles

    @property
    def output_queue_depth(self):
        """Output pixels the engine's output queue holds (the output stage's figure)."""
        return self.engine.output_queue_depth

    @property
    def utilization(self):
        """Useful MACs per PE per cycle over a frame with no stalls."""
        return self.macs / (self.pe_count * self.cycles)

    # -- memories ------------------------------------------------------------------------------

    @property
    def memories(self):
        """Every memory of the engine (:class:`convaccel.hdl.stage.MemoryShape`), from its
        stages."""
        return self.engine.memories

    def _memory_bits(self, *names):
        return sum(m.bits for m in self.memories if m.name in names)

    @property
    def line_buffer_bits(self):
        return self._memory_bits("line buffer")

    @property
    def weight_memory_bits(self):
        return self._memory_bits("PE weights")

    @property
    def bias_memory_bits(self):
        return self._memory_bits("biases")

    @property
    def padder_memory_bits(self):
        """The rows an edge padding mode keeps (:class:`convaccel.hdl.padder.EdgePadder`)."""
        return self._memory_bits("padder rows")

    # -- reports -------------------------------------------------------------------------------

    def figures(self):
        return {
            **super().figures(),
            "psum_bits": self.psum_bits,
            "pe_count": self.pe_count,
            "row_folds": self.row_folds,
            "col_folds": self.col_folds,
            "blocks": self.blocks,
            "cycles_per_pixel": self.cycles_per_pixel,
            "load_beats": self.load_beats,
            "cycles": self.cycles,
            "utilization": round(self.utilization, 4),
            "line_buffer_bits": self.line_buffer_bits,
            "weight_memory_bits": self.weight_memory_bits,
            "bias_memory_bits": self.bias_memory_bits,
            "padder_memory_bits": self.padder_memory_bits,
        }

    # -- configuration files -------------------------------------------------------------------

    _LAYER_KEYS = tuple(f.name for f in dataclasses.fields(ConvLayer) if f.name != "name")
    _ARRAY_KEYS = tuple(f.name for f in dataclasses.fields(Folding))

    @classmethod
    def from_toml(cls, path):
        """Read a layer from a TOML file.

        The file holds a ``[layer]`` table with the constructor's keyword names, an optional
        ``[array]`` table with ``rows`` and ``cols``, and an optional top-level ``name``.
        Any problem is raised as :class:`ConfigError` naming the file.
        """
        path = Path(path)
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8-sig")     # (Windows editors write a BOM)
            doc = tomllib.loads(text)
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the file: {e.strerror}") from None
        except UnicodeDecodeError:
            what = ("a .tflite model; this convaccel reads layer configurations in TOML "
                    "(examples/ has some)" if path.suffix.lower() == ".tflite" else
                    "binary data, not a TOML layer configuration (examples/ has some)")
            raise ConfigError(f"{path}: the file holds {what}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        return cls.from_dict(doc, source=str(path))

    @classmethod
    def from_dict(cls, doc, *, source="config"):
        def unknown(where, keys, valid):
            bad = sorted(set(keys) - set(valid))
            if bad:
                raise ConfigError(
                    f"{source}: unknown key {bad[0]!r} in {where}; valid keys are "
                    f"{', '.join(valid)}")

        unknown("the top level", doc, ("name", "layer", "array"))
        layer = doc.get("layer")
        if not isinstance(layer, dict):
            raise ConfigError(f"{source}: a [layer] table is required, with the keys "
                              f"{', '.join(cls._LAYER_KEYS)}")
        array = doc.get("array", {})
        if not isinstance(array, dict):
            raise ConfigError(f"{source}: 'array' must be a table with the keys rows, cols")
        unknown("[layer]", layer, cls._LAYER_KEYS)
        unknown("[array]", array, cls._ARRAY_KEYS)
        missing = [k for k in ("height", "width", "in_channels", "out_channels", "kernel")
                   if k not in layer]
        if missing:
            raise ConfigError(f"{source}: [layer] needs {', '.join(missing)}")
        try:
            spec = cls(**layer, **array, name=doc.get("name"))
            return spec.check_array() if array else spec
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{source}: {e}") from None



#: The layer `convaccel` uses when none is given: a 3x3 "same" convolution, 4 to 8 channels,
#: on a 16x16 int8 frame, on a 4x2 array: 8 MACs per cycle, every one of them busy, one per
#: DSP block of the smallest supported device (the iCE40 UP5K has 8 SB_MAC16).
DEFAULT_SPEC = ConvSpec(height=16, width=16, in_channels=4, out_channels=8, kernel=3,
                        padding="same", rows=4, cols=2, name="conv3x3")
