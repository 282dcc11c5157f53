"""One builder spec: every family takes the shared arguments, checked the same way, keras-hub's `dtype=` included."""

import inspect

import keras
import numpy as np
import pytest

import keras_se
from keras_se.models import _common

# One model of every family class, at its smallest input.
FAMILIES = {
    "se_resnet18": dict(input_shape=(32, 32, 3)),
    "se_mobilenet": dict(input_shape=(32, 32, 3), alpha=0.25),
    "se_shufflenet_g3": dict(input_shape=(32, 32, 3), scale=0.5),
    "mobilenetv3_small": dict(input_shape=(32, 32, 3)),
    "se_vgg16": dict(input_shape=(32, 32, 3), include_top=False, pooling="avg"),
    "se_bn_inception": dict(input_shape=(64, 64, 3)),
    "se_inception_resnet_v2": dict(input_shape=(75, 75, 3)),
}


def _graph(name):
    return keras_se.models.get_entry(name).cls.graph


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_declares_the_shared_arguments(name):
    parameters = inspect.signature(_graph(name)).parameters
    assert set(_common.SHARED) <= set(parameters)
    config = keras_se.create_model(name, classes=3, **FAMILIES[name]).get_config()
    assert set(_common.SHARED) - {"input_tensor"} <= set(config)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(dropout=1.5), "dropout must be a number in \\[0, 1\\). Received: dropout=1.5"),
        (dict(classes=0), "classes must be a positive int"),
        (dict(pooling="sum"), "pooling must be one of"),
        (dict(attention="nope"), "attention must be None or a registered attention kind"),
        (dict(dtype="float17"), "dtype must be a dtype policy name"),
        (dict(out_indices=(9,)), "out_indices must be"),
    ],
)
def test_shared_arguments_are_checked_alike_in_every_family(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        keras_se.create_model(name, **{**FAMILIES[name], **kwargs})


@pytest.mark.parametrize("name", ["se_resnet18", "se_mobilenet", "mobilenetv3_small"])
def test_dtype_builds_under_that_policy_and_leaves_the_global_one(name, tmp_path):
    before = keras.config.dtype_policy().name
    model = keras_se.create_model(name, classes=3, dtype="bfloat16", **FAMILIES[name])
    assert keras.config.dtype_policy().name == before
    weighted = [layer for layer in model.layers if layer.weights]
    assert {layer.dtype_policy.name for layer in weighted} == {"bfloat16"}
    x = np.random.default_rng(0).uniform(0, 1, (1, *model.input_shape[1:])).astype("float32")
    assert keras.backend.standardize_dtype(model(x).dtype) == "bfloat16"
    # Mixed precision keeps the classifier (and the output) in float32.
    mixed = keras_se.create_model(name, classes=3, dtype="mixed_float16", **FAMILIES[name])
    assert mixed.get_layer("predictions").dtype_policy.name == "float32"
    assert keras.backend.standardize_dtype(mixed(x).dtype) == "float32"
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.get_config()["dtype"] == "bfloat16"
    assert {layer.dtype_policy.name for layer in loaded.layers if layer.weights} == {"bfloat16"}


def test_out_indices_without_features_only_is_refused_and_numpy_ints_are_taken():
    with pytest.raises(ValueError, match="out_indices chooses the outputs of a features_only=True backbone.*out_indices=\\(2, 3\\)"):
        keras_se.create_model("se_resnet18", out_indices=(2, 3), input_shape=(32, 32, 3))
    backbone = keras_se.create_model("se_resnet18", features_only=True, out_indices=np.array([2, 3]), input_shape=(32, 32, 3))
    assert backbone.output_names == ["P3", "P4"] and backbone.get_config()["out_indices"] == (2, 3)


@pytest.mark.parametrize("name, argument", [("se_mobilenet", "alpha"), ("mobilenetv3_small", "alpha")])
def test_a_huge_width_multiplier_is_refused_before_anything_is_allocated(name, argument):
    # alpha=1e6 used to allocate over 10 GB before failing.
    with pytest.raises(ValueError, match=f"{argument} must be at most 4.*Received: {argument}=1000000.0"):
        keras_se.create_model(name, **{argument: 1e6}, input_shape=(32, 32, 3))
