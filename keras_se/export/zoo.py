"""The converted model zoo in tflite_models/: files plus a manifest.

Every model of the set gets float32, float16 (the GPU preset) and int8
TFLite files with CPU and GPU verdicts, and the NPU preset's ONNX file
with its verdict on Qualcomm's HTP (onnxruntime-qnn's simulator).
"""

import json
import os

from keras_se.export.gpu_run import GPU_KERNEL_RELATIVE_L2
from keras_se.export.tflite import to_tflite

# (registry name, quantize, gpu preset)
MOBILE_SET = [
    (name, quantize, gpu)
    for name in ("se_mobilenet", "se_shufflenet_g3", "se_resnet50")
    for quantize, gpu in ((None, False), ("float16", True), ("int8", False))
]
# The NPU preset's target: Snapdragon 8 Gen 3 (a v75 HTP).
NPU_TARGET = "sm8650"
CALIBRATION_SAMPLES = 16


def build_zoo(out_dir, entries=MOBILE_SET, input_size=224, threads=1, runs=20, overwrite=False, progress=None, npu=True):
    """Converts `entries`, measures them and writes the manifest.

    Writes `{name}_{mode}.tflite` files, `models.json` and a `README.md`
    table into `out_dir`: size, op histogram, parity against Keras on the
    CPU runtime, both GPU verdicts for every file (the classic delegate's
    rules, and a run on LiteRT's GPU accelerator with its parity), and CPU
    and GPU latency measured side by side. With `npu`, each model's NPU
    preset too (`{name}_w8a8_npu.onnx` and its `NPU_TARGET` context
    binary): its verdict on the HTP, or the check that failed.

    Weights are the builders' initialisation (no pretrained weights are
    bundled) with BN statistics set from the calibration data
    (`calibration.trained_like_statistics`: an untrained network's
    activations vanish, and no parity bound means anything on them); int8
    is calibrated on random data. The files show what converts, where it
    runs and how fast, not accuracy.

    Returns:
        the manifest (dict): `models` (a row per TFLite file), `npu` (a row per model).
    """
    import dataclasses
    import warnings

    import numpy as np

    import keras_se
    from keras_se.export.bench import measure_latency
    from keras_se.export.calibration import RandomCalibrationWarning, trained_like_statistics
    from keras_se.export.tflite import gpu_verdicts
    from keras_se.export.verify import keras_outputs
    from keras_se.io_utils import machine_summary, write_atomic

    os.makedirs(out_dir, exist_ok=True)
    calibration = np.random.default_rng(1).uniform(0, 1, (CALIBRATION_SAMPLES, input_size, input_size, 3)).astype("float32")
    rows = []
    models = {}
    for name, quantize, gpu in entries:
        if progress:
            progress(f"{name} {quantize or 'float32'}{' (GPU preset)' if gpu else ''}")
        if name not in models:
            models[name] = trained_like_statistics(keras_se.create_model(name, input_shape=(input_size, input_size, 3)), calibration)
        mode = (quantize or "float32") + ("_gpu" if gpu else "")
        path = os.path.join(out_dir, f"{name}_{mode}.tflite")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RandomCalibrationWarning)
            result = to_tflite(models[name], path, quantize=quantize, gpu=gpu, overwrite=overwrite, representative_data=calibration)
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
    npu_rows = []
    for name, model in models.items() if npu else ():
        if progress:
            progress(f"{name} NPU preset (Qualcomm HTP simulator)")
        npu_rows.append(_npu_row(name, model, os.path.join(out_dir, f"{name}_w8a8_npu.onnx"), calibration, overwrite))
    manifest = {
        "input_size": input_size,
        "weights": "builder initialisation (untrained), BN statistics from the calibration data",
        "int8_calibration": f"{CALIBRATION_SAMPLES} random inputs",
        "machine": machine_summary(),
        "gpu_adapter": next((r["gpu_accelerator"]["adapter"] for r in rows if r["gpu_accelerator"]["adapter"]), None),
        "models": rows,
        "npu_target": NPU_TARGET if npu else None,
        "npu": npu_rows,
    }
    write_atomic(os.path.join(out_dir, "models.json"), json.dumps(manifest, indent=2) + "\n", overwrite=True)
    write_atomic(os.path.join(out_dir, "README.md"), _markdown(manifest), overwrite=True)
    return manifest


def _npu_row(name, model, path, calibration, overwrite):
    """`to_onnx(..., npu=...)` of one model: its result, or the check that stopped it (nothing written then)."""
    import warnings

    from keras_se.export.calibration import RandomCalibrationWarning
    from keras_se.export.errors import ConversionError, VerificationError
    from keras_se.export.onnx import to_onnx

    row = {"model": name, "path": os.path.basename(path), "quantize": "w8a8"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RandomCalibrationWarning)
            result = to_onnx(model, path, npu=f"qualcomm:{NPU_TARGET}", representative_data=calibration, overwrite=overwrite)
    except (ConversionError, VerificationError) as error:
        return {**row, "path": None, "verdict": f"fails: {error}"}
    record = result.to_dict()
    for context in record["npu"]["contexts"].values():  # beside the manifest, as every other file it names
        context["path"] = os.path.basename(context["path"])
    passed = record["npu"]["passed"]
    return {**row, **record, "path": os.path.basename(path), "verdict": "pass" if passed else record["npu"]["verdict"]}


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
        f'(a wrong kernel shows there: "kernels wrong" past relative L2 {GPU_KERNEL_RELATIVE_L2}), and in float16, as',
        "phones run it, against Keras (relative L2 of the probabilities; BENCHMARKS.md compares logits). Adapter: "
        f"{manifest['gpu_adapter'] or 'none (GPU not run)'}. A software adapter runs the real GPU compiler",
        "and kernels on the CPU: its verdicts and outputs are real, its times are not a phone's. The `_gpu`",
        "files are the GPU preset (`to_tflite(..., gpu=True)`). The GPU runs int8 files dequantised: their",
        "kernel column is the int8 rounding the CPU runtime keeps and the GPU does not, not a kernel verdict.",
        "",
        "| file | MiB | ops | top ops | max abs err vs Keras (CPU) | GPU rules | GPU ran | GPU kernels (fp32) vs CPU | GPU fp16 rel L2 vs Keras | CPU ms | GPU ms |",
        "|---|---:|---:|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for row in manifest["models"]:
        top = ", ".join(f"{k} {v}" for k, v in sorted(row["ops"].items(), key=lambda kv: -kv[1])[:4])
        run = row["gpu_accelerator"]
        ran = "fully accelerated" if run["passed"] else f"{run['status']}: {run['reason']}"
        float_file = row["quantize"] in ("float32", "float16")  # an int8 file runs dequantised on the GPU
        if (
            float_file
            and run["passed"]
            and run.get("kernel_relative_l2") is not None
            and not run["kernel_relative_l2"] <= GPU_KERNEL_RELATIVE_L2
        ):
            ran += ", kernels wrong"
        rel = f"{run['parity']['relative_l2']:.1e}" if run.get("parity") else ""
        kernel = (
            f"{run['kernel_relative_l2']:.1e}" if run.get("kernel_relative_l2") is not None else "not run" if run["status"] == "ran" else ""
        )
        gpu_ms = f"{row['gpu_latency_ms']:.1f}" if row.get("gpu_latency_ms") is not None else ""
        lines.append(
            f"| {row['path']} | {row['size_bytes'] / 2**20:.1f} | {sum(row['ops'].values())} | {top} | "
            f"{row['parity']['max_abs_error']:.1e} | {row['gpu_rules']} | {ran} | {kernel} | {rel} | {row['latency_ms']:.1f} | {gpu_ms} |"
        )
    if manifest.get("npu"):
        lines += [
            "",
            "## NPU: Qualcomm HTP",
            "",
            'The NPU preset of each model (`to_onnx(model, path, npu="qualcomm:'
            f'{manifest["npu_target"]}")`, `keras-se convert MODEL --npu qualcomm:{manifest["npu_target"]}`): a batch-1',
            "QDQ ONNX file (8-bit per-channel weights, 8-bit activations, calibrated on the same data as the int8",
            "TFLite files) run on Qualcomm's HTP through onnxruntime-qnn (on x86-64 its simulator: its outputs",
            "are the HTP's, its times are not a phone's), and its EP context binary for the target. Logits",
            "(the model less its softmax) compared by relative L2: ONNX Runtime's CPU EP and the HTP against",
            "Keras, and the HTP against the CPU EP on the same file; **verdict** is the preset's: `pass`, or the",
            "check that stopped it (nothing is written then).",
            "",
            f"| file | MiB | nodes on the HTP / CPU | CPU EP vs Keras | HTP vs Keras | HTP top-1 | HTP vs CPU EP | {manifest['npu_target']} context MiB | verdict |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in manifest["npu"]:
            lines.append(_npu_line(row, manifest["npu_target"]))
    return "\n".join(lines) + "\n"


def _npu_line(row, target):
    if row["path"] is None:
        return f"| {row['model']} (not written) | | | | | | | | {row['verdict']} |"
    run, cpu = row["npu"], row["parity"]
    htp = run.get("parity") or {}
    nodes = " / ".join(str(run["nodes"].get(ep, 0)) for ep in ("QNNExecutionProvider", "CPUExecutionProvider"))

    def number(value, spec=".3f"):
        return "" if value is None else format(value, spec)

    context = run["contexts"].get(target)
    top1 = "no decisive input" if htp.get("top1_agreement") is None else f"{htp['top1_agreement']:.0%} of {htp['decisive']}"
    return (
        f"| {row['path']} | {row['size_bytes'] / 2**20:.1f} | {nodes} | {number(cpu.get('logits_relative_l2'))} | "
        f"{number(htp.get('logits_relative_l2'))} | {top1} | {number(run['cpu_relative_l2'])} | "
        f"{number(context['bytes'] / 2**20 if context else None, '.1f')} | {row['verdict']} |"
    )
