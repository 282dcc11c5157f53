"""Training a keras_se model: float, then optionally quantisation-aware, on
one device or several through `tf.distribute`.

`train` builds the model inside the strategy's scope, fits it in float
(Keras 3), and with `qat_epochs > 0` fine-tunes the tf_keras QAT model from
`keras_se.quantization.quantize_model` and converts it to a fully int8 TFLite
file. Checkpoints, the float `.keras` model, the int8 file and a JSON record
go to `output_dir`.
"""

import dataclasses
import functools
import json
import os

import numpy as np

from keras_se.training import data as _data
from keras_se.training import distribute as _distribute

STRATEGIES = ("default", "mirrored", "multi_worker")
OPTIMIZERS = ("adam", "sgd")


def make_strategy(name="default", devices=None, timeout=_distribute.CONNECT_TIMEOUT):
    """A `tf.distribute` strategy by name.

    Args:
        name: str. `"default"` (one device), `"mirrored"` (synchronous
            data parallelism over this machine's GPUs, or over its logical
            CPU devices when it has no GPU) or `"multi_worker"`
            (`MultiWorkerMirroredStrategy`: the cluster comes from the
            `TF_CONFIG` environment variable; one worker without it).
        devices: optional list of device names for `"mirrored"`.
        timeout: float. Seconds `"multi_worker"` waits for its peers
            (`keras_se.training.distribute.multi_worker_strategy`); create
            that strategy before any TensorFlow op runs.

    Returns:
        A `tf.distribute.Strategy`.
    """
    import tensorflow as tf

    from keras_se.layers._utils import check_choice

    check_choice("strategy", name, STRATEGIES)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if devices is None:
            devices = [d.name for d in tf.config.list_logical_devices("GPU")]
            devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return _distribute.multi_worker_strategy(timeout)


_is_chief = _distribute.is_chief


def synchronize_batchnorm(model):
    """Makes every BatchNormalization of `model` use global-batch statistics.

    Under a multi-replica strategy each replica sees `batch / replicas`
    images; synchronised BN computes the batch statistics over all of them,
    so training on N devices matches training on one (and small per-device
    batches do not make BN noisy). Works on Keras 3 and tf_keras (QAT)
    models. Returns the number of layers changed.
    """
    import keras
    import tf_keras

    changed = 0
    for layer in model.layers:
        layer = getattr(layer, "layer", layer)  # inside a tfmot wrapper
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
            changed += 1
        elif isinstance(layer, tf_keras.layers.BatchNormalization):
            layer.synchronized = True
            layer.fused = False  # tf_keras' fused kernel cannot synchronise
            changed += 1
    return changed


def _format_logs(logs):
    return "  ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items() if isinstance(v, (int, float, np.floating)))


def progress_callback(callbacks_module, label, console=None):
    """A rich progress bar per epoch, as a callback of `callbacks_module`
    (`keras.callbacks` or `tf_keras.callbacks`)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Column

    console = console or Console(stderr=True)

    class RichProgress(callbacks_module.Callback):
        def on_train_begin(self, logs=None):
            self._bar = Progress(
                TextColumn("{task.description}", table_column=Column(no_wrap=True)),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                # Metrics last: the column that gets cut on a narrow console.
                TextColumn("{task.fields[metrics]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
                console=console,
            )
            self._bar.start()

        def on_epoch_begin(self, epoch, logs=None):
            total = self.params.get("epochs")
            self._task = self._bar.add_task(f"{label} {epoch + 1}/{total}", total=self.params.get("steps"), metrics="")

        def on_train_batch_end(self, batch, logs=None):
            self._bar.update(self._task, advance=1, metrics=_format_logs(logs))

        def on_epoch_end(self, epoch, logs=None):
            self._bar.update(self._task, metrics=_format_logs(logs))

        def on_train_end(self, logs=None):
            self._bar.stop()

    return RichProgress()


@dataclasses.dataclass
class TrainResult:
    """What `train` produced."""

    model: object  # the float Keras 3 model
    qat_model: object  # the tf_keras QAT model, or None
    history: dict  # float training: metric -> per-epoch values
    qat_history: dict  # QAT fine-tuning, empty without QAT
    metrics: dict  # final accuracies: float, qat and int8 TFLite (on the validation data)
    files: dict  # role -> path written
    replicas: int
    cluster: dict = dataclasses.field(default_factory=dict)  # workers, global batch

    def to_dict(self):
        return {
            "history": self.history,
            "qat_history": self.qat_history,
            "metrics": self.metrics,
            "files": self.files,
            "replicas": self.replicas,
            "cluster": self.cluster,
        }


def _as_dataset(data, batch_size, shuffle, seed, input_shape, name, augment=False):
    import tensorflow as tf

    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = _data.check_arrays(data[0], data[1], input_shape, name=name)
        dataset = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size)
    else:
        _data.check_dataset(data, input_shape, name=name)
        dataset = data
    if augment:
        dataset = dataset.map(_data.random_shift(input_shape, seed), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _input_shape(data, name):
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, _ = _data.check_arrays(data[0], data[1], name=name)
        return tuple(x.shape[1:])
    return _data.check_dataset(data, name=name)


def _arrays(data):
    """(x, y) arrays of a pair or a (finite) batched dataset."""
    if isinstance(data, (tuple, list)):
        return _data.check_arrays(data[0], data[1])
    xs, ys = [], []
    for x, y in data:
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
    return np.concatenate(xs), np.concatenate(ys)


def _schedule(module, learning_rate, epochs, steps):
    """Cosine decay to zero over the run (constant if the length is unknown):
    the last epochs settle instead of ending on a noisy step."""
    if steps <= 0 or epochs == 0:
        return learning_rate
    return module.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs * steps)


def _optimizer(module, name, learning_rate):
    if name == "sgd":
        return module.optimizers.SGD(learning_rate, momentum=0.9)
    return module.optimizers.Adam(learning_rate)


def tflite_accuracy(tflite, x, y):
    """Top-1 accuracy of a TFLite model (path or bytes) on images `x`, labels `y`.

    Runs LiteRT at batch 1, as a phone would; int8 inputs are quantised with
    the model's own input scale.
    """
    from keras_se.export.verify import run_tflite

    outputs = run_tflite(tflite, x)
    return float(np.mean(outputs.reshape(len(x), -1).argmax(axis=1) == np.asarray(y)))


def output_names(qat):
    """The files `train` writes into `output_dir` (besides checkpoints/)."""
    return ["model.keras", "train.json"] + (["model_int8.tflite"] if qat else [])


def _prepare_output_dir(output_dir, overwrite, qat):
    if output_dir is None:
        return None
    output_dir = os.fspath(output_dir)
    os.makedirs(os.path.join(output_dir, "checkpoints"), exist_ok=True)
    existing = [n for n in output_names(qat) if os.path.exists(os.path.join(output_dir, n))]
    if existing and not overwrite:
        raise FileExistsError(f"{os.path.join(output_dir, existing[0])} exists; pass overwrite=True (--force) to replace it")
    return output_dir


def _compiled(module, build, strategy, sync_batchnorm, optimizer, learning_rate, epochs, steps):
    """`build()` under the strategy, compiled for sparse labels; `module` is keras or tf_keras."""
    with strategy.scope():
        net = build()
        if sync_batchnorm:
            synchronize_batchnorm(net)
        net.compile(
            optimizer=_optimizer(module, optimizer, _schedule(module, learning_rate, epochs, steps)),
            loss=module.losses.SparseCategoricalCrossentropy(),
            metrics=["accuracy"],
        )
    return net


def _fit(module, net, label, epochs, train_ds, val_ds, output_dir, progress):
    """Fits with per-epoch weight checkpoints and progress; returns the history as floats."""
    callbacks = []
    if output_dir:
        checkpoint = os.path.join(output_dir, "checkpoints", f"{label.lower()}-epoch{{epoch:03d}}.weights.h5")
        callbacks.append(module.callbacks.ModelCheckpoint(checkpoint, save_weights_only=True))
    if progress:
        callbacks.append(progress_callback(module.callbacks, label))
    if _distribute.is_multi_worker(net.distribute_strategy):  # Keras 3 fit fails there (see distribute)
        return _distribute.fit(module, net, label, epochs, train_ds, val_ds, callbacks, output_dir)
    # shuffle=False: the dataset shuffles itself (Keras warns otherwise).
    fit = net.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=0, shuffle=False)
    return {k: [float(v) for v in values] for k, values in fit.history.items()}


def _accuracy(net, dataset):
    if _distribute.is_multi_worker(net.distribute_strategy):
        return _distribute.evaluate(net, dataset)["accuracy"]
    return float(net.evaluate(dataset, verbose=0, return_dict=True)["accuracy"])


def train(
    model,
    train_data,
    validation_data=None,
    *,
    classes=None,
    epochs=10,
    batch_size=64,
    learning_rate=1e-3,
    optimizer="adam",
    qat_epochs=0,
    qat_learning_rate=None,
    strategy="default",
    sync_batchnorm=True,
    output_dir=None,
    overwrite=False,
    seed=0,
    progress=False,
    augment=False,
    model_kwargs=None,
):
    """Trains a registered keras_se model, optionally with QAT to int8.

    Args:
        model: str. A registry name (`keras_se.list_models()`); the model is
            built for the data's image size and `classes`.
        train_data: `(x, y)` arrays (images (N, H, W, C) in the model's
            input range, integer labels) or a batched `tf.data.Dataset`
            of (images, labels), e.g. from `image_directory`.
        validation_data: same forms, optional. Final accuracies are
            measured on it.
        classes: int or None. Number of classes; inferred from array labels.
        epochs: int, defaults to 10. Float epochs (0 to skip).
        batch_size: int, defaults to 64. Global batch (split across
            replicas) for array data.
        learning_rate: float, defaults to 1e-3. Decays to 0 along a cosine
            over the epochs (and again over the QAT epochs).
        optimizer: `"adam"` (default) or `"sgd"` (momentum 0.9).
        qat_epochs: int, defaults to 0. Quantisation-aware fine-tuning
            epochs after float training; > 0 also writes the int8 TFLite file.
        qat_learning_rate: float or None. Defaults to `learning_rate / 10`.
        strategy: `"default"`, `"mirrored"` or `"multi_worker"`
            (`make_strategy`), or a `tf.distribute.Strategy`.
        sync_batchnorm: bool, defaults to True. With several replicas, BN
            uses the global batch (`synchronize_batchnorm`).
        output_dir: optional path: `checkpoints/` (weights every epoch),
            `model.keras` (float), `model_int8.tflite` (with QAT) and
            `train.json` (histories, accuracies, files).
        overwrite: bool, defaults to False. Replace existing outputs.
        seed: int, defaults to 0. Weights, shuffling and dropout.
        progress: bool, defaults to False. Rich progress bars on stderr.
        augment: bool, defaults to False. Random shifts of up to 1/16 of the
            image size (zero padding, random crop) for the training data.
        model_kwargs: dict, optional builder arguments (`alpha`, `se_gate`, ...).

    Returns:
        `TrainResult`.

    Raises:
        ValueError: bad arguments, or empty or wrongly shaped data (the
            message names the expected shape).

    Example:

    >>> (x, y), (x_test, y_test) = keras_se.training.load_digits()
    >>> result = keras_se.training.train("se_mobilenet", (x, y), (x_test, y_test),
    ...                                  epochs=60, learning_rate=3e-3, augment=True, qat_epochs=5,
    ...                                  model_kwargs={"alpha": 0.5, "se_gate": "hard_sigmoid"},
    ...                                  output_dir="runs/digits")
    >>> result.metrics  # float_accuracy, qat_accuracy, int8_tflite_accuracy
    """
    import keras

    import keras_se
    from keras_se.layers._utils import check_choice, check_positive_int, check_positive_number

    if not isinstance(model, str):
        raise ValueError(f"model must be a registry name (see keras_se.list_models()). Received: model={model!r}")
    keras_se.models.registry.get_entry(model)  # unknown names fail before any work
    reserved = sorted(set(model_kwargs or {}) & {"input_shape", "input_tensor", "classes", "flavour"})
    if reserved:
        raise ValueError(f"model_kwargs must not set {', '.join(reserved)}: train sets them. Received: model_kwargs={model_kwargs!r}")
    for arg, value in (("epochs", epochs), ("qat_epochs", qat_epochs)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{arg} must be an int >= 0. Received: {arg}={value!r}")
    if epochs + qat_epochs == 0:
        raise ValueError("Nothing to train: epochs and qat_epochs are both 0.")
    check_positive_int("batch_size", batch_size)
    check_positive_number("learning_rate", learning_rate)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    qat_learning_rate = learning_rate / 10 if qat_learning_rate is None else check_positive_number("qat_learning_rate", qat_learning_rate)
    input_shape = _input_shape(train_data, "train_data")
    if classes is None:
        if not isinstance(train_data, (tuple, list)):
            raise ValueError("classes is required with a tf.data.Dataset (e.g. len(class_names)).")
        classes = int(np.max(np.asarray(train_data[1]))) + 1
    check_positive_int("classes", classes)
    if isinstance(strategy, str):
        strategy = make_strategy(strategy)
    chief = _is_chief(strategy)
    if chief:
        output_dir = _prepare_output_dir(output_dir, overwrite, qat_epochs > 0)
    elif output_dir is not None:
        output_dir = _prepare_output_dir(_distribute.scratch_dir(), True, qat_epochs > 0)  # only the chief keeps files

    keras.utils.set_random_seed(seed)
    train_ds = _as_dataset(train_data, batch_size, True, seed, input_shape, "train_data", augment)
    val_ds = None if validation_data is None else _as_dataset(validation_data, batch_size, False, seed, input_shape, "validation_data")
    replicas = strategy.num_replicas_in_sync
    files = {}

    steps = int(train_ds.cardinality())
    stage = dict(strategy=strategy, sync_batchnorm=replicas > 1 and sync_batchnorm, optimizer=optimizer, steps=steps)
    build = functools.partial(keras_se.create_model, model, input_shape=input_shape, classes=classes, **(model_kwargs or {}))
    net = _compiled(keras, build, learning_rate=learning_rate, epochs=epochs, **stage)
    run = dict(train_ds=train_ds, val_ds=val_ds, output_dir=output_dir, progress=progress)
    history = _fit(keras, net, "float", epochs, **run) if epochs else {}

    metrics = {}
    if validation_data is not None:
        metrics["float_accuracy"] = _accuracy(net, val_ds)
    if output_dir:
        files["model"] = os.path.join(output_dir, "model.keras")
        net.save(files["model"])

    qat_model, qat_history = None, {}
    if qat_epochs:
        import tf_keras

        from keras_se.quantization import quantize_model

        qat_model = _compiled(tf_keras, functools.partial(quantize_model, net), learning_rate=qat_learning_rate, epochs=qat_epochs, **stage)
        qat_history = _fit(tf_keras, qat_model, "QAT", qat_epochs, **run)
        if validation_data is not None:
            metrics["qat_accuracy"] = _accuracy(qat_model, val_ds)
        if output_dir:
            from keras_se.export import to_tflite

            files["int8_tflite"] = os.path.join(output_dir, "model_int8.tflite")
            to_tflite(_distribute.exportable(qat_model), files["int8_tflite"], quantize="int8", overwrite=True)
            if validation_data is not None:
                x, y = _arrays(validation_data)
                metrics["int8_tflite_accuracy"] = tflite_accuracy(files["int8_tflite"], x, y)

    cluster = _distribute.cluster_of(strategy)
    workers = cluster.num_workers if cluster else 1
    batch = batch_size if isinstance(train_data, (tuple, list)) else _distribute.global_batch(train_ds)
    result = TrainResult(net, qat_model, history, qat_history, metrics, files, replicas, {"workers": workers, "global_batch": batch})
    if output_dir:
        files["record"] = os.path.join(output_dir, "train.json")
        from keras_se.io_utils import write_atomic

        write_atomic(files["record"], json.dumps(result.to_dict(), indent=2) + "\n", overwrite=True)
    _distribute.remove_backups(output_dir)
    return result
