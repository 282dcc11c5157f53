"""The converted model zoo in tflite_models/: files plus a manifest."""

import json
import os

from keras_se.export.tflite import to_tflite

# (registry name, quantize, gpu preset)
MOBILE_SET = [
    (name, quantize, gpu)
    for name in ("se_mobilenet", "se_shufflenet_g3", "se_resnet50")
    for quantize, gpu in ((None, False), ("float16", True), ("int8", False))
]


def build_zoo(out_dir, entries=MOBILE_SET, input_size=224, threads=1, runs=20, overwrite=False, progress=None):
    """Converts `entries`, measures them and writes the manifest.

    Writes `{name}_{mode}.tflite` files, `models.json` and a `README.md`
    table into `out_dir`: size, op histogram, parity against Keras on the
    CPU runtime, both GPU verdicts for every file (the classic delegate's
    rules, and a run on LiteRT's GPU accelerator with its parity), and CPU
    and GPU latency measured side by side. Weights are the builders' initialisation (no pretrained
    weights are bundled), and int8 is calibrated on random data: the files
    show what converts and how fast it runs, not accuracy.

    Returns:
        list of manifest rows (dicts).
    """
    import dataclasses
    import warnings

    import numpy as np

    import keras_se
    from keras_se.export.bench import measure_latency
    from keras_se.export.calibration import RandomCalibrationWarning
    from keras_se.export.tflite import gpu_verdicts
    from keras_se.export.verify import keras_outputs
    from keras_se.io_utils import machine_summary, write_atomic

    os.makedirs(out_dir, exist_ok=True)
    rows = []
    models = {}
    for name, quantize, gpu in entries:
        if progress:
            progress(f"{name} {quantize or 'float32'}{' (GPU preset)' if gpu else ''}")
        if name not in models:
            models[name] = keras_se.create_model(name, input_shape=(input_size, input_size, 3))
        mode = (quantize or "float32") + ("_gpu" if gpu else "")
        path = os.path.join(out_dir, f"{name}_{mode}.tflite")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RandomCalibrationWarning)
            result = to_tflite(models[name], path, quantize=quantize, gpu=gpu, overwrite=overwrite)
        if not gpu:  # both GPU verdicts for every file, not only the GPU preset
            inputs = np.random.default_rng(0).uniform(0, 1, (4, input_size, input_size, 3)).astype("float32")
            result = dataclasses.replace(result, **gpu_verdicts(path, quantize, inputs, keras_outputs(models[name], inputs)))
        row = result.to_dict()
        ran = row["gpu_accelerator"]["passed"]
        latency = measure_latency(path, threads=threads, runs=runs, accelerators=["cpu", "gpu"] if ran else ["cpu"])
        row.update(
            model=name,
            mode=mode,
            path=os.path.basename(path),
            latency_ms=round(latency[0].median_ms, 2),
            latency_kernels=latency[0].kernels,
            gpu_latency_ms=round(latency[1].median_ms, 2) if ran else None,
            threads=threads,
        )
        rows.append(row)
    manifest = {
        "input_size": input_size,
        "weights": "builder initialisation (untrained)",
        "int8_calibration": "random data",
        "machine": machine_summary(),
        "gpu_adapter": next((r["gpu_accelerator"]["adapter"] for r in rows if r["gpu_accelerator"]["adapter"]), None),
        "models": rows,
    }
    write_atomic(os.path.join(out_dir, "models.json"), json.dumps(manifest, indent=2) + "\n", overwrite=True)
    write_atomic(os.path.join(out_dir, "README.md"), _markdown(manifest), overwrite=True)
    return rows


def _markdown(manifest):
    lines = [
        "# tflite_models",
        "",
        "Converted keras_se models and how each was made. Regenerate with",
        "`python tools/build_zoo.py --force` (the manifest `models.json` has every field).",
        "Only small files are committed; the rest are rebuilt by the tool.",
        "",
        f"Input {manifest['input_size']}x{manifest['input_size']}, batch 1; weights: {manifest['weights']}; "
        f"int8 calibration: {manifest['int8_calibration']}. Latency: LiteRT median, "
        f"{manifest['models'][0]['threads'] if manifest['models'] else 1} thread, on {manifest['machine']}.",
        "",
        "Two GPU verdicts for every file: **GPU rules** applies the classic GPU delegate's rules to the",
        "flatbuffer (`keras_se.export.check_gpu`; int8 files with quantised models allowed); **GPU ran**",
        "runs the file on LiteRT's GPU accelerator (ML Drift): with float32 kernels against LiteRT's CPU runtime",
        "(a wrong kernel shows there), and in float16, as phones run it, against Keras (relative L2). Outputs are",
        "probabilities of untrained models: near uniform, so the float16 column is weak evidence here;",
        "BENCHMARKS.md compares logits. Adapter: "
        f"{manifest['gpu_adapter'] or 'none (GPU not run)'}. A software adapter runs the real GPU compiler",
        "and kernels on the CPU: its verdicts and outputs are real, its times are not a phone's. The `_gpu`",
        "files are the GPU preset (`to_tflite(..., gpu=True)`).",
        "",
        "| file | MiB | ops | top ops | max abs err vs Keras (CPU) | GPU rules | GPU ran | GPU kernels (fp32) vs CPU | GPU fp16 rel L2 vs Keras | CPU ms | GPU ms |",
        "|---|---:|---:|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for row in manifest["models"]:
        top = ", ".join(f"{k} {v}" for k, v in sorted(row["ops"].items(), key=lambda kv: -kv[1])[:4])
        run = row["gpu_accelerator"]
        ran = "fully accelerated" if run["passed"] else f"{run['status']}: {run['reason']}"
        rel = f"{run['parity']['relative_l2']:.1e}" if run.get("parity") else ""
        kernel = (
            f"{run['kernel_relative_l2']:.1e}" if run.get("kernel_relative_l2") is not None else "not run" if run["status"] == "ran" else ""
        )
        gpu_ms = f"{row['gpu_latency_ms']:.1f}" if row.get("gpu_latency_ms") is not None else ""
        lines.append(
            f"| {row['path']} | {row['size_bytes'] / 2**20:.1f} | {sum(row['ops'].values())} | {top} | "
            f"{row['parity']['max_abs_error']:.1e} | {row['gpu_rules']} | {ran} | {kernel} | {rel} | {row['latency_ms']:.1f} | {gpu_ms} |"
        )
    return "\n".join(lines) + "\n"
