"""Tests for keras_se.models.mobilenet_v3.

Independent references: timm's published parameter counts (in
tests/weights/test_timm.py, with every tensor name and shape written down
from timm's source) and keras.applications' MobileNetV3, which builds the
same architecture (a 16-channel stem, a preprocessing layer and BN epsilon
aside): parameter counts are compared with it live.
"""

import keras
import pytest

import keras_se
from keras_se.analysis import count_params
from keras_se.layers import make_divisible
from keras_se.models.mobilenet_v3 import block_specs

SMALL = (32, 32, 3)


def _build(name, **kwargs):
    kwargs.setdefault("input_shape", SMALL)
    return keras_se.create_model(name, **kwargs)


def _names(model, part):
    return [layer.name for layer in model.layers if part in layer.name]


def _same_count_as_keras_applications(variant, minimalistic):
    name = f"mobilenetv3_{variant}_plain" if minimalistic else f"mobilenetv3_{variant}"
    ours = _build(name, minimalistic=minimalistic)
    theirs = getattr(keras.applications, f"MobileNetV3{variant.capitalize()}")(weights=None, input_shape=SMALL, minimalistic=minimalistic)
    assert count_params(ours) == count_params(theirs)


def test_minimalistic_large_has_keras_applications_parameters():
    # timm's counts of the standard models (5,483,032 and 2,542,856) are pinned in test_registry.
    _same_count_as_keras_applications("large", True)


@pytest.mark.large
@pytest.mark.parametrize("variant", ["large", "small"])
@pytest.mark.parametrize("minimalistic", [False, True])
def test_parameters_equal_keras_applications(variant, minimalistic):
    _same_count_as_keras_applications(variant, minimalistic)


def test_se_sits_after_the_depthwise_activation_on_the_expanded_width():
    model = _build("mobilenetv3_large", alpha=0.25)
    specs = [s for s in block_specs("large", 0.25) if s["se"]]
    scales = _names(model, "_se_scale")
    assert len(scales) == len(specs) == 8
    for spec, scale in zip(specs, scales):
        prefix = f"stage{spec['stage']}_block{spec['block']}"
        assert scale == f"{prefix}_se_scale"
        node = model.get_layer(scale)._inbound_nodes[0]
        assert node.input_tensors[0]._keras_history.operation.name == f"{prefix}_dw_act"
        # timm's round_channels: make_divisible with its round-up (72 / 4 = 18 -> 24).
        assert model.get_layer(f"{prefix}_se_reduce").filters == make_divisible(spec["mid_channels"] / 4, 8)
        assert model.get_layer(f"{prefix}_se_gate_relu6").max_value == 6.0  # hard-sigmoid gate
    assert block_specs("large")[3]["mid_channels"] == 72 and make_divisible(72 / 4, 8) == 24


def test_plain_twin_differs_by_se_only():
    se, plain = _build("mobilenetv3_small", alpha=0.25), _build("mobilenetv3_small_plain", alpha=0.25)
    assert [n for n in (layer.name for layer in se.layers) if "_se_" not in n] == [layer.name for layer in plain.layers]
    assert se.plain_twin().get_config() == {**plain.get_config(), "name": "mobilenetv3_small_plain"}
    # Each SE: 2 * C * C' weights and C + C' biases, C the expanded width.
    expected = sum(
        2 * s["mid_channels"] * (r := make_divisible(s["mid_channels"] / 4, 8)) + s["mid_channels"] + r
        for s in block_specs("small", 0.25)
        if s["se"]
    )
    assert count_params(se) - count_params(plain) == expected


def test_activations_and_kernels():
    model = _build("mobilenetv3_large", alpha=0.25)
    # Stages 1-3 are ReLU, stages 4-5, the stem and the top hard-swish (timm's "nre" blocks).
    assert type(model.get_layer("stage3_block1_dw_act")) is keras.layers.ReLU
    assert model.get_layer("stage4_block1_pw_act").get_config()["activation"] == "hard_silu"
    assert model.get_layer("stem_act").get_config()["activation"] == "hard_silu"
    assert model.get_layer("head_act").get_config()["activation"] == "hard_silu"
    assert model.get_layer("stage5_block1_dw").kernel_size == (5, 5)
    minimal = _build("mobilenetv3_large_plain", alpha=0.25, minimalistic=True)
    assert not _names(minimal, "_se_")
    assert not [layer for layer in minimal.layers if type(layer) is keras.layers.Activation]
    assert {layer.kernel_size for layer in minimal.layers if isinstance(layer, keras.layers.DepthwiseConv2D)} == {(3, 3)}


def test_width_multiplier_follows_timm():
    # timm scales every block width and, from alpha 0.75, the stem; the pooled conv keeps 1280.
    for alpha, stem in ((0.5, 16), (1.25, 24)):
        model = _build("mobilenetv3_large_plain", alpha=alpha)
        assert model.get_layer("stem_conv").filters == stem
        assert model.get_layer("stage5_block4_conv").filters == make_divisible(960 * alpha, 8)
        assert model.get_layer("head_conv").filters == 1280


def test_stages_are_strides_and_residuals_where_the_width_stays():
    model = _build("mobilenetv3_small", alpha=0.25, input_shape=(64, 64, 3))
    for stage in (2, 3, 4, 5):
        block = model.get_layer(f"stage{stage}_block1_pw_bn" if stage == 2 else f"stage{stage}_block1_pwl_bn")
        assert block.output.shape[1] == 64 // 2**stage
    assert not _names(model, "stage1_")  # the small network's first block already strides
    adds = _names(model, "_add")
    assert "stage2_block1_add" not in adds and "stage3_block2_add" in adds and "stage4_block1_add" not in adds


def test_backbone_and_pooling():
    model = _build("mobilenetv3_small", alpha=0.25, include_top=False, pooling="avg")
    assert model.output_shape == (None, make_divisible(576 * 0.25, 8))
    features = _build("mobilenetv3_large", alpha=0.25, include_top=False, input_shape=(64, 64, 3))
    assert features.output_shape == (None, 2, 2, 240)


def test_application_functions():
    model = keras_se.MobileNetV3Large(input_shape=SMALL, alpha=0.25)
    assert model.name == "mobilenetv3_large" and model.get_config()["attention"] == "se"
    minimal = keras_se.MobileNetV3Small(input_shape=SMALL, alpha=0.25, minimalistic=True)
    assert minimal.name == "mobilenetv3_small_plain" and minimal.get_config()["minimalistic"] is True


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(variant="medium"), "variant='medium'"),
        (dict(attention="nope"), "attention='nope'"),
        (dict(alpha=0), "alpha=0"),
        (dict(minimalistic=True), "attention='se'"),
        (dict(minimalistic="yes"), "minimalistic='yes'"),
        (dict(se_stages=[6]), r"se_stages=\[6\]"),
        (dict(input_shape=(16, 16, 3)), "at least 32"),
    ],
)
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        _build("mobilenetv3_large", **kwargs)
