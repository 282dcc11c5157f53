"""`features_only` backbones through `keras_se.export.to_tflite`: several outputs, each verified.

Tolerances are to_tflite's own (float32: keras-hub's max 5e-5 / mean 1e-5;
GPU: `GPU_RELATIVE_L2`, `GPU_KERNEL_RELATIVE_L2`), applied to every output.
"""

import numpy as np
import pytest

import keras_se
from keras_se.export import check_gpu, read_tflite, to_tflite
from keras_se.export.verify import FLOAT32_MAX_ABS, GPU_KERNEL_RELATIVE_L2, GPU_RELATIVE_L2, keras_outputs, run_tflite

SIZE = 64


@pytest.fixture(scope="module")
def backbone():
    model = keras_se.create_model("se_mobilenet", alpha=0.25, features_only=True, input_shape=(SIZE, SIZE, 3))
    rng = np.random.default_rng(0)
    # Non-trivial BN statistics so every stage's output matters.
    model.set_weights(
        [
            rng.uniform(0.5, 1.5, w.shape).astype("float32") if "variance" in w.path else rng.normal(0, 0.2, w.shape).astype("float32")
            for w in model.weights
        ]
    )
    return model


@pytest.fixture(scope="module")
def converted(backbone, tmp_path_factory):
    return to_tflite(backbone, tmp_path_factory.mktemp("features") / "features.tflite")


def test_feature_model_converts_with_every_output_in_order(backbone, converted):
    result = converted
    x = np.random.default_rng(1).uniform(0, 1, (2, SIZE, SIZE, 3)).astype("float32")
    outputs, reference = run_tflite(result.path, x), keras_outputs(backbone, x)
    assert (
        [o.shape for o in outputs]
        == [r.shape for r in reference]
        == [(2, SIZE // s, SIZE // s, c) for s, c in ((4, 32), (8, 64), (16, 128), (32, 256))]
    )
    for actual, expected in zip(outputs, reference):
        assert np.abs(actual - expected).max() <= FLOAT32_MAX_ABS
    assert len(result.parity.outputs) == 4
    assert all(p.max_abs_error <= FLOAT32_MAX_ABS for p in result.parity.outputs)
    assert len(result.to_dict()["parity"]["outputs"]) == 4
    # The classic GPU delegate's rules hold for the file (no adapter needed).
    assert [f for f in check_gpu(result.path) if f.severity == "error"] == []


def test_a_wrong_output_fails_verification(backbone, converted):
    """Parity is per output: one output off by more than the bound fails and is named."""
    from keras_se.export.errors import VerificationError
    from keras_se.export.verify import compare_outputs

    x = np.random.default_rng(1).uniform(0, 1, (2, SIZE, SIZE, 3)).astype("float32")
    reference = keras_outputs(backbone, x)
    reference[2] = reference[2] + 1e-3
    parity = compare_outputs(backbone, converted.path, x, reference)
    assert parity.outputs[2].max_abs_error > FLOAT32_MAX_ABS >= parity.outputs[1].max_abs_error
    with pytest.raises(VerificationError, match="output 2: float32"):
        parity.check(None)


def test_feature_model_gpu_preset_on_the_accelerator(backbone, tmp_path, gpu_adapter):
    result = to_tflite(backbone, tmp_path / "features_gpu.tflite", quantize="float16", gpu=True)
    assert result.gpu_run.passed, result.gpu_run.verdict()
    assert result.gpu_run.kernel_relative_l2 <= GPU_KERNEL_RELATIVE_L2
    assert len(result.gpu_parity.outputs) == 4
    assert all(p.relative_l2 <= GPU_RELATIVE_L2 for p in result.gpu_parity.outputs)
    assert max(len(t.shape) for t in read_tflite(result.path).tensors) <= 4
