#!/usr/bin/env python
"""Load time and peak memory of `weights="imagenet"` from a warm cache, beside keras.applications.

    python benchmarks/weights_load.py [--repeats 5]

SE-ResNet-50 and SKNet-50 through `keras_se.create_model(name,
weights="imagenet")`: huggingface_hub finds timm's `model.safetensors` in
its cache (`HF_HUB_OFFLINE=1`), keras_se checks its SHA-256, reads it and
ports it into the model (build + port). Beside them, keras.applications'
ResNet50 loading its weights file (`ResNet50(weights=path)`, the legacy h5
layout of the file `weights="imagenet"` downloads). Each model is also
built with `weights=None`, so the weights' share of the time is the
difference.

The cached files hold random weights of the real shapes, written by
`keras_se.weights.timm.to_timm_state_dict` (timm's names, PyTorch layouts)
and for keras.applications by Keras' own legacy h5 writer: the network
reaches no hub here, and load time does not depend on the values.

Each measurement is a fresh process (imports done before the clock
starts): wall time of the one call, the process's peak RSS during it
(the high-water mark reset after the imports), and that peak above what
it held after the imports. The cases run interleaved, in a
new order each round; medians over the rounds go to BENCHMARKS.md
("## Loading ImageNet weights").
"""

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _markdown import machine_summary, update_section  # noqa: E402

SECTION = "## Loading ImageNet weights"
MODELS = ("se_resnet50", "sknet50")
CASES = [(name, w) for name in MODELS for w in ("imagenet", None)] + [
    ("keras.applications.ResNet50", "h5"),
    ("keras.applications.ResNet50", None),
]
REVISION = "0" * 40


def _status_mib(field):
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def _reset_peak():
    """Resets the process's peak RSS (VmHWM) to its present RSS (Linux: proc(5), /proc/pid/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def measure(name, weights, folder):
    """Child process: one build (+ load), printed as JSON."""
    import keras

    import keras_se

    keras_se.create_model  # noqa: B018  (the lazy attribute resolved before the clock starts)
    baseline = _status_mib("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    if name.startswith("keras.applications."):
        path = os.path.join(folder, "resnet50.h5") if weights else None
        model = keras.applications.ResNet50(weights=path)
    else:
        model = keras_se.create_model(name, weights=weights)
    seconds = time.perf_counter() - start
    peak = _status_mib("VmHWM")
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "above_imports_mib": peak - baseline, "params": model.count_params()}))


def _write_hub_cache(root, repo, path):
    """Puts `path` into a Hugging Face hub cache as `repo`'s model.safetensors (blob named by its SHA-256)."""
    folder = os.path.join(root, "models--" + repo.replace("/", "--"))
    snapshot = os.path.join(folder, "snapshots", REVISION)
    os.makedirs(os.path.join(folder, "blobs"), exist_ok=True)
    os.makedirs(os.path.join(folder, "refs"), exist_ok=True)
    os.makedirs(snapshot, exist_ok=True)
    with open(os.path.join(folder, "refs", "main"), "w") as handle:
        handle.write(REVISION)
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    blob = os.path.join(folder, "blobs", digest)
    os.replace(path, blob)
    link = os.path.join(snapshot, "model.safetensors")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.relpath(blob, snapshot), link)
    return blob


def prepare(folder):
    """Writes the hub cache (timm checkpoints of random weights) and keras.applications' h5 file."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format
    from safetensors.numpy import save_file

    import keras_se
    from keras_se.weights.pretrained import pretrained_weights
    from keras_se.weights.timm import to_timm_state_dict

    sizes = {}
    for name in MODELS:
        repo = pretrained_weights()[name]
        part = os.path.join(folder, f"{name}.safetensors.part")
        save_file(to_timm_state_dict(keras_se.create_model(name)), part)
        sizes[name] = os.path.getsize(_write_hub_cache(os.path.join(folder, "hub"), repo, part)) / 2**20
    h5 = os.path.join(folder, "resnet50.h5")
    with h5py.File(h5 + ".part", "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, keras.applications.ResNet50(weights=None))
    os.replace(h5 + ".part", h5)
    sizes["keras.applications.ResNet50"] = os.path.getsize(h5) / 2**20
    return sizes


def _run_child(name, weights, folder):
    env = {**os.environ, "HF_HUB_CACHE": os.path.join(folder, "hub"), "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, __file__, "--child", name, str(weights), "--out", folder]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{name} weights={weights}: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row(label, weights, results, sizes):
    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    source = f"{sizes[label]:.0f} MiB file" if weights else "none (build only)"
    return f"| {label} | {weights or 'None'} | {source} | {median['seconds']:.2f} ({min(r['seconds'] for r in results):.2f}-{max(r['seconds'] for r in results):.2f}) | {median['peak_mib']:.0f} | {median['above_imports_mib']:.0f} |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds of every case, interleaved")
    parser.add_argument("--out", default=os.path.join(HERE, "..", "build", "weights_load"))
    parser.add_argument("--markdown", default=os.path.join(HERE, "..", "BENCHMARKS.md"), help="the file whose section is replaced")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, weights = args.child
        return measure(name, None if weights == "None" else weights, args.out)
    os.makedirs(args.out, exist_ok=True)
    started = time.time()
    load = os.getloadavg()[0]
    sizes = prepare(args.out)
    results = {case: [] for case in CASES}
    order = list(CASES)
    for round_ in range(args.repeats):
        random.Random(round_).shuffle(order)
        for name, weights in order:
            results[(name, weights)].append(_run_child(name, weights, args.out))
        print(f"round {round_ + 1}/{args.repeats} done", flush=True)
    rows = [_row(name, w, results[(name, w)], sizes) for name, w in CASES]
    seconds = {case: statistics.median(r["seconds"] for r in results[case]) for case in CASES}
    port = {name: seconds[(name, "imagenet")] - seconds[(name, None)] for name in MODELS}
    keras_load = seconds[("keras.applications.ResNet50", "h5")] - seconds[("keras.applications.ResNet50", None)]
    body = f"""Command: `python benchmarks/weights_load.py --repeats {args.repeats}` ({(time.time() - started) / 60:.1f} min)  
Machine: {machine_summary()}; load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end  
Each case a fresh process; the clock covers the one call (imports done before it): `keras_se.create_model(name, weights=...)` or `keras.applications.ResNet50(weights=...)`. `imagenet`: timm's `model.safetensors` found in a warm huggingface_hub cache (`HF_HUB_OFFLINE=1`), SHA-256 checked, read and ported; `h5`: keras.applications' weights file in its legacy h5 layout, loaded by path. keras_se's clock includes the first import of huggingface_hub (about 0.4 s here; Keras has h5py imported already). The cached files hold random weights of the real shapes (no hub here; the values do not change the time). Median of {args.repeats} interleaved rounds (range); peak RSS of the process during the call (its high-water mark reset after the imports), and that peak above what it held after the imports.

| model | weights | file | seconds (range) | peak RSS MiB | above imports MiB |
|---|---|---|---:|---:|---:|
{chr(10).join(rows)}

Weights' share of the time (median with weights minus median without): se_resnet50 {port["se_resnet50"]:.2f} s, sknet50 {port["sknet50"]:.2f} s, keras.applications ResNet50 {keras_load:.2f} s.

Reading the memory column: the safetensors file is read through a memory map, tensor by tensor, and its pages count in RSS while it is open (clean file pages, which the kernel can drop), beside the numpy copies; the port then sets the model layer by layer and frees each tensor once set, so the peak is reached while reading, at about the model's weights twice over. keras.applications reads its h5 file dataset by dataset with h5py, without a map.
"""
    print(body)
    update_section(args.markdown, SECTION, body)


if __name__ == "__main__":
    main()
