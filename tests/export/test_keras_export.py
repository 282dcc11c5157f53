"""Keras' own export path on keras_se models: `model.export(path, format="litert" | "onnx")`.

Keras 3.15's LiteRT export turns SELECT_TF_OPS on silently
(keras/src/export/litert.py), so a model that needed a TensorFlow op would
convert into a file with Flex ops that a phone's LiteRT without the Flex
delegate cannot run: every file here must hold builtin ops only. Outputs
must equal Keras within the float32 bounds `keras_se.export.to_tflite`
uses (keras-hub's: max 5e-5, mean 1e-5, and `LOGITS_RELATIVE_L2`), on
logits of order 1: an untrained model's are ~1e-20, which any absolute bound
passes, so each model gets BN statistics from data (`trained_like_copy`) and
each comparison shows that a 1 % error in the outputs fails it.
"""

import numpy as np
import pytest

import keras_se
from keras_se.export import read_tflite
from keras_se.export.calibration import trained_like_copy
from keras_se.export.errors import VerificationError
from keras_se.export.verify import compare_outputs, keras_outputs, parity_of

# Small and quick (a Keras LiteRT export takes 15 s even so): depthwise and
# 1x1 convs, SE, a features_only backbone.
DEFAULT = {"se_mobilenet": dict(alpha=0.25)}
SIZE = 32
# `xlarge`: one SE / SK model of every family class and block kind (the
# plain twins are the same layers less SE). A Keras export takes up to two
# minutes on two cores, so these are run by hand (`-m xlarge`), not in CI;
# every registered model's layers are also checked through keras_se.export
# (tests/export/test_gpu.py, test_table2_models.py).
FAMILIES = {
    "se_resnet18": {},  # basic blocks
    "se_resnext50_32x4d": {},  # grouped bottlenecks
    "senet154": {"depth": 26},  # deep stem, 64x4d groups
    "sknet50": {},  # selective kernel
    "se_shufflenet_g3": {},  # channel shuffle, grouped 1x1s
    "mobilenetv3_small": {},  # hard-swish, hard-sigmoid gate
    "se_vgg16": {},
    "se_bn_inception": {"input_shape": (96, 96, 3)},
    "se_inception_resnet_v2": {"input_shape": (96, 96, 3)},  # valid-padded stem: 75 px at least
}
ALL = [pytest.param(name, options, marks=[pytest.mark.large, pytest.mark.xlarge]) for name, options in FAMILIES.items()]


def _model(name, options, size=SIZE):
    options = {"input_shape": (size, size, 3), **options}
    model = keras_se.create_model(name, classifier_activation=None, **options)
    size = model.input_shape[1]
    return trained_like_copy(model, np.random.default_rng(1).uniform(0, 1, (8, size, size, 3)).astype("float32"))


def _check_not_vacuous(reference, actual, runtime):
    """The bound is not vacuous: realistic logits, and the same outputs 1 % off fail it."""
    reference = reference if isinstance(reference, list) else [reference]
    assert min(float(np.std(r)) for r in reference) > 0.01
    with pytest.raises(VerificationError, match="differ"):
        parity_of(reference[0], np.asarray(actual[0] if isinstance(actual, list) else actual) * 1.01, runtime).check(None)


def _samples(size):
    return np.random.default_rng(0).uniform(0, 1, (2, size, size, 3)).astype("float32")


def check_litert(model, path):
    """`model.export(format="litert")`: builtin ops only, outputs equal to Keras."""
    model.export(str(path), format="litert", verbose=False)
    ops = read_tflite(str(path)).op_histogram()
    flex = sorted(op for op in ops if op.startswith("CUSTOM"))
    assert flex == [], f"Keras' LiteRT export needed TensorFlow (Flex) ops: {flex}"
    x = _samples(model.input_shape[1])
    parity = compare_outputs(model, str(path), x)
    parity.check(None)
    from keras_se.export.verify import run_tflite

    _check_not_vacuous(keras_outputs(model, x), run_tflite(str(path), x), "LiteRT")
    return parity


def check_onnx(model, path):
    """`model.export(format="onnx")`: standard ONNX ops only, outputs equal to Keras in onnxruntime."""
    import onnx
    import onnxruntime

    model.export(str(path), format="onnx", verbose=False)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    nonstandard = sorted({n.op_type for n in proto.graph.node if n.domain not in ("", "ai.onnx") or not onnx.defs.has(n.op_type)})
    assert nonstandard == [], f"ONNX file holds ops outside the standard: {nonstandard}"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _samples(model.input_shape[1])
    actual = session.run(None, {session.get_inputs()[0].name: x})[0]
    parity = parity_of(keras_outputs(model, x), np.asarray(actual), "onnxruntime")
    parity.check(None)
    _check_not_vacuous(keras_outputs(model, x), actual, "onnxruntime")
    return parity


def test_flex_ops_from_keras_litert_export_are_caught(tmp_path):
    """The check above can fail: a TensorFlow op without a builtin lands in the file as a Flex op."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Lambda(lambda t: tf.math.cumprod(t, axis=1))(keras.layers.Conv2D(4, 3)(inputs))
    with pytest.raises(AssertionError, match="Flex.*CUSTOM:FlexCumprod"):
        check_litert(keras.Model(inputs, outputs), tmp_path / "flex.tflite")


@pytest.mark.parametrize("name, options", [*DEFAULT.items(), *ALL])
def test_keras_litert_export_is_builtin_only_and_equal_to_keras(name, options, tmp_path):
    check_litert(_model(name, options, SIZE if name in DEFAULT else 64), tmp_path / "model.tflite")


@pytest.mark.parametrize("name, options", [pytest.param(*item, marks=pytest.mark.large) for item in DEFAULT.items()] + ALL)
def test_keras_onnx_export_is_standard_and_equal_to_keras(name, options, tmp_path):
    check_onnx(_model(name, options, SIZE if name in DEFAULT else 64), tmp_path / "model.onnx")


@pytest.mark.large
@pytest.mark.xlarge
def test_keras_litert_export_of_a_feature_model_keeps_every_output(tmp_path):
    model = _model("se_shufflenet_g3", dict(scale=0.5, features_only=True))
    parity = check_litert(model, tmp_path / "features.tflite")
    assert len(parity.outputs) == 4


@pytest.mark.large  # Keras' ONNX export runs by default above
def test_keras_onnx_export_of_a_feature_model_keeps_every_output(tmp_path):
    import onnxruntime

    model = _model("se_mobilenet", dict(alpha=0.25, features_only=True))
    model.export(str(tmp_path / "features.onnx"), format="onnx", verbose=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "features.onnx"), providers=["CPUExecutionProvider"])
    x = _samples(SIZE)
    actual = session.run(None, {session.get_inputs()[0].name: x})
    reference = keras_outputs(model, x)
    assert [a.shape for a in actual] == [r.shape for r in reference]
    for a, r in zip(actual, reference):
        parity_of(r, a, "onnxruntime").check(None)
    _check_not_vacuous(reference, actual, "onnxruntime")
