"""Training across processes with `tf.distribute.MultiWorkerMirroredStrategy`.

Everything the multi-worker path needs lives here:

- `parse_tf_config`: the `TF_CONFIG` cluster, validated, with one-line errors.
- `multi_worker_strategy`: creates the strategy before anything initialises
  TensorFlow's context (collective ops can only be configured then), after
  checking within a bounded time that every peer answers; an unreachable
  peer is named in a one-line error instead of TensorFlow waiting forever.
- `fit` / `evaluate`: the workaround for Keras 3. `Model.fit` and
  `Model.evaluate` of Keras 3.15 fail under `MultiWorkerMirroredStrategy`
  ("Attempt to convert a value (PerReplica:{...}) to a Tensor",
  https://github.com/keras-team/keras/issues/20585 and
  https://github.com/tensorflow/tensorflow/issues/72388, both open). `fit`
  is a distributed custom training step over `strategy.run` with the model's
  own compiled loss and optimizer, for Keras 3 models and the tf_keras QAT
  model alike, driving the same callbacks `Model.fit` would.
- Multi-worker semantics: the data is sharded per worker (each global batch
  split between the workers, in the order one process would see it); only the
  chief keeps files (`is_chief`), the others write to a scratch folder that
  is removed (`keras_se.training.trainer.write_run_outputs`); a backup after
  every epoch (what Keras' `BackupAndRestore` does), beside the output folder
  (`backup_root`), lets a restarted cluster resume from the last finished
  epoch. A worker that loses a peer mid-run stops with a one-line
  `ClusterError` naming the peers.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import sys
import time
import weakref

# Seconds a worker waits for all its peers to answer before giving up.
CONNECT_TIMEOUT = 300.0
_JOBS = ("chief", "worker")


class ClusterError(ValueError):
    """The cluster cannot be formed or lost a worker (one line, names the
    addresses). A `ValueError`, so the command line reports it as one line."""


@dataclasses.dataclass(frozen=True)
class Cluster:
    """A validated `TF_CONFIG`: the addresses of each job and this task."""

    jobs: dict  # "chief" / "worker" -> list of "host:port"
    task_type: str
    task_index: int

    @property
    def tasks(self):
        """(task type, index, address) of every task, chief first: the order
        of `MultiWorkerMirroredStrategy`'s replicas."""
        return [(job, i, a) for job in _JOBS for i, a in enumerate(self.jobs.get(job, []))]

    @property
    def address(self):
        return self.jobs[self.task_type][self.task_index]

    @property
    def peers(self):
        return [a for job, i, a in self.tasks if (job, i) != (self.task_type, self.task_index)]

    @property
    def num_workers(self):
        return len(self.tasks)

    @property
    def is_chief(self):
        """The `chief` task, or worker 0 in a cluster without one."""
        if "chief" in self.jobs:
            return self.task_type == "chief"
        return self.task_index == 0

    def describe(self):
        return f"{self.task_type} {self.task_index} ({self.address}) of {self.num_workers}"


def _tf_config_error(message):
    return ClusterError(f"TF_CONFIG {message}")


def parse_tf_config(value=None):
    """Reads and checks a `TF_CONFIG` value (default: the environment's).

    Args:
        value: str or None. The JSON text; `os.environ["TF_CONFIG"]` if None.

    Returns:
        A `Cluster`, or None when `TF_CONFIG` is unset or empty (one worker).

    Raises:
        ClusterError: not JSON, no `cluster` or `task`, a job other than
            `chief` and `worker`, an address that is not `host:port`, the same
            address twice, or a task that is not in the cluster.

    Example:

    >>> parse_tf_config('{"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]},'
    ...                 ' "task": {"type": "worker", "index": 1}}').is_chief
    False
    """
    if value is None:
        value = os.environ.get("TF_CONFIG", "")
    if not value.strip():
        return None
    try:
        config = json.loads(value)
    except json.JSONDecodeError as error:
        raise _tf_config_error(f"is not valid JSON ({error}). Received: TF_CONFIG={value!r}") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict) or not config["cluster"]:
        raise _tf_config_error(f'needs a "cluster" object of job -> addresses. Received: TF_CONFIG={value!r}')
    jobs = {}
    for job, addresses in config["cluster"].items():
        if job not in _JOBS:
            raise _tf_config_error(
                f"job {job!r} is not supported: --strategy multi_worker runs 'chief' and 'worker' tasks "
                f"(parameter servers and evaluators belong to other strategies). Received: TF_CONFIG={value!r}"
            )
        if not isinstance(addresses, list) or not addresses:
            raise _tf_config_error(f"job {job!r} must list its addresses. Received: {job}={addresses!r}")
        for address in addresses:
            host, sep, port = str(address).rpartition(":")
            if not isinstance(address, str) or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise _tf_config_error(f"addresses must be 'host:port'. Received: {job} address {address!r}")
        jobs[job] = list(addresses)
    if len(jobs.get("chief", [])) > 1:
        raise _tf_config_error(f"has {len(jobs['chief'])} chiefs; a cluster has at most one. Received: chief={jobs['chief']!r}")
    everything = [a for job in _JOBS for a in jobs.get(job, [])]
    repeated = sorted({a for a in everything if everything.count(a) > 1})
    if repeated:
        raise _tf_config_error(f"lists {repeated[0]} twice: every task needs its own port")
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise _tf_config_error(f'needs "task": {{"type": ..., "index": ...}}. Received: task={task!r}')
    task_type, index = task["type"], task["index"]
    if task_type not in jobs:
        raise _tf_config_error(f"task type {task_type!r} is not a job of the cluster {sorted(jobs)}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(jobs[task_type]):
        raise _tf_config_error(f"task index must be 0..{len(jobs[task_type]) - 1} for job {task_type!r}. Received: index={index!r}")
    return Cluster(jobs, task_type, index)


def cluster_of(strategy):
    """The `Cluster` a strategy runs in, or None outside a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return None
    jobs = {job: list(addresses) for job, addresses in resolver.cluster_spec().as_dict().items()}
    return Cluster(jobs, resolver.task_type, resolver.task_id)


def is_chief(strategy):
    """Whether this process writes the outputs: the chief of a cluster
    (`chief`, or worker 0 where there is none), or a single machine."""
    cluster = cluster_of(strategy)
    return cluster is None or cluster.is_chief


def is_multi_worker(strategy):
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


# What a worker's listener sends each connection while it waits for its
# peers, and what a gRPC server (TensorFlow's, once a worker has started it)
# answers: HTTP/2's client preface with an empty SETTINGS frame gets the
# server's SETTINGS frame (frame type 4, the fourth byte of its header).
_BANNER = b"keras-se worker\n"
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _peer_state(address, timeout=2.0):
    """ "worker" when `address` is a keras-se worker (waiting for its peers,
    or inside TensorFlow's start-up, which serves gRPC), "silent" when its
    port accepts but nothing such answers within `timeout`, None when it
    does not accept."""
    host, _, port = address.rpartition(":")
    try:
        connection = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except OSError:
        return None
    with connection:
        try:
            connection.sendall(_HTTP2_PREFACE)
            reply = b""
            while not _is_worker(reply) and len(reply) < len(_BANNER):
                chunk = connection.recv(64)
                if not chunk:
                    break
                reply += chunk
        except OSError:
            pass
    return "worker" if _is_worker(reply) else "silent"


def _is_worker(reply):
    return reply.startswith(_BANNER) or (len(reply) >= 9 and reply[3] == 4)


def _serve_banner(listener, stop):
    """Answers every connection to `listener` with `_BANNER` until `stop`."""
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            connection, _ = listener.accept()
        except OSError:  # timeout, or the listener closed
            continue
        with contextlib.suppress(OSError), connection:
            connection.sendall(_BANNER)


def wait_for_peers(cluster, timeout=CONNECT_TIMEOUT):
    """Waits until every peer of `cluster` answers as a keras-se worker.

    TensorFlow's own start-up (`MultiWorkerMirroredStrategy()`) blocks in C++
    holding the interpreter when a peer never comes or is no TensorFlow
    worker, and no signal handler runs meanwhile. So each worker first
    listens on its own port, answering peers that are still checking with a
    banner, and checks the others here, where SIGINT and SIGTERM stop it: a
    peer counts once it sends the banner or answers as a gRPC server (a
    worker already inside TensorFlow's start-up). The listener is closed
    before TensorFlow's server takes the port.

    Raises:
        ClusterError: some peers did not answer within `timeout` seconds
            (named with their addresses, and whether their port accepted
            connections), or this task's port is taken.
    """
    import threading

    port = int(cluster.address.rpartition(":")[2])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", port))
    except OSError as error:
        listener.close()
        raise ClusterError(f"{cluster.describe()} cannot listen on port {port}: {error.strerror or error}") from None
    listener.listen(64)
    stop = threading.Event()
    server = threading.Thread(target=_serve_banner, args=(listener, stop), name="keras-se-banner", daemon=True)
    server.start()
    states = {address: None for address in cluster.peers}
    deadline = time.monotonic() + timeout
    try:
        while any(state != "worker" for state in states.values()):
            for address, state in states.items():
                if state != "worker":
                    states[address] = _peer_state(address, timeout=min(2.0, max(0.1, deadline - time.monotonic())))
            if time.monotonic() > deadline:
                parts = [a for a, state in states.items() if state is None]
                silent = [a for a, state in states.items() if state == "silent"]
                if silent:
                    parts.append(f"{', '.join(silent)} (its port accepts connections, but no keras-se worker answers there)")
                if parts:
                    raise ClusterError(
                        f"{cluster.describe()} got no answer within {timeout:g} s from {', '.join(parts)}: "
                        "start every worker of TF_CONFIG (same cluster, its own task), and check hosts, ports and firewalls"
                    )
            if any(state != "worker" for state in states.values()):
                time.sleep(0.5)
    finally:
        stop.set()
        server.join()
        listener.close()


def _configure_coordination(cluster, timeout_ms):
    """TensorFlow's coordination service as `MultiWorkerMirroredStrategy`
    configures it, plus a registration deadline: without one, a peer whose
    port answers TCP but that never replies (no TensorFlow worker behind it)
    keeps `MultiWorkerMirroredStrategy()` waiting for an hour, holding the
    interpreter (no signal handler runs meanwhile)."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=len(cluster.jobs[job])) for job in _JOBS if job in cluster.jobs]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(cluster.jobs),
        coordinated_jobs=jobs,
        cluster_register_timeout_in_ms=max(1, int(timeout_ms)),
    )


@contextlib.contextmanager
def _native_start_up():
    """Signals around TensorFlow's cluster start-up, which blocks in C++
    holding the interpreter (no Python signal handler runs until it returns).

    SIGINT and SIGHUP take the system's default action meanwhile: the
    process ends (nothing is written yet). SIGTERM cannot: TensorFlow
    installs its own handler there (its preemption notice) and swallows it;
    `wait_for_peers` has checked every peer beforehand, so only a peer lost
    in this last step leaves SIGTERM waiting for the registration deadline.
    Python's handlers are put back afterwards, SIGTERM's included.
    """
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    for signum in (signal.SIGINT, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            signal.signal(signum, signal.SIG_DFL)
    try:
        yield
    finally:
        for signum, handler in saved.items():
            if handler is not None:
                with contextlib.suppress(ValueError, OSError):
                    signal.signal(signum, handler)


def multi_worker_strategy(timeout=CONNECT_TIMEOUT):
    """`tf.distribute.MultiWorkerMirroredStrategy` for the `TF_CONFIG` cluster.

    Call it first thing in the process: TensorFlow configures collective ops
    only before its context is initialised (before any op or `tf.data`
    pipeline runs). Without `TF_CONFIG` the strategy runs this process alone.

    Args:
        timeout: float, defaults to `CONNECT_TIMEOUT` (300 s). How long the
            whole start-up may take: every peer answering, then TensorFlow
            forming the cluster.

    Returns:
        The strategy.

    Raises:
        ClusterError: a bad `TF_CONFIG` (`parse_tf_config`), TensorFlow
            already initialised, unreachable peers, or a cluster that did not
            form in time.
    """
    import tensorflow as tf
    from tensorflow.python.eager import context

    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise ValueError(f"timeout must be a positive, finite number of seconds. Received: timeout={timeout!r}")
    deadline = time.monotonic() + timeout
    cluster = parse_tf_config()
    if cluster is not None and context.context()._context_handle is not None:
        raise ClusterError(
            "the multi_worker strategy must be created before TensorFlow runs anything "
            "(collective ops are configured at start-up): create it before loading data or building models"
        )
    if cluster is None or cluster.num_workers < 2:
        return tf.distribute.MultiWorkerMirroredStrategy()
    wait_for_peers(cluster, timeout)
    _configure_coordination(cluster, (deadline - time.monotonic()) * 1000)
    try:
        with _native_start_up():
            return tf.distribute.MultiWorkerMirroredStrategy()
    except tf.errors.DeadlineExceededError:
        raise ClusterError(
            f"{cluster.describe()}: the cluster did not form within {timeout:g} s: every peer "
            f"({', '.join(cluster.peers)}) answers on its port, but TensorFlow got no reply from one of them; "
            "check that each address of TF_CONFIG is a keras-se worker of this cluster, then restart every worker"
        ) from None


def backup_root(output_dir):
    """Where `fit` keeps the per-epoch backups of a run writing `output_dir`:
    a hidden folder beside it, outside the staged outputs (which a killed run
    discards), so that a restarted run finds them."""
    output_dir = os.path.abspath(output_dir)
    return os.path.join(os.path.dirname(output_dir), f".{os.path.basename(output_dir)}.backup")


def remove_backups(backups):
    """Drops the backups once a run has finished (as `BackupAndRestore` does)."""
    if backups:
        shutil.rmtree(backups, ignore_errors=True)


def log(message):
    print(f"keras-se: {message}", file=sys.stderr, flush=True)


def _reason(text):
    """The line of a TensorFlow error that says what happened: a graph
    execution error opens with "Graph execution error:" and where the op was
    defined (a stack), and says what failed after that."""
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        if line[0].isspace() or line.endswith(":") or line.startswith(("Detected at node", "[[")):
            continue
        return line.strip()
    return lines[0].strip() if lines else ""


def _cluster_error(strategy, error, epoch, backup_dir):
    cluster = cluster_of(strategy)
    who = cluster.describe() if cluster else "this worker"
    peers = ", ".join(cluster.peers) if cluster else "none"
    detail = _reason(str(error)) or type(error).__name__
    resume = f"; restart every worker with the same command to resume from {backup_dir}" if backup_dir else ""
    return ClusterError(f"{who} lost the cluster (peers {peers}) in epoch {epoch + 1}: {detail[:300]}{resume}")


def _padded(dataset, size):
    """(x, y, weight) batches, each partial batch filled up to the global
    batch with repeats of its own examples weighted 0.

    A global batch is split between the replicas in slices of the full
    batch's share, in order: a partial last batch of 1 image left worker 1
    of 2 an empty slice, which the step cannot run ("Incompatible shapes"
    in the first BatchNormalization). Filled up, every replica gets its
    share; the weights keep the padding out of the loss, the accuracy, the
    counts and the gradients. (In training, BatchNormalization's statistics
    of that one batch see the repeats.)
    """
    import tensorflow as tf

    def pad(x, y):
        count = tf.shape(x)[0]
        missing = tf.maximum(size - count, 0)
        repeats = tf.math.floormod(tf.range(missing), tf.maximum(count, 1))
        weights = tf.concat([tf.ones([count]), tf.zeros([missing])], axis=0)
        return tf.concat([x, tf.gather(x, repeats)], axis=0), tf.concat([y, tf.gather(y, repeats)], axis=0), weights

    return dataset.map(pad)


def _distribute(strategy, dataset, size=None):
    import tensorflow as tf

    # DATA: every worker reads the same ordered batches and keeps its slice
    # of each, so a global batch is the batch one process would see.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    # `size`: the global batch where the caller has read it already.
    padded = _padded(dataset, size or global_batch(dataset))
    return strategy.experimental_distribute_dataset(padded.with_options(options))


def global_batch(dataset):
    """The size of a batched dataset's first batch (its global batch)."""
    for x, _ in dataset.take(1):
        return int(x.shape[0])
    return 0


_STEPS = weakref.WeakKeyDictionary()  # model -> {(train, spec): step}: traced once


def _sums_step(strategy, net, train, element_spec):
    """A tf.function over one distributed batch returning summed (loss, correct, count)."""
    import tensorflow as tf

    cached = _STEPS.setdefault(net, {})
    key = (train, repr(element_spec))
    if key in cached:
        return cached[key]

    loss = net.loss
    optimizer = net.optimizer

    def replica(x, y, weights):
        context = tf.distribute.get_replica_context()
        y = tf.reshape(y, [-1])
        count = tf.reduce_sum(weights)  # the padding (`_padded`) weighs 0
        total = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
        with tf.GradientTape() as tape:
            probabilities = net(x, training=train)
            # The compiled loss per example, averaged over the global batch:
            # gradients summed over replicas are one process's gradient.
            per_example = tf.reshape(loss.call(y, probabilities), [-1]) * weights
            regularization = tf.add_n(net.losses) if train and net.losses else tf.constant(0.0)
            value = tf.reduce_sum(per_example) / tf.maximum(total, 1.0) + regularization / strategy.num_replicas_in_sync
        if train:
            variables = net.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(value, variables), variables))
        predicted = tf.cast(tf.argmax(probabilities, axis=-1), y.dtype)
        correct = tf.reduce_sum(tf.cast(tf.equal(predicted, y), tf.float32) * weights)
        # Sums over the examples; the epoch's mean is Keras' loss and accuracy.
        return tf.reduce_sum(per_example) + regularization * count, correct, count

    # The distributed dataset's spec has an unknown batch size: the last,
    # partial batch does not trace the step a second time.
    @tf.function(input_signature=element_spec)
    def step(x, y, weights):
        sums = strategy.run(replica, args=(x, y, weights))
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, s, axis=None) for s in sums]

    cached[key] = step
    return step


def _batches(dataset, steps):
    # With a known length, exactly `steps` batches: running the iterator
    # dry costs a cross-worker end-of-data check (about half a minute on
    # two busy cores).
    if steps < 0:
        yield from dataset
        return
    iterator = iter(dataset)
    for _ in range(steps):
        yield next(iterator)


def _run_epoch(step, dataset, steps, on_batch=None):
    loss = correct = count = 0.0
    for batch, element in enumerate(_batches(dataset, steps)):
        values = [float(v) for v in step(*element)]
        loss, correct, count = loss + values[0], correct + values[1], count + values[2]
        if on_batch:
            on_batch(batch, {"loss": loss / count, "accuracy": correct / count})
    if not count:
        return {"loss": float("nan"), "accuracy": float("nan")}
    return {"loss": loss / count, "accuracy": correct / count}


def evaluate(net, dataset):
    """Loss and accuracy of a compiled model over `dataset`, under its strategy.

    Replaces `Model.evaluate` under `MultiWorkerMirroredStrategy`
    (keras-team/keras#20585). Every worker must call it.
    """
    strategy = net.distribute_strategy
    distributed = _distribute(strategy, dataset)
    return _run_epoch(_sums_step(strategy, net, False, distributed.element_spec), distributed, int(dataset.cardinality()))


def exportable(model):
    """`model`, or for a tf_keras QAT model trained under
    `MultiWorkerMirroredStrategy` a copy outside the strategy.

    Traced under the strategy, the model's call keeps collective ops that no
    TFLite builtin expresses ("tf.CollectiveReduceV2"); a clone with plain
    variables and the same weights converts as a one-device model does.
    """
    if not is_multi_worker(getattr(model, "distribute_strategy", None)):
        return model
    import tf_keras

    from keras_se.quantization import configs

    with configs.quantize_scope():
        copy = tf_keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for layer in copy.layers:
        layer = getattr(layer, "layer", layer)
        if getattr(layer, "synchronized", False):
            layer.synchronized = False
    return copy


def _broadcast_from_replica0(strategy, variables):
    """Gives every replica the values of global replica 0 (on the chief).

    Only the chief reads the backup (the others may not see its disk); the
    sum over replicas of (value on replica 0, zero elsewhere) is that value,
    exactly, on every worker.
    """
    import tensorflow as tf

    @tf.function
    def sync():
        def replica():
            context = tf.distribute.get_replica_context()
            first = tf.equal(context.replica_id_in_sync_group, 0)
            values = [tf.where(first, v.read_value(), tf.zeros_like(v.read_value())) for v in variables]
            # One packed all-reduce per dtype (packing concatenates).
            reduced = [None] * len(values)
            for dtype in {v.dtype for v in values}:
                index = [i for i, v in enumerate(values) if v.dtype == dtype]
                for i, value in zip(index, context.all_reduce(tf.distribute.ReduceOp.SUM, [values[i] for i in index])):
                    reduced[i] = value
            return reduced

        reduced = strategy.run(replica)
        for variable, value in zip(variables, reduced):
            variable.assign(strategy.experimental_local_results(value)[0])

    sync()


def _any_worker(strategy, flag):
    """Whether `flag` is true on any worker (every worker must call it)."""
    import tensorflow as tf

    def replica():
        value = tf.constant(1.0 if flag else 0.0)
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)

    @tf.function
    def count():
        return strategy.run(replica)

    return float(strategy.experimental_local_results(count())[0]) > 0


def _variables(net, optimizer, epoch):
    """The TensorFlow variables of the model, the optimizer and the epoch
    counter (a Keras 3 variable wraps one as `.value`)."""
    import keras

    seen, out = set(), []
    for v in [*net.variables, *optimizer.variables, epoch]:
        v = v.value if isinstance(v, keras.Variable) else v
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def fit(module, net, label, epochs, train_ds, val_ds, callbacks, backups):
    """`net.fit` for `MultiWorkerMirroredStrategy`: a distributed custom step.

    The workaround for keras-team/keras#20585 / tensorflow#72388 (Keras 3's
    `fit` fails under the strategy); used for the tf_keras QAT model as
    well, so both stages share one backup and resume path.

    Args:
        module: `keras` or `tf_keras` (for its `CallbackList`).
        net: a compiled model built under the strategy (`net.loss` and
            `net.optimizer` are used; metric: accuracy).
        label: str. The stage (`"float"`, `"QAT"`); names the backup.
        epochs: int. Epochs in all, counting those a backup already holds.
        train_ds, val_ds: batched datasets of global batches, the same on
            every worker; `val_ds` may be None.
        callbacks: callbacks of `module`, called as `Model.fit` calls them.
        backups: str or None. Backups go to `backups/<label>` (`backup_root`)
            after every epoch; a restarted run resumes from the last one.

    Returns:
        The history, as `Model.fit(...).history` (metric -> per-epoch floats).

    Raises:
        ClusterError: a peer was lost (the message names the peers and the
            backup to resume from), or the backup belongs to another run.
    """
    import tensorflow as tf

    strategy = net.distribute_strategy
    cluster = cluster_of(strategy)
    optimizer = net.optimizer
    with strategy.scope():
        optimizer.build(net.trainable_variables)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name=f"{label.lower()}_epoch")
    steps = int(train_ds.cardinality())
    batch = global_batch(train_ds)
    if cluster is not None:
        per_worker = strategy.num_replicas_in_sync // cluster.num_workers
        log(
            f"{label}: {cluster.describe()}{' (chief)' if cluster.is_chief else ''}; global batch {batch} = "
            f"{batch // cluster.num_workers} per worker x {cluster.num_workers} workers"
            + (f" ({per_worker} replicas each)" if per_worker > 1 else "")
        )

    backup_dir = os.path.join(backups, label.lower()) if backups else None
    checkpoint = tf.train.Checkpoint(model=net, optimizer=optimizer, epoch=epoch)
    history, restored = {}, False
    if backup_dir and (cluster is None or cluster.is_chief):
        latest = tf.train.latest_checkpoint(backup_dir)
        if latest:
            try:
                checkpoint.restore(latest).assert_existing_objects_matched()
            except (AssertionError, ValueError, tf.errors.OpError) as error:
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise ClusterError(
                    f"the backup {latest} does not fit this run ({first[:200]}); remove {backup_dir} to start over"
                ) from None
            restored = True
            history_file = os.path.join(backup_dir, "history.json")
            if os.path.exists(history_file):
                with open(history_file) as f:
                    history = json.load(f)
    started = time.monotonic()
    try:
        if _any_worker(strategy, restored):
            _broadcast_from_replica0(strategy, _variables(net, optimizer, epoch))
    except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.DeadlineExceededError, tf.errors.AbortedError) as error:
        raise _cluster_error(strategy, error, 0, backup_dir) from None
    first_epoch = min(int(epoch.numpy()), epochs)
    if first_epoch:
        log(f"{label}: resumed from the backup of epoch {first_epoch}/{epochs} in {time.monotonic() - started:.1f} s")
        history = {k: v[:first_epoch] for k, v in history.items()}

    manager = None
    if backup_dir:
        os.makedirs(backup_dir, exist_ok=True)
        manager = tf.train.CheckpointManager(checkpoint, backup_dir, max_to_keep=1)
    callback_list = module.callbacks.CallbackList(callbacks, model=net, epochs=epochs, steps=steps, verbose=0)
    distributed_train = _distribute(strategy, train_ds, batch)
    distributed_val = _distribute(strategy, val_ds) if val_ds is not None else None
    train_step = _sums_step(strategy, net, True, distributed_train.element_spec)
    eval_step = _sums_step(strategy, net, False, distributed_val.element_spec) if val_ds is not None else None
    current = first_epoch
    callback_list.on_train_begin()
    try:
        for current in range(first_epoch, epochs):
            callback_list.on_epoch_begin(current)
            logs = _run_epoch(train_step, distributed_train, steps, callback_list.on_train_batch_end)
            if eval_step is not None:
                logs.update({f"val_{k}": v for k, v in _run_epoch(eval_step, distributed_val, int(val_ds.cardinality())).items()})
            callback_list.on_epoch_end(current, logs)
            for key, value in logs.items():
                history.setdefault(key, []).append(float(value))
            if manager is not None:
                epoch.assign(current + 1)
                manager.save()
                from keras_se.io_utils import write_atomic

                write_atomic(os.path.join(backup_dir, "history.json"), json.dumps(history), overwrite=True)
    except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.DeadlineExceededError, tf.errors.AbortedError) as error:
        raise _cluster_error(strategy, error, current, backup_dir) from None
    callback_list.on_train_end()
    return history
