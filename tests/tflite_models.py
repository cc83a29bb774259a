"""Int8 TFLite models built in Python (TFLite's flatbuffer schema, no TensorFlow), and LiteRT's
reference kernels to run them.

:func:`conv_model` (from :mod:`convaccel.tflite`) writes a one-``CONV_2D`` model; the rest edit
such a model through the schema's object API into the ones the reader must refuse.
"""

import numpy as np
import pytest

from convaccel.tflite import conv_model, pack_model

__all__ = ["conv_model", "pack_model", "model_object", "add_tensor", "add_operator",
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
