#!/usr/bin/env python
"""`--strategy multi_worker` on one machine: training speed and resume time.

Three runs of the same training (SE-MobileNet alpha 0.25, scikit-learn's
digits at 32x32, 1,347 images, global batch 64, 22 steps an epoch, no
validation), each in fresh processes:

- one process, `strategy="default"` (Keras 3 `fit`);
- one process, `strategy="multi_worker"` without TF_CONFIG (the
  distributed custom step of `keras_se.training.distribute`, one worker);
- two worker processes on loopback, `strategy="multi_worker"`.

Steps per second count the epochs after the first (the first traces the
step functions). Then the resume: two workers, worker 1 killed once the
first epoch's backup exists, the chief's exit timed, both restarted with the
same command, and the time from the restart to "resumed from the backup"
and to the end of the next epoch measured.

Results go to the "## Multi-worker training" section of BENCHMARKS.md.

    python benchmarks/multi_worker.py             # writes BENCHMARKS.md
    python benchmarks/multi_worker.py --dry-run   # prints the section only
"""

import argparse
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTION = "## Multi-worker training"
sys.path.insert(0, ROOT)

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from keras_se.training import load_digits, make_strategy, train, trainer

    strategy, epochs, output_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None
    if strategy == "multi_worker":
        strategy = make_strategy(strategy)
    (x, y), _ = load_digits()
    ends = []

    # Epoch end times, through the progress hook `train` offers.
    def timing(callbacks, label, console=None):
        class Timing(callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                ends.append(time.perf_counter())
                print("EPOCH", epoch + 1, flush=True)
        return Timing()

    trainer.progress_callback = timing
    result = train("se_mobilenet", (x, y), epochs=epochs, batch_size=64, strategy=strategy, seed=0, progress=True,
                   output_dir=output_dir, overwrite=True, model_kwargs={"alpha": 0.25, "dropout": 0.0})
    print("RESULT", json.dumps({"ends": ends, "loss": result.history["loss"], "replicas": result.replicas}), flush=True)
    """
)
STEPS = 22  # ceil(1347 / 64)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start(script, strategy, epochs, output_dir, log, tf_config=None):
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    if tf_config:
        env["TF_CONFIG"] = tf_config
    return subprocess.Popen(
        [sys.executable, "-u", script, strategy, str(epochs), output_dir or ""], stdout=log, stderr=subprocess.STDOUT, env=env, text=True
    )


def config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}})


def finish(procs, logs, timeout=900):
    results = []
    for proc, log in zip(procs, logs):
        proc.wait(timeout=timeout)
        text = open(log.name).read()
        if proc.returncode != 0:
            raise SystemExit(f"a worker failed (exit {proc.returncode}):\n{text[-3000:]}")
        results.append(json.loads([line for line in text.splitlines() if line.startswith("RESULT ")][-1][7:]))
    return results


def speed(workdir, script, label, strategy, workers, epochs):
    ports = free_ports(workers)
    logs = [open(os.path.join(workdir, f"{label}{i}.log"), "w") for i in range(workers)]
    t0 = time.perf_counter()
    procs = [start(script, strategy, epochs, None, logs[i], config(ports, i) if workers > 1 else None) for i in range(workers)]
    results = finish(procs, logs)
    wall = time.perf_counter() - t0
    ends = results[0]["ends"]
    steps_per_s = STEPS * (len(ends) - 1) / (ends[-1] - ends[0])
    return {
        "label": label,
        "workers": workers,
        "replicas": results[0]["replicas"],
        "steps_per_s": steps_per_s,
        "wall": wall,
        "loss": results[0]["loss"],
    }


def resume(workdir, script, epochs):
    ports = free_ports(2)
    out = os.path.join(workdir, "resume")
    logs = [open(os.path.join(workdir, f"resume{i}_0.log"), "w") for i in range(2)]
    procs = [start(script, "multi_worker", epochs, out, logs[i], config(ports, i)) for i in range(2)]
    from keras_se.training.distribute import backup_root

    backup = os.path.join(backup_root(out), "float", "checkpoint")
    deadline = time.perf_counter() + 600
    while not os.path.exists(backup):
        if time.perf_counter() > deadline or any(p.poll() is not None for p in procs):
            raise SystemExit("no backup appeared:\n" + open(logs[0].name).read()[-3000:])
        time.sleep(0.2)
    procs[1].send_signal(signal.SIGKILL)
    killed = time.perf_counter()
    procs[0].wait(timeout=600)
    detected = time.perf_counter() - killed
    # The worker script lets `ClusterError` end it (the command line prints it as one line).
    error = [line.split("ClusterError: ", 1)[1] for line in open(logs[0].name).read().splitlines() if "ClusterError: " in line]
    logs = [open(os.path.join(workdir, f"resume{i}_1.log"), "w") for i in range(2)]
    restart = time.perf_counter()
    procs = [start(script, "multi_worker", epochs, out, logs[i], config(ports, i)) for i in range(2)]
    resumed_at = epoch_at = None
    while procs[0].poll() is None and epoch_at is None:
        text = open(logs[0].name).read()
        if resumed_at is None and "resumed from the backup" in text:
            resumed_at = time.perf_counter() - restart
        if resumed_at is not None and "EPOCH" in text:
            epoch_at = time.perf_counter() - restart
        time.sleep(0.1)
    results = finish(procs, logs)
    line = next(line for line in open(logs[0].name).read().splitlines() if "resumed from the backup" in line)
    return {
        "detected": detected,
        "error": error[0] if error else "",
        "resumed_line": line,
        "resumed": resumed_at,
        "next_epoch": epoch_at,
        "epochs_after": len(results[0]["ends"]),
    }


def section(rows, resumed, machine, load, wall, epochs):
    one = rows[0]["steps_per_s"]
    lines = [
        "One machine, processes on loopback. What it shows: the multi-worker path runs, how fast its custom step is against Keras 3 `fit`, "
        "and how long a killed worker costs. Not a scaling measurement: the two workers share the same two cores.",
        "",
        "```",
        "python benchmarks/multi_worker.py",
        "```",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {machine}; load average {load[0]:.1f} at the start, {load[1]:.1f} at the end (other work on the machine; the measurement itself not niced)",
        f"- training: SE-MobileNet alpha 0.25 (dropout 0), digits 32x32x3, 1,347 images, global batch 64 ({STEPS} steps an epoch), Adam 0.001, "
        f"{epochs} epochs, no validation; steps per second over epochs 2-{epochs} (epoch 1 traces the step)",
        f"- wall time, end to end: {wall:.0f} s",
        "",
        "| run | processes | replicas | steps/s | images/s | vs one process | epoch losses |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        losses = ", ".join(f"{v:.4f}" for v in r["loss"])
        lines.append(
            f"| {r['label']} | {r['workers']} | {r['replicas']} | {r['steps_per_s']:.2f} | {64 * r['steps_per_s']:.0f} | "
            f"{r['steps_per_s'] / one:.2f}x | {losses} |"
        )
    lines += [
        "",
        f"Resume after `kill -9` of worker 1 (2 workers, {epochs} epochs, killed once the backup of epoch 1 existed):",
        "",
        f"- the chief stopped {resumed['detected']:.1f} s after the kill with `ClusterError`: `{resumed['error'][:160]}...`",
        f"- both restarted with the same command: `{resumed['resumed_line'].strip()}` {resumed['resumed']:.1f} s after the restart "
        f"(start-up, connecting, building the model, reading the backup, broadcasting it), the next epoch done {resumed['next_epoch']:.1f} s after the restart "
        f"(that includes tracing the step again); {resumed['epochs_after']} epochs run after the restart instead of {epochs}",
        "",
        "What the numbers mean:",
        "",
        "- Each global batch of 64 is split 32 + 32 between the workers, so a step of two workers does the same work as a step of one "
        "process, plus the synchronisation over gRPC on loopback, on the same two cores: TensorFlow's intra-op threads of one process "
        "already use both cores, so two workers compete for them. Each step synchronises the 27 BatchNorm layers' statistics "
        "(an all-reduce each, forward and backward) and the gradients; with a few milliseconds of compute per step, those "
        "round trips are the likely cost (not measured apart; `--no-sync-bn` drops the BatchNorm ones). A speed-up needs a second machine and more compute per step; what this shows is the cost of "
        "the synchronisation and of the custom step.",
        "- The one-worker `multi_worker` row runs the custom step without a peer: its difference to the first row is the custom step "
        "(plus `MultiWorkerMirroredStrategy`'s per-batch end-of-data check) against Keras 3 `fit`.",
        "- The epoch losses are there to show that every run trains; they are not expected to agree: the digits are reshuffled "
        "every epoch and Keras' `fit` starts from another permutation than a fresh iterator. Equality to one process on the same "
        "fixed batches is what `tests/training/test_multi_worker.py` checks.",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dry-run", action="store_true", help="print the section, leave BENCHMARKS.md alone")
    parser.add_argument("--markdown", default=os.path.join(ROOT, "BENCHMARKS.md"), help="the file whose section is replaced")
    args = parser.parse_args()
    from benchmarks._markdown import machine_summary, update_section

    started = time.perf_counter()
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as workdir:
        script = os.path.join(workdir, "worker.py")
        with open(script, "w") as handle:
            handle.write(WORKER)
        rows = [
            speed(workdir, script, "one process, Keras 3 fit", "default", 1, args.epochs),
            speed(workdir, script, "one worker, multi_worker step", "multi_worker", 1, args.epochs),
            speed(workdir, script, "two workers, multi_worker step", "multi_worker", 2, args.epochs),
        ]
        resumed = resume(workdir, script, args.epochs)
    load.append(os.getloadavg()[0])
    text = section(rows, resumed, machine_summary(), load, time.perf_counter() - started, args.epochs)
    print(text)
    if not args.dry_run:
        update_section(args.markdown, SECTION, text)


if __name__ == "__main__":
    main()
