import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_se.export import ConversionError, GpuNotRunWarning, read_tflite, to_tflite
from keras_se.export.calibration import RandomCalibrationWarning
from keras_se.export.verify import FLOAT32_MAX_ABS, FLOAT32_MEAN_ABS, run_tflite


def _samples(n=8, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 16, 16, 3)).astype("float32")


def test_float32_matches_keras_within_keras_hub_thresholds(tiny_se_model, tmp_path):
    result = to_tflite(tiny_se_model, tmp_path / "m.tflite", representative_data=_samples())
    assert os.path.getsize(result.path) == result.size_bytes
    assert result.parity.max_abs_error <= FLOAT32_MAX_ABS
    assert result.parity.mean_abs_error <= FLOAT32_MEAN_ABS
    assert result.parity.top1_agreement == 1.0
    # SE squeeze, gate and scale, SK softmax over paths: builtins, 4-D.
    for op in ("CONV_2D", "MEAN", "LOGISTIC", "MUL", "SOFTMAX", "SPLIT"):
        assert op in result.ops
    graph = read_tflite(result.path)
    assert graph.inputs[0].shape == (1, 16, 16, 3)
    assert max(len(t.shape) for t in graph.tensors) <= 4
    # Independent check of the written file (not the bytes verified in memory).
    np.testing.assert_allclose(run_tflite(result.path, _samples(2, 9)), tiny_se_model(_samples(2, 9)).numpy(), atol=FLOAT32_MAX_ABS)


def test_gpu_preset_without_verify_says_the_accelerator_was_not_run(tiny_se_model, tmp_path):
    with pytest.warns(GpuNotRunWarning, match="not run: verify=False.*no kernel or float16 check"):
        result = to_tflite(tiny_se_model, tmp_path / "m.tflite", quantize="float16", gpu=True, verify=False)
    assert result.gpu_run.status == "not run" and not result.gpu_run.passed and result.gpu_parity is None
    record = result.to_dict()["gpu_accelerator"]
    assert record["status"] == "not run" and record["passed"] is False and record["reason"].startswith("verify=False")
    assert result.to_dict()["gpu_rules"] == "pass"


def test_float16_halves_the_file(tmp_path):
    from keras_se.layers import SqueezeExcite

    inputs = keras.Input((8, 8, 64))
    model = keras.Model(inputs, SqueezeExcite(reduction=2)(keras.layers.Conv2D(128, 3)(inputs)))
    fp32 = to_tflite(model, tmp_path / "a.tflite", verify=False)
    fp16 = to_tflite(model, tmp_path / "b.tflite", quantize="float16")
    assert fp16.size_bytes < 0.7 * fp32.size_bytes
    assert "DEQUANTIZE" in fp16.ops
    assert fp16.parity.max_abs_error < 1e-2


def test_dynamic_range(tiny_se_model, tmp_path):
    result = to_tflite(tiny_se_model, tmp_path / "m.tflite", quantize="dynamic")
    assert result.parity.top1_agreement is None or result.parity.top1_agreement >= 0.5


def test_int8_is_full_integer(tiny_se_model, tmp_path):
    result = to_tflite(tiny_se_model, tmp_path / "m.tflite", quantize="int8", representative_data=_samples(16))
    graph = read_tflite(result.path)
    assert graph.inputs[0].dtype == "INT8" and graph.outputs[0].dtype == "INT8"
    floats = [(op.name, t.name) for op in graph.ops for t in op.inputs + op.outputs if t is not None and t.dtype == "FLOAT32"]
    assert floats == []
    assert result.parity.decisive > 0 and result.parity.top1_agreement >= 0.5
    assert result.parity.max_abs_error < 0.1


def test_int8_without_data_warns_loudly(tiny_se_model, tmp_path):
    with pytest.warns(RandomCalibrationWarning, match="RANDOM"):
        to_tflite(tiny_se_model, tmp_path / "m.tflite", quantize="int8", verify=False)


def test_existing_file_is_kept_without_overwrite(tiny_se_model, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite"):
        to_tflite(tiny_se_model, path)
    assert path.read_bytes() == b"keep me"
    to_tflite(tiny_se_model, path, overwrite=True, verify=False)
    assert path.read_bytes()[4:8] == b"TFL3"


@keras.saving.register_keras_serializable(package="keras_se_tests")
class _Svd(keras.layers.Layer):
    def call(self, x):
        return tf.linalg.svd(x, compute_uv=False)


def test_ops_tflite_cannot_express_fail_cleanly(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, _Svd()(inputs))
    with pytest.raises(ConversionError, match="cannot express"):
        to_tflite(model, tmp_path / "m.tflite")
    assert os.listdir(tmp_path) == []  # nothing half-written


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(quantize="int4"), "quantize='int4'"),
        (dict(representative_data=np.zeros((2, 8, 8, 3))), r"shape \(N, 16, 16, 3\).*\(2, 8, 8, 3\)"),
    ],
)
def test_bad_arguments(tiny_se_model, tmp_path, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        to_tflite(tiny_se_model, tmp_path / "m.tflite", **kwargs)


def test_dynamic_input_size_is_rejected(tmp_path):
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    with pytest.raises(ValueError, match="static input size"):
        to_tflite(model, tmp_path / "m.tflite")
