#!/usr/bin/env python
"""MobileNetV3 in int8: which hard-swish spelling LiteRT runs fast, beside keras.applications.

    python benchmarks/mobilenetv3_int8.py [--runs 50] [--repeats 5] [--time-only]

MobileNetV3-Large at 224x224 with each spelling of hard-swish, its plain
twin (no SE, same activations) and keras.applications' MobileNetV3Large
(standard and minimalistic), converted to float32
and full int8 (calibrated on random data: speed does not depend on the
weights' values; BN statistics
as a trained network's, `trained_like_statistics`), then timed in LiteRT with XNNPACK, 1 thread: every file
in one interleaved loop (files alternate run by run, so drift on a shared
machine cancels), the loop repeated with the files in a new order, the
median of the per-loop medians reported. Results go to BENCHMARKS.md ("## MobileNetV3 in int8").
"""

import argparse
import os
import random
import statistics
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _markdown import machine_summary, update_section  # noqa: E402

SIZE = (224, 224, 3)


def _respell(model, spelling):
    """`model` with every Activation("hard_swish") spelt another way (the same function, or ReLU)."""
    import keras

    from keras_se.export.forms import _rewritten
    from keras_se.layers.activations import is_builtin_hard_swish

    layers = keras.layers

    def replace(layer, x):
        name = f"{layer.name}_{spelling}"
        if spelling == "relu":
            return layers.ReLU(name=name)(x)
        if spelling == "fused":  # x * (relu6(x + 3) / 6): the converter writes HARD_SWISH
            gate = layers.ReLU(6.0, name=f"{name}_relu6")(layers.Rescaling(1.0, offset=3.0, name=f"{name}_shift")(x))
            return layers.Multiply(name=name)([x, layers.Rescaling(1.0 / 6.0, name=f"{name}_sixth")(gate)])
        if spelling == "sixth":  # (x / 6) * relu6(x + 3), as keras_se's tf_keras flavour spells it
            from keras_se.layers.activations import apply_hard_swish_int8, hard_swish_int8_layers

            return apply_hard_swish_int8(hard_swish_int8_layers(layers, name), x)
        if spelling == "clip":  # x * clip(x / 6 + 1/2, 0, 1)
            gate = layers.ReLU(1.0, name=f"{name}_clip")(layers.Rescaling(1.0 / 6.0, offset=0.5, name=f"{name}_affine")(x))
            return layers.Multiply(name=name)([x, gate])
        raise ValueError(spelling)

    return _rewritten(model, is_builtin_hard_swish, replace)


def variants(size=SIZE):
    """(label, stem, build, path): path "keras_se" is `keras_se.export.to_tflite`,
    "tflite" the TFLite converter as keras.applications users call it."""
    import keras

    import keras_se

    def ours(name="mobilenetv3_large", spelling=None):
        def build():
            model = keras_se.create_model(name, input_shape=size)
            return _respell(model, spelling) if spelling else model

        return build

    def app(**kwargs):
        return lambda: keras.applications.MobileNetV3Large(weights=None, input_shape=size, **kwargs)

    return [
        ("keras.applications MobileNetV3Large", "app", app(), "tflite"),
        ("keras.applications MobileNetV3Large, minimalistic (no SE, no hard-swish)", "app_minimal", app(minimalistic=True), "tflite"),
        ("mobilenetv3_large, x * relu6(x + 3) / 6 (fused into HARD_SWISH)", "large_fused", ours(spelling="fused"), "keras_se"),
        ("mobilenetv3_large, x * clip(x / 6 + 1/2, 0, 1)", "large_clip", ours(spelling="clip"), "keras_se"),
        (
            "mobilenetv3_large, (x / 6) * relu6(x + 3) (keras_se's tf_keras / QAT spelling)",
            "large_sixth",
            ours(spelling="sixth"),
            "keras_se",
        ),
        (
            "**mobilenetv3_large** (keras_se: HARD_SWISH in float; in int8 x * relu6(x + 3), the 1/6 in the next kernels)",
            "large",
            ours(),
            "keras_se",
        ),
        ("mobilenetv3_large_plain (no SE, same activations)", "large_plain", ours("mobilenetv3_large_plain"), "keras_se"),
        ("mobilenetv3_large, ReLU for hard-swish (SE kept)", "large_relu", ours(spelling="relu"), "keras_se"),
    ]


def convert(model, quantize, path, via, samples):
    import tensorflow as tf

    from keras_se.export import to_tflite
    from keras_se.io_utils import quiet_native_logs, write_atomic

    if via == "keras_se":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the random-calibration warning
            to_tflite(model, path, quantize=quantize, representative_data=samples if quantize else None, overwrite=True, verify=False)
            return
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        converter.representative_dataset = lambda: ([s[None]] for s in samples)
    with quiet_native_logs():
        data = converter.convert()
    write_atomic(path, data, overwrite=True)


def _ops(histogram):
    keep = ("HARD_SWISH", "MUL", "ADD", "MINIMUM", "RELU")
    return ", ".join(f"{histogram[k]} {k}" for k in keep if histogram.get(k)) or "-"


def main():
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="timed runs per file in each loop")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved loops")
    parser.add_argument("--out", default=os.path.join(HERE, "..", "build", "mobilenetv3_int8"))
    parser.add_argument(
        "--time-only",
        action="store_true",
        help="time the files a previous run left in --out (conversion takes most of a run; timing is what a busy machine disturbs)",
    )
    parser.add_argument("--size", type=int, default=SIZE[0], help="input height and width")
    parser.add_argument("--markdown", default=os.path.join(HERE, "..", "BENCHMARKS.md"), help="the file whose section is replaced")
    args = parser.parse_args()
    size = (args.size, args.size, 3)

    from keras_se.export.bench import measure_latency
    from keras_se.export.calibration import trained_like_statistics
    from keras_se.tflite_file import read_tflite

    os.makedirs(args.out, exist_ok=True)
    load_start = os.getloadavg()[0]
    start = time.perf_counter()
    samples = np.random.default_rng(0).uniform(0, 1, (8, *size)).astype("float32")
    files = {}
    for label, stem, build, via in variants(size):
        model = None if args.time_only else trained_like_statistics(build(), samples)
        for quantize in (None, "int8"):
            path = os.path.join(args.out, f"{stem}_{quantize or 'float32'}.tflite")
            if model is not None:
                convert(model, quantize, path, via, samples)
            elif not os.path.isfile(path):
                parser.error(f"--time-only: {path} is missing; run without --time-only first")
            files[(stem, quantize)] = path
        print(f"{'found' if args.time_only else 'converted'} {stem}", file=sys.stderr, flush=True)
    ops = {key: read_tflite(path).op_histogram() for key, path in files.items()}
    keys = list(files)
    per_loop = {k: [] for k in keys}
    for repeat in range(args.repeats):
        # A new order each loop: a file timed right after a slow one (LiteRT's
        # own int8 kernels) can pay for it (caches, the scheduler).
        order = random.Random(repeat).sample(keys, len(keys))
        for key, result in zip(order, measure_latency([files[k] for k in order], threads=1, runs=args.runs, warmup=5)):
            per_loop[key].append(result.median_ms)
    ms = {k: statistics.median(v) for k, v in per_loop.items()}
    spread = {k: (min(v), max(v)) for k, v in per_loop.items()}
    body = report(args, ms, spread, ops, load_start, os.getloadavg()[0], time.perf_counter() - start)
    update_section(args.markdown, "## MobileNetV3 in int8", body)
    print(body)


def report(args, ms, spread, ops, load_start, load_end, seconds):
    lines = [
        f"Command: `python benchmarks/mobilenetv3_int8.py --runs {args.runs} --repeats {args.repeats}"
        f"{' --time-only' if args.time_only else ''}{'' if args.size == SIZE[0] else f' --size {args.size}'}` ({seconds / 60:.1f} min"
        f"{'; the files of a previous full run: the timing was redone on a quieter machine' if args.time_only else ''})  ",
        f"Machine: {machine_summary()}; shared with other work (load average {load_start:.1f} at the start, {load_end:.1f} at the end)  ",
        f"LiteRT with XNNPACK, 1 thread, batch 1, {args.size}x{args.size}: every file in one interleaved loop of {args.runs} runs "
        f"(after 5 warm-up runs), the loop run {args.repeats} times, the files in a new order each time; the median of the loops' medians, "
        "and the range of the loops' medians. int8 = full integer (int8 input and output), calibrated on random data; "
        "Keras' initial weights with BN statistics set from that data (`trained_like_statistics`: untrained activations "
        "shrink to ~1e-7 by stage 4, where XNNPACK refuses int8 ADDs of them). "
        "keras_se files come from `keras_se.export.to_tflite`; keras.applications' from `TFLiteConverter` as its users call it.",
        "",
        "| model, hard-swish spelling | fp32 ms | int8 ms (range) | int8 speed-up | int8 element-wise ops |",
        "|---|---:|---:|---:|---|",
    ]
    for label, stem, _, _ in variants():
        a, b = ms[(stem, None)], ms[(stem, "int8")]
        low, high = spread[(stem, "int8")]
        lines.append(f"| {label} | {a:.2f} | {b:.2f} ({low:.2f}-{high:.2f}) | {a / b:.2f}x | {_ops(ops[(stem, 'int8')])} |")
    own = ms[("large", None)] / ms[("large", "int8")]
    versus = ms[("app", "int8")] / ms[("large", "int8")]
    ceiling = ms[("app", "int8")] / ms[("large_relu", "int8")]
    se_int8 = ms[("large", "int8")] / ms[("large_plain", "int8")]
    se_fp32 = ms[("large", None)] / ms[("large_plain", None)]
    lines += [
        "",
        "Goals (issue 16): "
        f"mobilenetv3_large int8 {own:.2f}x faster than its float32 (goal >= 2: {'met' if own >= 2 else 'missed'}); "
        f"{versus:.2f}x faster than keras.applications' MobileNetV3Large int8 (goal >= 3: {'met' if versus >= 3 else 'missed'}; "
        f"the ReLU network with SE, the ceiling, is {ceiling:.2f}x). "
        f"SE cost (mobilenetv3_large / mobilenetv3_large_plain, same activations): int8 {se_int8:.3f}, float32 {se_fp32:.3f}.",
        "",
        "Reading the table: XNNPACK has no int8 HARD_SWISH, so every int8 HARD_SWISH runs on LiteRT's own kernel "
        "outside XNNPACK (keras.applications' file, and ours spelt `x * relu6(x + 3) / 6`, which the converter fuses "
        "back into HARD_SWISH). `x * clip(x / 6 + 1/2, 0, 1)` survives conversion but its clip becomes MINIMUM and RELU, "
        "which XNNPACK does not run in int8 either. `(x / 6) * relu6(x + 3)` becomes MUL, ADD with a fused RELU6 and MUL, "
        "all in one XNNPACK partition (the spelling of keras_se's tf_keras flavour, hence of QAT files). keras_se's "
        "post-training int8 files go one pass further: `x * relu6(x + 3)` (ADD with a fused RELU6, MUL) and the 1/6 "
        "moved into the kernels of the convolutions that read it (`keras_se.export.forms.hard_swish_for_int8`; one "
        "Rescaling where an add reads it, the stem's in MobileNetV3-Large). Float files keep HARD_SWISH, XNNPACK's "
        "fastest float form.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
