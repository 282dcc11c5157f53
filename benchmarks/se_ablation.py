#!/usr/bin/env python
"""Where SE-ResNet-50's SE time goes in LiteRT: ablations of the SE block.

    python benchmarks/se_ablation.py [--runs 30] [--threads 1] [--size 224] [--markdown BENCHMARKS.md]

The wheel's LiteRT has no per-op profiler, so the SE block's parts are timed
by taking them away, one at a time, in the full 224x224 model (fp32 and full
int8, all files interleaved in one loop):

- "ResNet-50": no SE at all.
- "SE, squeeze of one pixel": the gate is computed from a 1x1 crop of the
  block output instead of its mean. Not a usable model: it keeps the scale
  (the broadcast MUL over H x W x C) and the excitation FCs but drops the
  full-tensor squeeze pass.
- "SE without the scale": squeeze and excitation as in SE-ResNet-50, but the
  gate multiplies nothing (the gates become extra model outputs so they are
  still computed). Not a usable model either: it isolates the broadcast MUL.
- "SE, squeeze before the last 1x1 conv": mean(BN(conv1x1(h))) equals
  BN(conv1x1(mean(h))) at inference, so the squeeze can read the 3x3 conv's
  output, a quarter of the channels. The same function (checked here).
- "SE-ResNet-50": keras_se's graph.

Results go to BENCHMARKS.md ("## SE overhead: ablations").
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _markdown import machine_summary, update_section  # noqa: E402
from _variants import fp32_int8_table  # noqa: E402

VARIANTS = {
    "ResNet-50": "plain",
    "SE, squeeze of one pixel": "one_pixel",
    "SE without the scale": "no_scale",
    "SE, squeeze before the last 1x1 conv": "early",
    "SE-ResNet-50 (keras_se)": "se",
}


def rewire_se(model, mode):
    """A copy of `model` (same layers and weights) with every SE block rewired.

    `"early"`: a squeeze of BN(conv1x1(h)) becomes BN(conv1x1(mean(h))), the
    conv and BN layers shared. `"one_pixel"`: every squeeze reads a 1x1 crop.
    `"no_scale"`: every scale passes its input through; the gates become
    extra outputs.
    """
    import keras

    origin = {}  # id(tensor) -> (conv, bn or None, conv input)
    gates = []

    def call(layer, *args, **kwargs):
        x = args[0] if args else None
        if mode == "no_scale" and layer.name.endswith("_se_scale"):
            gates.append(x[1])
            return x[0]
        if isinstance(layer, keras.layers.GlobalAveragePooling2D) and layer.name.endswith("_se_squeeze"):
            if mode == "one_pixel":
                h, w = x.shape[1:3]
                return keras.layers.Cropping2D(((0, h - 1), (0, w - 1)))(x)
            conv, bn, h = origin[id(x)]
            s = conv(layer(h))
            return bn(s, training=False)
        out = layer(*args, **kwargs)
        if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (1, 1) and layer.strides == (1, 1):
            origin[id(out)] = (layer, None, x)
        elif isinstance(layer, keras.layers.BatchNormalization) and id(x) in origin:
            origin[id(out)] = (origin[id(x)][0], layer, origin[id(x)][2])
        return out

    clone = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    return keras.Model(clone.inputs, [clone.outputs[0], *gates]) if gates else clone


def main():
    import numpy as np

    import keras_se

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(HERE, "..", "build", "se_ablation"))
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--markdown", default=os.path.join(HERE, "..", "BENCHMARKS.md"), help="the file whose section is replaced")
    args = parser.parse_args()
    shape = (args.size, args.size, 3)
    se = keras_se.create_model("se_resnet50", input_shape=shape)
    models = {"plain": keras_se.create_model("resnet50", input_shape=shape), "se": se}
    models.update({kind: rewire_se(se, kind) for kind in ("one_pixel", "no_scale", "early")})
    x = np.random.default_rng(0).uniform(0, 1, (2, *shape)).astype("float32")
    early_error = float(np.abs(models["early"].predict(x, verbose=0) - se.predict(x, verbose=0)).max())
    assert len(models["no_scale"].outputs) == 1 + 16  # one gate per SE block
    variants = [(label, kind, models[kind]) for label, kind in VARIANTS.items()]
    lines = [
        f"Command: `python benchmarks/se_ablation.py --runs {args.runs} --threads {args.threads}"
        + ("" if args.size == 224 else f" --size {args.size}")
        + "`  ",
        f"Machine: {machine_summary()}  ",
        f"LiteRT XNNPACK, batch 1, {args.size}x{args.size}, {args.threads} thread(s), median of {args.runs} interleaved runs; "
        "int8 = full integer, calibrated on random data. "
        f"Squeeze moved before the last 1x1 conv: max |difference| from keras_se's graph {early_error:.1e} (Keras, probabilities).",
        "",
        *fp32_int8_table(variants, args.out, args.runs, threads=args.threads, digits=1),
    ]
    update_section(args.markdown, "## SE overhead: ablations", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
