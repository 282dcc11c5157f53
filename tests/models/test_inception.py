"""Tests for keras_se.models.inception: SE-BN-Inception from the official prototxt.

The reference is the official deploy prototxt (data/SE-BN-Inception.prototxt,
copied from hujie-frank/SENet), read by `caffe_prototxt`, which knows nothing
of keras_se: its parameter count with and without the SE layers, and each
module's output and SE widths.
"""

import re
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_se
from keras_se.analysis import count_params

sys.path.insert(0, str(Path(__file__).resolve().parent))
import caffe_prototxt  # noqa: E402

PROTOTXT = (Path(__file__).resolve().parent / "data" / "SE-BN-Inception.prototxt").read_text()


def _module_widths():
    """[(module, concat channels, SE width)] in prototxt order."""
    widths = []
    for layer in caffe_prototxt.layers(PROTOTXT):
        fields = dict(layer)
        match = re.fullmatch(r"(inception_\w+)_1x1_(down|up)", fields["name"])
        if match and match[2] == "down":
            down = int(dict(fields["convolution_param"])["num_output"])
        elif match:
            widths.append((match[1], int(dict(fields["convolution_param"])["num_output"]), down))
    return widths


def test_parameter_counts_equal_the_official_prototxt():
    se = caffe_prototxt.count_params(PROTOTXT)
    plain = caffe_prototxt.count_params(PROTOTXT, skip=caffe_prototxt.is_se_layer)
    assert (se, plain) == (11_931_622, 11_285_224)
    assert count_params(keras_se.create_model("se_bn_inception", input_shape=(32, 32, 3))) == se
    assert count_params(keras_se.create_model("bn_inception", input_shape=(32, 32, 3))) == plain


def test_se_on_every_module_output_with_the_prototxt_widths(tmp_path):
    model = keras_se.create_model("se_bn_inception", input_shape=(64, 64, 3), classes=10)
    blocks = [f"stage{s}_block{k}" for s, n in ((3, 2), (4, 5), (5, 3)) for k in range(1, n + 1)]
    widths = _module_widths()
    assert len(widths) == len(blocks) == 10
    for block, (module, channels, reduced) in zip(blocks, widths):
        concat = model.get_layer(f"{block}_concat")
        assert concat.output.shape[-1] == channels, module
        assert model.get_layer(f"{block}_se_squeeze").input.name == concat.output.name
        assert model.get_layer(f"{block}_se_reduce").filters == reduced, module
    # Resolution per stage: 1/8, 1/16, 1/32 of the input.
    assert [model.get_layer(f"{b}_concat").output.shape[1] for b in ("stage3_block2", "stage4_block1", "stage5_block1")] == [8, 4, 2]
    path = tmp_path / "se_bn_inception.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(0).uniform(size=(1, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(x)), keras.ops.convert_to_numpy(model(x)))


def test_sizes_caffe_cannot_concatenate_are_refused():
    with pytest.raises(
        ValueError, match=r"stage4_block1's strided convolutions and Caffe's ceil-mode max pool.*input_shape=\(299, 299, 3\)"
    ):
        keras_se.create_model("se_bn_inception", input_shape=(299, 299, 3))
    with pytest.raises(ValueError, match=r"se_stages=\(2,\)"):
        keras_se.create_model("se_bn_inception", se_stages=(2,))
