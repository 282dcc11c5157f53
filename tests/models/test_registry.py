import keras
import numpy as np
import pytest

import keras_se
from keras_se.analysis import count_params
from keras_se.models.registry import get_entry
from tests.models.test_shufflenet import shufflenet_params

# Parameter counts of the official models (SENet / SKNet prototxts, timm,
# keras.applications), 1000 classes, BN statistics excluded.
GOLDEN_PARAMS = {
    "se_resnet18": 11_778_592,
    "se_resnet34": 21_958_868,
    "se_resnet50": 28_088_024,
    "se_resnet101": 49_326_872,
    "se_resnet152": 66_821_848,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "se_resnext50_32x4d": 27_559_896,
    "se_resnext101_32x4d": 48_955_416,
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x4d": 44_177_704,
    "senet154": 115_088_984,
    "sknet50": 27_479_784,
    "mobilenet": 4_231_976,
    "se_mobilenet": 4_718_044,
    # ShuffleNet v1 has no published parameter count with SE: the hand
    # count of the official code (tests/models/test_shufflenet.py).
    "shufflenet_g3": shufflenet_params(3),  # 1,865,728
    "se_shufflenet_g3": shufflenet_params(3, 16),  # 2,484,533
    # timm's vgg16_bn and inception_resnet_v2; the official SE-BN-Inception
    # prototxt with and without its SE layers (tests/models/test_inception.py).
    "vgg16_bn": 138_365_992,
    "inception_resnet_v2": 55_843_464,
    "bn_inception": 11_285_224,
    "se_bn_inception": 11_931_622,
    "mobilenetv3_large": 5_483_032,  # timm mobilenetv3_large_100, keras.applications
    "mobilenetv3_small": 2_542_856,  # timm mobilenetv3_small_100, keras.applications
}
# Inception-ResNet-v2's unpadded convolutions need 75x75; VGG's 138 M
# parameters make a 550 MB .keras file (tests/models/test_vgg.py covers it small).
SIZES = {"inception_resnet_v2": 75, "se_inception_resnet_v2": 75}
# The deepest (8-10 s each on two cores) run with `-m large`: the default run
# keeps a model of every family and block type, whose layers they repeat.
HEAVY = ("vgg16_bn", "se_vgg16", "senet154", "senet154_plain", "resnet152", "se_resnet152", "resnet101", "se_resnet101")
HEAVY += ("resnext101_32x4d", "se_resnext101_32x4d", "sknet101", "inception_resnet_v2", "se_inception_resnet_v2")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.large) if n in HEAVY else n for n in keras_se.list_models()])
def test_every_model_builds_runs_and_round_trips(name, tmp_path):
    size = SIZES.get(name, 64)
    model = keras_se.create_model(name, input_shape=(size, size, 3))
    if name in GOLDEN_PARAMS:
        # Parameter counts do not depend on the input size.
        assert count_params(model) == GOLDEN_PARAMS[name]
    x = np.random.default_rng(0).uniform(0, 1, (2, size, size, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert y.shape == (2, 1000)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-4)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(x, training=False)), y)
    assert [layer.name for layer in restored.layers] == [layer.name for layer in model.layers]


@pytest.mark.parametrize("name", [n for n in keras_se.list_models() if get_entry(n).twin])
def test_every_attention_model_has_a_registered_plain_twin(name):
    twin = get_entry(name).twin
    assert twin in keras_se.list_models()
    assert get_entry(twin).twin is None


def test_list_models_pattern():
    assert keras_se.list_models("sknet*") == ["sknet101", "sknet50"]
    assert "se_resnet50" in keras_se.list_models("se_*")
    assert "resnet50" not in keras_se.list_models("se_*")
    assert keras_se.list_models("nothing*") == []
    assert keras_se.list_models() == sorted(keras_se.list_models())


def test_unknown_name_suggests_close_names():
    with pytest.raises(ValueError, match=r"name='se_resnet5'.*se_resnet50"):
        keras_se.create_model("se_resnet5")


def test_create_model_overrides_defaults():
    model = keras_se.create_model("se_resnet18", input_shape=(64, 64, 3), classes=7, classifier_activation=None)
    assert model.output_shape == (None, 7)
    assert model.name == "se_resnet18"


def test_timm_aliases_are_listed_by_their_namespace_only():
    timm = keras_se.list_models("timm:*")
    assert "timm:legacy_seresnet50" in timm and "timm:skresnext50_32x4d" in timm
    assert timm == sorted(timm)
    assert not [n for n in keras_se.list_models() if ":" in n]
    assert keras_se.list_models("timm:legacy_seresnet1*") == [
        "timm:legacy_seresnet101",
        "timm:legacy_seresnet152",
        "timm:legacy_seresnet18",
    ]


def test_timm_alias_builds_its_target_with_options_and_timm_name():
    model = keras_se.create_model("timm:seresnet18", input_shape=(64, 64, 3), classes=7)
    assert model.name == "seresnet18"
    assert model.output_shape == (None, 7)
    entry = get_entry("timm:seresnet18")
    assert entry.kwargs["se_divisor"] == 8 and entry.kwargs["stem_pool"] == "pad"
    assert entry.family == get_entry("se_resnet18").family and entry.twin is None


def test_unknown_alias_suggests_close_aliases():
    with pytest.raises(ValueError, match=r"name='timm:seresnet5'.*timm:seresnet50.*list_models\('timm:\*'\)"):
        keras_se.create_model("timm:seresnet5")


def test_register_alias_errors():
    from keras_se.models.registry import register_alias

    with pytest.raises(ValueError, match="namespace:model"):
        register_alias("no_namespace", "se_resnet18")
    with pytest.raises(ValueError, match="already registered"):
        register_alias("timm:seresnet18", "se_resnet18")
    with pytest.raises(ValueError, match="name='nothing'"):
        register_alias("test:nothing", "nothing")
