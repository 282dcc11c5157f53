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


def _grouped_model():
    from keras_se.layers import GroupConv2D

    inputs = keras.Input((6, 6, 12))
    x = GroupConv2D(12, 3, groups=2, padding="same", use_bias=True, name="split")(inputs)  # 6 in / 6 out per group
    x = GroupConv2D(32, 1, groups=4, name="kept")(x)  # 3 in / 8 out per group
    x = GroupConv2D(32, 3, groups=16, padding="same", name="merged")(x)  # 2 in / 2 out per group, 16 groups
    y = GroupConv2D(16, 1, groups=4, name="fine")(x)  # 8 in / 4 out per group: the accelerator computes it
    return keras.Model(inputs, y)


def test_grouped_convolutions_the_accelerator_gets_wrong_are_re_spelled():
    from keras_se.export.forms import gpu_accelerator_fault, grouped_convolutions_for_gpu

    model = _grouped_model()
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    gpu = grouped_convolutions_for_gpu(model)
    names = {layer.name for layer in gpu.layers}
    # Few groups: split per group; many: merged in pairs (2 x 2 -> 4 x 4 per group).
    assert {"split_group0", "split_group1", "kept_group3", "merged_merged2", "fine"} <= names
    assert not {"split", "kept", "merged"} & names
    assert gpu.get_layer("fine") is model.get_layer("fine")
    merged = gpu.get_layer("merged_merged2")
    assert merged.groups == 8 and merged.kernel.shape == (3, 3, 4, 32)
    assert gpu_accelerator_fault(4, 4) is None and gpu_accelerator_fault(merged.kernel.shape[2], 32 // 8) is None
    x = rng.normal(size=(2, 6, 6, 12)).astype("float32")
    np.testing.assert_allclose(np.asarray(gpu(x)), np.asarray(model(x)), rtol=1e-4, atol=1e-4)
    assert grouped_convolutions_for_gpu(gpu) is gpu  # nothing left to re-spell


def test_gpu_preset_file_re_spells_and_matches_keras(tmp_path):
    model = _grouped_model()
    result = to_tflite(model, tmp_path / "g.tflite", gpu=True)
    assert result.ops["CONV_2D"] == 2 + 4 + 1 + 1 and result.ops["SPLIT"] == 2
    assert result.parity.max_abs_error < 5e-5
    assert to_tflite(model, tmp_path / "cpu.tflite").ops["CONV_2D"] == 4  # CPU files keep the grouped form
