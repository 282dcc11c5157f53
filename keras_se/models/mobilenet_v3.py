"""MobileNetV3-Large and -Small (SE in the inverted residuals) and their plain twins.

The architecture is timm's `_gen_mobilenet_v3` table (timm/models/mobilenetv3.py),
which keras.applications' `MobileNetV3Large` / `MobileNetV3Small` also build:
with `alpha=1.0` the models compute exactly timm's `mobilenetv3_large_100`
(5,483,032 parameters) and `mobilenetv3_small_100` (2,542,856) and load
their checkpoints (`keras_se.create_model("timm:mobilenetv3_small_100",
weights=...)`).
"""

from keras_se.layers._utils import check_choice, make_divisible
from keras_se.models import _common
from keras_se.models.base import SEModel
from keras_se.models.registry import Preset, Release, register_presets, register_twins

# timm's arch_def rows, in order (a row is timm's `blocks.{i}`). A block:
# (kind, repeats, kernel, stride, expansion, channels, SE, activation).
# "ds": depthwise-separable (dw -> SE -> pw), "ir": inverted residual
# (pw -> dw -> SE -> pwl), "cn": 1x1 conv-BN-activation. Repeats after the
# first have stride 1; blocks of stride 1 whose width does not change add
# their input (timm's has_skip).
ARCHS = {
    "large": (
        (("ds", 1, 3, 1, 1, 16, False, "relu"),),
        (("ir", 1, 3, 2, 4, 24, False, "relu"), ("ir", 1, 3, 1, 3, 24, False, "relu")),
        (("ir", 3, 5, 2, 3, 40, True, "relu"),),
        (
            ("ir", 1, 3, 2, 6, 80, False, "hard_swish"),
            ("ir", 1, 3, 1, 2.5, 80, False, "hard_swish"),
            ("ir", 2, 3, 1, 2.3, 80, False, "hard_swish"),
        ),
        (("ir", 2, 3, 1, 6, 112, True, "hard_swish"),),
        (("ir", 3, 5, 2, 6, 160, True, "hard_swish"),),
        (("cn", 1, 1, 1, 1, 960, False, "hard_swish"),),
    ),
    "small": (
        (("ds", 1, 3, 2, 1, 16, True, "relu"),),
        (("ir", 1, 3, 2, 4.5, 24, False, "relu"), ("ir", 1, 3, 1, 3.67, 24, False, "relu")),
        (("ir", 1, 5, 2, 4, 40, True, "hard_swish"), ("ir", 2, 5, 1, 6, 40, True, "hard_swish")),
        (("ir", 2, 5, 1, 3, 48, True, "hard_swish"),),
        (("ir", 3, 5, 2, 6, 96, True, "hard_swish"),),
        (("cn", 1, 1, 1, 1, 576, False, "hard_swish"),),
    ),
}
# Width of the 1x1 convolution after the global pooling (timm's
# `num_features`; not scaled by `alpha`, as in timm).
HEAD_CHANNELS = {"large": 1280, "small": 1024}
STEM_CHANNELS = 16
STAGES = (1, 2, 3, 4, 5)
VARIANTS = tuple(ARCHS)


def _activation(layers, kind, name):
    if kind == "hard_swish":
        return layers.HardSwish(name=name)
    return layers.ReLU(name=name)


def _conv_bn_act(layers, x, filters, kernel, name, strides=1, act=None, depthwise=False, bn_name=None, act_name=None):
    """Conv (no bias, PyTorch padding) -> BN [-> ReLU or hard-swish], named `{name}`, `{name}_bn`, `{name}_act`."""
    x = _common.conv_bn(layers, x, filters, kernel, name, strides=strides, act=None, depthwise=depthwise, bn_name=bn_name)
    return _activation(layers, act, act_name or f"{name}_act")(x) if act else x


def block_specs(variant="large", alpha=1.0, minimalistic=False):
    """Every block of a variant: a list of dicts, in order.

    Each has `kind`, `kernel`, `stride`, `in_channels`, `mid_channels`,
    `out_channels`, `se`, `act`, `stage` (the stride is 2**stage after it),
    `block` (its number within the stage) and `row` / `index` (timm's
    `blocks.{row}.{index}`). Widths are timm's: `make_divisible(c * alpha, 8)`
    for the outputs, `make_divisible(c_in * expansion, 8)` for the expansion.

    Example:

    >>> block_specs("small")[0]["mid_channels"]
    16
    """
    check_choice("variant", variant, VARIANTS)
    channels = _stem_channels(alpha)
    log_stride, counts, specs = 1, {}, []
    for row, entries in enumerate(ARCHS[variant]):
        index = 0
        for kind, repeats, kernel, stride, expansion, width, se, act in entries:
            for repeat in range(repeats):
                strides = stride if repeat == 0 else 1
                log_stride += strides == 2
                out = make_divisible(width * alpha, 8)
                mid = channels if kind == "ds" else make_divisible(channels * expansion, 8)
                counts[log_stride] = counts.get(log_stride, 0) + 1
                specs.append(
                    dict(
                        kind=kind,
                        kernel=kernel if kind == "cn" or not minimalistic else 3,
                        stride=strides,
                        in_channels=channels,
                        mid_channels=mid,
                        out_channels=out,
                        se=se and not minimalistic,
                        act="relu" if minimalistic else act,
                        stage=log_stride,
                        block=counts[log_stride],
                        row=row,
                        index=index,
                    )
                )
                channels, index = out, index + 1
    return specs


def _stem_channels(alpha):
    # timm keeps a 16-channel stem below alpha 0.75 (`fix_stem`).
    return STEM_CHANNELS if alpha < 0.75 else make_divisible(STEM_CHANNELS * alpha, 8)


def se_width(channels, reduction=4, divisor=8):
    """MobileNetV3's SE width: timm's `round_channels(C / r)`, i.e.
    `make_divisible(C / r, divisor)` rounding up when rounding down would
    lose more than 10 % (keras.applications' `_depth`). SE-ResNet's width
    never rounds up (`round_limit=0`); this is why it is given explicitly.
    """
    return make_divisible(channels / reduction, divisor)


@_common.builder(STAGES, reduction=4, se_gate="hard_sigmoid", se_divisor=8, dropout=0.2)
def mobilenet_v3_graph(spec, variant="large", alpha=1.0, minimalistic=False):
    """The graph of MobileNetV3, with SE (`attention="se"`) or plain (None): `(inputs, outputs)`.

    SE sits in the blocks the architecture gives it (MobileNetV3-Large: 8 of
    15, MobileNetV3-Small: 9 of 11), after the depthwise convolution's
    activation, on the expanded width C: global mean -> 1x1 conv to
    `make_divisible(C / 4, 8)` -> ReLU -> 1x1 conv to C -> hard-sigmoid ->
    scale (timm's `SqueezeExcite` with `gate_layer="hard_sigmoid"`). The
    plain twin (`attention=None`) is the same network without SE, same
    activations: the baseline of the SE overhead figures.

    Hard-swish is Keras' `Activation("hard_swish")` (x * relu6(x + 3) / 6,
    timm's function); converted to full int8 it is re-spelt in ops XNNPACK
    runs (`keras_se.layers.activations`).

    Blocks are grouped in stages by resolution: stage s works at 1/2^s of
    the input (`stage{s}_block{b}_...`; MobileNetV3-Small has no stage-1
    block). The final 1x1 conv block (960 / 576 channels) is the last
    block of stage 5; the pooled 1x1 conv (1280 / 1024, with bias) and the
    classifier are the top.

    Args:
        variant: `"large"` (default) or `"small"`.
        attention: `"se"` or None.
        alpha: float, defaults to 1.0. Width multiplier, timm's channel
            multiplier: every block width `make_divisible(c * alpha, 8)`,
            the stem too from alpha 0.75 up; the pooled 1x1 conv keeps its
            width. (keras.applications keeps a 16-channel stem and scales
            the head for alpha > 1.)
        minimalistic: bool, defaults to False. keras.applications'
            minimalistic variant (timm's `*_minimal_*`): no SE, ReLU
            everywhere, 3x3 depthwise kernels. Needs `attention=None`.
        include_top, input_tensor, input_shape, pooling, classes,
            classifier_activation: as in `keras.applications.MobileNetV3Large`
            (no preprocessing layer: inputs are normalised as for timm).
            Without the top the output is stage 5's (960 / 576 channels).
        reduction: number, defaults to 4. SE reduction r (MobileNetV3's 0.25).
        se_bias: bool, defaults to True. Bias on the SE convolutions.
        se_gate: `"hard_sigmoid"` (default, MobileNetV3) or `"sigmoid"`.
        se_divisor: int, defaults to 8. SE width `make_divisible(C / r, se_divisor)`.
        se_stages: collection of stage numbers (1-5) whose blocks keep their
            SE, or None (default) for all.
        dropout: float, defaults to 0.2 (keras.applications; timm's
            default is 0, and its `timm:` aliases use 0).
        features_only: bool, defaults to False. A backbone returning the
            features at `out_indices` (timm's `features_only`;
            `model.pyramid_outputs` names them `"P1"`..`"P5"`); no head,
            and no stage after the last returned one.
        out_indices: feature indices: i is the output of stage i + 1 (its
            last block), at stride 2**(i + 1): timm's `feature_info` for
            MobileNetV3 (`feature_location="bottleneck"`, the output of the
            last block before each stride). Large: 16, 24, 40, 112, 960
            channels (stage 1's block, then stages 2-5). Small: 16, 16, 24,
            48, 576 (feature 0 is the stem: Small has no stage-1 block).
            Widths are `make_divisible(c * alpha, 8)` (the stem's as
            above). Defaults to (1, 2, 3, 4): strides 4 to 32.
        flavour: `"keras"` or `"tf_keras"`.

    Reference:
        - [Howard et al., Searching for MobileNetV3](https://arxiv.org/abs/1905.02244)
        - [Hu et al., Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507)
    """
    fl = spec.fl
    layers = fl.layers
    check_choice("variant", variant, VARIANTS)
    _common.check_width_multiplier("alpha", alpha)
    if not isinstance(minimalistic, bool):
        raise ValueError(f"minimalistic must be a bool. Received: minimalistic={minimalistic!r}")
    if minimalistic and spec.attention is not None:
        raise ValueError(
            "minimalistic MobileNetV3 has no SE: build it with attention=None "
            f"(e.g. {variant}'s plain twin mobilenetv3_{variant}_plain). Received: attention={spec.attention.kind!r}"
        )
    features = spec.features
    inputs = spec.inputs
    stem_act = "relu" if minimalistic else "hard_swish"
    x = _conv_bn_act(layers, inputs, _stem_channels(alpha), 3, "stem_conv", strides=2, act=stem_act, bn_name="stem_bn", act_name="stem_act")
    stage = 1
    for block in block_specs(variant, alpha, minimalistic):
        if block["stage"] > stage:
            if features.done(x):  # the output of the stage that ends here (Small: the stem)
                return features.head(fl, inputs)
            stage = block["stage"]
        prefix = f"stage{block['stage']}_block{block['block']}"
        # MobileNetV3's SE width is of the expanded channels' own rounding.
        se_reduced = se_width(block["mid_channels"], spec.reduction, spec.se_divisor)
        x = _block(layers, x, block, prefix, spec.attention_at(stage) if block["se"] else None, se_reduced)

    if features.done(x):  # the last feature
        return features.head(fl, inputs)
    if not spec.include_top:
        return spec.head(x)
    # MobileNetV3's "efficient head": pool first, then a 1x1 conv with bias.
    x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
    x = layers.Conv2D(HEAD_CHANNELS[variant], 1, use_bias=True, name="head_conv")(x)
    x = _activation(layers, "relu" if minimalistic else "hard_swish", "head_act")(x)
    x = layers.Flatten(name="flatten")(x)
    if spec.dropout:
        x = layers.Dropout(spec.dropout, name="dropout")(x)
    return inputs, spec.classifier(x)


def _block(layers, x, spec, prefix, se, se_reduced):
    kind, act = spec["kind"], spec["act"]
    shortcut = x
    if kind == "cn":
        return _conv_bn_act(layers, x, spec["out_channels"], 1, prefix + "_conv", act=act)
    if kind == "ir":
        x = _conv_bn_act(layers, x, spec["mid_channels"], 1, prefix + "_pw", act=act)
    x = _conv_bn_act(layers, x, None, spec["kernel"], prefix + "_dw", strides=spec["stride"], act=act, depthwise=True)
    if se is not None:
        x = se(layers, x, prefix, reduced_channels=se_reduced)
    x = _conv_bn_act(layers, x, spec["out_channels"], 1, prefix + ("_pwl" if kind == "ir" else "_pw"))
    if spec["stride"] == 1 and spec["in_channels"] == spec["out_channels"]:
        x = layers.Add(name=prefix + "_add")([shortcut, x])
    return x


class MobileNetV3Model(SEModel, graph=mobilenet_v3_graph, default_name="mobilenetv3"):
    """MobileNetV3-Large / -Small and their plain twins; the arguments are those of `mobilenet_v3_graph`.

    Example:

    >>> model = MobileNetV3Model(variant="small", alpha=0.75, input_shape=(224, 224, 3))
    """


# timm's mobilenetv3.py at width 1.0: keras_se's defaults without dropout;
# weights="imagenet" loads their releases.
TIMM_PRESETS = {
    "mobilenetv3_large_100": Preset("mobilenetv3_large", dict(dropout=0.0), Release("ra_in1k")),
    "mobilenetv3_small_100": Preset("mobilenetv3_small", dict(dropout=0.0), Release("lamb_in1k")),
}
for _variant in VARIANTS:
    register_twins(
        f"mobilenetv3_{_variant}_plain",
        f"mobilenetv3_{_variant}",
        MobileNetV3Model,
        dict(variant=_variant),
        "mobilenetv3",
        papers=(None, f"MobileNetV3-{_variant.capitalize()} 1.0"),
        imagenet=(None, f"timm:mobilenetv3_{_variant}_100"),
    )
register_presets("timm", TIMM_PRESETS)
