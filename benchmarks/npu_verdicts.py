#!/usr/bin/env python
"""Every registered model's NPU preset on Qualcomm's HTP (onnxruntime-qnn's simulator on x86-64).

    python benchmarks/npu_verdicts.py [--size 64] [--quantize w8a8] [--models se_resnet18 ...]

For each model: built at SIZE x SIZE (the Inception models at their
smallest, 96), BN statistics set from 16 random calibration inputs
(`calibration.trained_like_copy`: an untrained network's activations
vanish), traced as the NPU preset does (`keras_se.export.onnx.trace`),
QDQ-quantised on those inputs and compared on 4 others: ONNX Runtime's CPU
EP against Keras, the HTP against Keras and against the CPU EP on the same
file. Each check is reported on its own (the preset stops at the first that
fails), with the preset's verdict: "pass" or the first failure. Results go
to BENCHMARKS.md ("## Qualcomm HTP (NPU): every registered model") and a
JSON file (`--render JSON` writes the table of an earlier run's file).
"""

import argparse
import json
import os
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _markdown import machine_summary, update_section  # noqa: E402

SECTION = "## Qualcomm HTP (NPU): every registered model"


def verdict(name, size, quantize):
    import numpy as np

    import keras_se
    from keras_se.export import calibration
    from keras_se.export.npu import quantize_qdq, strip_logits
    from keras_se.export.onnx import compare_on_npu, trace

    model = keras_se.models.build_model(name, input_shape=(size, size, 3))
    rng = np.random.default_rng(1)
    data = rng.uniform(0, 1, (16, size, size, 3)).astype("float32")
    model = calibration.trained_like_copy(model, data)
    inputs = rng.uniform(0, 1, (4, size, size, 3)).astype("float32")
    start = time.perf_counter()
    qdq, logits = quantize_qdq(trace(model, npu=True), np.concatenate([data, inputs]), quantize)
    shipped = strip_logits(qdq, logits)
    run, parity, npu_parity = compare_on_npu(model, qdq, logits, inputs, ["sm8650"], shipped.SerializeToString())
    return {
        "model": name,
        "size": size,
        "quantize": quantize,
        "htp": run.verdict(),
        "nodes": run.nodes,
        "cpu_vs_keras": parity.logits_relative_l2,
        "cpu_top1": parity.top1_agreement,
        "htp_vs_keras": npu_parity.logits_relative_l2 if npu_parity else None,
        "htp_top1": npu_parity.top1_agreement if npu_parity else None,
        "decisive": npu_parity.decisive if npu_parity else None,
        "htp_vs_cpu": run.cpu_relative_l2,
        "context_mib": round(run.contexts["sm8650"]["bytes"] / 2**20, 1) if "sm8650" in run.contexts else None,
        "seconds": round(time.perf_counter() - start, 1),
    }


def preset(row):
    """What `to_onnx(..., npu=...)` says of a row: "pass" or its first failing check
    (`keras_se.export.onnx.check_npu_run`'s order and bounds, from the row's numbers)."""
    from keras_se.export.onnx import NPU_CPU_RELATIVE_L2
    from keras_se.export.verify import LOGITS_RELATIVE_L2, MIN_TOP1_AGREEMENT

    def against_keras(runtime, error, top1):
        if not error <= LOGITS_RELATIVE_L2["int8"]:
            return f"{runtime} logits vs Keras {error:.2f} > {LOGITS_RELATIVE_L2['int8']}"
        if top1 is not None and top1 < MIN_TOP1_AGREEMENT:
            return f"{runtime} top-1 vs Keras {top1:.0%}"
        return None

    if "nodes" not in row:
        return row["htp"]
    failure = against_keras("CPU EP", row["cpu_vs_keras"], row["cpu_top1"])
    if failure is None and row["htp"] != "fully on the HTP":
        failure = row["htp"]
    failure = failure or against_keras("HTP", row["htp_vs_keras"], row["htp_top1"])
    if failure:
        return failure
    bound = NPU_CPU_RELATIVE_L2[row["quantize"]]
    return "pass" if row["htp_vs_cpu"] <= bound else f"HTP vs CPU EP {row['htp_vs_cpu']:.2f} > {bound}"


def _most_common(values, default):
    return max(set(values), key=values.count) if values else default


def _cell(value, spec=".2f"):
    return "" if value is None else format(value, spec)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--quantize", choices=("w8a8", "w8a16"), default="w8a8")
    parser.add_argument("--models", nargs="+")
    parser.add_argument("--json", default=os.path.join(HERE, "npu_verdicts.json"))
    parser.add_argument("--markdown", default=os.path.join(HERE, "..", "BENCHMARKS.md"))
    parser.add_argument("--render", metavar="JSON", help="only write the table of an earlier run's JSON")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import keras_se

    rows = []
    if args.render:
        with open(args.render) as handle:
            rows = json.load(handle)
    for name in [] if args.render else args.models or keras_se.list_models():
        size = max(args.size, 96) if "inception" in name else args.size
        try:
            row = verdict(name, size, args.quantize)
        except Exception as error:  # a model the preset cannot even convert: its row says why
            row = {"model": name, "size": size, "quantize": args.quantize, "htp": f"error: {type(error).__name__}: {error}"[:300]}
        print(json.dumps(row), flush=True)
        rows.append(row)
    if not args.render:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    lines = [
        f"`python benchmarks/npu_verdicts.py --size {_most_common([r['size'] for r in rows], args.size)} "
        f"--quantize {_most_common([r['quantize'] for r in rows], args.quantize)}` "
        f"on {machine_summary()}; "
        "onnxruntime-qnn 2.7.0 (QAIRT 2.51), whose HTP is a simulator on x86-64: verdicts and outputs are the HTP's, times are not a phone's.",
        "",
        "Builder weights with BN statistics from 16 random inputs (`calibration.trained_like_copy`), QDQ-calibrated on 20, "
        "compared on 4 others. Relative L2 errors are of the logits (centred). CPU EP: ONNX Runtime's CPU execution provider on "
        "the same QDQ file. Preset: what `to_onnx(..., npu=...)` says (its bounds: int8 parity with Keras as TFLite int8, "
        "HTP against the CPU EP within 1.0 for w8a8, 0.3 for w8a16).",
        "",
        "| model | px | on the HTP | nodes (HTP / CPU) | CPU EP vs Keras | HTP vs Keras | HTP top-1 | HTP vs CPU EP | sm8650 context MiB | preset |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        nodes = r.get("nodes") or {}
        top1 = "" if r.get("htp_top1") is None else f"{r['htp_top1']:.0%} of {r['decisive']}"
        lines.append(
            f"| {r['model']} | {r['size']} | {r['htp']} | {nodes.get('QNNExecutionProvider', '')} / {nodes.get('CPUExecutionProvider', '')} | "
            f"{_cell(r.get('cpu_vs_keras'))} | {_cell(r.get('htp_vs_keras'))} | {top1} | {_cell(r.get('htp_vs_cpu'), '.3f')} | "
            f"{_cell(r.get('context_mib'), '.1f')} | {preset(r)[:160]} |"
        )
    update_section(args.markdown, SECTION, "\n".join(lines))


if __name__ == "__main__":
    main()
