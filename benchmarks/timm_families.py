#!/usr/bin/env python
"""timm's ResNet-D / -T / "aa" SE and ECA families: keras_se's parameters and MACs beside timm's own.

    pip install timm  # and torch
    python benchmarks/timm_families.py [--size 224]

For every `timm:` alias of a resnet.py -D / -T / "aa" variant, timm's model
(`timm.create_model(name)`, random weights) gives its parameter count and
its multiply-adds (half the FLOPs that `torch.utils.flop_counter` counts for
convolutions and linear layers, at `--size`); keras_se's model gives the
same from `keras_se.analysis.complexity_report` (learned parameters, BN
statistics excluded, as timm's `parameters()`; convolution and dense MACs,
the attention's weighting of the feature map apart). Written to
BENCHMARKS.md ("## timm's ResNet-D / -T families").
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def timm_counts(name, size):
    import timm
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = timm.create_model(name, pretrained=False).eval()
    params = sum(p.numel() for p in model.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    return params, counter.get_total_flops() // 2


def keras_se_counts(name, size):
    import keras_se
    from keras_se.analysis import complexity_report

    report = complexity_report(keras_se.create_model(f"timm:{name}", input_shape=(size, size, 3)))
    return report.params, report.macs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--out", default=os.path.join(HERE, "..", "BENCHMARKS.md"))
    args = parser.parse_args(argv)

    import timm
    from _markdown import machine_summary, update_section

    from keras_se.weights import timm_models, timm_scheme

    names = [n for n in timm_models() if timm_scheme(n) == "resnet_d"]
    start = time.time()
    rows = []
    for name in names:
        t_params, t_macs = timm_counts(name, args.size)
        k_params, k_macs = keras_se_counts(name, args.size)
        rows.append((name, t_params, k_params, t_macs, k_macs))
        print(f"{name}: timm {t_params:,} params {t_macs:,} MACs; keras_se {k_params:,} params {k_macs:,} MACs", flush=True)
    table = ["| timm model | timm params | keras_se params | timm GMACs | keras_se GMACs | MACs ratio |", "|---|---:|---:|---:|---:|---:|"]
    for name, tp, kp, tm, km in rows:
        same = "" if tp == kp else " (differs)"
        table.append(f"| {name} | {tp:,} | {kp:,}{same} | {tm / 1e9:.3f} | {km / 1e9:.3f} | {km / tm:.4f} |")
    equal = sum(tp == kp for _, tp, kp, _, _ in rows)
    body = "\n".join(
        [
            f"Command: `python benchmarks/timm_families.py --size {args.size}` ({(time.time() - start) / 60:.1f} min)  ",
            f"Machine: {machine_summary()}; timm {timm.__version__}  ",
            "timm's counts from `timm.create_model(name)` (random weights): `parameters()`, and half the FLOPs "
            "`torch.utils.flop_counter` counts (convolutions and linear layers) at "
            f"{args.size}x{args.size}; keras_se's from `complexity_report` (learned parameters; convolution and dense "
            "MACs, the attention's weighting of the feature map apart).",
            "",
            *table,
            "",
            f"Parameters equal timm's for {equal} of {len(rows)} models.",
        ]
    )
    update_section(args.out, "## timm's ResNet-D / -T families", body)


if __name__ == "__main__":
    main()
