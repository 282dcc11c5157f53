"""Tests for `features_only` / `out_indices` (keras_se.models._common.Features) on every family.

The documented feature tables (docstrings of resnet_graph, mobilenet_graph,
shufflenet_graph, mobilenet_v3_graph and the README) are written down here
independently: feature i is at stride 2**(i + 1), level "P{i + 1}".
MobileNetV3's are timm's `feature_info` for mobilenetv3_large_100 /
mobilenetv3_small_100 (16, 24, 40, 112, 960 / 16, 16, 24, 48, 576), scaled
by hand with `make_divisible(c * alpha, 8)` (a 16-channel stem below 0.75).
"""

import keras
import numpy as np
import pytest

import keras_se
from keras_se.quantization.flavour import tf_keras_model

SIZE = 64
# name, builder options, channels of features 0-4 (the documented tables)
FAMILIES = {
    "se_resnet18": ({}, (64, 64, 128, 256, 512)),
    "se_resnet50": ({}, (64, 256, 512, 1024, 2048)),
    "timm:skresnet18": ({}, (64, 64, 128, 256, 512)),
    "senet154": ({"depth": 26}, (128, 256, 512, 1024, 2048)),  # deep stem: 128 channels at stride 2
    "se_mobilenet": ({"alpha": 0.25}, (16, 32, 64, 128, 256)),
    "se_shufflenet_g3": ({"scale": 0.5}, (24, 24, 120, 240, 480)),
    "mobilenetv3_large": ({"alpha": 0.5}, (8, 16, 24, 56, 480)),
    "mobilenetv3_small": ({"alpha": 0.5}, (16, 8, 16, 24, 288)),  # feature 0: the stem
    "mobilenetv3_small_plain": ({"alpha": 0.75, "minimalistic": True}, (16, 16, 24, 40, 432)),
    # timm's inception_resnet_v2 feature_info: conv2d_2b, conv2d_4a, repeat, repeat_1, conv2d_7b.
    "se_inception_resnet_v2": ({}, (64, 192, 320, 1088, 1536)),
    # The same rule (timm has no BN-Inception): the 7x7 and 3x3 stem convs, stages 3-5.
    "se_bn_inception": ({}, (64, 192, 320, 608, 1024)),
    # timm's vgg16_bn feature_info from stride 2: the ReLU before each max pool, then the last max pool.
    "se_vgg16": ({}, (128, 256, 512, 512, 512)),
}
# Input size and the sizes of features 0-4 where they are not SIZE / 2**(i + 1):
# Inception-ResNet-v2's unpadded convolutions and pools, at its smallest input.
GEOMETRY = {"se_inception_resnet_v2": (75, (35, 15, 7, 3, 1))}


# Options of the full model a backbone is compared with, where not the defaults.
FULL_MODEL = {"se_vgg16": dict(include_top=False, pooling="avg")}


def _geometry(name):
    return GEOMETRY.get(name, (SIZE, tuple(SIZE // 2 ** (i + 1) for i in range(5))))


def _build(name, **kwargs):
    options, _ = FAMILIES[name]
    size, _ = _geometry(name)
    return keras_se.create_model(name, input_shape=(size, size, 3), **{**options, **kwargs})


def _numpy(outputs):
    return [keras.ops.convert_to_numpy(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


def _copy_weights(source, target):
    for layer in target.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_default_features_are_strides_4_to_32_with_the_documented_channels(name):
    _, channels = FAMILIES[name]
    size, sizes = _geometry(name)
    model = _build(name, features_only=True)
    assert model.output_names == ["P2", "P3", "P4", "P5"]
    outputs = _numpy(model(np.zeros((1, size, size, 3), "float32")))
    assert [o.shape for o in outputs] == [(1, sizes[n - 1], sizes[n - 1], channels[n - 1]) for n in (2, 3, 4, 5)]
    info = model.feature_info
    assert [(i["level"], i["index"], i["stride"], i["channels"]) for i in info] == [
        (f"P{n}", n - 1, 2**n, channels[n - 1]) for n in (2, 3, 4, 5)
    ]
    assert list(model.pyramid_outputs) == ["P2", "P3", "P4", "P5"]
    assert not any(layer.name in ("predictions", "avg_pool") for layer in model.layers)


@pytest.mark.parametrize(
    "name",
    [
        "se_resnet18",
        "se_mobilenet",
        "se_shufflenet_g3",
        "mobilenetv3_large",
        "mobilenetv3_small",
        "se_bn_inception",
        "se_vgg16",
        pytest.param("se_inception_resnet_v2", marks=pytest.mark.large),  # 63 M parameters, twice
    ],
)
def test_features_are_the_full_models_stage_outputs(name):
    size, _ = _geometry(name)
    # VGG's top (timm's ConvMlp) holds 120 M parameters: the stages are those of include_top=False.
    full = _build(name, **FULL_MODEL.get(name, {}))
    rng = np.random.default_rng(0)
    full.set_weights(
        [
            rng.normal(0, 0.2, w.shape).astype("float32") if "variance" not in w.path else rng.uniform(0.5, 1.5, w.shape).astype("float32")
            for w in full.weights
        ]
    )
    model = _build(name, features_only=True, out_indices=(0, 1, 2, 3, 4))
    _copy_weights(full, model)
    x = rng.uniform(0, 1, (2, size, size, 3)).astype("float32")
    stages = keras.Model(full.input, [full.get_layer(i["layer"]).output for i in model.feature_info])
    for actual, expected in zip(_numpy(model(x)), _numpy(stages(x))):
        np.testing.assert_allclose(actual, expected, atol=1e-5)
    # The last feature is what the full model pools (MobileNetV3 keeps the pooled dims).
    pooled = keras.Model(full.input, full.get_layer("avg_pool").output)
    np.testing.assert_allclose(_numpy(model(x))[-1].mean(axis=(1, 2)), _numpy(pooled(x))[0].reshape(len(x), -1), atol=1e-5)


def test_out_indices_select_in_timm_order_and_later_stages_are_not_built():
    model = _build("se_resnet18", features_only=True, out_indices=[2, 0])
    assert model.output_names == ["P1", "P3"]
    assert model.get_config()["out_indices"] == (2, 0)
    assert [i["layer"] for i in model.feature_info] == ["stem_relu", "stage3_block2_out"]
    assert not any(layer.name.startswith(("stage4", "stage5")) for layer in model.layers)
    stem_only = _build("se_shufflenet_g3", features_only=True, out_indices=(0,))
    assert stem_only.output_names == ["P1"] and "stem_pool" not in [layer.name for layer in stem_only.layers]


def test_mobilenetv3_features_are_the_blocks_of_timms_feature_info():
    """timm's mobilenetv3_small_100 feature_info: the stem (act1), blocks.0, blocks.1, blocks.3, blocks.5.

    keras_se's stage s holds timm's rows MOBILENETV3_ROWS[s - 1] (Small: stage 2 is
    row 0, stage 4 rows 2-3, 3 + 2 blocks).
    """
    model = _build("mobilenetv3_small", features_only=True, out_indices=(0, 1, 3))
    assert model.output_names == ["P1", "P2", "P4"]
    assert [i["layer"] for i in model.feature_info] == ["stem_act", "stage2_block1_pw_bn", "stage4_block5_add"]
    assert not any(layer.name.startswith("stage5") for layer in model.layers)


def test_inception_resnet_v2_stem_features_are_timms_conv2d_2b_and_conv2d_4a():
    model = _build("se_inception_resnet_v2", features_only=True, out_indices=(0, 1))
    assert [(i["layer"], i["channels"]) for i in model.feature_info] == [("stem_relu2b", 64), ("stem_relu4a", 192)]
    assert not any(layer.name.startswith(("stem_pool5a", "stage")) for layer in model.layers)


def test_features_model_config_round_trip_and_keras_file(tmp_path):
    model = _build("se_mobilenet", features_only=True, out_indices=(2, 4))
    config = model.get_config()
    assert config["features_only"] is True
    clone = type(model).from_config(config)
    assert clone.output_names == model.output_names
    path = tmp_path / "backbone.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).uniform(0, 1, (1, SIZE, SIZE, 3)).astype("float32")
    for a, b in zip(_numpy(model(x)), _numpy(loaded(x))):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert list(loaded.pyramid_outputs) == ["P3", "P5"]


def test_pyramid_outputs_build_a_keras_hub_style_dict_model():
    backbone = _build("se_mobilenet", features_only=True)
    pyramid = keras.Model(backbone.inputs, backbone.pyramid_outputs)
    out = pyramid(np.zeros((1, SIZE, SIZE, 3), "float32"))
    assert sorted(out) == ["P2", "P3", "P4", "P5"] and tuple(out["P5"].shape) == (1, 2, 2, 256)
    classifier = _build("se_mobilenet")
    assert classifier.pyramid_outputs == {} and classifier.feature_info == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(features_only="yes"), "features_only must be a bool. Received: features_only='yes'"),
        (dict(features_only=True, out_indices=(1, 5)), r"out_indices must be .*Received: out_indices=\(1, 5\)"),
        (dict(features_only=True, out_indices=()), r"out_indices must be .*Received: out_indices=\(\)"),
        (dict(features_only=True, out_indices=3), "out_indices must be"),
    ],
)
def test_bad_feature_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_se.create_model("se_mobilenet", input_shape=(32, 32, 3), alpha=0.25, **kwargs)


@pytest.mark.parametrize("name", ["se_mobilenet", "mobilenetv3_small"])
def test_tf_keras_flavour_builds_the_same_features(name):
    model = _build(name, features_only=True)
    twin = tf_keras_model(type(model), model.get_config())
    assert [o.name.split("/")[0] for o in twin.outputs] == model.output_names
    _copy_weights(model, twin)
    x = np.random.default_rng(2).uniform(0, 1, (1, SIZE, SIZE, 3)).astype("float32")
    for a, b in zip(_numpy(model(x)), twin(x)):
        np.testing.assert_allclose(a, np.asarray(b), atol=1e-5)
