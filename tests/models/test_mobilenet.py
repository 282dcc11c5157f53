import keras
import numpy as np
import pytest

import keras_se
from keras_se.analysis import count_params
from keras_se.models.mobilenet import BLOCKS


def _build(name, **kwargs):
    return keras_se.create_model(name, input_shape=(64, 64, 3), **kwargs)


def test_se_sits_after_each_pointwise_block():
    model = _build("se_mobilenet")
    scales = [layer.name for layer in model.layers if layer.name.endswith("_se_scale")]
    assert len(scales) == len(BLOCKS) == 13
    node = model.get_layer("stage4_block3_se_scale")._inbound_nodes[0]
    assert node.input_tensors[0]._keras_history.operation.name == "stage4_block3_pw_relu"


def test_dropping_the_last_stage_se_matches_the_formula():
    plain = count_params(_build("mobilenet"))
    full = count_params(_build("se_mobilenet"))
    no_last = count_params(_build("se_mobilenet", se_stages=(1, 2, 3, 4)))
    # Stage 5 = two 1024-channel blocks: 2 * (2 * 1024 * 64 + 64 + 1024).
    assert full - no_last == 2 * (2 * 1024 * 64 + 64 + 1024)
    assert full - plain == 486_068


@pytest.mark.parametrize("alpha, stem", [(0.25, 8), (0.5, 16), (0.75, 24), (1.0, 32)])
def test_width_multiplier(alpha, stem):
    model = _build("se_mobilenet", alpha=alpha)
    assert model.get_layer("stem_conv").filters == stem
    assert model.get_layer("stage5_block2_pw").filters == int(1024 * alpha)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(alpha=0), "alpha=0"),
        (dict(activation="gelu"), "activation='gelu'"),
        (dict(attention="nope"), "attention='nope'"),
        (dict(se_stages=[6]), r"se_stages=\[6\]"),
    ],
)
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        _build("se_mobilenet", **kwargs)


def test_mixed_precision_keeps_the_classifier_output_float32():
    # Keras' mixed precision guidance: the softmax in float32.
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras_se.create_model("se_mobilenet", input_shape=(32, 32, 3), alpha=0.25, classes=10)
        assert model.get_layer("stem_conv").compute_dtype == "float16"
        assert model.get_layer("stage2_block1_se_reduce").compute_dtype == "float16"
        assert model.output.dtype == "float32"
        features = keras_se.create_model("se_mobilenet", input_shape=(32, 32, 3), alpha=0.25, include_top=False)
        assert features.output.dtype == "float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_argument_mistakes_name_the_argument():
    with pytest.raises(ValueError, match=r"alpha must leave every layer at least one channel.*alpha=0\.01"):
        keras_se.create_model("se_mobilenet", input_shape=(32, 32, 3), alpha=0.01)
    # numpy scalars are numbers: accepted, and stored as Python numbers.
    model = keras_se.create_model("se_mobilenet", input_shape=(32, 32, 3), alpha=0.25, reduction=np.int64(8), classes=np.int32(10))
    assert model.get_config()["reduction"] == 8 and type(model.get_config()["classes"]) is int
