"""Tests for keras_se.analysis.tflite: a converted file counts like its Keras model.

Steps as tfmot's: build -> convert -> count both -> compare. The comparison
is exact (integer counts, no tolerance): MACs per stage and in total,
attention weighting, and parameters, which in the file are the Keras
model's `params_folded` (BN folded into the convolutions).
"""

import contextlib
import io

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_se
from keras_se.analysis import ComplexityWarning, complexity_report
from keras_se.analysis.tflite import tflite_report
from keras_se.layers import GroupConv2D, SelectiveKernel, SqueezeExcite


def _randomise(model):
    """Non-zero biases and BN statistics: the converter drops all-zero constants."""
    rng = np.random.default_rng(0)
    for v in model.weights:
        low_high = (0.5, 1.5) if "variance" in v.path else (-0.5, 0.5)
        v.assign(rng.uniform(*low_high, v.shape).astype("float32"))


def _convert(model, path, float16=False):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its SavedModel signature
        data = converter.convert()
    path.write_bytes(data)
    return str(path)


def _mixed_model():
    """Every counted kind: dilated conv + BN, SE and SK layers, grouped,
    strided-SK, depthwise, dense."""
    inputs = keras.Input((32, 32, 16))
    x = keras.layers.Conv2D(32, 3, padding="same", dilation_rate=2, name="dil")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = SqueezeExcite(name="se")(x)
    x = SelectiveKernel(32, groups=4, name="sk")(x)
    x = SelectiveKernel(32, groups=4, strides=2, name="sk2")(x)
    x = GroupConv2D(32, 3, groups=8, padding="same", name="gconv")(x)
    x = keras.layers.DepthwiseConv2D(3, name="dw")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(10, name="fc")(x)
    return keras.Model(inputs, x, name="mixed")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    model = _mixed_model()
    _randomise(model)
    path = _convert(model, tmp_path_factory.mktemp("tflite") / "mixed.tflite")
    return complexity_report(model), complexity_report(path)


@pytest.fixture(scope="module")
def se_resnet18(tmp_path_factory):
    model = keras_se.create_model("se_resnet18", input_shape=(32, 32, 3), classes=10)
    _randomise(model)
    path = _convert(model, tmp_path_factory.mktemp("tflite") / "se_resnet18.tflite")
    return complexity_report(model), complexity_report(path)


@pytest.mark.parametrize("fixture", ["mixed", "se_resnet18"])
def test_tflite_counts_equal_keras(fixture, request):
    keras_report, tflite = request.getfixturevalue(fixture)
    assert tflite.source == "tflite"
    assert tflite.input_shape == keras_report.input_shape
    assert tflite.macs == keras_report.macs
    assert tflite.weighting_macs == keras_report.weighting_macs
    assert tflite.params == tflite.params_folded == keras_report.params_folded
    assert [(s.name, s.macs) for s in tflite.stages] == [(s.name, s.macs) for s in keras_report.stages]
    assert tflite.warnings == [] and tflite.uncounted == []


def test_float16_weights_count_the_same(tmp_path):
    # fp16 weights reach their ops through DEQUANTIZE: still parameters,
    # and a dequantized all-zero bias is still not one.
    model = _mixed_model()
    _randomise(model)
    tflite = tflite_report(_convert(model, tmp_path / "fp16.tflite", float16=True))
    keras_report = complexity_report(model)
    assert "DEQUANTIZE" in {row.type for row in tflite.rows}
    assert (tflite.macs, tflite.params) == (keras_report.macs, keras_report.params_folded)


def test_mixed_model_golden_totals(mixed):
    keras_report, tflite = mixed
    # The dilated conv: 32*32*32 outputs x 3*3*16 taps (dilation does not change it).
    assert keras_report.row("dil").macs == 4_718_592
    dilated = next(row for row in tflite.rows if row.name.startswith("dil") and row.type == "CONV_2D")
    assert dilated.macs == 4_718_592 and dilated.output_shape == (1, 32, 32, 32)
    assert "space-to-batch" in dilated.note
    assert keras_report.macs == tflite.macs == 10_974_784


def test_se_units_and_formula_read_from_the_file(se_resnet18):
    keras_report, tflite = se_resnet18
    assert tflite.attention.units == keras_report.attention.units == 8
    assert tflite.attention.formula == keras_report.attention.formula == 87_040
    assert [(s.stage, s.units, s.channels) for s in tflite.attention.stages] == [
        (s.stage, s.units, s.channels) for s in keras_report.attention.stages
    ]
    assert tflite.attention.bias is True


def test_stage_rows_trace_back_to_keras_layers(se_resnet18):
    _, tflite = se_resnet18
    names = [row.name for row in tflite.rows]
    assert any(name.startswith("stage2_block1_se_reduce") for name in names)
    assert {s.name for s in tflite.stages} == {"stem", "stage2", "stage3", "stage4", "stage5", "head"}


def test_unknown_operator_is_not_counted(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Resizing(16, 16, interpolation="bilinear", name="resize")(inputs)
    x = keras.layers.Conv2D(4, 3, name="conv")(x)
    model = keras.Model(inputs, x)
    path = _convert(model, tmp_path / "resize.tflite")
    with pytest.warns(ComplexityWarning, match="RESIZE_BILINEAR"):
        report = tflite_report(path)
    (row,) = report.uncounted
    assert row.type == "RESIZE_BILINEAR" and row.note == "not counted" and row.macs is None
    assert report.macs == 14 * 14 * 4 * 27  # the conv is still counted
    with pytest.warns(ComplexityWarning, match="Resizing is not counted"):
        assert complexity_report(model).macs == report.macs


def test_damaged_files(tmp_path):
    good = tmp_path / "good.tflite"
    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 1)])
    data = open(_convert(model, good), "rb").read()
    (tmp_path / "cut.tflite").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cannot read .*cut.tflite.* as a TFLite model"):
        complexity_report(str(tmp_path / "cut.tflite"))
    (tmp_path / "junk.tflite").write_bytes(b"\x10\x00\x00\x00TFL3" + b"\xff" * 64)
    with pytest.raises(ValueError, match="as a TFLite model"):
        complexity_report(str(tmp_path / "junk.tflite"))
    with pytest.raises(ValueError, match="not a TFLite model file"):
        tflite_report(__file__)
    with pytest.raises(ValueError, match="fixed input shape"):
        complexity_report(str(good), (8, 8, 3))
