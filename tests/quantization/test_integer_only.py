"""Tests for keras_se.quantization.integer_only: listing float ops in a .tflite."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_se.quantization import FloatOp, check_integer_only, float_ops


def _model():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def _convert(model, int8=False, int8_io=False):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.uniform(0, 1, (1, 8, 8, 3)).astype("float32")] for _ in range(8))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter.convert()


@pytest.fixture(scope="module")
def files():
    model = _model()
    return {"float": _convert(model), "int8_float_io": _convert(model, True), "int8": _convert(model, True, True)}


def test_float_model_lists_every_op(files):
    found = float_ops(files["float"])
    names = [op.op for op in found]
    assert "CONV_2D" in names and "FULLY_CONNECTED" in names and "SOFTMAX" in names
    assert all(isinstance(op, FloatOp) for op in found)
    assert all(dtype == "FLOAT32" for op in found for _, dtype in op.tensors)
    assert str(found[0]).startswith(f"#{found[0].index} {found[0].op}: ")


def test_int8_with_int8_io_has_no_float_op(files):
    assert float_ops(files["int8"]) == []
    check_integer_only(files["int8"])  # does not raise


def test_float_io_counts_only_the_boundary(files):
    # A model with float input and output: the QUANTIZE of the input and the
    # DEQUANTIZE of the output touch float tensors, and nothing in between.
    strict = float_ops(files["int8_float_io"])
    assert sorted(op.op for op in strict) == ["DEQUANTIZE", "QUANTIZE"]
    assert float_ops(files["int8_float_io"], allow_float_io=True) == []


def test_check_integer_only_names_the_ops(files):
    with pytest.raises(ValueError, match=r"float op\(s\) left in the int8 model: #\d+ "):
        check_integer_only(files["float"])


def test_not_a_tflite_file(tmp_path):
    path = tmp_path / "x.tflite"
    path.write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        float_ops(str(path))
    with pytest.raises(ValueError, match="not found"):
        float_ops(str(tmp_path / "missing.tflite"))
