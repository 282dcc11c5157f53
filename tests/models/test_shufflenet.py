import keras
import numpy as np
import pytest

import keras_se
from keras_se.analysis import count_params


def _build(name, **kwargs):
    return keras_se.create_model(name, input_shape=(64, 64, 3), **kwargs)


@pytest.mark.parametrize("groups, width", [(1, 144), (2, 200), (3, 240), (4, 272), (8, 384)])
def test_stage_widths_follow_table_1(groups, width):
    model = _build(f"shufflenet_g{groups}", include_top=False)
    assert model.get_layer("stage2_block1_out").output.shape[-1] == width
    assert model.output_shape[-1] == 4 * width
    assert model.get_layer("stage3_block2_gconv1").groups == groups


@pytest.mark.parametrize("scale, width", [(0.5, 120), (1.5, 360), (2.0, 480)])
def test_scale(scale, width):
    assert _build("se_shufflenet_g3", scale=scale, include_top=False).output_shape[-1] == 4 * width


def test_first_pointwise_is_not_grouped_and_se_sits_on_the_branch():
    model = _build("se_shufflenet_g3")
    assert model.get_layer("stage2_block1_gconv1").__class__.__name__ == "Conv2D"
    node = model.get_layer("stage2_block2_add")._inbound_nodes[0]
    assert [t._keras_history.operation.name for t in node.input_tensors] == ["stage2_block1_out", "stage2_block2_se_scale"]


def shufflenet_params(groups, se_reduction=None, se_on_unit_output=False, classes=1000):
    """ShuffleNet v1's parameters by hand, from the official code
    (megvii-model/ShuffleNet-Series, ShuffleNetV1/network.py and blocks.py):
    a 3x3 stem of 24 channels; stages of 4, 8 and 4 units, widths
    (144, 200, 240, 272, 384)[g] x 1, 2, 4 (Table 1); a unit's bottleneck is
    a quarter of its output; its first 1x1 convolution is grouped except in
    the first unit; a stride-2 unit's branch gives output - input channels
    (the average-pooled input is concatenated); convolutions without bias,
    BN (scale and offset; moving statistics are not parameters) after each;
    a 1000-way classifier with bias (keras.applications' convention). SE
    (SENet paper, Fig. 3): two fully connected layers with biases, C -> C/r
    -> C, on the branch (or on the unit's output)."""
    widths = [24] + [{1: 144, 2: 200, 3: 240, 4: 272, 8: 384}[groups] * k for k in (1, 2, 4)]
    params = 3 * 3 * 3 * 24 + 2 * 24
    inputs = 24
    for stage, (outputs, repeats) in enumerate(zip(widths[1:], (4, 8, 4))):
        for unit in range(repeats):
            branch = outputs - inputs if unit == 0 else outputs
            middle = outputs // 4
            params += inputs * middle // (1 if stage == unit == 0 else groups) + 2 * middle  # grouped 1x1, BN
            params += 3 * 3 * middle + 2 * middle  # depthwise 3x3, BN
            params += middle * branch // groups + 2 * branch  # grouped 1x1, BN
            if se_reduction:
                channels = outputs if se_on_unit_output else branch
                hidden = channels // se_reduction
                params += channels * hidden + hidden + hidden * channels + channels
            inputs = outputs
    return params + widths[-1] * classes + classes


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
def test_parameters_equal_the_official_architecture_by_hand(groups):
    for name, expected in (
        (f"shufflenet_g{groups}", shufflenet_params(groups)),
        (f"se_shufflenet_g{groups}", shufflenet_params(groups, 16)),
    ):
        assert count_params(_build(name)) == expected, name


def test_se_on_unit_output_counts_as_the_notes_say():
    model = keras_se.create_model("se_shufflenet_g3", se_position="post", input_shape=(64, 64, 3))
    assert count_params(model) == shufflenet_params(3, 16, se_on_unit_output=True)


def test_relu_before_concat_equals_relu_after_concat():
    # The stride-2 unit applies ReLU to the branch only; with a non-negative
    # shortcut that is the paper's ReLU after the concat.
    model = _build("shufflenet_g3", include_top=False)
    unit = keras.Model(model.get_layer("stage2_block4_out").output, model.get_layer("stage3_block1_out").output)
    shortcut = keras.Model(model.get_layer("stage2_block4_out").output, model.get_layer("stage3_block1_shortcut_pool").output)
    x = np.random.default_rng(0).uniform(0, 2, (1, 8, 8, 240)).astype("float32")
    out = unit(x).numpy()
    assert (out >= 0).all()
    np.testing.assert_array_equal(out[..., :240], shortcut(x).numpy())


@pytest.mark.parametrize("kwargs, pattern", [(dict(scale=3.0), "scale=3.0"), (dict(se_position="pre"), "se_position='pre'")])
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        _build("se_shufflenet_g3", **kwargs)
