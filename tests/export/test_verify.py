"""keras_se.export.verify: every bound refuses what it is there to refuse.

Each case holds a fixed, measured error (not one derived from the bound
under test), so loosening a bound in verify.py makes a case here fail.
"""

import keras
import numpy as np
import pytest

from keras_se.export import LogitsNotCheckedWarning, to_tflite
from keras_se.export.calibration import trained_like_copy
from keras_se.export.errors import VerificationError
from keras_se.export.gpu_run import GpuRun
from keras_se.export.verify import LOGITS_RELATIVE_L2, Parity, check_gpu_run, compare_outputs, keras_logits, tflite_logits


def _parity(**fields):
    values = dict(samples=4, max_abs_error=0.0, mean_abs_error=0.0, top1_agreement=1.0, decisive=4, runtime="test", relative_l2=0.0)
    return Parity(**{**values, **fields})


# (mode, an honest file's error as measured, a wrong file's error as measured): the LOGITS_RELATIVE_L2 comment.
LOGITS = [
    (None, 1.0e-4, 0.28),  # se_mobilenet float32; one BN's scale off by 25 % (se_resnet18)
    ("float16", 0.077, 0.28),
    ("dynamic", 0.50, 1.0),  # a constant output
    ("int8", 0.54, 1.0),
]


@pytest.mark.parametrize("quantize, honest, wrong", LOGITS)
def test_logits_bound_keeps_honest_files_and_refuses_wrong_ones(quantize, honest, wrong):
    _parity(logits_relative_l2=honest, compared="logits").check(quantize)
    with pytest.raises(VerificationError, match=r"logits differ from Keras: relative L2 error"):
        _parity(logits_relative_l2=wrong, compared="logits").check(quantize)


def test_logits_bound_is_not_silently_skipped():
    # n/a is said (and to_tflite warns); a missing logits error falls back to the outputs', never to a pass.
    _parity(logits_relative_l2=1.0, logits_not_checked="n/a: vanishing").check("int8")
    with pytest.raises(VerificationError, match="outputs differ"):
        _parity(relative_l2=1.0).check("int8")


@pytest.mark.parametrize(
    "fields, pattern",
    [
        (dict(max_abs_error=1e-4, mean_abs_error=1e-6), "max abs error 0.0001"),  # twice keras-hub's 5e-5
        (dict(max_abs_error=1e-5, mean_abs_error=2e-5), "mean 2e-05"),
        (dict(max_abs_error=float("nan"), mean_abs_error=0.0), "not finite"),
    ],
)
def test_float32_absolute_bounds(fields, pattern):
    with pytest.raises(VerificationError, match=pattern):
        _parity(**fields).check(None)


def test_float32_absolute_bounds_grow_with_outputs_past_one():
    # Logits of order 10 (a model with BN statistics from data, SE-MobileNet at 32 px) hold
    # float32 rounding of 4.9e-5 / 1.1e-5, over keras-hub's bounds for probabilities.
    logits = dict(max_abs_error=4.9e-5, mean_abs_error=1.1e-5)
    _parity(**logits, scale=8.0).check(None)
    with pytest.raises(VerificationError, match="mean 1.1e-05 \\(bound 1e-05\\)"):
        _parity(**logits, scale=0.9).check(None)  # probabilities: the bounds as they are
    with pytest.raises(VerificationError, match="max abs error 0.0008 \\(bound 0.0004\\)"):
        _parity(max_abs_error=8e-4, mean_abs_error=1e-6, scale=8.0).check(None)


def test_top1_agreement_collapse_is_refused():
    _parity(top1_agreement=0.5).check("int8")
    with pytest.raises(VerificationError, match="top-1 agreement with Keras collapsed to 29%"):
        _parity(top1_agreement=2 / 7, decisive=7).check("int8")  # se_mobilenet's int8 file with random weights


def test_gpu_bounds_refuse_a_wrong_kernel_and_float16_loss():
    parity = _parity(relative_l2=4e-3)  # float16 GPU arithmetic on a registered model: 2e-3 to 6e-3
    run = GpuRun("ran", fully_accelerated=True, adapter="fake", software=True)
    run.kernel_relative_l2 = 1.2e-5  # float32 kernels against the CPU runtime on a real GPU
    check_gpu_run(run, parity, "float16")
    run.kernel_relative_l2 = 2e-3  # a kernel off by a fifth of a percent
    with pytest.raises(VerificationError, match="computes this file wrong"):
        check_gpu_run(run, parity, "float16")
    run.kernel_relative_l2 = 1.2e-5
    with pytest.raises(VerificationError, match="relative L2 error 0.27"):  # SE-ShuffleNet's padded pool, folded wrong
        check_gpu_run(run, _parity(relative_l2=0.27), "float16")


@pytest.fixture(scope="module")
def realistic_model():
    """A BN'd conv block and a softmax classifier, BN statistics from data."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(16, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    return trained_like_copy(model, np.random.default_rng(1).uniform(0, 1, (16, 16, 16, 3)).astype("float32"))


def _samples(n, seed):
    return np.random.default_rng(seed).uniform(0, 1, (n, 16, 16, 3)).astype("float32")


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_a_file_with_perturbed_logits_is_refused(realistic_model, quantize, tmp_path):
    # The file's logits (its softmax's input, read through the file) against Keras' logits twin.
    result = to_tflite(realistic_model, tmp_path / "m.tflite", quantize=quantize, representative_data=_samples(16, 2))
    assert result.parity.compared == "logits" and result.parity.logits_not_checked is None
    x = _samples(4, 3)
    logits = keras_logits(realistic_model, x)
    assert np.abs(logits).std() > 0.1  # realistic logits, not ~1e-20
    assert np.linalg.norm(tflite_logits(result.path, x) - logits) / np.linalg.norm(logits) <= LOGITS_RELATIVE_L2[quantize or "float32"]
    # A wrong graph: the classifier's classes shifted by one.
    wrong = keras.models.clone_model(realistic_model)
    weights = realistic_model.get_weights()
    wrong.set_weights([*weights[:-2], np.roll(weights[-2], 1, axis=1), np.roll(weights[-1], 1)])
    parity = compare_outputs(wrong, result.path, x)
    with pytest.raises(VerificationError, match="logits differ from Keras"):
        parity.check(quantize)


def test_vanishing_logits_say_not_checked(tmp_path):
    # Three SE-halved blocks of Glorot convolutions: an untrained MobileNet's ~1e-20 logits in miniature.
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for _ in range(3):
        x = keras.layers.Conv2D(8, 3, padding="same", kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3))(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    with pytest.warns(LogitsNotCheckedWarning, match="logits not checked: n/a: Keras' logits are ~"):
        result = to_tflite(model, tmp_path / "m.tflite", quantize="float16")
    assert result.parity.logits_not_checked.startswith("n/a") and "trained_like_copy" in str(result.parity)
