#!/usr/bin/env python
"""Every registered model's GPU preset through LiteRT's real GPU accelerator.

For each model of `keras_se.list_models()`: build it at the given size
(untrained weights, logits output), convert the GPU preset (`to_tflite(..., quantize="float16",
gpu=True)`: both GPU verdicts and float16 parity against Keras), then time
the file on the CPU (LiteRT, XNNPACK) and on the GPU accelerator side by
side, interleaved. Each conversion runs in its own process (memory stays
flat over 30 models). The result goes to the "## LiteRT GPU accelerator"
section of BENCHMARKS.md.

    python benchmarks/gpu_accelerator.py --size 160 --runs 10
    python benchmarks/gpu_accelerator.py --models se_mobilenet sknet50 --dry-run
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _markdown import machine_summary, update_section  # noqa: E402

SECTION = "## LiteRT GPU accelerator"


def convert_one(name, size, path):
    """Child process: converts one GPU preset, runs it on the GPU, prints its record as JSON."""
    import time

    import numpy as np

    import keras_se
    from keras_se.export import to_tflite
    from keras_se.export.errors import VerificationError
    from keras_se.export.verify import check_gpu_run, compare_on_gpu, keras_outputs

    # Logits: an untrained model's softmax is near uniform whatever its
    # features are, so parity on probabilities would hide a wrong kernel.
    model = keras_se.create_model(name, input_shape=(size, size, 3), classifier_activation=None)
    start = time.perf_counter()
    # What to_tflite(gpu=True) does, step by step, so a failing check still
    # leaves its numbers in the table.
    record = to_tflite(model, path, quantize="float16", gpu=True, verify=False, overwrite=True).to_dict()
    converted = time.perf_counter()
    inputs = np.random.default_rng(0).uniform(0, 1, (4, size, size, 3)).astype("float32")
    run, parity = compare_on_gpu(path, inputs, keras_outputs(model, inputs))
    try:
        check_gpu_run(run, parity, "float16")
        record["verdict"] = "pass"
    except VerificationError as error:
        record["verdict"] = str(error)
    record.update(
        gpu_accelerator=run.to_dict(parity),
        convert_s=converted - start,
        gpu_check_s=time.perf_counter() - converted,
    )
    print(json.dumps(record))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per file and accelerator")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--models", nargs="+", help="registered names (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="print the section, leave BENCHMARKS.md alone")
    parser.add_argument("--convert-one", nargs=3, metavar=("NAME", "SIZE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.convert_one:
        name, size, path = args.convert_one
        return convert_one(name, int(size), path)

    from rich.progress import Progress

    import keras_se
    from keras_se.export.bench import measure_latency

    names = args.models or keras_se.list_models()
    rows = {}
    with tempfile.TemporaryDirectory() as out, Progress(transient=True) as progress:
        task = progress.add_task("GPU presets", total=len(names))
        for name in names:
            progress.update(task, description=f"{name}: convert + GPU run")
            path = os.path.join(out, f"{name}.tflite")
            done = subprocess.run([sys.executable, __file__, "--convert-one", name, str(args.size), path], capture_output=True, text=True)
            lines = done.stdout.strip().splitlines()
            record = json.loads(lines[-1]) if done.returncode == 0 and lines else {"error": f"exit {done.returncode}"}
            if "error" not in record and record["gpu_accelerator"]["passed"]:  # times even when parity fails
                progress.update(task, description=f"{name}: timing CPU and GPU")
                cpu, gpu = measure_latency(path, runs=args.runs, warmup=args.warmup, accelerators=["cpu", "gpu"])
                record.update(cpu_ms=cpu.median_ms, gpu_ms=gpu.median_ms)
            rows[name] = record
            progress.advance(task)
    body = report(rows, args)
    if not args.dry_run:
        update_section(os.path.join(HERE, "..", "BENCHMARKS.md"), SECTION, body)
    print(body)
    return 0 if all(r.get("verdict") == "pass" for r in rows.values()) else 1


def report(rows, args):
    from keras_se.export.verify import GPU_KERNEL_RELATIVE_L2, GPU_RELATIVE_L2

    adapter = next((r["gpu_accelerator"]["adapter"] for r in rows.values() if r.get("gpu_accelerator")), None)
    models = "" if not args.models else " --models " + " ".join(args.models)
    lines = [
        f"Command: `python benchmarks/gpu_accelerator.py --size {args.size} --runs {args.runs}{models}`  ",
        f"Machine: {machine_summary()}  ",
        f"GPU adapter: {adapter or 'none'}  ",
        f'Every registered model\'s GPU preset (`to_tflite(..., quantize="float16", gpu=True)`), {args.size}x{args.size}, '
        "untrained weights, logits output (`classifier_activation=None`: an untrained softmax is near uniform "
        "whatever the features, so parity on probabilities would hide a wrong kernel), batch 1. **Classic rules**: `check_gpu`, the classic GPU delegate's rules. **LiteRT GPU**: "
        "the file compiled and run on LiteRT's GPU accelerator (ML Drift over WebGPU, float16 arithmetic) in a child "
        f"process. **Kernels (fp32) vs CPU**: the same file on the GPU with float32 kernels against LiteRT's CPU "
        f"runtime, relative L2 (bound {GPU_KERNEL_RELATIVE_L2}: a wrong kernel shows here). **fp16 rel L2 vs Keras**: "
        f"what a phone computes, on 4 random inputs (bound {GPU_RELATIVE_L2}; top-5 = overlap of the top-5 classes). CPU = LiteRT with XNNPACK, 1 thread; CPU and GPU timed side by side, interleaved, "
        f"median of {args.runs} after {args.warmup} warm-up runs; a GPU time includes reading the output.",
        "",
        "| model | ops | classic rules | LiteRT GPU ran | kernels (fp32) vs CPU | fp16 rel L2 vs Keras | top-5 | verdict | CPU ms | GPU ms | GPU / CPU | convert s | GPU check s |",
        "|---|---:|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        if "error" in r:
            lines.append(f"| {name} | | | failed: {r['error'][:160]} | | | | | | | | | |")
            continue
        run = r["gpu_accelerator"]
        parity = run.get("parity") or {}
        ran = "fully accelerated" if run["passed"] else f"{run['status']}: {run['reason'][:120]}"
        kernel = (
            f"{run['kernel_relative_l2']:.1e}" if run.get("kernel_relative_l2") is not None else "not run" if run["status"] == "ran" else ""
        )
        verdict = "pass" if r["verdict"] == "pass" else "fails: " + _why(r["verdict"])
        cpu, gpu = r.get("cpu_ms"), r.get("gpu_ms")
        lines.append(
            f"| {name} | {sum(r['ops'].values())} | {r['gpu_rules']} | {ran} | {kernel} | "
            + (f"{parity['relative_l2']:.1e} | {parity['top5_agreement']:.0%} | " if parity else "| | ")
            + f"{verdict} | "
            + (f"{cpu:.1f} | {gpu:.1f} | {gpu / cpu:.1f} | " if cpu else "| | | ")
            + f"{r['convert_s']:.0f} | {r['gpu_check_s']:.0f} |"
        )
    ran = sum("error" not in r and r["gpu_accelerator"]["passed"] for r in rows.values())
    passed = sum(r.get("verdict") == "pass" for r in rows.values())
    lines += [
        "",
        f"{ran} of {len(rows)} GPU presets ran fully accelerated; {passed} passed every check "
        "(fully accelerated, float32 kernels match the CPU runtime, float16 logits within the bound).",
    ]
    return "\n".join(lines)


def _why(message):
    if "float16 arithmetic" in message:
        return "float16 underflow (kernels right)"
    return message[:120]


if __name__ == "__main__":
    sys.exit(main())
