"""Tests for keras_se.training.distribute: `--strategy multi_worker` across
processes on loopback (127.0.0.1, free ports picked at run time).

Every process runs under a timeout and is killed at the end of its test, so
the tests stop by themselves. The clusters are marked large (tens of seconds
to minutes on two cores); TF_CONFIG checking and the bounded wait for peers
run by default.
"""

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from keras_se.training import distribute

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 540  # seconds any one process may run


def free_ports(count):
    """Ports free a moment ago. A port is released before the worker binds
    it, so another process may take it meanwhile: tests that start workers
    retry when a worker reports its port taken (`retry_on_taken_port`)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def held_refusing_port():
    """A loopback port bound (so nobody else takes it) but not listening:
    connections to it are refused, as to a worker that has not started."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


def port_taken(output):
    return "cannot listen on port" in output or "Address already in use" in output


def retry_on_taken_port(run, attempts=3):
    """`run()` -> (returncode, output, ...), again with new ports while a worker's port was taken."""
    for _ in range(attempts - 1):
        result = run()
        if not port_taken(result[1]):
            return result
    return run()


HTTP2_SETTINGS = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # an empty SETTINGS frame


class FakePeer:
    """A TCP listener on a loopback port that is no keras-se worker: it
    accepts connections and never answers, or with `http2`, answers every
    client's first bytes with an HTTP/2 SETTINGS frame, as a gRPC server
    would, and then nothing (it passes the readiness check and keeps
    TensorFlow's start-up waiting). `spoken_to` is set once a client sends
    bytes, `tensorflow_spoken_to` once one sends more than keras_se's
    readiness check does (TensorFlow's gRPC client)."""

    def __init__(self, http2=False):
        self.http2 = http2
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.spoken_to = threading.Event()
        self.tensorflow_spoken_to = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        with selectors.DefaultSelector() as selector:
            selector.register(self.listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.2):
                    if key.fileobj is self.listener:
                        connection, _ = self.listener.accept()
                        connection.setblocking(False)
                        selector.register(connection, selectors.EVENT_READ)
                        continue
                    try:
                        data = key.fileobj.recv(4096)
                    except OSError:
                        data = b""
                    if data:
                        if self.http2 and data.startswith(b"PRI"):  # a client's HTTP/2 preface
                            with contextlib.suppress(OSError):
                                key.fileobj.sendall(HTTP2_SETTINGS)
                        self.spoken_to.set()
                        if data != distribute._HTTP2_PREFACE:  # more than keras_se's check sends
                            self.tensorflow_spoken_to.set()
                    else:
                        selector.unregister(key.fileobj)
                        key.fileobj.close()
            for key in list(selector.get_map().values()):
                key.fileobj.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=10)
        self.listener.close()


def tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}})


class Processes:
    """Worker processes that are always killed at the end of the test."""

    def __init__(self, tmp_path):
        self.tmp_path, self.procs = tmp_path, []

    def start(self, argv, name, **env):
        scratch = self.tmp_path / f"tmp_{name}"
        scratch.mkdir(exist_ok=True)
        log = open(self.tmp_path / f"{name}.log", "w")
        full_env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3", "TMPDIR": str(scratch), **env}
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=self.tmp_path, text=True)
        proc.name, proc.log_path, proc.scratch, proc.started = name, self.tmp_path / f"{name}.log", scratch, time.monotonic()
        self.procs.append(proc)
        return proc

    def wait(self, proc, timeout=TIMEOUT):
        try:
            proc.wait(timeout=max(1.0, timeout - (time.monotonic() - proc.started)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"{proc.name} did not finish within {timeout} s:\n{self.output(proc)[-3000:]}")
        return proc.returncode

    @staticmethod
    def output(proc):
        return proc.log_path.read_text()

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.close()


# --- TF_CONFIG and the bounded wait: in this process, fast ------------------


def test_parse_tf_config():
    assert distribute.parse_tf_config("") is None
    cluster = distribute.parse_tf_config(tf_config([2222, 2223], 1))
    assert cluster.num_workers == 2 and not cluster.is_chief
    assert cluster.address == "127.0.0.1:2223" and cluster.peers == ["127.0.0.1:2222"]
    with_chief = json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}, "task": {"type": "chief", "index": 0}})
    cluster = distribute.parse_tf_config(with_chief)
    assert cluster.is_chief and cluster.num_workers == 3 and [t[2] for t in cluster.tasks] == ["a:1", "b:1", "c:1"]
    assert not distribute.parse_tf_config(with_chief.replace('"chief", "index": 0', '"worker", "index": 0')).is_chief


@pytest.mark.parametrize(
    "value, message",
    [
        ("{not json", "TF_CONFIG is not valid JSON"),
        ('{"task": {"type": "worker", "index": 0}}', 'TF_CONFIG needs a "cluster" object'),
        ('{"cluster": {"ps": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 0}}', "job 'ps' is not supported"),
        (
            '{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}',
            "addresses must be 'host:port'. Received: worker address 'a'",
        ),
        ('{"cluster": {"worker": ["a:99999"]}, "task": {"type": "worker", "index": 0}}', "addresses must be 'host:port'"),
        ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}', "lists a:1 twice"),
        ('{"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief", "index": 0}}', "has 2 chiefs"),
        ('{"cluster": {"worker": ["a:1"]}}', 'TF_CONFIG needs "task"'),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "task type 'chief' is not a job"),
        (
            '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
            r"task index must be 0..1 for job 'worker'. Received: index=2",
        ),
    ],
)
def test_bad_tf_config_is_one_line(value, message):
    with pytest.raises(distribute.ClusterError, match=message) as info:
        distribute.parse_tf_config(value)
    assert "\n" not in str(info.value)


def test_cluster_error_names_what_failed_in_a_graph_execution_error():
    text = (
        "Graph execution error:\n\nDetected at node CollectiveReduceV2 defined at (most recent call last):\n"
        '  File "train.py", line 3, in <module>\n\n'
        "Collective ops is aborted by: failed to connect to all addresses\nThe error could be from a previous operation.\n"
        "\t [[{{node CollectiveReduceV2}}]] [Op:__inference_step_42]"
    )
    assert distribute._reason(text) == "Collective ops is aborted by: failed to connect to all addresses"
    assert distribute._reason("Socket closed") == "Socket closed" and distribute._reason("") == ""


def test_unreachable_peer_fails_in_bounded_time():
    held = held_refusing_port()  # nothing listens on `peer`, and nobody else can take it
    peer = held.getsockname()[1]
    with held:
        (me,) = free_ports(1)
        cluster = distribute.parse_tf_config(tf_config([me, peer], 0))
        start = time.monotonic()
        with pytest.raises(distribute.ClusterError) as info:
            distribute.wait_for_peers(cluster, timeout=1.5)
        elapsed = time.monotonic() - start
    message = str(info.value)
    assert f"127.0.0.1:{peer}" in message and "within 1.5 s" in message and "\n" not in message
    # It waited the timeout and then stopped: the upper bound only says "not
    # for ever" (probes of a refused port return at once; a loaded machine
    # may still be slow to schedule this thread).
    assert 1.5 <= elapsed < 60, elapsed
    # The wait released this task's port: TensorFlow's server can take it.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", me))


def test_peers_that_answer_pass():
    # A peer still waiting for its own peers (it answers with its banner),
    # then a peer already inside TensorFlow's start-up (gRPC). (Two real
    # waiting workers cannot both pass here: the first to pass closes its
    # listener for TensorFlow's server, which this test does not start.)
    me, peer = free_ports(2)
    stop = threading.Event()
    with socket.socket() as listening:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(("127.0.0.1", peer))
        listening.listen(4)
        waiting = threading.Thread(target=distribute._serve_banner, args=(listening, stop), daemon=True)
        waiting.start()
        try:
            distribute.wait_for_peers(distribute.parse_tf_config(tf_config([me, peer], 0)), timeout=20)
        finally:
            stop.set()
            waiting.join()
    grpc = FakePeer(http2=True)
    try:
        distribute.wait_for_peers(distribute.parse_tf_config(tf_config([free_ports(1)[0], grpc.port], 0)), timeout=5)
    finally:
        grpc.close()


def test_port_that_accepts_but_is_no_worker_fails_in_bounded_time():
    silent = FakePeer()
    try:
        cluster = distribute.parse_tf_config(tf_config([free_ports(1)[0], silent.port], 0))
        start = time.monotonic()
        with pytest.raises(distribute.ClusterError) as info:
            distribute.wait_for_peers(cluster, timeout=1.5)
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    message = str(info.value)
    assert f"from 127.0.0.1:{silent.port} (its port accepts connections, but no keras-se worker answers there)" in message
    assert "\n" not in message and 1.5 <= elapsed < 60, (message, elapsed)


def test_strategy_after_tensorflow_started_is_refused(monkeypatch):
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # initialises TensorFlow's context in this process
    monkeypatch.setenv("TF_CONFIG", tf_config(free_ports(2), 0))
    with pytest.raises(distribute.ClusterError, match="must be created before TensorFlow runs anything"):
        distribute.multi_worker_strategy(timeout=1)
    for timeout in (0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=f"timeout must be a positive, finite number of seconds. Received: timeout={timeout}"):
            distribute.multi_worker_strategy(timeout=timeout)


def test_cli_unreachable_peer_is_one_line(processes, tmp_path):
    held = held_refusing_port()
    peer = held.getsockname()[1]

    def run():
        (me,) = free_ports(1)
        argv = [sys.executable, "-m", "keras_se.cli", "train", "se_mobilenet", "--digits", "--strategy", "multi_worker"]
        argv += ["--cluster-timeout", "2", "--output-dir", str(tmp_path / "run")]
        proc = processes.start(argv, "alone", TF_CONFIG=tf_config([me, peer], 0))
        return processes.wait(proc, timeout=120), processes.output(proc)

    with held:
        code, output = retry_on_taken_port(run)
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("keras-se: error: worker 0 (127.0.0.1:") and f"from 127.0.0.1:{peer}" in lines[0]
    assert not (tmp_path / "run").exists()


TRAIN_ONE = ["-m", "keras_se.cli", "train", "se_mobilenet", "--digits", "--strategy", "multi_worker", "--no-progress"]


def _worker_behind_a_fake_peer(processes, tmp_path, cluster_timeout, signum=None, http2=True):
    """Worker 1 of a cluster whose worker 0 is a `FakePeer`; with `signum`,
    the signal is sent once the worker has spoken to the peer: inside
    TensorFlow's start-up with `http2`, inside keras_se's readiness check
    without. Returns (exit status, output, seconds from the start (or the
    signal) to the exit)."""
    peer = FakePeer(http2=http2)
    try:

        def run():
            (me,) = free_ports(1)
            argv = [sys.executable, *TRAIN_ONE, "--cluster-timeout", str(cluster_timeout), "--output-dir", str(tmp_path / "run")]
            proc = processes.start(argv, "worker1", TF_CONFIG=tf_config([peer.port, me], 1))
            if signum is not None:
                deadline = time.monotonic() + TIMEOUT
                spoken_to = peer.tensorflow_spoken_to if http2 else peer.spoken_to
                while not spoken_to.wait(0.2):
                    assert proc.poll() is None, processes.output(proc)[-3000:]
                    assert time.monotonic() < deadline, "the worker never reached its peer"
                proc.send_signal(signum)
            since = time.monotonic()
            code = processes.wait(proc, timeout=TIMEOUT)
            return code, processes.output(proc), time.monotonic() - since

        return retry_on_taken_port(run)
    finally:
        peer.close()


def _lines(output):
    return [line for line in output.splitlines() if line.strip()]


@pytest.mark.large
def test_cluster_timeout_bounds_tensorflow_start_up(processes, tmp_path):
    # TensorFlow's own start-up waits without limit for a peer that passes
    # the readiness check (it answers as a gRPC server) but never replies;
    # --cluster-timeout covers it.
    code, output, elapsed = _worker_behind_a_fake_peer(processes, tmp_path, 10)
    lines = _lines(output)
    assert code == 2 and len(lines) == 1, output[-3000:]
    assert lines[0].startswith("keras-se: error: worker 1 (127.0.0.1:") and "did not form within 10 s" in lines[0], lines
    assert elapsed < TIMEOUT
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "signum, http2, status, lines",
    [
        # In keras_se's readiness check, waiting for a port that accepts
        # but never answers: Python's handlers run, one line.
        (signal.SIGTERM, False, 143, ["keras-se: interrupted (SIGTERM)"]),
        # Inside TensorFlow's start-up (C++ holds the interpreter): SIGINT
        # takes the system's default action and ends the process.
        (signal.SIGINT, True, -signal.SIGINT, []),
    ],
)
def test_worker_waiting_for_its_peers_stops_on_a_signal(processes, tmp_path, signum, http2, status, lines):
    # --cluster-timeout is 300 s: the worker would wait that long otherwise.
    code, output, elapsed = _worker_behind_a_fake_peer(processes, tmp_path, 300, signum=signum, http2=http2)
    assert code == status and _lines(output) == lines, output[-3000:]
    assert elapsed < 60
    assert not (tmp_path / "run").exists()


UNEVEN = textwrap.dedent(
    """
    import json
    import tensorflow as tf
    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    import keras_se
    from keras_se.export.calibration import trained_like_statistics
    from keras_se.training import distribute
    from keras_se.training.trainer import synchronize_batchnorm

    # Two replicas split a global batch of 8 as 4 + 4, as two workers do
    # (experimental_distribute_dataset slices batches the same way): the last
    # batch of 9 images has 1, which leaves the second replica nothing.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rng = np.random.default_rng(0)
    x, y = rng.random((9, 32, 32, 3), dtype="float32"), rng.integers(0, 10, 9)
    with strategy.scope():
        net = keras_se.create_model("se_mobilenet", input_shape=(32, 32, 3), classes=10, alpha=0.25, dropout=0.0)
        net.compile(optimizer=keras.optimizers.SGD(0.001), loss=keras.losses.SparseCategoricalCrossentropy())
        # Unit-scale activations and a classifier that tells the images apart,
        # so that a padded image counted would move the loss.
        trained_like_statistics(net, x)
        synchronize_batchnorm(net)  # as multi_worker trains: every replica keeps the same statistics
        kernel = net.layers[-1].kernel
        kernel.assign(rng.normal(0, 0.1, kernel.shape).astype("float32"))
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)

    def reference():
        probabilities = net.predict(x, batch_size=9, verbose=0)
        return {"loss": float(np.mean(-np.log(probabilities[np.arange(9), y]))),
                "accuracy": float(np.mean(probabilities.argmax(1) == y))}

    before = (distribute.evaluate(net, data), reference())
    history = distribute.fit(keras, net, "float", 1, data, data, [], None)
    after = ({"loss": history["val_loss"][0], "accuracy": history["val_accuracy"][0]}, reference())
    print("RESULT", json.dumps({"before": before, "after": after, "history": history}))
    """
)


@pytest.mark.large
def test_empty_slice_of_the_last_batch(tmp_path):
    script = tmp_path / "uneven.py"
    script.write_text(UNEVEN)
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = _result(done.stdout)
    # Loss and accuracy over exactly the 9 images, before and after a step
    # of training (the step ran: the loss moved).
    for measured, expected in (result["before"], result["after"]):
        assert measured["loss"] == pytest.approx(expected["loss"], rel=1e-4), result
        assert measured["accuracy"] == pytest.approx(expected["accuracy"]), result
    assert np.isfinite(result["history"]["loss"][0])
    assert abs(result["after"][1]["loss"] - result["before"][1]["loss"]) > 1e-3, result


# --- Two worker processes ---------------------------------------------------

WORKER = textwrap.dedent(
    """
    import json, sys
    from keras_se.training import load_digits, make_strategy, train

    strategy, output_dir, qat_epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if strategy == "multi_worker":
        strategy = make_strategy(strategy, timeout=120)  # first: before any TensorFlow op
    import tensorflow as tf

    (x, y), (x_test, y_test) = load_digits()
    # 256 images in fixed global batches of 64 (4 steps an epoch): the one
    # process and the two workers see the same batches in the same order.
    # (Array data is reshuffled every epoch, and Keras' fit starts from a
    # different permutation than a fresh iterator.)
    data = tf.data.Dataset.from_tensor_slices((x[:256], y[:256])).batch(64)
    result = train("se_mobilenet", data, (x_test[:64], y_test[:64]), classes=10, epochs=2, qat_epochs=qat_epochs,
                   batch_size=64, optimizer="sgd", learning_rate=0.01, strategy=strategy, seed=0, output_dir=output_dir,
                   model_kwargs={"alpha": 0.25, "dropout": 0.0})
    print("RESULT", json.dumps({"history": result.history, "qat_history": result.qat_history,
                               "replicas": result.replicas, "cluster": result.cluster}))
    """
)


def _result(output):
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, output[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.mark.large
@pytest.mark.xlarge
def test_two_workers_match_one_process_and_only_the_chief_writes(processes, tmp_path):
    import keras

    import keras_se  # noqa: F401  (registers the model classes for loading)
    from keras_se.quantization import float_ops

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    ports = free_ports(2)
    # Worker 1 gets its own output folder, as on another machine: nothing may be left in it.
    workers = [
        processes.start(
            [sys.executable, str(script), "multi_worker", str(tmp_path / f"run{i}"), "1"], f"worker{i}", TF_CONFIG=tf_config(ports, i)
        )
        for i in range(2)
    ]
    one = processes.start([sys.executable, str(script), "default", str(tmp_path / "one"), "0"], "one")
    for proc in [*workers, one]:
        assert processes.wait(proc) == 0, processes.output(proc)[-3000:]
    chief, other, reference = (_result(processes.output(p)) for p in (*workers, one))

    assert chief["cluster"] == {"workers": 2, "global_batch": 64} and chief["replicas"] == 2
    assert "global batch 64 = 32 per worker x 2 workers" in processes.output(workers[0])
    # Both workers ran the same synchronous steps.
    assert chief["history"] == other["history"]
    # 8 SGD steps on the same 64-image global batches and initial weights.
    # The global batch is split 32 + 32, the BatchNorm statistics are
    # all-reduced sums (E[x^2] - E[x]^2) and the gradient a sum of two
    # halves: float32 rounding differs from one process's, and this tiny,
    # freshly initialised network amplifies it (one SGD step moves the stem
    # kernel by ~0.04; in-batch order alone changes that update by 0.5 %).
    # Adam is not used here: its first steps are lr * sign(gradient), so
    # rounding noise in near-zero gradients flips whole steps. Measured
    # (relative): epoch losses 4.9e-3 and 7.7e-3 (the mean over steps 1-4
    # and 5-8; step 1, before any update, agrees), validation losses after
    # each epoch 2.3e-4 and 9.0e-4. The bounds are twice to three times that.
    np.testing.assert_allclose(chief["history"]["loss"], reference["history"]["loss"], rtol=1.5e-2)
    np.testing.assert_allclose(chief["history"]["val_loss"], reference["history"]["val_loss"], rtol=3e-3)
    assert len(chief["qat_history"]["loss"]) == 1 and np.isfinite(chief["qat_history"]["loss"][0])

    # The chief's outputs exist and load; worker 1 left nothing behind.
    run0 = tmp_path / "run0"
    assert sorted(os.listdir(run0)) == ["checkpoints", "model.keras", "model_int8.tflite", "train.json"]
    assert json.loads((run0 / "train.json").read_text())["cluster"] == {"workers": 2, "global_batch": 64}
    model = keras.saving.load_model(run0 / "model.keras")
    assert model.count_params() > 0 and model.predict(np.zeros((1, 32, 32, 3), "float32"), verbose=0).shape == (1, 10)
    assert float_ops(str(run0 / "model_int8.tflite")) == []
    assert not (tmp_path / "run1").exists()
    for proc in workers:
        assert os.listdir(proc.scratch) == [], (proc.name, os.listdir(proc.scratch))


CLI = ["-m", "keras_se.cli", "train", "se_mobilenet", "--digits", "--model-arg", "alpha=0.25", "--epochs", "5"]
CLI += ["--strategy", "multi_worker", "--cluster-timeout", "120", "--no-progress"]


@pytest.mark.large
@pytest.mark.xlarge
def test_killed_worker_resumes_from_the_backup(processes, tmp_path):
    ports = free_ports(2)

    def start(i, attempt):
        argv = [sys.executable, *CLI, "--output-dir", str(tmp_path / "run")]
        return processes.start(argv, f"worker{i}_{attempt}", TF_CONFIG=tf_config(ports, i))

    first = [start(i, 0) for i in range(2)]
    backup = tmp_path / ".run.backup" / "float" / "checkpoint"  # beside the staged outputs
    deadline = time.monotonic() + TIMEOUT
    while not backup.exists():  # the first epoch's backup
        assert time.monotonic() < deadline, processes.output(first[0])[-3000:]
        assert all(p.poll() is None for p in first), [processes.output(p)[-2000:] for p in first]
        time.sleep(0.5)
    first[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    # The chief notices within a bounded time and says which peer it lost.
    assert processes.wait(first[0], timeout=TIMEOUT) == 2
    assert time.monotonic() - killed < 120
    lines = [line for line in processes.output(first[0]).splitlines() if line.startswith("keras-se: error:")]
    assert len(lines) == 1 and f"peers 127.0.0.1:{ports[1]}" in lines[0] and "restart every worker" in lines[0], lines

    # The same commands again: both resume from the last finished epoch.
    second = [start(i, 1) for i in range(2)]
    for proc in second:
        assert processes.wait(proc) == 0, processes.output(proc)[-3000:]
    resumed = [line for line in processes.output(second[0]).splitlines() if "resumed from the backup of epoch" in line]
    assert resumed, processes.output(second[0])[-3000:]
    done = int(resumed[0].split("epoch ")[1].split("/")[0])
    assert 1 <= done < 5
    record = json.loads((tmp_path / "run" / "train.json").read_text())
    assert len(record["history"]["loss"]) == 5 and record["cluster"]["workers"] == 2
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints"))[-1] == "float-epoch005.weights.h5"
    assert not (tmp_path / ".run.backup").exists()  # dropped once the run finished
