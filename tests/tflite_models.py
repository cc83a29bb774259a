"""Int8 TFLite models built in Python (TFLite's flatbuffer schema, no TensorFlow), and LiteRT's
reference kernels to run them.

:func:`conv_model` (from :mod:`convaccel.tflite`) writes a one-``CONV_2D`` model; the rest edit
such a model through the schema's object API into the ones the reader must refuse.
"""

import numpy as np
import pytest

from convaccel.tflite import conv_model, pack_model

__all__ = ["conv_model", "pack_model", "model_object", "add_tensor", "add_operator", "ChainModel",
           "reference_interpreter", "run_reference"]


def _schema():
    return pytest.importorskip("ai_edge_litert.schema_py_generated")


def model_object(data):
    """The model in the ``.tflite`` bytes ``data``, as the schema's object API (``ModelT``)."""
    schema = _schema()
    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def add_tensor(model, name, shape, tensor_type="INT8", scale=None, zero_point=None, data=None):
    """Append a tensor to the model's graph (with a buffer holding ``data``, if given); return
    its index."""
    schema = _schema()
    graph = model.subgraphs[0]
    t = schema.TensorT()
    t.name, t.shape, t.type = name, list(shape), getattr(schema.TensorType, tensor_type)
    t.buffer = 0
    if scale is not None:
        t.quantization = schema.QuantizationParametersT()
        t.quantization.scale = list(np.atleast_1d(scale).astype(float))
        t.quantization.zeroPoint = list(np.atleast_1d(zero_point).astype(int))
    if data is not None:
        b = schema.BufferT()
        b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
        model.buffers.append(b)
        t.buffer = len(model.buffers) - 1
    graph.tensors.append(t)
    return len(graph.tensors) - 1


def add_operator(model, name, inputs, outputs, options=None):
    """Append the builtin operator ``name`` (e.g. ``"MAX_POOL_2D"``) to the model's graph, with
    ``options`` an object-API options table (e.g. ``Pool2DOptionsT``)."""
    schema = _schema()
    code_value = getattr(schema.BuiltinOperator, name)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    if code_value not in codes:
        code = schema.OperatorCodeT()
        code.builtinCode = code_value
        code.deprecatedBuiltinCode = min(code_value, 127)
        code.version = 1
        model.operatorCodes.append(code)
        codes.append(code_value)
    op = schema.OperatorT()
    op.opcodeIndex = codes.index(code_value)
    op.inputs, op.outputs = list(inputs), list(outputs)
    if options is not None:
        op.builtinOptionsType = getattr(schema.BuiltinOptions,
                                        type(options).__name__.removesuffix("T"))
        op.builtinOptions = options
    model.subgraphs[0].operators.append(op)
    return op


def reference_interpreter(model):
    """A function running the ``.tflite`` bytes ``model`` in LiteRT's reference kernels
    (``BUILTIN_REF``): an NHWC input in, the output out. One interpreter serves every call."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = litert.Interpreter(
        model_content=bytes(model),
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()

    def run(x):
        interpreter.set_tensor(source["index"], np.asarray(x, dtype=source["dtype"]))
        interpreter.invoke()
        return interpreter.get_tensor(sink["index"]).copy()
    return run


def run_reference(model, x):
    """The output of the ``.tflite`` bytes ``model`` for the input ``x`` (NHWC) in LiteRT's
    reference kernels."""
    return reference_interpreter(model)(x)


# -- chains of operators -----------------------------------------------------------------------

class ChainModel:
    """An int8 model built operator by operator, each reading the previous one's output, as
    TFLite's converter writes a fully integer-quantized network (no TensorFlow): start from the
    input's NHWC shape and quantization, append stages, then :meth:`bytes`.

    Each method returns ``self``; the quantization of an output is ``(scale, zero point)``.
    """

    # (the operator versions TFLite's converter gives int8 operators)
    VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "MAX_POOL_2D": 2, "AVERAGE_POOL_2D": 2,
                "FULLY_CONNECTED": 4, "RESHAPE": 1}

    def __init__(self, input_shape, input_quant):
        schema = _schema()
        self.schema = schema
        self.model = schema.ModelT()
        self.model.version = 3
        self.model.description = "convaccel test chain"
        self.model.operatorCodes, self.model.buffers = [], [schema.BufferT()]
        graph = schema.SubGraphT()
        graph.tensors, graph.operators, graph.name = [], [], "main"
        self.model.subgraphs = [graph]
        self.shape, self.quant = tuple(input_shape), tuple(input_quant)
        self.current = add_tensor(self.model, "input", self.shape, scale=input_quant[0],
                                  zero_point=input_quant[1])
        graph.inputs = [self.current]

    def _output(self, name, shape, quant):
        self.shape, self.quant = tuple(shape), tuple(quant)
        return add_tensor(self.model, name, shape, scale=quant[0], zero_point=quant[1])

    def _operator(self, name, inputs, output, options=None):
        op = add_operator(self.model, name, inputs, [output], options)
        code = self.model.operatorCodes[op.opcodeIndex]
        code.version = self.VERSIONS.get(name, 1)
        self.current = output
        return self

    def _activation(self, options, activation):
        options.fusedActivationFunction = getattr(self.schema.ActivationFunctionType,
                                                  activation)

    def conv(self, weights, bias, filter_scales, output_quant, stride=1, padding="SAME",
             activation="NONE", depthwise=False):
        """``weights`` OHWI (a depthwise filter ``(1, H, W, O)``), ``bias`` int32."""
        from convaccel.tflite import _tflite_axis
        s = self.schema
        weights = np.asarray(weights, dtype=np.int8)
        c_out = weights.shape[3] if depthwise else weights.shape[0]
        k_h, k_w = weights.shape[1:3]
        stride = (stride, stride) if np.isscalar(stride) else tuple(stride)
        n = len(self.model.subgraphs[0].tensors)
        scales = np.broadcast_to(np.asarray(filter_scales, dtype=np.float32), (c_out,))
        w = add_tensor(self.model, f"w{n}", weights.shape, scale=scales,
                       zero_point=np.zeros(c_out, dtype=int), data=weights.astype("<i1"))
        self.model.subgraphs[0].tensors[w].quantization.quantizedDimension = \
            3 if depthwise else 0
        bias_scales = (np.float32(self.quant[0]) * scales).astype(np.float32)
        b = add_tensor(self.model, f"b{n}", (c_out,), "INT32", scale=bias_scales,
                       zero_point=np.zeros(c_out, dtype=int),
                       data=np.asarray(bias, dtype="<i4"))
        _, height, width, _ = self.shape
        (out_h, _, _), (out_w, _, _) = (_tflite_axis(size, k, st, 1, padding) for size, k, st
                                        in zip((height, width), (k_h, k_w), stride))
        if depthwise:
            options = s.DepthwiseConv2DOptionsT()
            options.depthMultiplier = c_out // self.shape[3]
        else:
            options = s.Conv2DOptionsT()
        options.padding = getattr(s.Padding, padding)
        options.strideH, options.strideW = stride
        options.dilationHFactor = options.dilationWFactor = 1
        self._activation(options, activation)
        y = self._output(f"conv{n}", (1, out_h, out_w, c_out), output_quant)
        return self._operator("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D",
                              [self.current, w, b], y, options)

    def pool(self, kind, kernel, stride, padding="VALID", activation="NONE"):
        """``kind`` ``"MAX"`` or ``"AVERAGE"``; the output keeps the input's quantization."""
        from convaccel.tflite import _tflite_axis
        s = self.schema
        kernel = (kernel, kernel) if np.isscalar(kernel) else tuple(kernel)
        stride = (stride, stride) if np.isscalar(stride) else tuple(stride)
        options = s.Pool2DOptionsT()
        options.padding = getattr(s.Padding, padding)
        options.strideH, options.strideW = stride
        options.filterHeight, options.filterWidth = kernel
        self._activation(options, activation)
        _, height, width, channels = self.shape
        (out_h, _, _), (out_w, _, _) = (_tflite_axis(size, k, st, 1, padding) for size, k, st
                                        in zip((height, width), kernel, stride))
        n = len(self.model.subgraphs[0].tensors)
        y = self._output(f"pool{n}", (1, out_h, out_w, channels), self.quant)
        return self._operator(f"{kind}_POOL_2D", [self.current], y, options)

    def reshape(self, shape=None):
        """A flatten to ``(1, N)`` by default, with a constant shape input as the converter
        writes it."""
        shape = tuple(shape) if shape is not None else (1, int(np.prod(self.shape)))
        n = len(self.model.subgraphs[0].tensors)
        target = add_tensor(self.model, f"shape{n}", (len(shape),), "INT32",
                            data=np.array(shape, dtype="<i4"))
        options = self.schema.ReshapeOptionsT()
        options.newShape = list(shape)
        y = self._output(f"reshape{n}", shape, self.quant)
        return self._operator("RESHAPE", [self.current, target], y, options)

    def dense(self, weights, bias, filter_scales, output_quant, activation="NONE"):
        """``weights`` ``(units, inputs)`` int8 over the input's elements in NHWC order;
        ``filter_scales`` one, or one per unit."""
        s = self.schema
        weights = np.asarray(weights, dtype=np.int8)
        units = weights.shape[0]
        scales = np.atleast_1d(np.asarray(filter_scales, dtype=np.float32))
        n = len(self.model.subgraphs[0].tensors)
        w = add_tensor(self.model, f"w{n}", weights.shape, scale=scales,
                       zero_point=np.zeros(len(scales), dtype=int),
                       data=weights.astype("<i1"))
        inputs = [self.current, w]
        if bias is not None:
            bias_scales = (np.float32(self.quant[0]) * scales).astype(np.float32)
            inputs.append(add_tensor(self.model, f"b{n}", (units,), "INT32", scale=bias_scales,
                                     zero_point=np.zeros(len(scales), dtype=int),
                                     data=np.asarray(bias, dtype="<i4")))
        options = s.FullyConnectedOptionsT()
        self._activation(options, activation)
        y = self._output(f"dense{n}", (1, units), output_quant)
        return self._operator("FULLY_CONNECTED", inputs, y, options)

    def bytes(self):
        self.model.subgraphs[0].outputs = [self.current]
        return pack_model(self.model)
