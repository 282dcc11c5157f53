"""ECA and CBAM models on the phone path: fully int8 TFLite, ONNX, and LiteRT's GPU accelerator."""

import numpy as np
import pytest

import keras_se
from keras_se.export import read_tflite, to_onnx, to_tflite
from keras_se.export.delegation import xnnpack_delegation
from keras_se.export.gpu_run import GPU_KERNEL_RELATIVE_L2
from keras_se.export.verify import GPU_RELATIVE_L2
from keras_se.quantization import float_ops

# What XNNPACK runs in int8 (its delegate's int8 operator list); ECA's and
# CBAM's forms stay within it. REDUCE_MAX (CBAM's max over H, W and over
# channels) and CONCATENATION (its [mean, max] maps) included: ai-edge-litert
# 2.3's XNNPACK takes both in int8, CBAM's files run as one partition
# (xnnpack_delegation, checked below).
XNNPACK_INT8 = {
    "PAD",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "MAX_POOL_2D",
    "MEAN",
    "REDUCE_MAX",
    "CONCATENATION",
    "RESHAPE",
    "LOGISTIC",
    "MUL",
    "ADD",
    "FULLY_CONNECTED",
}


def _model(kind):
    """A fixed draw of the builder's initialisation: a CI run drew CBAM weights whose int8 file XNNPACK refused
    (a layer's outputs calibrated to almost zero, a requantisation scale out of XNNPACK's range)."""
    import keras

    keras.utils.set_random_seed(0)
    # Logits: an untrained softmax is near uniform whatever the features are.
    return keras_se.create_model("se_resnet18", attention=kind, input_shape=(32, 32, 3), classes=10, classifier_activation=None)


def _data():
    return np.random.default_rng(0).uniform(0, 1, (8, 32, 32, 3)).astype("float32")


@pytest.mark.large  # default-run budget: ECA's and CBAM's int8 QAT cases run by default (tests/quantization/test_qat.py)
@pytest.mark.parametrize("kind", ["eca", "cbam"])
def test_attention_kinds_convert_to_fully_int8_and_onnx(kind, tmp_path):
    model = _model(kind)
    int8 = to_tflite(model, tmp_path / f"{kind}_int8.tflite", quantize="int8", representative_data=_data())
    assert float_ops(int8.path) == []
    ops = set(read_tflite(int8.path).op_histogram())
    # The attention's own ops are there (the kind was converted, not dropped).
    assert {"LOGISTIC", "MEAN"} <= ops and (kind != "cbam" or {"REDUCE_MAX", "CONCATENATION"} <= ops)
    assert ops <= XNNPACK_INT8, ops - XNNPACK_INT8
    # And the runtime agrees: every op in one XNNPACK partition, none left to LiteRT's own kernels.
    delegation = xnnpack_delegation(int8.path)
    assert delegation.partitions == 1 and delegation.left == () and delegation.kernels == "XNNPACK", delegation
    onnx = to_onnx(model, tmp_path / f"{kind}.onnx")  # standard ONNX ops only, run in onnxruntime
    # float32 in another order: measured 1e-7 on logits of order 1.
    assert onnx.parity.max_abs_error <= 1e-5 * float(np.abs(model.predict(_data(), verbose=0)).max())


@pytest.mark.large  # a minute each on the software driver; the default run keeps other models' GPU presets
@pytest.mark.parametrize("kind", ["eca", "cbam"])
def test_attention_kinds_run_on_the_gpu_accelerator(kind, tmp_path, gpu_adapter):
    # ECA's 1-D convolution is spelt as a (1, k) Conv2D: 4-D all the way.
    result = to_tflite(_model(kind), tmp_path / f"{kind}_gpu.tflite", quantize="float16", gpu=True)
    assert [f for f in result.gpu_findings if f.severity == "error"] == []
    assert max(len(t.shape) for t in read_tflite(result.path).tensors) <= 4
    assert result.gpu_run.passed and result.gpu_run.fully_accelerated, result.gpu_run.verdict()
    assert result.gpu_run.kernel_relative_l2 <= GPU_KERNEL_RELATIVE_L2
    assert result.gpu_parity.relative_l2 <= GPU_RELATIVE_L2
