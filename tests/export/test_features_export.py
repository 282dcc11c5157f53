"""`features_only` backbones through `keras_se.export.to_tflite`: several outputs, each verified.

Tolerances are to_tflite's own (float32: keras-hub's max 5e-5 / mean 1e-5;
GPU: `GPU_RELATIVE_L2`, `GPU_KERNEL_RELATIVE_L2`), applied to every output.
"""

import numpy as np
import pytest

import keras_se
from keras_se.export import check_gpu, read_tflite, to_tflite
from keras_se.export.verify import FLOAT32_MAX_ABS, GPU_KERNEL_RELATIVE_L2, GPU_RELATIVE_L2, keras_outputs, relative_l2, run_tflite

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


# --- MobileNetV3: hard-swish outputs, and the int8 hard-swish rewrite --------------------------
# Small at alpha 0.5 with every feature: P1 (the stem) and P5 (the last 1x1
# conv block) are hard-swish outputs, which int8's `hard_swish_for_int8`
# leaves at six times their value unless it restores them.
MNV3_CHANNELS = (16, 8, 16, 24, 288)
# int8 against Keras, per output: measured relative L2 3e-3 to 1.2e-2 with
# calibration on the verification inputs; 5e-2 is four times the worst, and
# an output left six times too large (or another output's) is off by order 1.
INT8_RELATIVE_L2 = 5e-2


@pytest.fixture(scope="module")
def mnv3_backbone():
    model = keras_se.create_model(
        "mobilenetv3_small", alpha=0.5, features_only=True, out_indices=(0, 1, 2, 3, 4), input_shape=(SIZE, SIZE, 3)
    )
    rng = np.random.default_rng(0)
    model.set_weights(
        [
            rng.uniform(0.5, 1.5, w.shape).astype("float32") if "variance" in w.path else rng.normal(0, 0.2, w.shape).astype("float32")
            for w in model.weights
        ]
    )
    return model


def _mnv3_shapes(batch):
    return [(batch, SIZE // 2 ** (i + 1), SIZE // 2 ** (i + 1), c) for i, c in enumerate(MNV3_CHANNELS)]


@pytest.mark.large  # the int8 test below converts the same backbone
def test_mobilenetv3_features_convert_in_float32(mnv3_backbone, tmp_path):
    result = to_tflite(mnv3_backbone, tmp_path / "mnv3_features.tflite")
    assert result.ops.get("HARD_SWISH", 0) > 0  # float files keep XNNPACK's fastest float form
    x = np.random.default_rng(1).uniform(0, 1, (2, SIZE, SIZE, 3)).astype("float32")
    outputs, reference = run_tflite(result.path, x), keras_outputs(mnv3_backbone, x)
    assert [o.shape for o in outputs] == [r.shape for r in reference] == _mnv3_shapes(2)
    for actual, expected in zip(outputs, reference):
        assert np.abs(actual - expected).max() <= FLOAT32_MAX_ABS
    assert len(result.parity.outputs) == 5
    assert [f for f in check_gpu(result.path) if f.severity == "error"] == []


def test_mobilenetv3_features_in_int8_keep_every_output_after_the_hard_swish_rewrite(mnv3_backbone, tmp_path):
    x = np.random.default_rng(2).uniform(0, 1, (8, SIZE, SIZE, 3)).astype("float32")
    result = to_tflite(mnv3_backbone, tmp_path / "mnv3_features_int8.tflite", quantize="int8", representative_data=x)
    assert "HARD_SWISH" not in result.ops  # the rewrite ran
    outputs, reference = run_tflite(result.path, x[:4]), keras_outputs(mnv3_backbone, x[:4])
    assert [o.shape for o in outputs] == _mnv3_shapes(4)
    errors = [relative_l2(r, a) for r, a in zip(reference, outputs)]
    assert max(errors) <= INT8_RELATIVE_L2, errors
    assert len(result.parity.outputs) == 5


@pytest.mark.large  # a multi-output GPU preset runs by default above
def test_mobilenetv3_features_gpu_preset_on_the_accelerator(mnv3_backbone, tmp_path, gpu_adapter):
    result = to_tflite(mnv3_backbone, tmp_path / "mnv3_features_gpu.tflite", quantize="float16", gpu=True, verify_samples=1)
    assert result.gpu_run.passed, result.gpu_run.verdict()
    assert result.gpu_run.kernel_relative_l2 <= GPU_KERNEL_RELATIVE_L2
    assert len(result.gpu_parity.outputs) == 5
    assert all(p.relative_l2 <= GPU_RELATIVE_L2 for p in result.gpu_parity.outputs)
