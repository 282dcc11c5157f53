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
    table (size, op histogram, GPU check, parity against Keras, latency)
    into `out_dir`. Weights are the builders' initialisation (no pretrained
    weights are bundled), and int8 is calibrated on random data: the files
    show what converts and how fast it runs, not accuracy.

    Returns:
        list of manifest rows (dicts).
    """
    import warnings

    import keras_se
    from keras_se.export.bench import measure_latency
    from keras_se.export.calibration import RandomCalibrationWarning
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
        latency = measure_latency(path, threads=threads, runs=runs)[0]
        row = result.to_dict()
        row.update(
            model=name,
            mode=mode,
            path=os.path.basename(path),
            gpu_check="pass" if gpu else "not run",
            latency_ms=round(latency.median_ms, 2),
            latency_kernels=latency.kernels,
            threads=threads,
        )
        rows.append(row)
    manifest = {
        "input_size": input_size,
        "weights": "builder initialisation (untrained)",
        "int8_calibration": "random data",
        "machine": machine_summary(),
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
        "| file | MiB | ops | top ops | GPU check | max abs err vs Keras | latency (ms) |",
        "|---|---:|---:|---|---|---:|---:|",
    ]
    for row in manifest["models"]:
        top = ", ".join(f"{k} {v}" for k, v in sorted(row["ops"].items(), key=lambda kv: -kv[1])[:4])
        parity = row["parity"]
        lines.append(
            f"| {row['path']} | {row['size_bytes'] / 2**20:.1f} | {sum(row['ops'].values())} | {top} | "
            f"{row['gpu_check']} | {parity['max_abs_error']:.1e} | {row['latency_ms']:.1f} |"
        )
    return "\n".join(lines) + "\n"
