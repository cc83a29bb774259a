"""Train the digits16 model and write it as a fully integer-quantized .tflite file.

A bigger CNN than ``examples/digits``: scikit-learn's bundled ``digits`` data set (1797 8x8
grayscale images of handwritten digits, 10 classes; no download), each image upscaled to 16x16
(bilinear, ``scipy.ndimage.zoom``, order 1), through three convolutions:

    conv 3x3, 1 -> 8, SAME, ReLU      16 x 16 x 8
    max-pool 2x2                       8 x 8 x 8
    conv 3x3, 8 -> 16, SAME, ReLU      8 x 8 x 16
    max-pool 2x2                       4 x 4 x 16
    conv 3x3, 16 -> 32, SAME, ReLU     4 x 4 x 32
    max-pool 2x2                       2 x 2 x 32
    flatten                            128
    dense 128 -> 10 (logits)           10

trained in float with Keras, then quantized by TensorFlow's ``TFLiteConverter`` with a
representative data set (the training images) to int8 throughout, int8 input and output.
It writes, beside this script:

- ``digits16.tflite``: the model (input ``(1, 16, 16, 1)`` int8, output ``(1, 10)`` int8
  logits: the arg-max is the digit);
- ``digits16_test.npz``: the test split, ``x`` ``(N, 1, 16, 16, 1)`` int8 (each ``x[i]``
  exactly the interpreter's input tensor, quantized with the model's input scale and zero
  point), ``labels`` ``(N,)``, ``indices`` ``(N,)`` (the images' positions in
  ``load_digits()``);

and prints the float model's test accuracy and the int8 model's, the latter measured with
LiteRT's reference kernels (BUILTIN_REF).

TensorFlow is for this script only (never a dependency of convaccel); run it from a separate
virtual environment:

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu scikit-learn
    /tmp/tfvenv/bin/python examples/digits16/make_digits16.py

The seeds are fixed; TensorFlow's kernels are made deterministic, so the same versions on the
same machine write the same model. The split is the digits model's (the same seed and
stratification), so both models are scored on the same 360 images.
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy.ndimage import zoom  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

SEED = 2025
EPOCHS = 60
SIZE = 16
HERE = Path(__file__).parent


def data():
    """``(x_train, y_train, x_test, y_test, test_indices)``: images as float32
    ``(N, 16, 16, 1)`` in 0..1, a stratified 80/20 split."""
    digits = load_digits()
    images = zoom(digits.images / 16.0, (1, SIZE / 8, SIZE / 8), order=1)
    x = np.clip(images, 0.0, 1.0).astype(np.float32)[..., None]
    indices = np.arange(len(x))
    train, test = train_test_split(indices, test_size=0.2, random_state=SEED,
                                   stratify=digits.target)
    test = np.sort(test)
    return x[train], digits.target[train], x[test], digits.target[test], test


def build(batch_size=None):
    layers = tf.keras.layers
    return tf.keras.Sequential([
        tf.keras.Input(shape=(SIZE, SIZE, 1), batch_size=batch_size, name="image"),
        layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
        layers.MaxPooling2D(2, name="pool2"),
        layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3"),
        layers.MaxPooling2D(2, name="pool3"),
        layers.Flatten(name="flatten"),
        layers.Dense(10, name="logits"),
    ])


def convert(model, x_train):
    """The int8 .tflite bytes: int8 input and output, per-channel conv weights.

    The model is converted with a fixed batch of 1: with a dynamic batch, the converter
    computes the flatten's shape at run time (SHAPE, STRIDED_SLICE and PACK before the
    RESHAPE); with a fixed one the RESHAPE's shape is a constant."""
    fixed = build(batch_size=1)
    fixed.set_weights(model.get_weights())

    def representative():
        for image in x_train:
            yield [image[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def reference_interpreter(model_bytes):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        Interpreter = tf.lite.Interpreter
        OpResolverType = tf.lite.experimental.OpResolverType
    interpreter = Interpreter(model_content=model_bytes,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    return interpreter


def main():
    tf.keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    x_train, y_train, x_test, y_test, test_indices = data()

    model = build()
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=EPOCHS, batch_size=32, verbose=0, shuffle=True)
    float_accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), axis=1)
                                   == y_test))

    tflite = convert(model, x_train)
    interpreter = reference_interpreter(tflite)
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert source["dtype"] == np.int8 and sink["dtype"] == np.int8
    scale, zero_point = source["quantization"]
    x_q = np.clip(np.round(x_test / scale) + zero_point, -128, 127).astype(np.int8)[:, None]
    predictions = []
    for x in x_q:
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        predictions.append(int(np.argmax(interpreter.get_tensor(sink["index"]))))
    int8_accuracy = float(np.mean(np.array(predictions) == y_test))

    (HERE / "digits16.tflite").write_bytes(tflite)
    np.savez_compressed(HERE / "digits16_test.npz", x=x_q, labels=y_test.astype(np.int8),
                        indices=test_indices.astype(np.int16))
    print(f"digits16.tflite: {len(tflite)} bytes; input scale {scale:.6g}, zero point "
          f"{zero_point}")
    print(f"test split: {len(x_q)} images, training {len(x_train)}")
    print(f"accuracy: float {float_accuracy:.2%}, int8 (LiteRT BUILTIN_REF) "
          f"{int8_accuracy:.2%}")


if __name__ == "__main__":
    main()
