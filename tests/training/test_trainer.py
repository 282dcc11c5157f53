"""Tests for keras_se.training.trainer: float + QAT training to an int8 file,
checkpoints, bad input, and tf.distribute (mirrored on two logical CPUs
matches one device)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from keras_se.quantization import float_ops
from keras_se.training import load_digits, make_strategy, synchronize_batchnorm, train

TINY = {"alpha": 0.25, "dropout": 0.0}


@pytest.fixture(scope="module")
def digits():
    (x, y), (x_test, y_test) = load_digits()
    return (x[:192], y[:192]), (x_test[:64], y_test[:64])


def test_make_strategy():
    assert make_strategy("default") is tf.distribute.get_strategy()
    with pytest.raises(ValueError, match="strategy must be one of"):
        make_strategy("tpu")


def test_multi_worker_without_cluster_is_one_worker():
    # MultiWorkerMirroredStrategy reads TF_CONFIG; without it, this machine alone.
    code = "from keras_se.training import make_strategy; print(make_strategy('multi_worker').num_replicas_in_sync)"
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-1] == "1"


@pytest.mark.large  # default-run budget: the digits test trains float + QAT to int8
def test_float_and_qat_to_int8_with_checkpoints(digits, tmp_path):
    result = train("se_mobilenet", digits[0], digits[1], epochs=1, qat_epochs=1, batch_size=64, model_kwargs=TINY, output_dir=tmp_path)
    names = sorted(os.listdir(tmp_path))
    assert names == ["checkpoints", "model.keras", "model_int8.tflite", "train.json"]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["float-epoch001.weights.h5", "qat-epoch001.weights.h5"]
    assert float_ops(result.files["int8_tflite"]) == []
    assert set(result.metrics) == {"float_accuracy", "qat_accuracy", "int8_tflite_accuracy"}
    assert result.replicas == 1 and len(result.history["loss"]) == 1 and len(result.qat_history["loss"]) == 1
    record = json.loads((tmp_path / "train.json").read_text())
    assert record["metrics"] == result.metrics and record["files"]["model"] == str(tmp_path / "model.keras")
    with pytest.raises(FileExistsError, match="model.keras exists"):
        train("se_mobilenet", digits[0], epochs=1, model_kwargs=TINY, output_dir=tmp_path)


@pytest.mark.large  # default-run budget: chief-only outputs, one process; the two-worker run is xlarge
def test_a_worker_other_than_the_chief_reports_no_files(digits, tmp_path, monkeypatch):
    from keras_se.training import trainer

    monkeypatch.setattr(trainer, "_is_chief", lambda strategy: False)  # as a multi_worker worker 1 is
    result = train("se_mobilenet", digits[0], epochs=1, model_kwargs=TINY, output_dir=tmp_path / "run")
    assert result.files == {} and not (tmp_path / "run").exists()


@pytest.mark.parametrize("flavour", ["keras", "tf_keras"])
def test_checkpoint_bytes_load_as_save_weights_files(tmp_path, flavour):
    import importlib

    from keras_se.training.trainer import checkpoint_callback

    module = importlib.import_module(flavour)
    inputs = module.Input((4,))
    model = module.Model(inputs, module.layers.Dense(3)(module.layers.BatchNormalization()(inputs)))
    callback = checkpoint_callback(module, str(tmp_path / "w-{epoch:03d}.weights.h5"))
    callback.set_model(model)
    callback.on_epoch_end(1)
    twin = module.models.clone_model(model)
    twin.load_weights(tmp_path / "w-002.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), twin.get_weights()))
    assert any(np.any(w != 0) for w in twin.get_weights())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model": 3}, "model must be a registry name"),
        ({"model": "se_mobilenett"}, "Did you mean: se_mobilenet"),
        ({"model_kwargs": {"classes": 3}}, "model_kwargs must not set classes"),
        ({"model_kwargs": {**TINY, "features_only": True}}, r"train fits a classifier.*Received: features_only=True"),
        ({"model_kwargs": {**TINY, "include_top": False}}, r"train fits a classifier.*Received: include_top=False"),
        ({"epochs": -1}, "epochs must be an int >= 0"),
        ({"epochs": 0, "qat_epochs": 0}, "Nothing to train"),
        ({"batch_size": 0}, "batch_size must be a positive int"),
        ({"strategy": "tpu"}, "strategy must be one of"),
        (
            {"train_data": (np.zeros((0, 32, 32, 3)), np.zeros(0, "int32"))},
            r"train_data is empty; expected images of shape \(N, height, width, channels\)",
        ),
        ({"train_data": (np.zeros((4, 32, 32)), np.zeros(4, "int32"))}, r"train_data must have shape \(N, height, width, channels\)"),
        (
            {"validation_data": (np.zeros((4, 28, 28, 3)), np.zeros(4, "int32"))},
            r"validation_data must have shape \(N, 32, 32, 3\). Received: shape=\(4, 28, 28, 3\)",
        ),
        ({"train_data": tf.data.Dataset.from_tensor_slices((np.zeros((4, 32, 32, 3)), np.zeros(4))).batch(2)}, "classes is required"),
    ],
)
def test_bad_input_fails_before_training(digits, kwargs, message):
    args = {"model": "se_mobilenet", "train_data": digits[0], "epochs": 1, "model_kwargs": TINY, **kwargs}
    with pytest.raises(ValueError, match=message):
        train(args.pop("model"), args.pop("train_data"), **args)


def test_synchronize_batchnorm_both_kerases():
    import keras_se
    from keras_se.quantization import quantize_model

    model = keras_se.create_model("se_mobilenet", input_shape=(32, 32, 3), classes=10, **TINY)
    assert synchronize_batchnorm(model) == 27  # stem + 2 per block x 13
    qat = quantize_model(model)
    assert synchronize_batchnorm(qat) == 27


MIRRORED = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    # Two logical CPU devices: must be set before TensorFlow initialises them.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    import keras_se
    from keras_se.training import load_digits, make_strategy, train

    (x, y), _ = load_digits()
    x, y = x[:64], y[:64]
    options = {"alpha": 0.25, "dropout": 0.0}
    keras.utils.set_random_seed(0)  # train() seeds the same way: same initial weights
    start = [w.numpy() for w in keras_se.create_model("se_mobilenet", input_shape=(32, 32, 3), classes=10, **options).trainable_weights]
    out = {}
    # One MirroredStrategy for both runs: two in a process clash in their collectives.
    mirrored = make_strategy("mirrored")
    for label, strategy, sync in (("one", "default", True), ("mirrored", mirrored, True), ("mirrored_unsynced", mirrored, False)):
        # One global batch of 64, one SGD step: the update is -lr * gradient.
        r = train("se_mobilenet", (x, y), epochs=1, batch_size=64, optimizer="sgd", learning_rate=0.1,
                  strategy=strategy, sync_batchnorm=sync, seed=0, model_kwargs=options)
        update = np.concatenate([(w.numpy() - w0).ravel() for w, w0 in zip(r.model.trainable_weights, start)])
        out[label] = {"replicas": r.replicas, "loss": r.history["loss"][0], "update": update}
    reference = out["one"]["update"]
    json.dump({k: {"replicas": v["replicas"], "loss": v["loss"],
                   "update_error": float(np.linalg.norm(v["update"] - reference) / np.linalg.norm(reference))}
               for k, v in out.items()}, sys.stdout)
    """
)


@pytest.mark.large
def test_mirrored_on_two_cpus_matches_one_device():
    run = subprocess.run(
        [sys.executable, "-c", MIRRORED], capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["one"]["replicas"] == 1 and out["mirrored"]["replicas"] == 2
    # The same 64 images and initial weights, the global batch split 32 + 32.
    # Not equal to rounding: Keras' synchronised BatchNorm computes the
    # variance as E[x^2] - E[x]^2 from all-reduced sums, whose float32
    # cancellation error shows in the loss (measured 1.9e-5 relative) and,
    # amplified by a 28-layer backward pass, in the SGD update (measured
    # 2.6 % of its norm). Per-replica BatchNorm statistics are a different
    # function altogether (loss 1.9e-3 relative, update error above 100 %):
    # both checks tell the two apart.
    loss = out["one"]["loss"]
    assert abs(out["mirrored"]["loss"] - loss) < 2e-4 * loss, out
    assert abs(out["mirrored_unsynced"]["loss"] - loss) > 1e-3 * loss, out
    assert out["mirrored"]["update_error"] < 0.05, out
    assert out["mirrored_unsynced"]["update_error"] > 0.5, out


def test_training_on_digits_learns_and_the_int8_file_keeps_it(tmp_path):
    # Chance is 10 %. Measured (SE-ResNet-18, 32x32 digits, 4 float epochs + 1 QAT
    # epoch, Adam 1e-3): 97 % float, 98 % QAT, 98 % in the int8 file on 450 test images.
    (x, y), (x_test, y_test) = load_digits()
    result = train("se_resnet18", (x, y), (x_test, y_test), epochs=4, qat_epochs=1, batch_size=64, output_dir=tmp_path)
    assert result.metrics["float_accuracy"] >= 0.85, result.metrics
    assert result.metrics["int8_tflite_accuracy"] >= 0.85, result.metrics
    # The int8 file keeps what the QAT model learnt: within 2 points (9 of
    # 450 images) of the fake-quantised Keras model on the same images; a
    # file with a wrong range or a lost BN fold falls towards chance.
    assert abs(result.metrics["int8_tflite_accuracy"] - result.metrics["qat_accuracy"]) <= 0.02, result.metrics
    assert float_ops(result.files["int8_tflite"]) == []
