"""Training a keras_se model: float, then optionally quantisation-aware, on
one device or several through `tf.distribute`.

`train` builds the model inside the strategy's scope, fits it in float
(Keras 3), and with `qat_epochs > 0` fine-tunes the tf_keras QAT model from
`keras_se.quantization.quantize_model` and converts it to a fully int8 TFLite
file. Checkpoints, the float `.keras` model, the int8 file and a JSON record
go to `output_dir`.
"""

import contextlib
import dataclasses
import functools
import json
import os
import re

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


_RUN_FILE = re.compile(r"(model\.keras|train\.json|model_int8\.tflite|checkpoints|checkpoints/(float|qat)-epoch\d+\.weights\.h5)$")


def _is_run_file(relative_path):
    """Whether a path inside an output folder is one a training run writes."""
    return bool(_RUN_FILE.match(relative_path.replace(os.sep, "/")))


def check_output_dir(output_dir, overwrite=False):
    """Checks `output_dir` before any work: missing, empty, or a previous run's
    folder (replaced only with `overwrite`); never a folder with other files.

    Raises:
        FileExistsError, NotADirectoryError, ValueError, OSError (its parent
            cannot be written).
    """
    if output_dir is None:
        return None
    from keras_se.io_utils import check_replaceable_directory

    output_dir = os.fspath(output_dir)
    check_replaceable_directory(output_dir, overwrite, _is_run_file)
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    import tempfile

    os.rmdir(tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(output_dir))}.", suffix=".probe", dir=parent))
    return output_dir


class RunOutputs:
    """Where a run writes (`staging`) and what it records (`final(name)`)."""

    def __init__(self, output_dir, staging):
        self.output_dir, self.staging = output_dir, staging

    def final(self, name):
        return os.path.join(self.output_dir, name)


@contextlib.contextmanager
def write_run_outputs(output_dir, overwrite=False, chief=True):
    """The one place a training run's outputs are written.

    Yields a `RunOutputs` whose `staging` folder receives every file of the
    run (checkpoints/, model.keras, model_int8.tflite, train.json); when the
    block ends without an error the staged folder replaces `output_dir` as a
    whole (`keras_se.io_utils.staged_directory`): `output_dir` then holds
    exactly this run's files, never a previous run's beside them. An error,
    Ctrl-C or SIGTERM leaves `output_dir` as it was. A process that is not
    the chief of a cluster writes into a temporary folder that is deleted.
    With `output_dir` None, `staging` is None.
    """
    if output_dir is None:
        yield RunOutputs(None, None)
        return
    output_dir = os.fspath(output_dir)
    if not chief:
        import shutil
        import tempfile

        staging = tempfile.mkdtemp(prefix="keras_se_worker_")  # only the chief keeps files
        try:
            os.makedirs(os.path.join(staging, "checkpoints"))
            yield RunOutputs(output_dir, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return
    from keras_se.io_utils import staged_directory

    with staged_directory(output_dir, overwrite, allowed=_is_run_file) as staging:
        os.makedirs(os.path.join(staging, "checkpoints"))
        yield RunOutputs(output_dir, staging)


def _build_model(name, weights, kwargs):
    """The model to train, with `weights`; pretrained (hub or timm) weights of
    1000 classes fill the backbone of a model with other classes, whose
    classifier starts anew."""
    import keras_se
    from keras_se.weights import TIMM_SUFFIXES
    from keras_se.weights.pretrained import HF_PREFIX

    pretrained = isinstance(weights, str) and (weights == "imagenet" or weights.startswith(HF_PREFIX) or weights.endswith(TIMM_SUFFIXES))
    if not pretrained or kwargs["classes"] == 1000:
        return keras_se.create_model(name, weights=weights, **kwargs)
    backbone = keras_se.create_model(name, weights=weights, **{**kwargs, "include_top": False, "classes": 1000})
    config = dict(backbone.get_config(), include_top=True, classes=kwargs["classes"])
    net = type(backbone).from_config(config)
    for layer in backbone.layers:
        if layer.weights:
            net.get_layer(layer.name).set_weights(layer.get_weights())
    return net


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


def weights_bytes(module, model):
    """The `.weights.h5` file `model.save_weights` would write, built in memory.

    `module` is keras or tf_keras; both write the file through their
    `saving_lib` (pinned versions, see setup.cfg), here into a buffer.
    """
    import importlib
    import io

    saving_lib = importlib.import_module(f"{module.__name__}.src.saving.saving_lib")
    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    saving_lib._save_state(model, store, None, "", set())
    store.close()
    return buffer.getvalue()


def checkpoint_callback(module, path):
    """A `module.callbacks.Callback` that writes the weights to `path`
    (formatted with `epoch`, from 1) after every epoch, as
    `ModelCheckpoint(path, save_weights_only=True)` does.

    ModelCheckpoint lets h5py write the file: on a full disk h5py raises a
    multi-line error with the errno inside its text, prints "Exception
    ignored" tracebacks as it frees the failed file, and can crash the
    process at exit. The file is built in memory instead and written with
    plain file I/O, whose failure is one `OSError` with its errno.
    """

    class Checkpoint(module.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            data = weights_bytes(module, self.model)
            target = path.format(epoch=epoch + 1)
            try:
                with open(target, "wb") as handle:
                    handle.write(data)
            except OSError as error:
                where = os.path.join(*target.split(os.sep)[-2:])  # checkpoints/<file>: the staging folder is hidden
                raise OSError(error.errno, f"{error.strerror} (writing {where})") from None

    return Checkpoint()


def _fit(module, net, label, epochs, train_ds, val_ds, output_dir, progress, backups=None):
    """Fits with per-epoch weight checkpoints and progress; returns the history as floats.

    Under `multi_worker`, `backups` is the folder of the per-epoch backups a
    restarted cluster resumes from (kept outside the staged outputs).
    """
    callbacks = []
    if output_dir:
        checkpoint = os.path.join(output_dir, "checkpoints", f"{label.lower()}-epoch{{epoch:03d}}.weights.h5")
        callbacks.append(checkpoint_callback(module, checkpoint))
    if progress:
        callbacks.append(progress_callback(module.callbacks, label))
    if _distribute.is_multi_worker(net.distribute_strategy):  # Keras 3 fit fails there (see distribute)
        return _distribute.fit(module, net, label, epochs, train_ds, val_ds, callbacks, backups)
    # shuffle=False: the dataset shuffles itself (Keras warns otherwise).
    fit = net.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=0, shuffle=False)
    return {k: [float(v) for v in values] for k, values in fit.history.items()}


def _accuracy(net, dataset):
    if _distribute.is_multi_worker(net.distribute_strategy):
        return _distribute.evaluate(net, dataset)["accuracy"]
    return float(net.evaluate(dataset, verbose=0, return_dict=True)["accuracy"])


def check_model_kwargs(model, model_kwargs):
    """Unknown builder arguments fail before any data is read, naming the argument.

    `train` fits a classifier: a `features_only` backbone (a list of
    feature maps) or a model without its top has no class scores to fit.
    """
    import keras_se

    for key, refused in (("features_only", True), ("include_top", False)):
        if key in model_kwargs and bool(model_kwargs[key]) is refused:
            raise ValueError(
                f"train fits a classifier, and {key}={model_kwargs[key]!r} builds a model without one "
                f"(fine-tune a classifier, then build the backbone from its weights). Received: {key}={model_kwargs[key]!r}"
            )
    arguments = {key: value for key, value in model_kwargs.items() if key != "name"}
    keras_se.models.registry.get_entry(model).cls.architecture(**arguments)


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
    weights=None,
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
        weights: None (default), or the weights to start from (as
            `create_model`'s `weights`): `"imagenet"`,
            `"hf://timm/<name>.<tag>"` or a file. Pretrained ImageNet or timm
            weights fill the backbone; with another number of classes than
            their 1000 the classifier starts anew (fine-tuning).

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
    if weights == "imagenet":
        keras_se.weights.pretrained.imagenet_source(model)  # so does a model without ImageNet weights
    reserved = sorted(set(model_kwargs or {}) & {"input_shape", "input_tensor", "classes", "flavour"})
    if reserved:
        raise ValueError(f"model_kwargs must not set {', '.join(reserved)}: train sets them. Received: model_kwargs={model_kwargs!r}")
    check_model_kwargs(model, model_kwargs or {})
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
    check_output_dir(output_dir, overwrite)
    chief = _is_chief(strategy)
    # Backups live beside the staged outputs, so that a killed run leaves them
    # to resume from; a worker other than the chief keeps none.
    backups = _distribute.backup_root(output_dir) if output_dir and chief else None
    with write_run_outputs(output_dir, overwrite, chief=chief) as outputs:
        output_dir = outputs.staging  # everything is written here, then swapped into place
        backups = backups or (os.path.join(output_dir, "backup") if output_dir else None)
        keras.utils.set_random_seed(seed)
        train_ds = _as_dataset(train_data, batch_size, True, seed, input_shape, "train_data", augment)
        val_ds = None if validation_data is None else _as_dataset(validation_data, batch_size, False, seed, input_shape, "validation_data")
        replicas = strategy.num_replicas_in_sync
        files = {}

        steps = int(train_ds.cardinality())
        stage = dict(strategy=strategy, sync_batchnorm=replicas > 1 and sync_batchnorm, optimizer=optimizer, steps=steps)
        build = functools.partial(_build_model, model, weights, dict(input_shape=input_shape, classes=classes, **(model_kwargs or {})))
        net = _compiled(keras, build, learning_rate=learning_rate, epochs=epochs, **stage)
        run = dict(train_ds=train_ds, val_ds=val_ds, output_dir=output_dir, progress=progress, backups=backups)
        history = _fit(keras, net, "float", epochs, **run) if epochs else {}

        metrics = {}
        if validation_data is not None:
            metrics["float_accuracy"] = _accuracy(net, val_ds)
        if output_dir:
            net.save(os.path.join(output_dir, "model.keras"))
            files["model"] = outputs.final("model.keras")

        qat_model, qat_history = None, {}
        if qat_epochs:
            import tf_keras

            from keras_se.quantization import quantize_model

            qat_model = _compiled(
                tf_keras, functools.partial(quantize_model, net), learning_rate=qat_learning_rate, epochs=qat_epochs, **stage
            )
            qat_history = _fit(tf_keras, qat_model, "QAT", qat_epochs, **run)
            if validation_data is not None:
                metrics["qat_accuracy"] = _accuracy(qat_model, val_ds)
            if output_dir:
                from keras_se.export import to_tflite

                to_tflite(_distribute.exportable(qat_model), os.path.join(output_dir, "model_int8.tflite"), quantize="int8")
                files["int8_tflite"] = outputs.final("model_int8.tflite")
                if validation_data is not None:
                    x, y = _arrays(validation_data)
                    metrics["int8_tflite_accuracy"] = tflite_accuracy(os.path.join(output_dir, "model_int8.tflite"), x, y)

        cluster = _distribute.cluster_of(strategy)
        workers = cluster.num_workers if cluster else 1
        batch = batch_size if isinstance(train_data, (tuple, list)) else _distribute.global_batch(train_ds)
        result = TrainResult(net, qat_model, history, qat_history, metrics, files, replicas, {"workers": workers, "global_batch": batch})
        if output_dir:
            files["record"] = outputs.final("train.json")
            with open(os.path.join(output_dir, "train.json"), "w") as handle:  # staged: swapped in as a whole
                handle.write(json.dumps(result.to_dict(), indent=2) + "\n")
    _distribute.remove_backups(backups)
    if not chief:
        result.files = {}  # its files were in a temporary folder, now deleted: the chief's are the run's
    return result
