"""Latency of TFLite models in LiteRT (XNNPACK), medians of many runs."""

import dataclasses
import statistics
import time

import numpy as np

from keras_se.export.verify import make_interpreter


@dataclasses.dataclass
class Latency:
    path: str
    threads: int
    runs: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    kernels: str


def _prepared(path, threads):
    interpreter, kernels = make_interpreter(str(path), threads)
    detail = interpreter.get_input_details()[0]
    rng = np.random.default_rng(0)
    if detail["dtype"] in (np.int8, np.uint8):
        info = np.iinfo(detail["dtype"])
        x = rng.integers(info.min, info.max, detail["shape"], dtype=detail["dtype"])
    else:
        x = rng.uniform(0, 1, detail["shape"]).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], x)
    return interpreter, kernels


def measure_latency(paths, threads=1, runs=50, warmup=5):
    """Median latency of each model, runs interleaved so drift cancels.

    Args:
        paths: one `.tflite` path or a list of them.
        threads: int, defaults to 1. LiteRT `num_threads`.
        runs: int, defaults to 50. Timed invocations per model.
        warmup: int, defaults to 5. Untimed invocations first.

    Returns:
        list of `Latency`, in the order of `paths`.
    """
    paths = [paths] if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__") else list(paths)
    if runs < 1 or warmup < 0 or threads < 1:
        raise ValueError(f"runs and threads must be >= 1 and warmup >= 0. Received: runs={runs}, warmup={warmup}, threads={threads}")
    prepared = [_prepared(p, threads) for p in paths]
    for interpreter, _ in prepared:
        for _ in range(warmup):
            interpreter.invoke()
    times = [[] for _ in paths]
    for _ in range(runs):
        for i, (interpreter, _) in enumerate(prepared):
            start = time.perf_counter()
            interpreter.invoke()
            times[i].append((time.perf_counter() - start) * 1e3)
    results = []
    for path, (_, kernels), t in zip(paths, prepared, times):
        deciles = statistics.quantiles(t, n=10) if len(t) > 1 else [t[0]] * 9
        results.append(Latency(str(path), threads, runs, statistics.median(t), deciles[0], deciles[-1], kernels))
    return results
