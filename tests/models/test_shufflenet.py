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


def test_se_on_unit_output_counts_as_the_notes_say():
    assert count_params(keras_se.create_model("se_shufflenet_g3", se_position="post", input_shape=(64, 64, 3))) == 2_594_908


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
