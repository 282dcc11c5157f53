"""Tests for keras_se.models.vgg: SE-VGG-16 and timm's vgg16_bn.

The plain twin is checked against `timm_numpy_reference`, timm's vgg16_bn
written down from timm's source and run in NumPy (float64): state dict
names and shapes, and logits with a synthetic timm state dict loaded.
"""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_se
from keras_se.analysis import complexity_report, count_params
from keras_se.models.vgg import adaptive_bins
from keras_se.weights import load_timm, to_timm_state_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "weights"))
import timm_numpy_reference as reference  # noqa: E402
import timm_reference  # noqa: E402

# float32 Keras against the float64 reference: measured 8e-8 on logits of
# magnitude 0.2; a wrong layer order, padding or layout errs by the logits' size.
ATOL = 1e-5


@pytest.fixture(scope="module")
def timm_vgg():
    """timm's vgg16_bn at 32x32, 10 classes, with a synthetic timm state dict."""
    model = keras_se.create_model("timm:vgg16_bn", input_shape=(32, 32, 3), classes=10, classifier_activation=None)
    state = timm_reference.synthetic_state_dict(reference.vgg16_bn_shapes(10))
    return load_timm(model, state), state


@pytest.mark.large  # default-run budget: timm logits parity stays default for the other families
def test_timm_vgg16_bn_names_parameters_and_logits(timm_vgg):
    model, state = timm_vgg
    assert reference.count_params(reference.vgg16_bn_shapes()) == 138_365_992  # timm's published count
    assert count_params(model) == reference.count_params(reference.vgg16_bn_shapes(10))
    exported = to_timm_state_dict(model)
    assert {k: tuple(v.shape) for k, v in exported.items()} == reference.vgg16_bn_shapes(10)
    for key, value in state.items():
        np.testing.assert_array_equal(exported[key], value, err_msg=key)
    x = timm_reference.synthetic_input(shape=(2, 3, 32, 32))
    # 32x32 leaves a 1x1 map that timm's ConvMlp resizes to 7x7 before its 7x7 fc1.
    y = keras.ops.convert_to_numpy(model(x.transpose(0, 2, 3, 1), training=False))
    assert np.abs(y - reference.vgg16_bn_forward(state, x)).max() <= ATOL


@pytest.mark.parametrize("size", [(2, 3), (5, 6), (4, 9), (7, 1)])
def test_pre_logits_resize_is_timms_adaptive_pool(size):
    from keras_se.models.vgg import _adaptive_pool_up

    inputs = keras.Input((*size, 3))
    model = keras.Model(inputs, _adaptive_pool_up(keras.layers, inputs, 7, "pool"))
    x = np.random.default_rng(0).normal(size=(2, *size, 3)).astype("float32")
    expected = reference.adaptive_avg_pool(x.transpose(0, 3, 1, 2), (max(7, size[0]), max(7, size[1])))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), expected.transpose(0, 2, 3, 1), atol=1e-6)
    assert adaptive_bins(2, 7) == [(0, 1), (0, 1), (0, 1), (0, 2), (1, 2), (1, 2), (1, 2)]


def test_se_after_every_convolution_and_its_overhead(tmp_path):
    model = keras_se.create_model("se_vgg16", include_top=False, pooling="avg", input_shape=(32, 32, 3))
    names = [layer.name for layer in model.layers]
    convs = [n for n in names if n.endswith("_conv")]
    assert len(convs) == 13
    for conv in convs:
        prefix = conv[: -len("_conv")]
        squeeze = model.get_layer(f"{prefix}_se_squeeze")
        assert squeeze.input.name == model.get_layer(f"{prefix}_relu").output.name
    # SE after the ReLU of every convolution: 2*C*C/16 + C + C/16 parameters each.
    widths = [64] * 2 + [128] * 2 + [256] * 3 + [512] * 6
    plain = keras_se.create_model("vgg16_bn", include_top=False, pooling="avg", input_shape=(32, 32, 3))
    assert count_params(model) - count_params(plain) == sum(2 * c * (c // 16) + c + c // 16 for c in widths)
    only_last = keras_se.create_model("se_vgg16", include_top=False, input_shape=(32, 32, 3), se_stages=(4,))
    assert sum(n.endswith("_se_scale") for n in (layer.name for layer in only_last.layers)) == 3
    # The saved file is rebuilt with `import keras_se` alone (safe mode).
    path = tmp_path / "se_vgg16.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).uniform(size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(x)), keras.ops.convert_to_numpy(model(x)))


def test_complexity_report_per_stage():
    report = complexity_report("se_vgg16", (32, 32, 3), include_top=False)
    se = report.attention
    assert se.units == 13 and report.twin == "vgg16_bn"
    assert se.twin_params_delta == se.formula_exact + se.bias_term
    assert [s.name for s in report.stages if s.name.startswith("stage")] == [f"stage{s}" for s in range(5)]


@pytest.mark.large  # timm_vgg builds timm's VGG-16-BN (14 s): with the other timm VGG cases
def test_se_vgg_has_no_timm_checkpoint(timm_vgg):
    _, state = timm_vgg
    model = keras_se.create_model("se_vgg16", input_shape=(32, 32, 3), classes=10)
    with pytest.raises(ValueError, match="no counterpart in timm vgg.py.*'stage0_block1_se_reduce'"):
        load_timm(model, state)


def test_bad_arguments():
    with pytest.raises(ValueError, match="attention='nope'"):
        keras_se.create_model("vgg16_bn", attention="nope")
    with pytest.raises(ValueError, match=r"se_stages=\(5,\)"):
        keras_se.create_model("se_vgg16", se_stages=(5,), input_shape=(32, 32, 3), include_top=False)
    with pytest.raises(ValueError, match="dropout=1.5"):
        keras_se.create_model("se_vgg16", dropout=1.5)


@pytest.mark.large
def test_full_size_vgg16_bn_is_timms():
    model = keras_se.create_model("vgg16_bn")
    assert count_params(model) == 138_365_992
    assert model.get_layer("pre_logits_fc1").output.shape[1:3] == (1, 1)  # the 7x7 conv sees the 7x7 map once


@pytest.mark.large
def test_timm_checkpoint_into_a_features_only_backbone():
    """timm's features_only vgg16_bn from stride 2 (its feature_info entries 1-5); a whole checkpoint loads.

    The backbone takes every convolution (`features.*`) and leaves timm's
    ConvMlp and classifier.
    """
    shapes = reference.vgg16_bn_shapes()
    needed = {key: shape for key, shape in shapes.items() if key.startswith("features.")}
    state = timm_reference.synthetic_state_dict(needed)
    # The head's 120 M parameters are there but never read: zero-stride views.
    state |= {key: np.broadcast_to(np.float32(0), shape) for key, shape in shapes.items() if key not in needed}
    model = keras_se.create_model("timm:vgg16_bn", input_shape=(32, 32, 3), features_only=True, out_indices=(0, 1, 2, 3, 4))
    load_timm(model, state)
    assert to_timm_state_dict(model).keys() == needed.keys()
    x = timm_reference.synthetic_input(shape=(2, 3, 32, 32))
    expected = reference.vgg16_bn_forward(state, x, features=6)[1:]
    actual = [keras.ops.convert_to_numpy(y) for y in model(x.transpose(0, 2, 3, 1), training=False)]
    assert [a.shape for a in actual] == [(2, 32 // 2**n, 32 // 2**n, c) for n, c in zip(range(1, 6), (128, 256, 512, 512, 512))]
    for a, e in zip(actual, expected):  # measured <= 1.1e-6 on features of magnitude <= 1.1
        assert np.abs(a - e.transpose(0, 2, 3, 1)).max() <= ATOL
    # A backbone up to stride 4 leaves stages 3 and 4 too.
    shallow = keras_se.create_model("timm:vgg16_bn", input_shape=(32, 32, 3), features_only=True, out_indices=(1,))
    load_timm(shallow, state)
    assert to_timm_state_dict(shallow).keys() == {key for key in needed if int(key.split(".")[1]) < 23}  # stage 2 ends at features.22
