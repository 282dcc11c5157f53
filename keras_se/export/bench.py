"""Latency of TFLite models in LiteRT: XNNPACK on the CPU, or LiteRT's GPU accelerator."""

import contextlib
import dataclasses
import statistics
import time

import numpy as np

from keras_se.export.gpu_run import GpuAccelerator, GpuAcceleratorError
from keras_se.export.verify import make_interpreter

ACCELERATORS = ("cpu", "gpu")


@dataclasses.dataclass
class Latency:
    path: str
    threads: int
    runs: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    kernels: str  # "XNNPACK" / "reference" on the CPU, the GPU's adapter otherwise
    accelerator: str = "cpu"
    software: bool = None  # for "gpu": the adapter is a software one (not phone times)


def _input(shape, dtype):
    rng = np.random.default_rng(0)
    if np.dtype(dtype) in (np.int8, np.uint8):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype)
    return rng.uniform(0, 1, shape).astype(dtype)


def _refused(path, error):
    """LiteRT's error (a ValueError or RuntimeError that names no file) as one naming `path`."""
    lines = str(error).strip().splitlines()
    return ValueError(f"LiteRT cannot run {path}: {lines[0] if lines else type(error).__name__}")


def _cpu_timer(path, threads):
    try:
        interpreter, kernels = make_interpreter(str(path), threads)
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], _input(detail["shape"], detail["dtype"]))
    except (RuntimeError, ValueError) as error:  # e.g. an op version this LiteRT does not have
        raise _refused(path, error) from None

    def invoke():
        start = time.perf_counter()
        try:
            interpreter.invoke()
        except RuntimeError as error:
            raise _refused(path, error) from None
        return (time.perf_counter() - start) * 1e3

    return invoke, kernels, None


def _gpu_timer(path, stack):
    gpu = stack.enter_context(GpuAccelerator(path))
    if gpu.status != "ready":
        raise ValueError(f"cannot time {path} on LiteRT's GPU accelerator: {gpu.status}: {gpu.reason}")
    gpu.run(_input(gpu.input["shape"], "float32"))  # a real input, fed as the file expects
    return (lambda: gpu.time(1)[0]), gpu.adapter or "GPU", gpu.software


def measure_latency(paths, threads=1, runs=50, warmup=5, accelerators=("cpu",)):
    """Median latency of each model on each accelerator, runs interleaved so drift cancels.

    Every round times one invocation of every (file, accelerator) pair, so
    a CPU and a GPU time (or two files) are measured side by side.

    Args:
        paths: one `.tflite` path or a list of them.
        threads: int, defaults to 1. LiteRT `num_threads` on the CPU.
        runs: int, defaults to 50. Timed invocations per model.
        warmup: int, defaults to 5. Untimed invocations first.
        accelerators: "cpu" (LiteRT with XNNPACK) and / or "gpu" (LiteRT's
            GPU accelerator in a child process, `keras_se.export.gpu_run`;
            a GPU time includes reading the output, which waits for the GPU).

    Returns:
        list of `Latency`, file by file in the order of `paths`, each file's
        accelerators in the order given.

    Raises:
        ValueError: bad arguments, or a file the GPU accelerator cannot run
            (no adapter, refused, crashed), with the reason.
    """
    paths = [paths] if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__") else list(paths)
    accelerators = [accelerators] if isinstance(accelerators, str) else list(accelerators)
    if runs < 1 or warmup < 0 or threads < 1:
        raise ValueError(f"runs and threads must be >= 1 and warmup >= 0. Received: runs={runs}, warmup={warmup}, threads={threads}")
    if not accelerators or any(a not in ACCELERATORS for a in accelerators):
        raise ValueError(f"accelerators must be among {ACCELERATORS}. Received: accelerators={accelerators}")
    with contextlib.ExitStack() as stack:
        try:
            timers = [
                (path, accelerator, *(_cpu_timer(path, threads) if accelerator == "cpu" else _gpu_timer(path, stack)))
                for path in paths
                for accelerator in accelerators
            ]
            for _ in range(warmup):
                for _, _, invoke, _, _ in timers:
                    invoke()
            times = [[] for _ in timers]
            for _ in range(runs):
                for i, (_, _, invoke, _, _) in enumerate(timers):
                    times[i].append(invoke())
        except GpuAcceleratorError as error:  # the child died or stopped answering mid-run
            raise ValueError(f"cannot time on LiteRT's GPU accelerator: {error}") from None
    results = []
    for (path, accelerator, _, kernels, software), t in zip(timers, times):
        deciles = statistics.quantiles(t, n=10) if len(t) > 1 else [t[0]] * 9
        results.append(Latency(str(path), threads, runs, statistics.median(t), deciles[0], deciles[-1], kernels, accelerator, software))
    return results
