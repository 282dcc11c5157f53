"""Helper for benchmark scripts: variants of a model timed fp32 and int8."""

import os
import warnings


def fp32_int8_table(variants, out, runs, threads=1, calibration=None, digits=2, header="variant"):
    """Converts each variant (fp32 and full int8), times every file in one
    interleaved loop and returns a Markdown table, ratios against the first.

    Args:
        variants: list of (label, file stem, Keras model); the first is the baseline.
        out: folder for the `.tflite` files.
        calibration: int8 calibration array, or None for random data.
        digits: decimals of the milliseconds.
        header: title of the first column.
    """
    from keras_se.export import to_tflite
    from keras_se.export.bench import measure_latency

    os.makedirs(out, exist_ok=True)
    paths = {}
    for label, stem, model in variants:
        for quantize in (None, "int8"):
            path = os.path.join(out, f"{stem}_{quantize or 'float32'}.tflite")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the random-calibration warning
                to_tflite(
                    model, path, quantize=quantize, overwrite=True, verify=False, representative_data=calibration if quantize else None
                )
            paths[(label, quantize)] = path
    keys = list(paths)
    ms = {k: r.median_ms for k, r in zip(keys, measure_latency([paths[k] for k in keys], threads=threads, runs=runs))}
    base = variants[0][0]
    lines = [
        f"| {header} | fp32 ms | fp32 / {base} | int8 ms | int8 / {base} |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, _, _ in variants:
        a, b = ms[(label, None)], ms[(label, "int8")]
        lines.append(f"| {label} | {a:.{digits}f} | {a / ms[(base, None)]:.3f} | {b:.{digits}f} | {b / ms[(base, 'int8')]:.3f} |")
    return lines
