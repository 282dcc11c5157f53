#!/usr/bin/env python
"""SE overhead, int8 speed-up and compute efficiency in LiteRT, side by side
with keras.applications. Results go to BENCHMARKS.md ("## Inference latency").

    python benchmarks/latency.py [--runs 30] [--threads 1 2] [--out build/bench] [--size 224] [--markdown BENCHMARKS.md]

Each model is converted (fp32 and full int8, calibrated on random data: speed
does not depend on the weights' values) in its own process so its conversion
time and peak memory are its own; then all files are timed in one
interleaved loop (models alternate run by run, so machine drift cancels) and
the medians compared.
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

# (SE / SK model, its plain twin, the keras.applications model users would pick)
GROUPS = [
    ("se_resnet50", "resnet50", "ResNet50"),
    ("se_mobilenet", "mobilenet", "MobileNet"),
    ("se_shufflenet_g3", "shufflenet_g3", None),
    ("sknet50", "resnext50_32x4d", None),
]


def build(name, size=224):
    import keras

    import keras_se

    if name.startswith("keras."):
        return getattr(keras.applications, name.split(".", 1)[1])(weights=None, input_shape=(size, size, 3))
    return keras_se.create_model(name, input_shape=(size, size, 3))


def convert_one(name, quantize, path, size=224):
    """Runs in a child process: convert, print seconds, peak RSS and MACs."""
    import warnings

    from keras_se.analysis import complexity_report
    from keras_se.export import to_tflite

    model = build(name, size)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = to_tflite(model, path, quantize=quantize, overwrite=True, verify=False)
    seconds = time.perf_counter() - start
    with open("/proc/self/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    macs = complexity_report(model, twin=False).macs_with_weighting if quantize is None else None
    print(json.dumps({"seconds": seconds, "peak_mib": peak_kib / 1024, "size_bytes": result.size_bytes, "macs": macs}))


def train_step_times(steps, batch, size=224):
    """Median seconds of one training step, SE-ResNet-50 vs ResNet-50, interleaved."""
    import keras
    import numpy as np

    import keras_se

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(batch, size, size, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 1000, batch), 1000)
    models = {}
    for name in ("se_resnet50", "resnet50"):
        model = keras_se.create_model(name, input_shape=(size, size, 3))
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy")
        model.train_on_batch(x, y)  # build the train function
        models[name] = model
    times = {name: [] for name in models}
    for _ in range(steps):
        for name, model in models.items():
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--out", default=os.path.join(HERE, "..", "build", "bench"))
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--markdown", default=os.path.join(HERE, "..", "BENCHMARKS.md"), help="the file whose section is replaced")
    parser.add_argument("--convert-one", nargs=3, metavar=("NAME", "QUANTIZE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.convert_one:
        name, quantize, path = args.convert_one
        return convert_one(name, None if quantize == "float32" else quantize, path, args.size)

    from rich.console import Console

    from keras_se.export.bench import measure_latency

    console = Console(stderr=True)
    os.makedirs(args.out, exist_ok=True)
    names = [n for se, plain, app in GROUPS for n in (se, plain, f"keras.{app}" if app else None) if n]
    conversions = {}
    with console.status("converting") as status:
        for name in names:
            for quantize in ("float32", "int8"):
                status.update(f"converting {name} {quantize}")
                path = os.path.join(args.out, f"{name}_{quantize}.tflite")
                out = (
                    subprocess.run(
                        [sys.executable, __file__, "--convert-one", name, quantize, path, "--size", str(args.size)],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    .stdout.strip()
                    .splitlines()[-1]
                )
                conversions[(name, quantize)] = {"path": path, **json.loads(out)}
    latency = {}
    for threads in args.threads:
        with console.status(f"timing {len(conversions)} files, {threads} thread(s)"):
            keys = list(conversions)
            results = measure_latency([conversions[k]["path"] for k in keys], threads=threads, runs=args.runs, warmup=args.warmup)
            for key, result in zip(keys, results):
                latency[(key[0], key[1], threads)] = result.median_ms
    with console.status("training steps"):
        train = train_step_times(args.train_steps, args.train_batch, args.size)
    body = report(conversions, latency, train, args)
    update_section(args.markdown, "## Inference latency and SE overhead", body)
    console.print(body)


def report(conversions, latency, train, args):
    threads = args.threads
    macs = {name: conversions[(name, "float32")]["macs"] for name, _ in conversions}
    lines = [
        f"Command: `python benchmarks/latency.py --runs {args.runs} --threads {' '.join(map(str, threads))}"
        + ("" if args.size == 224 else f" --size {args.size}")
        + "`  ",
        f"Machine: {machine_summary()}  ",
        f"LiteRT with XNNPACK, batch 1, {args.size}x{args.size}, median of {args.runs} runs after {args.warmup} warm-up runs, "
        "all files interleaved in one loop. int8 = full integer, calibrated on random data.",
        "",
        "| model | GMACs | fp32 MiB | int8 MiB | "
        + " | ".join(f"fp32 ms ({t}T) | int8 ms ({t}T) | int8 speed-up ({t}T)" for t in threads)
        + f" | GMAC/s fp32 ({threads[0]}T) | convert s (fp32/int8) | peak MiB (fp32/int8) |",
        "|---|---:|---:|---:|" + "---:|---:|---:|" * len(threads) + "---:|---:|---:|",
    ]
    for name in dict.fromkeys(n for n, _ in conversions):
        fp32, int8 = conversions[(name, "float32")], conversions[(name, "int8")]
        cells = []
        for t in threads:
            a, b = latency[(name, "float32", t)], latency[(name, "int8", t)]
            cells += [f"{a:.1f}", f"{b:.1f}", f"{a / b:.2f}x"]
        gmacs = macs[name] / 1e9
        lines.append(
            f"| {name} | {gmacs:.2f} | {fp32['size_bytes'] / 2**20:.1f} | {int8['size_bytes'] / 2**20:.1f} | "
            + " | ".join(cells)
            + f" | {gmacs / (latency[(name, 'float32', threads[0])] / 1e3):.1f} | {fp32['seconds']:.0f} / {int8['seconds']:.0f}"
            f" | {fp32['peak_mib']:.0f} / {int8['peak_mib']:.0f} |"
        )
    lines += ["", "Ratios (SE or SK model / its plain twin, same run):", ""]
    lines += [
        "| pair | " + " | ".join(f"fp32 ({t}T) | int8 ({t}T)" for t in threads) + " | MACs |",
        "|---|" + "---:|---:|" * len(threads) + "---:|",
    ]
    for se, plain, app in GROUPS:
        for other in filter(None, (plain, f"keras.{app}" if app else None)):
            cells = [f"{latency[(se, q, t)] / latency[(other, q, t)]:.3f}" for t in threads for q in ("float32", "int8")]
            lines.append(f"| {se} / {other} | " + " | ".join(cells) + f" | {macs[se] / macs[other]:.3f} |")
    lines += [
        "",
        f"Keras training step (CPU, batch {args.train_batch}, {args.size}x{args.size}, SGD, median of {args.train_steps} interleaved steps): "
        f"SE-ResNet-50 {train['se_resnet50']:.2f} s, ResNet-50 {train['resnet50']:.2f} s, "
        f"ratio {train['se_resnet50'] / train['resnet50']:.3f} (the paper's GPU figure: 209 / 190 ms = 1.10).",
        "",
        "Goals: " + "; ".join(goals(latency, macs, threads[0])),
    ]
    return "\n".join(lines)


def goals(latency, macs, t):
    out = []
    r = latency[("se_resnet50", "float32", t)] / latency[("resnet50", "float32", t)]
    out.append(f"SE-ResNet-50 / ResNet-50 fp32 {r:.3f} (goal <= 1.02: {'met' if r <= 1.02 else 'missed'})")
    r = latency[("se_mobilenet", "int8", t)] / latency[("keras.MobileNet", "int8", t)]
    out.append(f"SE-MobileNet int8 / keras MobileNet int8 {r:.3f} (goal <= 1.10: {'met' if r <= 1.10 else 'missed'})")
    for se, plain, _ in GROUPS:
        s = latency[(se, "float32", t)] / latency[(se, "int8", t)]
        p = latency[(plain, "float32", t)] / latency[(plain, "int8", t)]
        out.append(f"{se} int8 speed-up {s:.2f}x vs {plain} {p:.2f}x ({'met' if s >= p * 0.97 else 'missed'})")
    se_rate = macs["se_resnet50"] / latency[("se_resnet50", "float32", t)]
    app_rate = macs["keras.ResNet50"] / latency[("keras.ResNet50", "float32", t)]
    out.append(
        f"SE-ResNet-50 GMAC/s / keras ResNet50's {se_rate / app_rate:.3f} (goal >= 0.97: {'met' if se_rate / app_rate >= 0.97 else 'missed'})"
    )
    return out


if __name__ == "__main__":
    sys.exit(main())
