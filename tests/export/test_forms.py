import keras
import numpy as np

import keras_se
from keras_se.export import read_tflite, to_tflite
from keras_se.export.forms import average_pools_as_depthwise


def _pools_model():
    inputs = keras.Input((9, 9, 6))
    x = keras.layers.Conv2D(6, 1, name="conv")(inputs)
    a = keras.layers.AveragePooling2D(3, strides=2, name="pool3")(keras.layers.ZeroPadding2D(1)(x))  # ShuffleNet's shortcut
    b = keras.layers.AveragePooling2D(1, strides=2, name="subsample")(x)  # SK's strided dilated path
    c = keras.layers.AveragePooling2D(2, strides=2, padding="same", name="same_pool")(x)  # not equal to a depthwise conv
    return keras.Model(inputs, keras.layers.Concatenate()([a, b, c]))


def test_valid_average_pools_become_equal_depthwise_convolutions():
    model = _pools_model()
    rewired = average_pools_as_depthwise(model)
    names = {layer.name for layer in rewired.layers}
    assert {"pool3_depthwise", "subsample_depthwise", "same_pool"} <= names
    assert "pool3" not in names and "subsample" not in names
    assert rewired.get_layer("conv") is model.get_layer("conv")  # shared, not copied
    assert rewired.get_layer("pool3_depthwise").kernel.shape == (3, 3, 6, 1)
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 6)).astype("float32")
    np.testing.assert_allclose(np.asarray(rewired(x)), np.asarray(model(x)), rtol=1e-6, atol=1e-6)


def test_models_without_valid_pools_are_returned_as_is():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.AveragePooling2D(2, padding="same")(inputs))
    assert average_pools_as_depthwise(model) is model
    sequential = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.AveragePooling2D(2)])
    assert average_pools_as_depthwise(sequential) is sequential


def test_int8_shufflenet_has_no_average_pool_and_float_keeps_it(tmp_path):
    model = keras_se.create_model("se_shufflenet_g3", input_shape=(32, 32, 3))
    calibration = np.random.default_rng(1).uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    int8 = to_tflite(model, tmp_path / "int8.tflite", quantize="int8", representative_data=calibration, verify=False)
    fp32 = to_tflite(model, tmp_path / "fp32.tflite", verify=False)
    assert "AVERAGE_POOL_2D" not in int8.ops
    assert fp32.ops["AVERAGE_POOL_2D"] == 3  # one per stage's stride-2 unit
    assert int8.ops["DEPTHWISE_CONV_2D"] == fp32.ops["DEPTHWISE_CONV_2D"] + 3
    # The user's model is untouched.
    assert any(isinstance(layer, keras.layers.AveragePooling2D) for layer in model.layers)
    graph = read_tflite(int8.path)
    assert graph.inputs[0].dtype == "INT8"
