"""Int8 TensorFlow Lite convolutions: read from a ``.tflite`` file and mapped onto a layer.

A fully integer-quantized model (``TFLiteConverter`` with a representative data set and int8
inputs and outputs) holds each convolution as a ``CONV_2D`` operator: int8 weights in
``(out_channels, kernel_h, kernel_w, in_channels)`` order (OHWI) with a scale per output channel
and zero points 0, an int32 bias, and the scale and zero point of its input and output. (A
filter with fewer input channels than the input is a grouped convolution: ``groups = input
channels / filter input channels``.) A depthwise convolution is a ``DEPTHWISE_CONV_2D``: its
filter is ``(1, kernel_h, kernel_w, out_channels)``, quantized per channel along its last
axis, output channel ``o`` reading input channel ``o // multiplier`` with the channel
multiplier ``out_channels / in_channels``: PyTorch's ``groups = in_channels``.
:func:`read_model` lists a model's operators and turns every convolution into a
:class:`QuantizedConv`: a requantized :class:`~convaccel.ConvLayer` with the weights, bias and
requantization parameters that TFLite's reference kernels compute from the model
(:mod:`convaccel.quant`). :func:`load_conv` reads a model that is one convolution (the command
line's ``MODEL.tflite``); :func:`conv_model` and :func:`depthwise_model` write one.

The file is read with the generated classes of TFLite's flatbuffer schema, from
``ai-edge-litert`` (``ai_edge_litert.schema_py_generated``) or else from the pure-Python
``tflite`` package: reading needs either. Writing needs ``ai-edge-litert`` (the schema's object
API, which ``tflite`` lacks).
"""

import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import quant
from .spec import ConfigError, ConvLayer, bits_for

__all__ = ["TfliteError", "TensorInfo", "Model", "QuantizedConv", "read_model", "load_conv",
           "conv_model", "depthwise_model", "pack_model", "INT8_ONLY", "CONV_OPERATORS"]

#: Why a model that is not fully int8 is refused, and what to do about it.
INT8_ONLY = ("int8 only: convert with full-integer quantization (TFLiteConverter with "
             "representative_dataset and inference_input_type/inference_output_type = tf.int8)")

#: The operators that map onto the engine.
CONV_OPERATORS = ("CONV_2D", "DEPTHWISE_CONV_2D")

_INT8 = (-128, 127)
_INT32 = (-(1 << 31), (1 << 31) - 1)
# BuiltinOperator codes from this one on are stored in OperatorCode.builtin_code only.
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127


class TfliteError(ConfigError):
    """A ``.tflite`` file that cannot be read, or a model that this version cannot map."""


def _schema():
    """TFLite's generated flatbuffer classes (the same names in either package)."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        try:
            import tflite as schema
        except ImportError:
            raise TfliteError("reading .tflite models needs TFLite's flatbuffer schema: "
                              "pip install ai-edge-litert (or the smaller, pure-Python "
                              "tflite)") from None
    return schema


def _object_api():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        raise TfliteError("writing .tflite models needs TFLite's flatbuffer schema with its "
                          "object API: pip install ai-edge-litert") from None
    return schema


def _enum_names(enum):
    return {v: k for k, v in vars(enum).items() if not k.startswith("_")}


def _tflite_axis(size, kernel, stride, dilation, padding):
    """One axis of a TFLite convolution, as ``ComputeOutSize`` and
    ``ComputePaddingHeightWidth`` make it: ``(out, before, after)``, the output size and the
    implicit padding before and after the input.

    ``SAME``: ``out = ceil(size / stride)``, total padding ``(out - 1) * stride + k_eff - size``,
    at least 0, the odd one after. ``VALID``: no padding, ``out = (size - k_eff) // stride + 1``.
    Where the total is clamped to 0 or ``VALID`` does not divide evenly, the last
    ``size + before + after - (out - 1) * stride - k_eff`` input rows (or columns) are read by
    no output.
    """
    k_eff = (kernel - 1) * dilation + 1
    if padding == "SAME":
        out = -(-size // stride)
    else:
        out = (size - k_eff) // stride + 1
    total = max((out - 1) * stride + k_eff - size, 0) if padding == "SAME" else 0
    return out, total // 2, total - total // 2


def _sanitize(name):
    """A Verilog identifier from a tensor name (``"model/conv2d/Relu6;..."`` ->
    ``"model_conv2d_Relu6"``), or ``None``."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", name.split(";")[0]).strip("_")[:48].rstrip("_")
    if not name:
        return None
    return name if re.match(r"[A-Za-z_]", name) else f"t_{name}"


def _readonly(array):
    array.flags.writeable = False
    return array


def check_input_tensor(x, shape, layout=""):
    """``x`` as a model's int8 input tensor of `shape` (`layout` is said after the shape in the
    message). Raises ``TypeError`` or ``ValueError``."""
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise TypeError(f"the input must hold integers, not {x.dtype}")
    if x.shape != shape:
        raise ValueError(f"the input must have the model's shape {shape}{layout}, "
                         f"not {x.shape}")
    if x.size and not (_INT8[0] <= x.min() and x.max() <= _INT8[1]):
        raise ValueError("the input must hold int8 values (-128..127)")
    return x


@dataclass(frozen=True)
class TensorInfo:
    """A tensor of a model: its index in the graph, name, shape, element type (the schema's
    name, e.g. ``"INT8"``), and quantization (a scale and a zero point per channel; empty
    tuples for a tensor that is not quantized)."""

    index: int
    name: str
    shape: tuple
    type: str
    scale: tuple = ()
    zero_point: tuple = ()


@dataclass(frozen=True)
class Model:
    """What :func:`read_model` found in a ``.tflite`` file (its main graph).

    Members
    -------
    path : Path
    operators : tuple of (int, str)
        Every operator in execution order: its index and its operator code's name
        (``"CONV_2D"``, ``"MAX_POOL_2D"``, ``"CUSTOM(name)"``...).
    inputs, outputs : tuple of TensorInfo
        The graph's input and output tensors (all int8).
    convs : tuple of QuantizedConv
        One per ``CONV_2D`` or ``DEPTHWISE_CONV_2D``, in operator order.
    """

    path: Path
    operators: tuple
    inputs: tuple
    outputs: tuple
    convs: tuple


@dataclass(frozen=True, eq=False)
class QuantizedConv:
    """One int8 ``CONV_2D`` or ``DEPTHWISE_CONV_2D`` of a TFLite model, and the requantized
    layer that computes it.

    The model's tensors are NHWC with a batch of 1; the layer's are PyTorch's
    (:class:`~convaccel.ConvLayer`). :meth:`golden` computes the convolution as the engine does
    (the frame padded with the input zero point, the zero point folded into the bias, the
    engine's requantizer); :meth:`reference` computes it as TFLite's reference kernel does
    (``w * (x - zero_point)`` over the taps inside the frame, :func:`convaccel.quant.requantize`).
    Both give TFLite's output bit for bit.

    Members
    -------
    layer : ConvLayer
        ``requantize=True``, ``pad_value`` the input zero point, int8 inputs and weights,
        ``bias_bits`` the smallest width that holds this model's :attr:`engine_bias` (TFLite
        biases are int32; the zero point's correction can take them beyond it). Where
        TFLite's output reads no pixel of the input's last rows or columns (``VALID`` with a
        stride that does not divide evenly, or ``SAME`` with a kernel narrower than the
        stride), the layer's frame stops before them (:meth:`to_layer_input` crops them).
    weights : ndarray
        ``(out_channels, in_channels / groups, kernel_h, kernel_w)`` int8 (OIHW, from the
        model's OHWI, or from a depthwise filter's ``(1, kernel_h, kernel_w, out_channels)``).
    bias : ndarray
        ``(out_channels,)`` int32, zeros where the operator has no bias.
    input_zero_point, output_zero_point : int
    input_scale, output_scale : float
        As the model stores them (float32 values).
    filter_scales : tuple of float
        One per output channel (a per-tensor scale is repeated).
    multiplier, shift : tuple of int
        TFLite's per-channel requantization: ``QuantizeMultiplier(double(input_scale) *
        double(filter_scale) / double(output_scale))``, as ``PopulateConvolutionQuantization
        Params`` computes it.
    activation : str
        The fused activation, ``"NONE"``, ``"RELU"``, ``"RELU6"`` or ``"RELU_N1_TO_1"``.
    act_min, act_max : int
        Its clamp bounds on the output (:func:`convaccel.quant.activation_range`).
    padding : str
        TFLite's ``"SAME"`` or ``"VALID"``.
    stride, dilation : (int, int)
        ``(h, w)``.
    input_shape, output_shape : tuple
        NHWC, as the interpreter's tensors.
    operator : str
        ``"CONV_2D"`` or ``"DEPTHWISE_CONV_2D"``.
    """

    layer: ConvLayer
    weights: np.ndarray
    bias: np.ndarray
    input_zero_point: int
    input_scale: float
    output_zero_point: int
    output_scale: float
    filter_scales: tuple
    multiplier: tuple
    shift: tuple
    activation: str
    act_min: int
    act_max: int
    padding: str
    stride: tuple
    dilation: tuple
    input_shape: tuple
    output_shape: tuple
    operator: str = "CONV_2D"

    @classmethod
    def from_parameters(cls, weights, bias, input_shape, *, input_quant, filter_scales,
                        output_quant, stride=1, dilation=1, padding="SAME", activation="NONE",
                        name=None, operator="CONV_2D"):
        """The convolution with these parameters, as a TFLite model would hold them:
        ``weights`` OHWI int8 (``I`` the input channels of a group: a grouped convolution
        when it divides the input's channels; a depthwise filter's axes moved to ``(out_channels,
        kernel_h, kernel_w, 1)``), ``bias`` int32 or ``None``, ``input_shape`` NHWC,
        ``input_quant`` and ``output_quant`` ``(scale, zero_point)`` pairs, ``filter_scales``
        one per output channel or a single one; ``operator`` the TFLite operator it is. Raises
        ``ValueError`` for values TFLite's int8 kernel does not take."""
        weights = np.asarray(weights)
        if weights.dtype.kind not in "iu" or weights.ndim != 4:
            raise ValueError(f"weights must be a 4-D integer array (OHWI), not {weights.dtype} "
                             f"of shape {weights.shape}")
        if weights.size and not (_INT8[0] <= weights.min() and weights.max() <= _INT8[1]):
            raise ValueError("weights must be int8 values (-128..127)")
        c_out, k_h, k_w, c_in = weights.shape
        input_shape = tuple(int(n) for n in input_shape)
        if len(input_shape) != 4 or input_shape[0] != 1:
            raise ValueError(f"the input must be NHWC with a batch of 1, not {input_shape}")
        _, height, width, channels = input_shape
        if channels % c_in:
            raise ValueError(f"the input has {channels} channels and the filter {c_in}: a "
                             f"filter's input channels must divide the input's (groups = input "
                             f"channels / filter input channels)")
        groups = channels // c_in
        if c_out % groups:
            raise ValueError(f"the filter's {c_out} output channels do not divide into the "
                             f"{groups} groups of the input's {channels} channels")
        if bias is None:
            bias = np.zeros(c_out, dtype=np.int32)
        bias = np.asarray(bias)
        if bias.shape != (c_out,) or bias.dtype.kind not in "iu":
            raise ValueError(f"bias must hold {c_out} integers (one per output channel), not "
                             f"{bias.dtype} of shape {bias.shape}")
        if bias.size and not (_INT32[0] <= bias.min() and bias.max() <= _INT32[1]):
            raise ValueError("bias must be int32 values")
        input_scale, input_zero_point = float(np.float32(input_quant[0])), int(input_quant[1])
        output_scale, output_zero_point = (float(np.float32(output_quant[0])),
                                           int(output_quant[1]))
        for what, zp in (("input", input_zero_point), ("output", output_zero_point)):
            if not _INT8[0] <= zp <= _INT8[1]:
                raise ValueError(f"the {what} zero point must be an int8 value, not {zp}")
        filter_scales = [float(s) for s in np.asarray(filter_scales, dtype=np.float32).ravel()]
        if len(filter_scales) == 1:
            filter_scales *= c_out
        if len(filter_scales) != c_out:
            raise ValueError(f"the filter has {c_out} output channels and {len(filter_scales)} "
                             f"scales; give one per channel or one for all")
        for what, s in [("input", input_scale), ("output", output_scale),
                        *(("filter", s) for s in filter_scales)]:
            if not (math.isfinite(s) and s > 0):
                raise ValueError(f"the {what} scale must be positive and finite, not {s}")
        # PopulateConvolutionQuantizationParams: float32 scales, widened to double, then
        # (input * filter) / output in double.
        multiplier, shift = zip(*(quant.quantize_multiplier(input_scale * f / output_scale)
                                  for f in filter_scales))
        act_min, act_max = quant.activation_range(activation, np.float32(output_scale),
                                                  output_zero_point)

        stride, dilation = _pair("stride", stride), _pair("dilation", dilation)
        padding = str(padding).upper()
        if padding not in ("SAME", "VALID"):
            raise ValueError(f"padding must be 'SAME' or 'VALID', not {padding!r}")
        axes = [_tflite_axis(size, k, s, d, padding)
                for size, k, s, d in zip((height, width), (k_h, k_w), stride, dilation)]
        if min(out for out, _, _ in axes) < 1:
            raise ValueError(f"the kernel {k_h}x{k_w} (dilation {dilation}) is larger than the "
                             f"input {height}x{width} with VALID padding")
        (out_h, top, bottom), (out_w, left, right) = axes
        # The input rows and columns that some output reads.
        used = [(out - 1) * s + (k - 1) * d + 1 - before - after
                for (out, before, after), k, s, d in zip(axes, (k_h, k_w), stride, dilation)]

        weights = weights.astype(np.int64).transpose(0, 3, 1, 2)
        engine_bias = quant.engine_bias(bias, weights, input_zero_point)
        lo, hi = int(engine_bias.min(initial=0)), int(engine_bias.max(initial=0))
        bias_bits = max(2, bits_for(lo, hi))
        if bias_bits > 32:
            c = int(np.argmax(np.abs(engine_bias)))
            raise ValueError(f"the engine's bias of channel {c} (bias - input zero point * "
                             f"sum of weights = {int(engine_bias[c])}) does not fit 32 bits")
        # ConvLayer's "same" is TensorFlow's (the odd pad after) on the frame that outputs read.
        layer = ConvLayer(height=used[0], width=used[1], in_channels=channels,
                          out_channels=c_out, kernel=(k_h, k_w), stride=stride,
                          padding=padding.lower(), dilation=dilation, groups=groups,
                          pad_value=input_zero_point, input_bits=8,
                          weight_bits=8, bias_bits=bias_bits, input_signed=True,
                          requantize=True, name=name)
        assert layer.pads == (top, bottom, left, right)
        assert layer.output_size == (out_h, out_w)
        return cls(
            layer=layer, weights=_readonly(weights.astype(np.int8)),
            bias=_readonly(bias.astype(np.int32)),
            input_zero_point=input_zero_point, input_scale=input_scale,
            output_zero_point=output_zero_point, output_scale=output_scale,
            filter_scales=tuple(filter_scales), multiplier=tuple(multiplier), shift=tuple(shift),
            activation=activation, act_min=act_min, act_max=act_max, padding=padding,
            stride=stride, dilation=dilation, input_shape=input_shape,
            output_shape=(1, out_h, out_w, c_out), operator=operator)

    # -- the engine's parameters ----------------------------------------------------------------

    @property
    def engine_bias(self):
        """The bias the engine is loaded with (:func:`convaccel.quant.engine_bias`), int64."""
        return quant.engine_bias(self.bias, self.weights, self.input_zero_point)

    @property
    def requant(self):
        """The engine's requantization parameters (a :class:`convaccel.quant.Requant`)."""
        return quant.hardware_parameters(self.multiplier, self.shift, self.output_zero_point,
                                         self.act_min, self.act_max)

    # -- data ------------------------------------------------------------------------------------

    def _check_input(self, x):
        return check_input_tensor(x, self.input_shape, " (NHWC)").astype(np.int64)

    def to_layer_input(self, x):
        """The model's input ``x`` (NHWC, int8 values) as the layer's ``(C, H, W)`` int64
        frame (without the rows and columns no output reads, if any)."""
        x = self._check_input(x)
        return np.ascontiguousarray(
            x[0, :self.layer.height, :self.layer.width, :].transpose(2, 0, 1))

    def from_layer_output(self, y):
        """The layer's output ``y`` (``(C, H, W)``, int8 values) as the model's (NHWC int8)."""
        y = np.asarray(y)
        if y.shape != self.layer.output_shape:
            raise ValueError(f"the layer's output must have the shape {self.layer.output_shape}"
                             f" (C, H, W), not {y.shape}")
        if y.dtype.kind not in "iu" or (
                y.size and not (_INT8[0] <= y.min() and y.max() <= _INT8[1])):
            raise ValueError("the layer's output must hold int8 values (-128..127)")
        return y.transpose(1, 2, 0)[None].astype(np.int8)

    def golden(self, x):
        """The output for the input ``x`` (NHWC), as the engine computes it
        (:func:`convaccel.golden.conv2d`)."""
        from .golden import conv2d
        y = conv2d(self.to_layer_input(x), self.weights, self.engine_bias, self.layer,
                   self.requant)
        return self.from_layer_output(y)

    def reference(self, x):
        """The output for the input ``x`` (NHWC), as TFLite's reference kernel
        (``reference_integer_ops::ConvPerChannel`` or ``DepthwiseConvPerChannel``) computes
        it: for every output pixel and channel, ``w * (x - input_zero_point)`` summed over the
        taps inside the frame and the input channels of its group, plus the bias, requantized
        (:func:`convaccel.quant.requantize`)."""
        x = self._check_input(x)[0] - self.input_zero_point
        height, width, _ = x.shape
        _, out_h, out_w, c_out = self.output_shape
        (_, top, _), (_, left, _) = (
            _tflite_axis(size, k, s, d, self.padding) for size, k, s, d in
            zip((height, width), self.weights.shape[2:], self.stride, self.dilation))
        weights = self.weights.astype(np.int64)
        # the filters of group g read the input channels of group g
        per_group = weights.shape[1]
        groups = x.shape[2] // per_group
        filters = c_out // groups
        acc = np.zeros((out_h, out_w, c_out), dtype=np.int64)
        for r in range(weights.shape[2]):
            rows = np.arange(out_h) * self.stride[0] - top + r * self.dilation[0]
            for c in range(weights.shape[3]):
                cols = np.arange(out_w) * self.stride[1] - left + c * self.dilation[1]
                inside = (((rows >= 0) & (rows < height))[:, None]
                          & ((cols >= 0) & (cols < width))[None, :])
                taps = x[rows.clip(0, height - 1)][:, cols.clip(0, width - 1)]
                taps = taps * inside[..., None]
                for g in range(groups):
                    acc[..., g * filters:(g + 1) * filters] += (
                        taps[..., g * per_group:(g + 1) * per_group]
                        @ weights[g * filters:(g + 1) * filters, :, r, c].T)
        acc += self.bias.astype(np.int64)
        y = quant.requantize(acc.transpose(2, 0, 1), self.multiplier, self.shift,
                             self.output_zero_point, self.act_min, self.act_max)
        return y.transpose(1, 2, 0)[None].astype(np.int8)


def _pair(name, value):
    value = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(value) != 2 or any(int(v) < 1 for v in value):
        raise ValueError(f"{name} must be a positive integer or an (h, w) pair, not {value!r}")
    return int(value[0]), int(value[1])


# -- reading -----------------------------------------------------------------------------------

def _vector(table, field):
    """A vector field as a NumPy array (the generated ``...AsNumpy`` gives 0 when absent)."""
    if getattr(table, f"{field}Length")() == 0:
        return np.zeros(0)
    return getattr(table, f"{field}AsNumpy")()


class _Reader:
    def __init__(self, path, buf, schema):
        self.path, self.buf, self.schema = path, buf, schema
        self.model = schema.Model.GetRootAs(buf, 0)
        if self.model.SubgraphsLength() < 1:
            raise TfliteError(f"{path}: the model has no graph")
        self.graph = self.model.Subgraphs(0)
        self.types = _enum_names(schema.TensorType)
        self.opcodes = _enum_names(schema.BuiltinOperator)
        self.activations = _enum_names(schema.ActivationFunctionType)
        self.paddings = _enum_names(schema.Padding)

    def fail(self, message):
        raise TfliteError(f"{self.path}: {message}")

    def operator_name(self, op):
        index = op.OpcodeIndex()
        if not 0 <= index < self.model.OperatorCodesLength():
            self.fail(f"an operator refers to the operator code {index}, which the model lacks")
        code = self.model.OperatorCodes(index)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = self.opcodes.get(builtin, f"operator code {builtin}")
        if builtin == self.schema.BuiltinOperator.CUSTOM and code.CustomCode():
            name = f"CUSTOM({code.CustomCode().decode(errors='replace')})"
        return name

    def tensor(self, index):
        if not 0 <= index < self.graph.TensorsLength():
            self.fail(f"a tensor index {index} is outside the graph's "
                      f"{self.graph.TensorsLength()} tensors")
        t = self.graph.Tensors(index)
        q = t.Quantization()
        scale = tuple(float(s) for s in _vector(q, "Scale")) if q is not None else ()
        zero_point = tuple(int(z) for z in _vector(q, "ZeroPoint")) if q is not None else ()
        return TensorInfo(index=index, name=(t.Name() or b"").decode(errors="replace"),
                          shape=tuple(int(n) for n in _vector(t, "Shape")),
                          type=self.types.get(t.Type(), f"type {t.Type()}"),
                          scale=scale, zero_point=zero_point)

    def quantized_dimension(self, index):
        q = self.graph.Tensors(index).Quantization()
        return q.QuantizedDimension() if q is not None else 0

    def data(self, index, dtype):
        """The constant data of a tensor, or ``None``."""
        buffer_index = self.graph.Tensors(index).Buffer()
        if not 0 < buffer_index < self.model.BuffersLength():
            return None
        buffer = self.model.Buffers(buffer_index)
        if buffer.Offset() > 1:
            # Data stored after the flatbuffer (models over 2 GiB), at an offset in the file.
            raw = self.buf[buffer.Offset():buffer.Offset() + buffer.Size()]
        elif buffer.DataLength():
            raw = buffer.DataAsNumpy().tobytes()
        else:
            return None
        return np.frombuffer(bytes(raw), dtype=np.dtype(dtype).newbyteorder("<"))

    def conv(self, index, op, name):
        depthwise = name == "DEPTHWISE_CONV_2D"
        where = f"operator {index} ({name})"
        inputs = [int(i) for i in _vector(op, "Inputs")]
        outputs = [int(i) for i in _vector(op, "Outputs")]
        if len(inputs) not in (2, 3) or len(outputs) != 1:
            self.fail(f"{where} has {len(inputs)} inputs and {len(outputs)} outputs; "
                      f"a convolution has 2 or 3 and 1")
        x, w, y = self.tensor(inputs[0]), self.tensor(inputs[1]), self.tensor(outputs[0])
        b = self.tensor(inputs[2]) if len(inputs) == 3 and inputs[2] >= 0 else None
        for role, t in (("input", x), ("filter", w), ("output", y)):
            if t.type == "FLOAT32" or t.type == "UINT8":
                self.fail(f"{where}: the {role} {t.name!r} is {t.type.lower()}; {INT8_ONLY}")
            if t.type != "INT8":
                self.fail(f"{where}: the {role} {t.name!r} is {t.type}; int8 only")
            if not t.scale or len(t.zero_point) != len(t.scale):
                self.fail(f"{where}: the {role} {t.name!r} is not quantized; {INT8_ONLY}")
        for role, t in (("input", x), ("output", y)):
            if len(t.scale) != 1:
                self.fail(f"{where}: the {role} {t.name!r} has {len(t.scale)} scales; "
                          f"an activation is quantized per tensor")
        if any(w.zero_point):
            self.fail(f"{where}: the filter {w.name!r} has non-zero zero points "
                      f"{list(w.zero_point)}; TFLite's int8 convolution needs symmetric "
                      f"weights (zero points 0)")
        # the filter's output channels: OHWI, or a depthwise filter's (1, H, W, O)
        out_axis = 3 if depthwise else 0
        if len(w.scale) > 1 and self.quantized_dimension(w.index) != out_axis:
            self.fail(f"{where}: the filter {w.name!r} is quantized along dimension "
                      f"{self.quantized_dimension(w.index)}; per-channel scales are along "
                      f"the output channels ({out_axis})")
        if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
            self.fail(f"{where}: the input, filter and output must be 4-D, not "
                      f"{x.shape}, {w.shape}, {y.shape}")
        if depthwise and w.shape[0] != 1:
            self.fail(f"{where}: the filter {w.name!r} has the shape {w.shape}; a depthwise "
                      f"filter is (1, kernel_h, kernel_w, out_channels)")
        if depthwise and not (x.shape[3] > 0 and w.shape[3] % x.shape[3] == 0):
            # (TFLite's ComputeDepthMultiplier; the options' depth_multiplier is not read)
            self.fail(f"{where}: the filter {w.name!r} has {w.shape[3]} output channels, not a "
                      f"multiple of the input's {x.shape[3]} (the channel multiplier is "
                      f"out_channels / in_channels)")
        c_out = w.shape[out_axis]
        if x.shape[0] != 1:
            self.fail(f"{where}: the input {x.name!r} has a batch of {x.shape[0]}; "
                      f"the batch must be 1")
        weights = self.data(w.index, np.int8)
        if weights is None or weights.size != math.prod(w.shape):
            self.fail(f"{where}: the filter {w.name!r} holds no constant {w.shape} data")
        bias = None
        if b is not None:
            if b.type != "INT32":
                self.fail(f"{where}: the bias {b.name!r} is {b.type}; an int8 convolution's "
                          f"bias is int32")
            bias = self.data(b.index, np.int32)
            if bias is None or bias.shape != (c_out,):
                self.fail(f"{where}: the bias {b.name!r} holds no constant ({c_out},) data")

        kind = "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions"
        if op.BuiltinOptionsType() != getattr(self.schema.BuiltinOptions, kind):
            self.fail(f"{where} has no {kind}")
        table = op.BuiltinOptions()
        options = getattr(self.schema, kind)()
        options.Init(table.Bytes, table.Pos)
        weights = weights.reshape(w.shape)
        if depthwise:
            # (1, H, W, O) -> OHWI with one input channel a group: groups = in_channels
            weights = weights.transpose(3, 1, 2, 0)
        activation = self.activations.get(options.FusedActivationFunction(), "?")
        if activation not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
            self.fail(f"{where}: the fused activation {activation} is not supported; "
                      f"NONE, RELU, RELU6 or RELU_N1_TO_1 are")
        padding = self.paddings.get(options.Padding(), "?")
        try:
            conv = QuantizedConv.from_parameters(
                weights, bias, x.shape,
                input_quant=(x.scale[0], x.zero_point[0]), filter_scales=w.scale,
                output_quant=(y.scale[0], y.zero_point[0]),
                stride=(options.StrideH(), options.StrideW()),
                dilation=(options.DilationHFactor(), options.DilationWFactor()),
                padding=padding, activation=activation, name=_sanitize(y.name), operator=name)
        except ValueError as e:
            self.fail(f"{where}: {e}")
        if conv.output_shape != y.shape:
            self.fail(f"{where}: the output {y.name!r} has the shape {y.shape}; the "
                      f"convolution gives {conv.output_shape}")
        return conv

    def read(self):
        operators, convs = [], []
        count = self.graph.OperatorsLength()
        if count * 4 > len(self.buf):  # (an offset per operator, at the least)
            raise IndexError(f"{count} operators in {len(self.buf)} bytes")
        for index in range(count):
            op = self.graph.Operators(index)
            operators.append((index, self.operator_name(op)))
        inputs = tuple(self.tensor(int(i)) for i in _vector(self.graph, "Inputs"))
        outputs = tuple(self.tensor(int(i)) for i in _vector(self.graph, "Outputs"))
        for role, tensors in (("input", inputs), ("output", outputs)):
            for t in tensors:
                if t.type != "INT8":
                    self.fail(f"the model's {role} {t.name!r} is {t.type.lower()}; {INT8_ONLY}")
        for index, name in operators:
            if name in CONV_OPERATORS:
                convs.append(self.conv(index, self.graph.Operators(index), name))
        return Model(path=self.path, operators=tuple(operators), inputs=inputs,
                     outputs=outputs, convs=tuple(convs))


def read_model(path):
    """Read the int8 model in the ``.tflite`` file at ``path`` (a :class:`Model`).

    Raises :class:`TfliteError`, naming the file, for a file that cannot be read or is not a
    TFLite flatbuffer, for a model whose inputs or outputs are not int8 (float and uint8
    models are refused: :data:`INT8_ONLY`), and for a ``CONV_2D`` that TFLite's int8
    reference kernel would not run or that the engine cannot compute.
    """
    return _read(path, _Reader)


def _read(path, reader):
    """``reader(path, buf, schema).read()`` on the file at ``path`` (a :class:`_Reader`, or a
    subclass that reads more), with :func:`read_model`'s errors."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except FileNotFoundError:
        raise TfliteError(f"{path}: no such file") from None
    except OSError as e:
        raise TfliteError(f"{path}: cannot read the file: {e.strerror}") from None
    schema = _schema()
    if len(buf) < 8 or not schema.Model.ModelBufferHasIdentifier(buf, 0):
        raise TfliteError(f"{path}: not a .tflite model (a TFLite flatbuffer starts with a "
                          f"root offset and the identifier TFL3)")
    try:
        return reader(path, buf, schema).read()
    except TfliteError:
        raise
    except (IndexError, ValueError, TypeError, AttributeError, OverflowError, MemoryError,
            ZeroDivisionError, struct.error) as e:
        # The generated accessors follow offsets without checking them (flatbuffers' Python
        # runtime has no verifier): damage shows as any of these.
        raise TfliteError(f"{path}: a damaged .tflite file (cut short or corrupted: {e})") \
            from None


def load_conv(path):
    """The convolution of a ``.tflite`` model that is exactly one int8 ``CONV_2D`` or
    ``DEPTHWISE_CONV_2D`` (a :class:`QuantizedConv`).

    Raises :class:`TfliteError` listing every operator this version cannot map, e.g.
    ``model.tflite: operator 1 (MAX_POOL_2D) is not supported by this version: only a single
    CONV_2D or DEPTHWISE_CONV_2D``.
    """
    model = read_model(path)
    single = " or ".join(CONV_OPERATORS)
    if not model.operators:
        raise TfliteError(f"{model.path}: the model has no operator; this version maps only a "
                          f"single {single}")
    first_conv = next((i for i, name in model.operators if name in CONV_OPERATORS), None)
    others = [f"{i} ({name})" for i, name in model.operators if i != first_conv]
    if others:
        which = (f"operator {others[0]} is" if len(others) == 1 else
                 f"operators {', '.join(others)} are")
        raise TfliteError(f"{model.path}: {which} not supported by this version: only a single "
                          f"{single}")
    return model.convs[0]


# -- writing -----------------------------------------------------------------------------------

def conv_model(weights, bias, input_shape, *, stride=1, dilation=1, padding="SAME",
               input_quant=(1.0, 0), filter_scales=(1.0,), output_quant=(1.0, 0),
               activation="NONE", name="conv"):
    """A ``.tflite`` model (``bytes``) that is one int8 ``CONV_2D``, as TFLite's converter
    writes a fully integer-quantized convolution.

    Parameters
    ----------
    weights : array
        ``(out_channels, kernel_h, kernel_w, in_channels)`` int8 (OHWI, TFLite's order); with
        fewer input channels than the input has, a grouped convolution (``groups = input
        channels / filter input channels``).
    bias : array or None
        ``(out_channels,)`` int32; ``None`` writes zeros (TFLite's int8 kernel needs a bias
        tensor).
    input_shape : tuple
        NHWC, with a batch of 1.
    stride, dilation : int or (h, w)
    padding : ``"SAME"`` or ``"VALID"``
    input_quant, output_quant : (float, int)
        Scale and zero point of the input and of the output.
    filter_scales : float or sequence of float
        One per output channel, or one for all (per-tensor).
    activation : str
        The fused activation: ``"NONE"``, ``"RELU"``, ``"RELU6"`` or ``"RELU_N1_TO_1"``.
    name : str
        Prefix of the tensors' names; the output tensor is called ``name``.

    Raises ``ValueError`` for parameters that TFLite's int8 convolution does not take.
    """
    conv = QuantizedConv.from_parameters(
        weights, bias, input_shape, input_quant=input_quant, filter_scales=filter_scales,
        output_quant=output_quant, stride=stride, dilation=dilation, padding=padding,
        activation=activation)
    return _one_conv_model(conv, name)


def depthwise_model(weights, bias, input_shape, *, stride=1, dilation=1, padding="SAME",
                    input_quant=(1.0, 0), filter_scales=(1.0,), output_quant=(1.0, 0),
                    activation="NONE", name="depthwise"):
    """A ``.tflite`` model (``bytes``) that is one int8 ``DEPTHWISE_CONV_2D``, as TFLite's
    converter writes a fully integer-quantized depthwise convolution.

    ``weights`` is TFLite's depthwise filter, ``(1, kernel_h, kernel_w, out_channels)`` int8,
    ``out_channels`` a multiple of the input's channels (the channel multiplier, written as the
    options' ``depth_multiplier``); output channel ``o`` reads input channel ``o //
    multiplier``. The scales are per output channel (the filter's last axis). The other
    parameters are :func:`conv_model`'s.
    """
    weights = np.asarray(weights)
    if weights.ndim != 4 or weights.shape[0] != 1:
        raise ValueError(f"a depthwise filter is (1, kernel_h, kernel_w, out_channels), not "
                         f"{weights.shape}")
    channels = int(input_shape[-1]) if len(input_shape) == 4 else 0
    if channels < 1 or weights.shape[3] % channels:
        raise ValueError(f"the filter's {weights.shape[3]} output channels are not a multiple "
                         f"of the input's {channels} channels")
    conv = QuantizedConv.from_parameters(
        weights.transpose(3, 1, 2, 0), bias, input_shape, input_quant=input_quant,
        filter_scales=filter_scales, output_quant=output_quant, stride=stride,
        dilation=dilation, padding=padding, activation=activation,
        operator="DEPTHWISE_CONV_2D")
    return _one_conv_model(conv, name)


def _one_conv_model(conv, name):
    """The model of the one convolution `conv` (a :class:`QuantizedConv`)."""
    schema = _object_api()
    depthwise = conv.operator == "DEPTHWISE_CONV_2D"
    c_out = conv.weights.shape[0]
    # OIHW -> OHWI, or a depthwise filter's (1, H, W, O)
    filt = np.asarray(conv.weights).transpose(*((1, 2, 3, 0) if depthwise else (0, 2, 3, 1)))

    def quantization(scales, zero_points, axis=0):
        q = schema.QuantizationParametersT()
        q.scale = [float(s) for s in scales]
        q.zeroPoint = [int(z) for z in zero_points]
        q.quantizedDimension = axis
        return q

    def tensor(tensor_name, shape, tensor_type, buffer, q):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer, t.quantization = (
            tensor_name, list(shape), tensor_type, buffer, q)
        return t

    def buffer(data=None):
        b = schema.BufferT()
        if data is not None:
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
        return b

    int8, int32 = schema.TensorType.INT8, schema.TensorType.INT32
    tensors = [
        tensor(f"{name}/input", conv.input_shape, int8, 0,
               quantization([conv.input_scale], [conv.input_zero_point])),
        tensor(f"{name}/weights", filt.shape, int8, 1,
               quantization(conv.filter_scales, [0] * c_out, 3 if depthwise else 0)),
        tensor(name, conv.output_shape, int8, 0,
               quantization([conv.output_scale], [conv.output_zero_point])),
    ]
    # Buffer 0 is the empty sentinel that every tensor without data refers to.
    buffers = [buffer(), buffer(filt.astype("<i1"))]
    # The bias's scales are input_scale * filter_scale (TFLite's int8 kernel reads none).
    bias_scales = [float(np.float32(conv.input_scale) * np.float32(f))
                   for f in conv.filter_scales]
    tensors.append(tensor(f"{name}/bias", (c_out,), int32, 2,
                          quantization(bias_scales, [0] * c_out)))
    buffers.append(buffer(conv.bias.astype("<i4")))

    if depthwise:
        options = schema.DepthwiseConv2DOptionsT()
        options.depthMultiplier = c_out // conv.input_shape[3]
        options_type = schema.BuiltinOptions.DepthwiseConv2DOptions
    else:
        options = schema.Conv2DOptionsT()
        options_type = schema.BuiltinOptions.Conv2DOptions
    options.padding = getattr(schema.Padding, conv.padding)
    options.strideH, options.strideW = conv.stride
    options.dilationHFactor, options.dilationWFactor = conv.dilation
    options.fusedActivationFunction = getattr(schema.ActivationFunctionType, conv.activation)

    code = schema.OperatorCodeT()
    code.builtinCode = getattr(schema.BuiltinOperator, conv.operator)
    code.deprecatedBuiltinCode = min(code.builtinCode, _PLACEHOLDER_FOR_GREATER_OP_CODES)
    # per-channel int8: CONV_2D's version 3; DEPTHWISE_CONV_2D's 3 (dilation needs 2 or more)
    code.version = 3

    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [0, 1, 3]
    op.outputs = [2]
    op.builtinOptionsType = options_type
    op.builtinOptions = options

    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = tensors, [0], [2], [op]
    graph.name = "main"

    model = schema.ModelT()
    model.version = 3
    model.description = "convaccel"
    model.operatorCodes, model.subgraphs, model.buffers = [code], [graph], buffers
    return pack_model(model)


def pack_model(model):
    """Serialize a schema object-API model (``ModelT``) into ``.tflite`` bytes."""
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
