"""Whole int8 networks from a ``.tflite`` file: a chain of stages, and its golden model.

A fully integer-quantized CNN (``TFLiteConverter`` with a representative data set and int8
inputs and outputs) is, for this version, a linear chain of operators, each reading the
previous one's output:

- ``CONV_2D`` (any kernel, 1x1 included) and ``DEPTHWISE_CONV_2D``: a :class:`Conv` stage, the
  requantized :class:`~convaccel.ConvLayer` of :class:`~convaccel.tflite.QuantizedConv`;
- ``MAX_POOL_2D`` and ``AVERAGE_POOL_2D``: a :class:`Pool` stage (TFLite's int8 reference
  kernels: taps in the padding skipped, the average rounded halves away from zero);
- ``FULLY_CONNECTED``: a :class:`Dense` stage (int8 weights per tensor or per output, int32
  bias, requantized in floating point as LiteRT's reference kernel does);
- ``RESHAPE`` (a flatten, typically): a :class:`Reshape` stage, which moves no data;

with the fused activations (``NONE``, ``RELU``, ``RELU6``, ``RELU_N1_TO_1``) as clamps on each
stage's output. :func:`load_network` reads one into a :class:`Network`; its :meth:`Network.golden`
is the chain of the stages' golden models (:mod:`convaccel.golden`), taking and returning
exactly the LiteRT interpreter's input and output tensors.

Layouts. The model's tensors are NHWC with a batch of 1 (``(1, H, W, C)``), or ``(1, N)``
after a flatten. Between stages the golden model uses the project's layout, ``(C, H, W)``, or
``(N,)`` (:func:`to_project`, :func:`from_project`). A flatten in TFLite orders the elements
``(h, w, c)``, which is also the order in which a raster stream with the channels of a pixel
together delivers them; a :class:`Dense` stage reading a ``(C, H, W)`` frame holds its weights
as ``(units, C, H, W)``, so that ``weights[u]`` lines up with the frame it reads.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import golden, quant
from .tflite import (CONV_OPERATORS, INT8_ONLY, QuantizedConv, _Reader, _read, _readonly,
                     _tflite_axis, _vector, check_input_tensor)

__all__ = ["Network", "Conv", "Pool", "Dense", "Reshape", "load_network", "to_project",
           "from_project", "project_shape", "NETWORK_OPERATORS"]

#: The operators a network's stages can be.
NETWORK_OPERATORS = (*CONV_OPERATORS, "MAX_POOL_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED",
                     "RESHAPE")

_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


# -- layouts -----------------------------------------------------------------------------------

def project_shape(shape):
    """The project's shape of a model tensor of ``shape``: ``(1, H, W, C)`` -> ``(C, H, W)``,
    ``(1, N)`` -> ``(N,)``. Raises ``ValueError`` for any other shape."""
    shape = tuple(int(n) for n in shape)
    if len(shape) == 4 and shape[0] == 1:
        return (shape[3], shape[1], shape[2])
    if len(shape) == 2 and shape[0] == 1:
        return (shape[1],)
    raise ValueError(f"the shape {shape} is neither (1, H, W, C) nor (1, N)")


def to_project(x):
    """A model tensor ``x`` (``(1, H, W, C)`` or ``(1, N)``) in the project's layout."""
    x = np.asarray(x)
    return np.ascontiguousarray(x[0].transpose(2, 0, 1) if x.ndim == 4 else x[0])


def from_project(y, shape):
    """The project's array ``y`` (``(C, H, W)`` or ``(N,)``) as the model's tensor of
    ``shape``."""
    y = np.asarray(y)
    return (y.transpose(1, 2, 0) if len(shape) == 4 else y)[None]


# -- stages ------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Conv:
    """A ``CONV_2D`` or ``DEPTHWISE_CONV_2D`` stage: the requantized layer of ``conv``.

    Members
    -------
    index : int
        The operator's index in the model.
    conv : QuantizedConv
    """

    index: int
    conv: QuantizedConv

    operator = property(lambda self: self.conv.operator)
    input_shape = property(lambda self: self.conv.input_shape)
    output_shape = property(lambda self: self.conv.output_shape)
    activation = property(lambda self: self.conv.activation)

    @property
    def layer(self):
        return self.conv.layer

    @property
    def macs(self):
        return self.conv.layer.macs

    @property
    def weight_count(self):
        """Weights and biases."""
        return self.conv.weights.size + self.conv.bias.size

    @property
    def geometry(self):
        c = self.conv
        k_h, k_w = self.layer.kernel
        text = f"{k_h}x{k_w}, stride {_pair_text(c.stride)}, {c.padding}"
        if c.dilation != (1, 1):
            text += f", dilation {_pair_text(c.dilation)}"
        if self.layer.groups > 1:
            text += f", groups {self.layer.groups}"
        return text

    def golden(self, x):
        """The output ``(C, H, W)`` for the frame ``x`` ``(C, H, W)``, as the engine computes it
        (:func:`convaccel.golden.conv2d` on the rows and columns that some output reads)."""
        layer = self.layer
        return golden.conv2d(x[:, :layer.height, :layer.width], self.conv.weights,
                             self.conv.engine_bias, layer, self.conv.requant)


@dataclass(frozen=True, eq=False)
class Pool:
    """A ``MAX_POOL_2D`` or ``AVERAGE_POOL_2D`` stage (:func:`convaccel.golden.max_pool2d`,
    :func:`convaccel.golden.avg_pool2d`). Its input and output share their quantization.

    Members
    -------
    index : int
    operator : str
    kernel, stride : (int, int)
        ``(h, w)``.
    padding : str
        ``"SAME"`` or ``"VALID"``.
    pads : (int, int, int, int)
        ``(top, bottom, left, right)``, as TFLite's ``ComputePaddingHeightWidth`` makes them.
    activation : str
    act_min, act_max : int
        The fused activation's clamp on the output.
    input_shape, output_shape : tuple
        NHWC, as the interpreter's tensors.
    """

    index: int
    operator: str
    kernel: tuple
    stride: tuple
    padding: str
    pads: tuple
    activation: str
    act_min: int
    act_max: int
    input_shape: tuple
    output_shape: tuple

    macs = 0
    weight_count = 0

    @property
    def geometry(self):
        return (f"{self.kernel[0]}x{self.kernel[1]}, stride {_pair_text(self.stride)}, "
                f"{self.padding}")

    def golden(self, x):
        pool = golden.max_pool2d if self.operator == "MAX_POOL_2D" else golden.avg_pool2d
        return pool(x, self.kernel, self.stride, self.pads, self.act_min, self.act_max)


@dataclass(frozen=True, eq=False)
class Dense:
    """A ``FULLY_CONNECTED`` stage (:func:`convaccel.golden.dense`, requantized as LiteRT's
    reference kernel does: in floating point, :func:`convaccel.quant.requantize_float`).

    Members
    -------
    index : int
    weights : ndarray
        int8, ``(units, *input)`` with ``input`` the project's shape of the stage's input
        (``(C, H, W)`` or ``(N,)``): TFLite's ``(units, H * W * C)`` rows reordered so that
        ``weights[u]`` lines up with the frame. (The raster stream delivers the elements in
        TFLite's order: :attr:`stream_weights`.)
    bias : ndarray
        ``(units,)`` int32, zeros where the operator has no bias.
    input_zero_point, output_zero_point : int
    input_scale, output_scale : float
    filter_scales : tuple of float
        One per output (a per-tensor scale repeated).
    scales : tuple of float
        The requantization's scale per output: ``double(input_scale) * double(filter_scale)
        / double(output_scale)``.
    activation : str
    act_min, act_max : int
    input_shape, output_shape : tuple
        As the interpreter's tensors (``output_shape`` is ``(1, units)``).
    """

    index: int
    weights: np.ndarray
    bias: np.ndarray
    input_zero_point: int
    input_scale: float
    output_zero_point: int
    output_scale: float
    filter_scales: tuple
    scales: tuple
    activation: str
    act_min: int
    act_max: int
    input_shape: tuple
    output_shape: tuple

    operator = "FULLY_CONNECTED"

    @property
    def units(self):
        return self.weights.shape[0]

    @property
    def macs(self):
        return self.weights.size

    @property
    def weight_count(self):
        return self.weights.size + self.bias.size

    @property
    def geometry(self):
        per = "per output" if len(set(self.filter_scales)) > 1 else "per tensor"
        return f"{self.weights[0].size} -> {self.units}, scales {per}"

    @property
    def stream_weights(self):
        """The weights as ``(units, N)`` in the order the input's elements arrive (TFLite's
        ``(h, w, c)``, a raster stream's)."""
        w = self.weights
        if w.ndim == 4:
            w = w.transpose(0, 2, 3, 1)
        return w.reshape(self.units, -1)

    @property
    def engine_bias(self):
        """TFLite's bias less ``input_zero_point * sum(weights[u])``, int64
        (:func:`convaccel.quant.engine_bias`)."""
        return quant.engine_bias(self.bias, self.weights, self.input_zero_point)

    def golden(self, x):
        return golden.dense(x, self.weights, self.engine_bias, self.scales,
                            self.output_zero_point, self.act_min, self.act_max)


@dataclass(frozen=True, eq=False)
class Reshape:
    """A ``RESHAPE`` stage: the same elements in the same ``(h, w, c)`` order (a raster
    stream's), seen in another shape. It moves no data.

    Members
    -------
    index : int
    input_shape, output_shape : tuple
    """

    index: int
    input_shape: tuple
    output_shape: tuple

    operator = "RESHAPE"
    activation = "NONE"
    macs = 0
    weight_count = 0
    geometry = "flatten"

    def golden(self, x):
        flat = from_project(x, self.input_shape).reshape(self.output_shape)
        return to_project(flat)


def _pair_text(pair):
    return f"{pair[0]}" if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


# -- the network -------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Network:
    """An int8 network read from a ``.tflite`` file (:func:`load_network`): a chain of stages.

    Members
    -------
    path : Path
    stages : tuple
        :class:`Conv`, :class:`Pool`, :class:`Dense` and :class:`Reshape` stages, in order.
    input, output : TensorInfo
        The model's input and output tensors (int8).
    """

    path: Path
    stages: tuple
    input: object
    output: object

    @property
    def input_shape(self):
        return self.input.shape

    @property
    def output_shape(self):
        return self.output.shape

    @property
    def macs(self):
        return sum(stage.macs for stage in self.stages)

    @property
    def weight_count(self):
        return sum(stage.weight_count for stage in self.stages)

    def check_input(self, x):
        """``x`` as the model's input tensor: ``input_shape``, int8 values. Raises
        ``TypeError`` or ``ValueError``."""
        return check_input_tensor(x, self.input_shape)

    def trace(self, x):
        """Every stage's output (the project's layout, int64) for the input tensor ``x``."""
        value = to_project(self.check_input(x)).astype(np.int64)
        outputs = []
        for stage in self.stages:
            value = stage.golden(value)
            assert value.shape == project_shape(stage.output_shape)
            outputs.append(value)
        return outputs

    def golden(self, x):
        """The output tensor (int8, ``output_shape``) for the input tensor ``x``
        (``input_shape``), as LiteRT's interpreter gives it: the chain of the stages' golden
        models."""
        return from_project(self.trace(x)[-1], self.output_shape).astype(np.int8)


# -- reading -----------------------------------------------------------------------------------

class _NetworkReader(_Reader):
    def activation_tensor(self, where, role, t):
        """Check that the tensor ``t`` is an int8 activation quantized per tensor."""
        if t.type in ("FLOAT32", "UINT8"):
            self.fail(f"{where}: the {role} {t.name!r} is {t.type.lower()}; {INT8_ONLY}")
        if t.type != "INT8":
            self.fail(f"{where}: the {role} {t.name!r} is {t.type}; int8 only")
        if len(t.scale) != 1 or len(t.zero_point) != 1:
            self.fail(f"{where}: the {role} {t.name!r} has {len(t.scale)} scales; an "
                      f"activation is quantized per tensor (one scale and zero point)")
        try:
            project_shape(t.shape)
        except ValueError:
            self.fail(f"{where}: the {role} {t.name!r} has the shape {t.shape}; a network's "
                      f"tensors are (1, H, W, C) or (1, N)")

    def options(self, where, op, kind):
        if op.BuiltinOptionsType() != getattr(self.schema.BuiltinOptions, kind):
            self.fail(f"{where} has no {kind}")
        table = op.BuiltinOptions()
        options = getattr(self.schema, kind)()
        options.Init(table.Bytes, table.Pos)
        return options

    def activation(self, where, options):
        activation = self.activations.get(options.FusedActivationFunction(), "?")
        if activation not in _ACTIVATIONS:
            self.fail(f"{where}: the fused activation {activation} is not supported; "
                      f"NONE, RELU, RELU6 or RELU_N1_TO_1 are")
        return activation

    def io(self, where, op, inputs_allowed):
        inputs = [int(i) for i in _vector(op, "Inputs")]
        outputs = [int(i) for i in _vector(op, "Outputs")]
        if len(inputs) not in inputs_allowed or len(outputs) != 1:
            self.fail(f"{where} has {len(inputs)} inputs and {len(outputs)} outputs; "
                      f"it takes {' or '.join(map(str, inputs_allowed))} and 1")
        return inputs, outputs

    def pool(self, index, op, name):
        where = f"operator {index} ({name})"
        (source,), (sink,) = self.io(where, op, (1,))
        x, y = self.tensor(source), self.tensor(sink)
        for role, t in (("input", x), ("output", y)):
            self.activation_tensor(where, role, t)
            if len(t.shape) != 4:
                self.fail(f"{where}: the {role} {t.name!r} has the shape {t.shape}; "
                          f"pooling takes (1, H, W, C)")
        if (x.scale, x.zero_point) != (y.scale, y.zero_point):
            self.fail(f"{where}: the input is quantized with scale {x.scale[0]:.6g}, zero point "
                      f"{x.zero_point[0]} and the output with scale {y.scale[0]:.6g}, zero "
                      f"point {y.zero_point[0]}; TFLite's int8 pooling keeps the quantization "
                      f"(they must be equal)")
        options = self.options(where, op, "Pool2DOptions")
        activation = self.activation(where, options)
        padding = self.paddings.get(options.Padding(), "?")
        kernel = (options.FilterHeight(), options.FilterWidth())
        stride = (options.StrideH(), options.StrideW())
        if min(kernel) < 1 or min(stride) < 1 or padding not in ("SAME", "VALID"):
            self.fail(f"{where}: the filter {kernel}, stride {stride} and padding {padding} "
                      f"are not a pooling's (positive sizes, SAME or VALID)")
        _, height, width, channels = x.shape
        (out_h, top, bottom), (out_w, left, right) = (
            _tflite_axis(size, k, s, 1, padding)
            for size, k, s in zip((height, width), kernel, stride))
        if min(out_h, out_w) < 1:
            self.fail(f"{where}: the {kernel[0]}x{kernel[1]} filter is larger than the "
                      f"{height}x{width} input with VALID padding")
        if y.shape != (1, out_h, out_w, channels):
            self.fail(f"{where}: the output {y.name!r} has the shape {y.shape}; the pooling "
                      f"gives {(1, out_h, out_w, channels)}")
        act_min, act_max = quant.activation_range(activation, np.float32(y.scale[0]),
                                                  y.zero_point[0])
        return Pool(index=index, operator=name, kernel=kernel, stride=stride, padding=padding,
                    pads=(top, bottom, left, right), activation=activation, act_min=act_min,
                    act_max=act_max, input_shape=x.shape, output_shape=y.shape)

    def dense(self, index, op, name):
        where = f"operator {index} ({name})"
        inputs, (sink,) = self.io(where, op, (2, 3))
        x, w, y = self.tensor(inputs[0]), self.tensor(inputs[1]), self.tensor(sink)
        b = self.tensor(inputs[2]) if len(inputs) == 3 and inputs[2] >= 0 else None
        for role, t in (("input", x), ("output", y)):
            self.activation_tensor(where, role, t)
        if w.type != "INT8" or not w.scale or len(w.zero_point) != len(w.scale):
            self.fail(f"{where}: the weights {w.name!r} are {w.type.lower()}"
                      f"{'' if w.scale else ', not quantized'}; {INT8_ONLY}")
        if len(w.shape) != 2:
            self.fail(f"{where}: the weights {w.name!r} have the shape {w.shape}; a fully "
                      f"connected layer's are (units, inputs)")
        units, depth = w.shape
        if any(w.zero_point):
            self.fail(f"{where}: the weights {w.name!r} have non-zero zero points; TFLite's "
                      f"int8 fully connected layer needs symmetric weights (zero points 0)")
        if len(w.scale) not in (1, units) or (
                len(w.scale) > 1 and self.quantized_dimension(w.index) != 0):
            self.fail(f"{where}: the weights {w.name!r} have {len(w.scale)} scales along "
                      f"dimension {self.quantized_dimension(w.index)}; give one, or one per "
                      f"output (dimension 0)")
        if math.prod(x.shape) != depth:
            self.fail(f"{where}: the input {x.name!r} {x.shape} holds {math.prod(x.shape)} "
                      f"values and the weights take {depth}; the batch must be 1")
        if y.shape != (1, units):
            self.fail(f"{where}: the output {y.name!r} has the shape {y.shape}; a fully "
                      f"connected layer of {units} units gives (1, {units})")
        weights = self.data(w.index, np.int8)
        if weights is None or weights.size != units * depth:
            self.fail(f"{where}: the weights {w.name!r} hold no constant {w.shape} data")
        bias = np.zeros(units, dtype=np.int32)
        if b is not None:
            if b.type != "INT32":
                self.fail(f"{where}: the bias {b.name!r} is {b.type}; an int8 fully connected "
                          f"layer's bias is int32")
            bias = self.data(b.index, np.int32)
            if bias is None or bias.shape != (units,):
                self.fail(f"{where}: the bias {b.name!r} holds no constant ({units},) data")
        options = self.options(where, op, "FullyConnectedOptions")
        activation = self.activation(where, options)
        if options.WeightsFormat() != 0:
            self.fail(f"{where}: the weights format {options.WeightsFormat()} is not "
                      f"supported; DEFAULT (0) is")
        # TFLite's rows are in the input's (h, w, c) order; line them up with (C, H, W).
        weights = weights.reshape(units, depth)
        if len(x.shape) == 4:
            _, height, width, channels = x.shape
            weights = weights.reshape(units, height, width, channels).transpose(0, 3, 1, 2)
        input_scale, output_scale = float(x.scale[0]), float(y.scale[0])
        filter_scales = [float(s) for s in w.scale] * (units if len(w.scale) == 1 else 1)
        for what, s in [("input", input_scale), ("output", output_scale),
                        *(("weights", s) for s in filter_scales)]:
            if not (math.isfinite(s) and s > 0):
                self.fail(f"{where}: the {what} scale must be positive and finite, not {s}")
        # float32 scales widened to double, (input * filter) / output, as the convolution's
        # (which TFLite then turns into a fixed-point multiplier; this kernel does not).
        scales = tuple(input_scale * f / output_scale for f in filter_scales)
        act_min, act_max = quant.activation_range(activation, np.float32(output_scale),
                                                  y.zero_point[0])
        return Dense(index=index, weights=_readonly(np.ascontiguousarray(weights)),
                     bias=_readonly(bias.astype(np.int32)),
                     input_zero_point=x.zero_point[0], input_scale=input_scale,
                     output_zero_point=y.zero_point[0], output_scale=output_scale,
                     filter_scales=tuple(filter_scales), scales=scales,
                     activation=activation, act_min=act_min,
                     act_max=act_max, input_shape=x.shape, output_shape=y.shape)

    def reshape(self, index, op, name):
        where = f"operator {index} ({name})"
        (source, *_), (sink,) = self.io(where, op, (1, 2))
        x, y = self.tensor(source), self.tensor(sink)
        for role, t in (("input", x), ("output", y)):
            self.activation_tensor(where, role, t)
        if (x.scale, x.zero_point) != (y.scale, y.zero_point):
            self.fail(f"{where}: the input and output are quantized differently; a reshape "
                      f"keeps the quantization")
        if math.prod(x.shape) != math.prod(y.shape):
            self.fail(f"{where}: the input {x.shape} and the output {y.shape} hold different "
                      f"numbers of values")
        return Reshape(index=index, input_shape=x.shape, output_shape=y.shape)

    def read(self):
        model = super().read()
        if not model.operators:
            self.fail("the model has no operator")
        unsupported = [f"{i} ({name})" for i, name in model.operators
                       if name not in NETWORK_OPERATORS]
        if unsupported:
            which = (f"operator {unsupported[0]} is" if len(unsupported) == 1 else
                     f"operators {', '.join(unsupported)} are")
            hint = ""
            if any(name == "SHAPE" for _, name in model.operators):
                hint = (" (SHAPE computes a flatten's shape for a dynamic batch: convert the "
                        "model with a fixed batch of 1, e.g. keras.Input(..., batch_size=1))")
            self.fail(f"{which} not supported in a network; its stages are "
                      f"{', '.join(NETWORK_OPERATORS[:-1])} and {NETWORK_OPERATORS[-1]}{hint}")
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            self.fail(f"the model has {len(model.inputs)} inputs and {len(model.outputs)} "
                      f"outputs; a network has one of each")
        ops = [self.graph.Operators(i) for i, _ in model.operators]
        readers = {}
        for i, op in enumerate(ops):
            for t in _vector(op, "Inputs"):
                readers.setdefault(int(t), []).append(i)
        convs = iter(model.convs)
        stages = []
        current, what = model.inputs[0], "the model's input"
        for (index, name), op in zip(model.operators, ops):
            where = f"operator {index} ({name})"
            source = [int(t) for t in _vector(op, "Inputs")][:1]
            if len(readers.get(current.index, [])) > 1:
                self.fail(f"{what} {current.name!r} is read by operators "
                          f"{', '.join(map(str, readers[current.index]))}: a branch; only "
                          f"linear chains (each tensor read by one operator) are supported")
            if source != [current.index]:
                read = repr(self.tensor(source[0]).name) if source else "no tensor"
                self.fail(f"{where} reads {read}, not {what} {current.name!r}: only linear "
                          f"chains (each operator reading the previous one's output) are "
                          f"supported")
            if name in CONV_OPERATORS:
                stage = Conv(index=index, conv=next(convs))
            elif name == "FULLY_CONNECTED":
                stage = self.dense(index, op, name)
            elif name == "RESHAPE":
                stage = self.reshape(index, op, name)
            else:
                stage = self.pool(index, op, name)
            stages.append(stage)
            sink = int(_vector(op, "Outputs")[0])
            current, what = self.tensor(sink), f"the output of operator {index}"
        if current.index != model.outputs[0].index:
            self.fail(f"the model's output {model.outputs[0].name!r} is not the last "
                      f"operator's output {current.name!r}")
        return Network(path=self.path, stages=tuple(stages), input=model.inputs[0],
                       output=model.outputs[0])


def load_network(path):
    """The int8 network in the ``.tflite`` file at ``path`` (a :class:`Network`).

    Raises :class:`~convaccel.tflite.TfliteError`, naming the file, for everything
    :func:`~convaccel.tflite.read_model` refuses, for an operator that is not one of
    :data:`NETWORK_OPERATORS` (naming every such operator and its index), for a tensor between
    stages that is not int8, and for a graph that is not a linear chain (a branch, or an
    operator that does not read the previous one's output).
    """
    return _read(path, _NetworkReader)

