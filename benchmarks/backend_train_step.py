#!/usr/bin/env python
"""One training step of SE-ResNet-50 and SE-MobileNet on each Keras backend.

    python benchmarks/backend_train_step.py [--rounds 10] [--batch 8] [--models se_resnet50 se_mobilenet]

For each model, one worker process per backend (TensorFlow, JAX, PyTorch:
the backend is fixed per process) builds it at 224x224 (1000 classes),
compiles it (SGD, sparse categorical cross-entropy) and runs two warm-up
steps (tracing / JIT compilation). Then the parent asks the workers for one
`train_on_batch` step each, in turn, round after round, the order rotating
each round: the backends' steps are interleaved, so machine drift cancels.
Each step's wall time is measured inside its worker (`train_on_batch`
returns host floats, so the step has finished). The median per backend, and
its ratio to TensorFlow's, go to BENCHMARKS.md ("## Training step on each
Keras backend").
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _markdown import machine_summary, update_section  # noqa: E402

SECTION = "## Training step on each Keras backend"
BACKENDS = ("tensorflow", "jax", "torch")
SIZE = 224


def worker(model_name, batch, size=SIZE):
    """Runs in a child process (KERAS_BACKEND set): answers "step" with one
    step's seconds, as a JSON line, until stdin closes."""
    import keras
    import numpy as np

    import keras_se

    rng = np.random.default_rng(0)
    x = rng.random((batch, size, size, 3), dtype="float32")
    y = rng.integers(0, 1000, batch)
    started = time.perf_counter()
    model = keras_se.create_model(model_name, input_shape=(size, size, 3))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
    for _ in range(2):
        model.train_on_batch(x, y)
    ready = {"backend": keras.backend.backend(), "version": _version(keras.backend.backend()), "warmup_s": time.perf_counter() - started}
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            break
        start = time.perf_counter()
        loss = model.train_on_batch(x, y)
        seconds = time.perf_counter() - start
        print(json.dumps({"seconds": seconds, "finite": bool(np.isfinite(np.asarray(loss)).all())}), flush=True)


def _version(backend):
    return __import__(backend).__version__  # the backends are named as their modules


def _start(backend, model_name, batch, size=SIZE):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = [sys.executable, os.path.abspath(__file__), "--worker", model_name, str(batch), "--size", str(size)]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)


def _read(proc):
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"a worker ended early (exit status {proc.wait()})")
    return json.loads(line)


def measure(model_name, rounds, batch, size=SIZE):
    procs = {backend: _start(backend, model_name, batch, size) for backend in BACKENDS}
    try:
        ready = {backend: _read(proc) for backend, proc in procs.items()}
        times = {backend: [] for backend in BACKENDS}
        for r in range(rounds):
            order = BACKENDS[r % len(BACKENDS) :] + BACKENDS[: r % len(BACKENDS)]
            for backend in order:
                procs[backend].stdin.write("step\n")
                procs[backend].stdin.flush()
                step = _read(procs[backend])
                if not step["finite"]:
                    raise RuntimeError(f"{model_name} on {backend}: a non-finite loss")
                times[backend].append(step["seconds"])
    finally:
        for proc in procs.values():
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=60)
    return ready, times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--models", nargs="+", default=["se_resnet50", "se_mobilenet"])
    parser.add_argument("--size", type=int, default=SIZE, help="input height and width")
    parser.add_argument("--dry-run", action="store_true", help="print the section, write nothing")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.size)
        return
    load_start = os.getloadavg()[0]
    start = time.perf_counter()
    rows, versions = [], {}
    for model_name in args.models:
        ready, times = measure(model_name, args.rounds, args.batch, args.size)
        versions.update({backend: info["version"] for backend, info in ready.items()})
        base = statistics.median(times["tensorflow"])
        for backend in BACKENDS:
            median = statistics.median(times[backend])
            rows.append(
                f"| {model_name} | {backend} | {median:.3f} | {min(times[backend]):.3f}-{max(times[backend]):.3f} "
                f"| {median / base:.2f} | {ready[backend]['warmup_s']:.0f} |"
            )
    wall = time.perf_counter() - start
    body = "\n".join(
        [
            f"Command: `python benchmarks/backend_train_step.py --rounds {args.rounds} --batch {args.batch}"
            + ("" if args.size == SIZE else f" --size {args.size}")
            + "`  ",
            f"Machine: {machine_summary()}; JAX {versions.get('jax', '?')}, PyTorch {versions.get('torch', '?')} (CPU builds); "
            f"load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; wall time {wall:.0f} s  ",
            f"One `train_on_batch` step (SGD with momentum, sparse categorical cross-entropy), batch {args.batch}, "
            f"{args.size}x{args.size}, 1000 classes, float32, each backend in its own worker process; the workers step in turn, "
            f"{args.rounds} rounds, the order rotating each round. Warm-up: building, compiling and two steps "
            "(TensorFlow traces the step, JAX compiles it with XLA, PyTorch runs eagerly).",
            "",
            "| model | backend | step s (median) | range | / TensorFlow | warm-up s |",
            "|---|---|---:|---:|---:|---:|",
            *rows,
        ]
    )
    if args.dry_run:
        print(body)
    else:
        update_section(os.path.join(HERE, "..", "BENCHMARKS.md"), SECTION, body)
        print(body)


if __name__ == "__main__":
    main()
