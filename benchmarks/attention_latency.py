#!/usr/bin/env python
"""What each attention kind costs in LiteRT: SE, ECA and CBAM against the plain network.

    python benchmarks/attention_latency.py [--runs 20] [--threads 1] [--networks resnet50 mobilenet] [--out build/attention_latency]

`--size`, `--kinds` and `--markdown` give smaller runs elsewhere (the tests
run it at 32x32 with two kinds).

ResNet-50 and MobileNet, each built by keras_se with `attention=None` (the
plain twin), `"se"`, `"eca"` and `"cbam"`, converted to fp32 and full int8
(calibrated on random data: speed does not depend on the weights' values),
each in its own process. Each file's XNNPACK partitions are counted there
(`keras_se.export.xnnpack_delegation`). Then all files are timed in one
interleaved loop (models alternate run by run, so machine drift cancels)
and each median is compared with the plain twin's from the same loop.
Results go to BENCHMARKS.md ("## Attention kinds: SE, ECA and CBAM latency").
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _markdown import machine_summary, update_section  # noqa: E402

SECTION = "## Attention kinds: SE, ECA and CBAM latency"
NETWORKS = {"resnet50": "ResNet-50", "mobilenet": "MobileNet"}
KINDS = (None, "se", "eca", "cbam")
QUANTIZE = ("float32", "int8")
SIZE = 224


def _kind_name(kind):
    return kind or "none"


def _kinds(names):
    return [None if name == "none" else name for name in names]


def convert_one(network, kind, quantize, path, size=SIZE):
    """Runs in a child process: convert one file, print one JSON line about it."""
    import warnings

    import keras_se
    from keras_se.analysis import complexity_report
    from keras_se.export import to_tflite, xnnpack_delegation

    model = keras_se.create_model(network, attention=kind, input_shape=(size, size, 3))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the random-calibration warning
        result = to_tflite(model, path, quantize=None if quantize == "float32" else quantize, overwrite=True, verify=False)
    seconds = time.perf_counter() - start
    delegation = xnnpack_delegation(path)
    report = complexity_report(model, twin=False)
    line = {
        "seconds": seconds,
        "size_bytes": result.size_bytes,
        "params": model.count_params(),
        "macs": report.macs_with_weighting,
        "partitions": delegation.partitions,
        "left": [name for _, name in delegation.left],
    }
    print(json.dumps(line))


def convert_all(networks, out, console, kinds=KINDS, size=SIZE):
    conversions = {}
    with console.status("converting") as status:
        for network in networks:
            for kind in kinds:
                for quantize in QUANTIZE:
                    status.update(f"converting {network} attention={kind} {quantize}")
                    path = os.path.join(out, f"{network}_{_kind_name(kind)}_{quantize}.tflite")
                    child = subprocess.run(
                        [sys.executable, __file__, "--convert-one", network, _kind_name(kind), quantize, path, "--size", str(size)],
                        capture_output=True,
                        text=True,
                    )
                    if child.returncode != 0:
                        raise RuntimeError(f"converting {network} attention={kind} {quantize} failed:\n{child.stderr[-4000:]}")
                    conversions[(network, kind, quantize)] = {"path": path, **json.loads(child.stdout.strip().splitlines()[-1])}
    return conversions


def report(conversions, latency, kernels, load, args):
    lines = [
        f"Command: `python benchmarks/attention_latency.py --runs {args.runs} --threads {args.threads}"
        + ("" if list(args.networks) == list(NETWORKS) else f" --networks {' '.join(args.networks)}")
        + ("" if args.size == SIZE else f" --size {args.size}")
        + ("" if args.kinds == list(map(_kind_name, KINDS)) else f" --kinds {' '.join(args.kinds)}")
        + "`  ",
        f"Machine: {machine_summary()}; load average {load[0]:.1f} when timing started, {load[1]:.1f} when it ended "
        "(other work on the machine adds noise; the interleaved loop shares it out)  ",
        f"LiteRT with XNNPACK, batch 1, {args.size}x{args.size}, {args.threads} thread(s), median of {args.runs} runs after "
        f"{args.warmup} warm-up runs, all {len(conversions)} files interleaved in one loop. keras_se's `resnet50` and "
        '`mobilenet` builders with `attention=None` (plain), `"se"`, `"eca"`, `"cbam"`; int8 = full integer '
        "(int8 input and output), calibrated on random data. Ratios are to the plain twin in the same loop. "
        "Partitions: XNNPACK partitions of the int8 file, and the ops LiteRT's own kernels run "
        "(`keras_se.export.xnnpack_delegation`).",
        "",
        "| network | attention | params (M) | GMACs | fp32 ms | fp32 / plain | int8 ms | int8 / plain | int8 speed-up | int8 partitions |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for network in args.networks:
        title = NETWORKS[network]
        plain = {q: latency[(network, None, q)] for q in QUANTIZE}
        for kind in _kinds(args.kinds):
            info = conversions[(network, kind, "float32")]
            int8 = conversions[(network, kind, "int8")]
            fp32_ms, int8_ms = latency[(network, kind, "float32")], latency[(network, kind, "int8")]
            left = f", {' '.join(int8['left'])} left" if int8["left"] else ""
            lines.append(
                f"| {title} | {kind or 'none (plain)'} | {info['params'] / 1e6:.2f} | {info['macs'] / 1e9:.3f} | "
                f"{fp32_ms:.2f} | {fp32_ms / plain['float32']:.3f} | {int8_ms:.2f} | {int8_ms / plain['int8']:.3f} | "
                f"{fp32_ms / int8_ms:.2f}x | {int8['partitions']}{left} |"
            )
    refused = [f"{name} ({kind})" for name, kind in kernels.items() if kind != "XNNPACK"]
    if refused:
        lines += ["", f"XNNPACK refused these files; LiteRT's reference kernels timed them: {', '.join(refused)}."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS), default=list(NETWORKS))
    parser.add_argument("--kinds", nargs="+", choices=list(map(_kind_name, KINDS)), default=list(map(_kind_name, KINDS)))
    parser.add_argument("--size", type=int, default=SIZE, help="input height and width")
    parser.add_argument("--out", default=os.path.join(HERE, "..", "build", "attention_latency"))
    parser.add_argument("--markdown", default=os.path.join(HERE, "..", "BENCHMARKS.md"), help="the file whose section is replaced")
    parser.add_argument("--convert-one", nargs=4, metavar=("NETWORK", "KIND", "QUANTIZE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.convert_one:
        network, kind, quantize, path = args.convert_one
        return convert_one(network, None if kind == "none" else kind, quantize, path, args.size)
    if "none" not in args.kinds:
        parser.error("--kinds must include none: the ratios are to the plain twin")
    if args.runs < 1 or args.warmup < 0 or args.threads < 1:
        parser.error(f"--runs and --threads must be >= 1 and --warmup >= 0. Received: {args.runs}, {args.threads}, {args.warmup}")

    from rich.console import Console

    from keras_se.export.bench import measure_latency

    console = Console(stderr=True)
    os.makedirs(args.out, exist_ok=True)
    conversions = convert_all(args.networks, args.out, console, _kinds(args.kinds), args.size)
    keys = list(conversions)
    load = [os.getloadavg()[0]]
    with console.status(f"timing {len(keys)} files, {args.threads} thread(s), {args.runs} runs"):
        results = measure_latency([conversions[k]["path"] for k in keys], threads=args.threads, runs=args.runs, warmup=args.warmup)
    load.append(os.getloadavg()[0])
    latency = {k: r.median_ms for k, r in zip(keys, results)}
    kernels = {os.path.basename(r.path): r.kernels for r in results}
    body = report(conversions, latency, kernels, load, args)
    update_section(args.markdown, SECTION, body)
    console.print(body)


if __name__ == "__main__":
    sys.exit(main())
