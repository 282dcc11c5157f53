"""The layer-name vocabulary that builders write and the reports and the timm loader read."""

import pytest

import keras_se
from keras_se.naming import SE_ROLES, LayerName, parse_layer_name


@pytest.mark.parametrize(
    "name, expected",
    [
        ("stage2_block3_se_reduce", LayerName(2, 3, "se_reduce", "se", "stage2_block3_se", "reduce")),
        ("stage3_block2_sk_path0_conv", LayerName(3, 2, "sk_path0_conv", "sk", "stage3_block2_sk", "path0_conv")),
        ("stage4_block1_conv2", LayerName(4, 1, "conv2")),
        ("stem_conv", LayerName(None, None, "stem_conv")),
        ("se_gate_relu6", LayerName(None, None, "se_gate_relu6", "se", "se", "gate_relu6")),
        ("predictions", LayerName(None, None, "predictions")),
        ("stage2_block1_base_se_squeeze_avg", LayerName(2, 1, "base_se_squeeze_avg", "se", "stage2_block1_base_se", "squeeze_avg")),
        ("stage2_block1_house_reduce", LayerName(2, 1, "house_reduce")),  # "se" inside a word is not a unit
    ],
)
def test_parse_layer_name(name, expected):
    assert parse_layer_name(name) == expected


@pytest.mark.parametrize("model_name, attention", [("se_resnet18", "se"), ("timm:skresnet18", "sk"), ("se_shufflenet_g3", "se")])
def test_every_layer_a_builder_makes_parses(model_name, attention):
    model = keras_se.create_model(model_name, input_shape=(32, 32, 3), classes=10)
    parsed = {layer.name: parse_layer_name(layer.name) for layer in model.layers}
    units = {p.unit for p in parsed.values() if p.attention == attention}
    assert units, model_name
    for name, p in parsed.items():
        if p.stage is not None:
            assert name.startswith(f"stage{p.stage}_block{p.block}_")
        if attention == "se" and p.attention == "se":
            assert p.unit_role in SE_ROLES
    # Every unit's layers share its block.
    for unit in units:
        assert len({(p.stage, p.block) for p in parsed.values() if p.unit == unit}) == 1
