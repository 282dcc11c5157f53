#!/usr/bin/env python
"""Graph forms of the SE block in LiteRT: which squeeze / excitation / gate is fastest.

    python benchmarks/se_forms.py [--runs 40] [--size 56] [--markdown BENCHMARKS.md]

Three bottleneck blocks at SE-ResNet-50's stage-2 size (56x56x256), without
SE and with each SE form, fp32 and full int8, timed interleaved in one loop.
Results go to BENCHMARKS.md ("## SE graph forms").
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _markdown import machine_summary, update_section  # noqa: E402
from _variants import fp32_int8_table  # noqa: E402

H, C = 56, 256
FORMS = {
    "no SE": "none",
    "MEAN + 1x1 CONV + LOGISTIC (keras_se's form)": "mean_conv",
    "AVERAGE_POOL_2D 56x56 + 1x1 CONV": "avgpool_conv",
    "MEAN (2-D) + FULLY_CONNECTED + RESHAPE": "mean_fc",
    "MEAN + 1x1 CONV + hard-sigmoid gate": "hard",
}


def se_form(x, kind, b, size=H):
    import keras

    from keras_se.layers import squeeze_excite

    layers = keras.layers
    if kind == "none":
        return x
    if kind == "mean_conv":
        return squeeze_excite(x, f"se{b}")
    if kind == "hard":
        return squeeze_excite(x, f"se{b}", gate="hard_sigmoid")
    if kind == "mean_fc":
        s = layers.GlobalAveragePooling2D()(x)
        s = layers.Dense(C // 16, activation="relu")(s)
        s = layers.Reshape((1, 1, C))(layers.Dense(C, activation="sigmoid")(s))
        return layers.Multiply()([x, s])
    s = layers.AveragePooling2D(size)(x)
    s = layers.Conv2D(C, 1, activation="sigmoid")(layers.Conv2D(C // 16, 1, activation="relu")(s))
    return layers.Multiply()([x, s])


def blocks(kind, size=H):
    import keras

    layers = keras.layers
    inputs = keras.Input((size, size, C))
    x = inputs
    for b in range(3):
        y = layers.Conv2D(64, 1, activation="relu")(x)
        y = layers.Conv2D(64, 3, padding="same", activation="relu")(y)
        y = se_form(layers.Conv2D(C, 1)(y), kind, b, size)
        x = layers.ReLU()(layers.Add()([x, y]))
    return keras.Model(inputs, x)


def main():
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--out", default=os.path.join(HERE, "..", "build", "se_forms"))
    parser.add_argument("--size", type=int, default=H, help="the blocks' height and width")
    parser.add_argument("--markdown", default=os.path.join(HERE, "..", "BENCHMARKS.md"), help="the file whose section is replaced")
    args = parser.parse_args()
    calibration = np.random.default_rng(0).uniform(0, 1, (8, args.size, args.size, C)).astype("float32")
    variants = [(label, kind, blocks(kind, args.size)) for label, kind in FORMS.items()]
    lines = [
        f"Command: `python benchmarks/se_forms.py --runs {args.runs}" + ("" if args.size == H else f" --size {args.size}") + "`  ",
        f"Machine: {machine_summary()}  ",
        f"Three bottleneck blocks at {args.size}x{args.size}x{C} (SE-ResNet-50 stage 2: 56x56), LiteRT XNNPACK, 1 thread, median of {args.runs} interleaved runs.",
        "",
        *fp32_int8_table(variants, args.out, args.runs, calibration=calibration, header="SE form"),
    ]
    update_section(args.markdown, "## SE graph forms", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
