"""Tests for keras_se.models.inception_resnet: SE-Inception-ResNet-v2 and timm's inception_resnet_v2.

The plain twin is checked against `timm_numpy_reference` (timm's network
written down from its source and run in NumPy, float64): state dict names
and shapes, and logits at 75x75 with a synthetic timm state dict loaded.
"""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_se
from keras_se.analysis import count_params
from keras_se.weights import load_timm, to_timm_state_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "weights"))
import timm_numpy_reference as reference  # noqa: E402
import timm_reference  # noqa: E402

SIZE = 75  # the smallest input its unpadded convolutions take (keras.applications' minimum)
# float32 against float64: measured 1.1e-7 on logits of magnitude 0.23.
ATOL = 1e-5


@pytest.mark.large
def test_timm_inception_resnet_v2_names_parameters_and_logits():
    assert reference.count_params(reference.inception_resnet_v2_shapes()) == 55_843_464  # timm's published count
    model = keras_se.create_model("timm:inception_resnet_v2", input_shape=(SIZE, SIZE, 3), classes=10, classifier_activation=None)
    shapes = reference.inception_resnet_v2_shapes(10)
    assert count_params(model) == reference.count_params(shapes)
    state = timm_reference.synthetic_state_dict(shapes)
    load_timm(model, state)
    exported = to_timm_state_dict(model)
    assert {k: tuple(v.shape) for k, v in exported.items()} == shapes
    for key, value in state.items():
        np.testing.assert_array_equal(exported[key], value, err_msg=key)
    x = timm_reference.synthetic_input(shape=(2, 3, SIZE, SIZE))
    y = keras.ops.convert_to_numpy(model(x.transpose(0, 2, 3, 1), training=False))
    assert np.abs(y - reference.inception_resnet_v2_forward(state, x)).max() <= ATOL
    # timm's BatchNorm epsilon is 1e-3 here; a model with another is refused.
    wrong = keras_se.create_model("resnet18", input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="no counterpart in timm inception_resnet_v2.py"):
        load_timm(wrong, state)


def test_se_on_the_residual_branch_before_the_scale():
    model = keras_se.create_model("se_inception_resnet_v2", input_shape=(SIZE, SIZE, 3), classes=10)
    names = [layer.name for layer in model.layers]
    scales = [n for n in names if n.endswith("_se_scale")]
    assert len(scales) == 40  # 10 Block35 + 20 Block17 + 10 Block8; none in Mixed_5b/6a/7a
    for block in ("stage3_block2", "stage4_block21", "stage5_block10"):
        assert model.get_layer(f"{block}_se_squeeze").input.name == model.get_layer(f"{block}_conv").output.name
        assert model.get_layer(f"{block}_residual_scale").input.name == model.get_layer(f"{block}_se_scale").output.name
    # The last Block8: scale 1.0 (no rescaling) and no ReLU after the add.
    assert "stage5_block11_residual_scale" not in names and "stage5_block11_out" not in names
    assert model.get_layer("stage5_block11_add").input[1].name == model.get_layer("stage5_block11_se_scale").output.name
    plain = reference.count_params(reference.inception_resnet_v2_shapes(10))  # the plain twin (test above)
    widths = [320] * 10 + [1088] * 20 + [2080] * 10
    assert count_params(model) - plain == sum(2 * c * (c // 16) + c + c // 16 for c in widths)
    assert model.get_layer("stage4_block2_se_reduce").filters == 68


@pytest.mark.large
def test_se_stages():
    stage5 = keras_se.create_model("se_inception_resnet_v2", input_shape=(SIZE, SIZE, 3), se_stages=(5,))
    assert sum(n.endswith("_se_scale") for n in (layer.name for layer in stage5.layers)) == 10


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"at least 75.*input_shape=\(64, 64, 3\)"):
        keras_se.create_model("inception_resnet_v2", input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match=r"se_stages=\(2,\)"):
        keras_se.create_model("se_inception_resnet_v2", se_stages=(2,))


@pytest.mark.large
def test_keras_applications_differs_only_by_bn_gamma():
    ours = keras_se.create_model("inception_resnet_v2")
    theirs = keras.applications.InceptionResNetV2(weights=None)
    gammas = sum(int(np.prod(layer.gamma.shape)) for layer in ours.layers if isinstance(layer, keras.layers.BatchNormalization))
    trainable = sum(int(np.prod(w.shape)) for w in theirs.trainable_weights)
    assert count_params(ours) == 55_843_464 and (trainable, gammas) == (55_813_192, 30_272)
    assert trainable == count_params(ours) - gammas
    assert all(not layer.scale for layer in theirs.layers if isinstance(layer, keras.layers.BatchNormalization))

    def shapes(model):
        return sorted(
            tuple(w.shape) for layer in model.layers if not isinstance(layer, keras.layers.BatchNormalization) for w in layer.weights
        )

    assert shapes(ours) == shapes(theirs)


@pytest.mark.large
def test_full_size_logits_against_timm_reference():
    model = keras_se.create_model("timm:inception_resnet_v2", classifier_activation=None)
    state = timm_reference.synthetic_state_dict(reference.inception_resnet_v2_shapes())
    load_timm(model, state)
    x = timm_reference.synthetic_input(shape=(1, 3, 299, 299))
    y = keras.ops.convert_to_numpy(model(x.transpose(0, 2, 3, 1), training=False))
    assert np.abs(y - reference.inception_resnet_v2_forward(state, x)).max() <= ATOL


def test_timm_checkpoint_into_a_features_only_backbone():
    """timm's features_only outputs (feature_info: conv2d_2b, conv2d_4a, repeat, ...), the first three.

    The checkpoint is whole: the backbone takes the stem, mixed_5b and
    repeat, and leaves the later modules and the classifier.
    """
    shapes = reference.inception_resnet_v2_shapes()
    stem_and_stage3 = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "conv2d_3b", "conv2d_4a", "mixed_5b", "repeat.")
    needed = {key: shape for key, shape in shapes.items() if key.startswith(stem_and_stage3)}
    state = timm_reference.synthetic_state_dict(needed)
    # The later tensors are there but never read: zero-stride views.
    state |= {key: np.broadcast_to(np.float32(0), shape) for key, shape in shapes.items() if key not in needed}
    model = keras_se.create_model("timm:inception_resnet_v2", input_shape=(SIZE, SIZE, 3), features_only=True, out_indices=(0, 1, 2))
    load_timm(model, state)
    assert to_timm_state_dict(model).keys() == needed.keys()
    x = timm_reference.synthetic_input(shape=(2, 3, SIZE, SIZE))
    expected = reference.inception_resnet_v2_forward(state, x, features=3)
    actual = [keras.ops.convert_to_numpy(y) for y in model(x.transpose(0, 2, 3, 1), training=False)]
    assert (
        [a.shape for a in actual]
        == [e.transpose(0, 2, 3, 1).shape for e in expected]
        == [(2, 35, 35, 64), (2, 15, 15, 192), (2, 7, 7, 320)]
    )
    for a, e in zip(actual, expected):  # measured 5e-7 on features of magnitude <= 1
        assert np.abs(a - e.transpose(0, 2, 3, 1)).max() <= ATOL
