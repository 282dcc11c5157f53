import keras
import numpy as np
import pytest

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


@pytest.mark.large  # default-run budget: the rewrite's unit tests above run by default
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


def _hard_swish_model():
    """conv -> BN -> hard-swish twice, with unit-scale BN statistics (as trained)."""
    inputs = keras.Input((12, 12, 8))
    x = inputs
    for i in range(2):
        x = keras.layers.Conv2D(16, 1, use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.Activation("hard_swish", name=f"hswish{i}")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    rng = np.random.default_rng(0)
    for weight in model.weights:
        if "variance" in weight.path:
            weight.assign(rng.uniform(0.05, 0.2, weight.shape).astype("float32"))
        else:
            weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))
    return model


def test_hard_swish_is_re_spelled_to_the_same_function():
    from keras_se.export.forms import hard_swish_for_int8

    model = _hard_swish_model()
    rewired = hard_swish_for_int8(model)
    names = {layer.name for layer in rewired.layers}
    # x * relu6(x + 3) is six times hard-swish: conv1 takes the 1/6 in its
    # kernel; the model output (a global pool of the last one) gets a Rescaling.
    assert {"hswish0_times6", "hswish0_shift", "hswish0_relu6", "conv1_folded", "output0_sixth"} <= names
    assert not {"hswish0", "hswish1", "conv1"} & names and rewired.get_layer("conv0") is model.get_layer("conv0")
    np.testing.assert_allclose(rewired.get_layer("conv1_folded").get_weights()[0], model.get_layer("conv1").get_weights()[0] / 6)
    x = np.random.default_rng(1).normal(size=(2, 12, 12, 8)).astype("float32")
    np.testing.assert_allclose(np.asarray(rewired(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    assert hard_swish_for_int8(rewired) is rewired


def test_hard_swish_factor_is_restored_where_a_layer_cannot_absorb_it(tmp_path):
    from keras_se.export.forms import hard_swish_for_int8

    inputs = keras.Input((6, 6, 4))
    h = keras.layers.Activation("hard_swish", name="hswish")(inputs)
    y = keras.layers.Add(name="add")([h, keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(h)])
    model = keras.Model(inputs, y)
    rewired = hard_swish_for_int8(model)
    assert {"dw_folded", "add_input0_sixth"} <= {layer.name for layer in rewired.layers}
    x = np.random.default_rng(2).normal(0, 3, size=(2, 6, 6, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(rewired(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    # The 1/6 right after the product is a depthwise convolution: a MUL would be fused back into HARD_SWISH.
    int8 = to_tflite(model, tmp_path / "add.tflite", quantize="int8", representative_data=x, verify=False)
    assert "HARD_SWISH" not in int8.ops and int8.ops["DEPTHWISE_CONV_2D"] == 2


def test_int8_hard_swish_survives_conversion_and_stays_on_xnnpack(tmp_path):
    # The point of the spelling: no int8 HARD_SWISH (LiteRT's own kernel,
    # outside XNNPACK) and one XNNPACK partition for the whole graph. A
    # converter that learns to fuse this spelling, or an XNNPACK that drops
    # an op, fails here.
    from keras_se.export.verify import make_interpreter

    model = _hard_swish_model()
    calibration = np.random.default_rng(2).normal(size=(8, 12, 12, 8)).astype("float32")
    int8 = to_tflite(model, tmp_path / "int8.tflite", quantize="int8", representative_data=calibration)
    fp32 = to_tflite(model, tmp_path / "fp32.tflite")
    assert fp32.ops["HARD_SWISH"] == 2  # float files keep XNNPACK's fused float kernel
    # Per hard-swish an ADD (fused RELU6) and a MUL; one MUL restores the output's 1/6.
    assert "HARD_SWISH" not in int8.ops and int8.ops["MUL"] == 3 and int8.ops["ADD"] == 2
    interpreter, kernels = make_interpreter(int8.path)
    assert kernels == "XNNPACK"
    assert [op["op_name"] for op in interpreter._get_ops_details()].count("DELEGATE") == 1
    assert any(type(layer) is keras.layers.Activation for layer in model.layers)  # the user's model is untouched
