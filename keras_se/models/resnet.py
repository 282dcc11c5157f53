"""Residual SE / SK networks: SE-ResNet, SE-ResNeXt, SENet-154, SKNet and
their plain twins, from one table and one builder."""

import math

from keras_se.layers._utils import check_choice, check_positive_int
from keras_se.layers.selective_kernel import apply_sk, make_sk_layers
from keras_se.models import _common
from keras_se.models.base import SEModel
from keras_se.models.registry import Preset, Release, register, register_presets

STEMS = ("7x7", "deep", "deep_tiered")
SE_POSITIONS = ("standard", "pre", "post", "identity", "after_3x3")
STAGES = (2, 3, 4, 5)

# depth -> (block, blocks per stage)
DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
# Depths without registered models of their own, reached by overriding
# `depth` (timm's legacy_seresnext26_32x4d).
EXTRA_DEPTHS = {26: ("bottleneck", (2, 2, 2, 2))}

# Architecture options beyond depth. `stride_on`: which conv of the
# bottleneck carries the stride ("1x1": Caffe SE-ResNet / keras.applications;
# "3x3": ResNet v1.5, ResNeXt, SENet-154, SKNet). `stem_pool`: "ceil" is
# Caffe's ceil-mode max pool (timm legacy_*), "pad" is PyTorch's padding=1.
RESNET = dict(groups=1, base_width=64, stride_on="1x1", stem="7x7", stem_pool="ceil", downsample_kernel=1, halve_conv1=False, dropout=0.0)
RESNEXT = dict(RESNET, groups=32, base_width=4, stride_on="3x3")
SENET154 = dict(RESNET, groups=64, base_width=4, stride_on="3x3", stem="deep", downsample_kernel=3, halve_conv1=True, dropout=0.2)
SKNET = dict(RESNEXT, stem_pool="pad")


@_common.builder(STAGES)
def resnet_graph(
    spec,
    depth=50,
    se_position="standard",
    sk_paths=2,
    sk_min_channels=32,
    sk_split_input=False,
    groups=1,
    base_width=64,
    stride_on="1x1",
    stem="7x7",
    stem_width=64,
    stem_pool="ceil",
    downsample_kernel=1,
    avg_down=False,
    aa=False,
    blocks=None,
    halve_conv1=False,
    basic_last_relu=False,
):
    """The graph of a residual network with SE, SK or no attention: `(inputs, outputs)`.

    Args:
        depth: int. 18, 34, 50, 101 or 152 (blocks per stage from `DEPTHS`;
            26, two bottlenecks per stage, from `EXTRA_DEPTHS`).
        attention: a registered attention kind (`"se"`, `"eca"`, `"cbam"`,
            `"sk"` or a user's, `keras_se.layers.attention_kinds()`) or None
            (the plain twin). `"sk"` replaces each block's 3x3 convolution
            with an SK unit (SKNet); any other kind goes where
            `se_position` says.
        include_top, input_tensor, input_shape, pooling, classes,
            classifier_activation: as in `keras.applications`.
        reduction: float, defaults to 16. r of SE (and of SK's d = max(C/r, L)).
        se_bias: bool, defaults to True. Bias on the SE FCs.
        se_gate: `"sigmoid"` (default) or `"hard_sigmoid"`.
        se_divisor: int, defaults to 1. Round SE widths to a multiple (timm: 8).
        se_stages: stages (2-5) that carry attention; None for all.
        se_position: `"standard"` (residual branch, before the add),
            `"pre"` (block input, before the branch), `"post"` (after the add
            and ReLU), `"identity"` (on the shortcut), or `"after_3x3"`
            (after the 3x3 conv's ReLU): SENet paper Fig. 5, Tables 14-15;
            for every kind but `"sk"`.
        attention_options: dict or None. Options of the attention kind's
            layer (e.g. `{"kernel_size": 3}` for `"eca"`); for `"se"`, over
            the `se_*` arguments.
        sk_paths: int, defaults to 2. M of the SK units.
        sk_min_channels: int, defaults to 32. L of the SK units.
        sk_split_input: bool, defaults to False. Each SK path convolves one
            of M channel slices of the input (timm's skresnet18/34/50).
        groups, base_width: ResNeXt cardinality and width per group.
        stride_on: `"1x1"` or `"3x3"`.
        stem: `"7x7"`, `"deep"` (three 3x3 convs of `stem_width`,
            `stem_width` and twice that: SENet-154, timm's ResNet-D) or
            `"deep_tiered"` (3/4 of `stem_width`, `stem_width`, twice
            that: timm's ResNet-T).
        stem_width: int, defaults to 64. Width of the deep stems (timm: 32
            for the -D / -T variants, 64 for SENet-154); the stem outputs
            twice it.
        stem_pool: `"ceil"`, `"pad"` (3x3 stride-2 max pools) or `"avg"`
            (a 2x2 stride-2 average pool: timm's anti-aliased variants).
        downsample_kernel: 1 or 3: projection shortcut kernel of stages 3-5.
        avg_down: bool, defaults to False. Strided projection shortcuts
            average-pool 2x2 (ceil mode, padding left out of the mean), then
            project with a stride-1 1x1 conv (timm's ResNet-D `avg_down`).
        aa: bool, defaults to False. Strided blocks convolve at stride 1
            and average-pool 2x2 after the 3x3 conv (timm's `aa_layer` with
            `nn.AvgPool2d`, the "aa" variants).
        blocks: four ints or None (default). Blocks per stage, overriding
            `depth`'s (which still picks basic or bottleneck blocks), e.g.
            (1, 1, 11, 3) for timm's ecaresnetlight.
        halve_conv1: bool. SENet-154's first 1x1 at half the 3x3 width.
        dropout: float. Dropout before the classifier.
        basic_last_relu: bool, defaults to False. Basic blocks only: a ReLU
            after the second BN, before SE and the add (timm's
            legacy_seresnet18/34, whose `SEResNetBlock` has it).
        features_only: bool, defaults to False. A backbone: the outputs are
            the features at `out_indices` (a list, timm's `features_only`;
            `model.pyramid_outputs` maps them to keras-hub's `"P2"`..`"P5"`);
            `include_top`, `pooling` and `classes` are unused and stages
            after the last returned one are not built.
        out_indices: feature indices (timm's): 0 the stem (stride 2, 64
            channels; 128 for the deep stem), 1-4 the outputs of stages 2-5
            (strides 4, 8, 16, 32; 64, 128, 256, 512 channels with basic
            blocks, four times that with bottlenecks). Defaults to
            (1, 2, 3, 4).
        flavour: `"keras"` (default) or `"tf_keras"`; the same graph in
            tf_keras (layer names and weight order identical) for tfmot.
    """
    fl = spec.fl
    layers = fl.layers
    depths = {**DEPTHS, **EXTRA_DEPTHS}
    if depth not in depths:
        raise ValueError(f"depth must be one of {sorted(depths)}. Received: depth={depth!r}")
    check_choice("se_position", se_position, SE_POSITIONS)
    check_choice("stride_on", stride_on, ("1x1", "3x3"))
    check_choice("stem", stem, STEMS)
    check_positive_int("stem_width", stem_width)
    for flag, value in (("avg_down", avg_down), ("aa", aa)):
        if not isinstance(value, bool):
            raise ValueError(f"{flag} must be a bool. Received: {flag}={value!r}")
    check_choice("downsample_kernel", downsample_kernel, (1, 3))
    stages = spec.stages
    attention = spec.attention.kind if spec.attention else None
    # SK is the block's 3x3 convolution (SKNet), not an attention placed after one.
    se = None if attention == "sk" else spec.attention
    if attention == "sk" and se_position != "standard":
        raise ValueError(f"se_position applies to SE only. Received: se_position={se_position!r} with attention='sk'")
    block, blocks_per_stage = depths[depth]
    if aa and (stride_on != "3x3" or attention == "sk"):
        raise ValueError(
            f"aa pools after a strided 3x3 conv: it needs stride_on='3x3' and no SK. Received: aa=True, stride_on={stride_on!r}, attention={attention!r}"
        )
    if blocks is not None:
        try:
            blocks_per_stage = tuple(check_positive_int("blocks", b) for b in blocks)
        except (TypeError, ValueError):
            blocks_per_stage = ()
        if len(blocks_per_stage) != 4:
            raise ValueError(f"blocks must be four positive ints (blocks per stage 2-5). Received: blocks={blocks!r}")
    if not isinstance(basic_last_relu, bool):
        raise ValueError(f"basic_last_relu must be a bool. Received: basic_last_relu={basic_last_relu!r}")
    if basic_last_relu and block != "basic":
        raise ValueError(f"basic_last_relu applies to basic blocks (depth 18, 34). Received: depth={depth}")
    features = spec.features

    inputs = spec.inputs
    x = inputs
    if stem == "7x7":
        x = _common.conv_bn(layers, x, 64, 7, "stem_conv", strides=2, bn_name="stem_bn", act_name="stem_relu")
    else:
        first = 3 * (stem_width // 4) if stem == "deep_tiered" else stem_width
        for i, width in enumerate((first, stem_width, 2 * stem_width), start=1):
            x = _common.conv_bn(
                layers, x, width, 3, f"stem_conv{i}", strides=2 if i == 1 else 1, bn_name=f"stem_bn{i}", act_name=f"stem_relu{i}"
            )
    if features.done(x):
        return features.head(fl, inputs)
    if stem_pool == "avg":
        x = layers.AveragePooling2D(2, name="stem_pool")(x)
    else:
        x = _common.max_pool(layers, x, "stem_pool", stem_pool)

    sk = dict(num_paths=sk_paths, min_channels=sk_min_channels, reduction=spec.reduction, split_input=sk_split_input)
    for i, num_blocks in enumerate(blocks_per_stage):
        stage = i + 2
        planes = 64 * 2**i
        for b in range(num_blocks):
            strides = 2 if (b == 0 and stage > 2) else 1
            unit = dict(
                planes=planes,
                strides=strides,
                name=f"stage{stage}_block{b + 1}",
                attention=attention if stage in stages else None,
                se=se if stage in stages else None,
                se_position=se_position,
                sk=sk,
                avg_down=avg_down,
                aa=aa,
            )
            if block == "basic":
                x = _basic_block(layers, x, last_relu=basic_last_relu, **unit)
            else:
                x = _bottleneck_block(
                    layers,
                    x,
                    groups=groups,
                    base_width=base_width,
                    stride_on=stride_on,
                    # SENet-154's 3x3 projections start at stage 3; stage 2's
                    # stride-1 projection stays 1x1 (official model, timm).
                    downsample_kernel=downsample_kernel if stage > 2 else 1,
                    halve_conv1=halve_conv1,
                    **unit,
                )
        if features.done(x):
            return features.head(fl, inputs)
    return spec.head(x)


def _shortcut(layers, x, filters, strides, kernel, name, avg_down):
    if strides == 1 and x.shape[-1] == filters:
        return x
    if avg_down and strides > 1:
        # PyTorch's AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False):
        # "same" pads odd sizes at the end and leaves the padding out of the mean.
        x = layers.AveragePooling2D(2, strides=strides, padding="same", name=f"{name}_proj_pool")(x)
        strides = 1
    return _common.conv_bn(layers, x, filters, kernel, f"{name}_proj_conv", strides=strides, bn_name=f"{name}_proj_bn", act=None)


def _anti_aliased(layers, x, strides, aa, name):
    """timm's `aa_layer=nn.AvgPool2d`: a 2x2 average pool where the conv before it would stride."""
    if aa and strides > 1:
        x = layers.AveragePooling2D(2, strides=strides, name=f"{name}_aa")(x)
    return x


def _finish_block(layers, x, shortcut, name, attention, se, se_position):
    """SE at its position around the add, then add and ReLU."""
    if se is not None and se_position == "standard":
        x = se(layers, x, name)
    if se is not None and se_position == "identity":
        shortcut = se(layers, shortcut, name)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    x = layers.ReLU(name=f"{name}_out")(x)
    if se is not None and se_position == "post":
        x = se(layers, x, name)
    return x


def _basic_block(layers, x, planes, strides, name, attention, se, se_position, sk, last_relu, avg_down, aa):
    shortcut = _shortcut(layers, x, planes, strides, 1, name, avg_down)
    if se is not None and se_position == "pre":
        x = se(layers, x, name)
    if attention == "sk":
        # timm's SelectiveKernelBasic: the SK unit replaces the first 3x3.
        x = apply_sk(make_sk_layers(layers, planes, f"{name}_sk", strides=strides, **sk), x)
    else:
        conv_strides = 1 if aa else strides
        x = _common.conv_bn(layers, x, planes, 3, f"{name}_conv1", strides=conv_strides, bn_name=f"{name}_bn1", act_name=f"{name}_relu1")
        x = _anti_aliased(layers, x, strides, aa, name)
    if se is not None and se_position == "after_3x3":
        x = se(layers, x, name)
    x = _common.conv_bn(
        layers, x, planes, 3, f"{name}_conv2", bn_name=f"{name}_bn2", act="relu" if last_relu else None, act_name=f"{name}_relu2"
    )
    return _finish_block(layers, x, shortcut, name, attention, se, se_position)


def _bottleneck_block(
    layers,
    x,
    planes,
    strides,
    name,
    attention,
    se,
    se_position,
    groups,
    base_width,
    stride_on,
    downsample_kernel,
    halve_conv1,
    sk,
    avg_down,
    aa,
):
    out_channels = planes * 4
    width = int(math.floor(planes * base_width / 64)) * groups
    shortcut = _shortcut(layers, x, out_channels, strides, downsample_kernel, name, avg_down)
    if se is not None and se_position == "pre":
        x = se(layers, x, name)
    stride1, stride3 = (strides, 1) if stride_on == "1x1" else (1, strides)
    x = _common.conv_bn(
        layers,
        x,
        width // 2 if halve_conv1 else width,
        1,
        f"{name}_conv1",
        strides=stride1,
        bn_name=f"{name}_bn1",
        act_name=f"{name}_relu1",
    )
    if attention == "sk":
        parts = make_sk_layers(layers, width, f"{name}_sk", groups=groups, strides=stride3, **sk)
        x = apply_sk(parts, x)
    else:
        x = _common.conv_bn(
            layers,
            x,
            width,
            3,
            f"{name}_conv2",
            strides=1 if aa else stride3,
            groups=groups,
            bn_name=f"{name}_bn2",
            act_name=f"{name}_relu2",
        )
        x = _anti_aliased(layers, x, stride3, aa, name)
    if se is not None and se_position == "after_3x3":
        x = se(layers, x, name)
    x = _common.conv_bn(layers, x, out_channels, 1, f"{name}_conv3", bn_name=f"{name}_bn3", act=None)
    return _finish_block(layers, x, shortcut, name, attention, se, se_position)


class ResNetModel(SEModel, graph=resnet_graph, default_name="resnet"):
    """SE-ResNet, SE-ResNeXt, SENet-154, SKNet and their plain twins.

    The arguments are those of `resnet_graph`; `get_config()` returns them.

    Example:

    >>> model = ResNetModel(depth=50, attention="se", input_shape=(224, 224, 3))
    >>> ResNetModel.from_config(model.get_config())  # the same architecture
    """


def _imagenet(name):
    return f"timm:{name}" if name in TIMM_PRESETS and TIMM_PRESETS[name].release else None


# The timm models this family reproduces exactly (`create_model("timm:NAME")`)
# and their default releases (timm 1.0's `default_cfgs`: the first tag with
# weights; None where timm publishes none: "untrained").
#
# timm's senet.py `legacy_*` models, ported from the Caffe releases, are the
# keras_se defaults: ceil-mode stem pool, stride on the first 1x1 of SE-ResNet
# bottlenecks (on the grouped 3x3 of SE-ResNeXt and SENet-154), SE width
# C // 16; only senet.py's basic block adds a ReLU before SE. timm's resnet.py
# and sknet.py pad the stem pool, put the stride on the 3x3 ("v1.5") and round
# the SE width to make_divisible(C / 16, 8); its -D / -T / "aa" variants have
# deep (tiered) stems of width 32, average-pool shortcuts, and for "aa"
# average-pool anti-aliasing.
_RESNET_PY = dict(stride_on="3x3", stem_pool="pad", se_divisor=8)
_AVG_DOWN = dict(_RESNET_PY, stem_width=32, avg_down=True)
_D = dict(_AVG_DOWN, stem="deep")
_T = dict(_AVG_DOWN, stem="deep_tiered")
_AA = dict(_D, aa=True, stem_pool="avg")
_ECA = dict(attention="eca")
# timm's skresnet*: SK paths on channel halves of the input (split_input),
# groups 1, attention width make_divisible(C / 8, 16) = max(C / 8, 16)
# (basic) or make_divisible(C / 16, 8) = max(C / 16, 8) (bottleneck).
_SKRESNET = dict(groups=1, base_width=64, sk_split_input=True)
_BILINEAR = Release("in1k", "bilinear")

TIMM_PRESETS = {
    "legacy_seresnet18": Preset("se_resnet18", dict(basic_last_relu=True), Release("in1k")),
    "legacy_seresnet34": Preset("se_resnet34", dict(basic_last_relu=True), _BILINEAR),
    **{f"legacy_seresnet{d}": Preset(f"se_resnet{d}", {}, _BILINEAR) for d in (50, 101, 152)},
    "legacy_seresnext26_32x4d": Preset("se_resnext50_32x4d", dict(depth=26), Release("in1k")),
    "legacy_seresnext50_32x4d": Preset("se_resnext50_32x4d", {}, _BILINEAR),
    "legacy_seresnext101_32x4d": Preset("se_resnext101_32x4d", {}, _BILINEAR),
    "legacy_senet154": Preset("senet154", {}, _BILINEAR),
    **{f"seresnet{d}": Preset(f"se_resnet{d}", _RESNET_PY) for d in (18, 34, 101, 152)},
    "seresnet50": Preset("se_resnet50", _RESNET_PY, Release("a1_in1k", crop_pct=0.95)),
    "seresnext50_32x4d": Preset("se_resnext50_32x4d", _RESNET_PY, Release("racm_in1k")),
    "seresnext101_32x4d": Preset("se_resnext101_32x4d", _RESNET_PY, Release("gluon_in1k")),
    "senet154": Preset("senet154", dict(_RESNET_PY, dropout=0.0), Release("gluon_in1k")),
    "seresnext26d_32x4d": Preset("se_resnext50_32x4d", dict(_D, depth=26), Release("bt_in1k")),
    "seresnext26t_32x4d": Preset("se_resnext50_32x4d", dict(_T, depth=26), Release("bt_in1k")),
    "seresnet50t": Preset("se_resnet50", _T),
    "seresnetaa50d": Preset("se_resnet50", _AA),
    "seresnet152d": Preset("se_resnet152", _D, Release("ra2_in1k", crop_pct=0.95, size=256)),
    "seresnext101d_32x8d": Preset("se_resnext101_32x4d", dict(_D, base_width=8), Release("ah_in1k", crop_pct=0.95)),
    "seresnextaa101d_32x8d": Preset(
        "se_resnext101_32x4d", dict(_AA, base_width=8), Release("sw_in12k_ft_in1k_288", crop_pct=0.95, size=288)
    ),
    "ecaresnet26t": Preset("se_resnet50", dict(_T, depth=26, **_ECA), Release("ra2_in1k", size=256)),
    "ecaresnet50d": Preset("se_resnet50", dict(_D, **_ECA), Release("miil_in1k")),
    "ecaresnet50t": Preset("se_resnet50", dict(_T, **_ECA), Release("ra2_in1k", size=256)),
    "ecaresnet101d": Preset("se_resnet101", dict(_D, **_ECA), Release("miil_in1k")),
    # A 7x7 stem.
    "ecaresnetlight": Preset("se_resnet50", dict(_AVG_DOWN, blocks=(1, 1, 11, 3), **_ECA), Release("miil_in1k")),
    "resnet26d": Preset("resnet50", dict(_D, depth=26), Release("bt_in1k")),
    "resnet26t": Preset("resnet50", dict(_T, depth=26), Release("ra2_in1k", crop_pct=0.94, size=256)),
    "resnet50d": Preset("resnet50", _D, Release("ra2_in1k")),
    "resnet50t": Preset("resnet50", _T),
    "resnet101d": Preset("resnet101", _D, Release("ra2_in1k", crop_pct=0.95, size=256)),
    "resnet152d": Preset("resnet152", _D, Release("ra2_in1k", crop_pct=0.95, size=256)),
    "resnetaa50d": Preset("resnet50", _AA, Release("sw_in12k_ft_in1k", crop_pct=0.95)),
    "resnext50d_32x4d": Preset("resnext50_32x4d", _D, Release("bt_in1k")),
    "skresnext50_32x4d": Preset("sknet50", {}, Release("ra_in1k")),
    **{f"skresnet{d}": Preset("sknet50", dict(_SKRESNET, depth=d, reduction=8, sk_min_channels=16), Release("ra_in1k")) for d in (18, 34)},
    "skresnet50": Preset("sknet50", dict(_SKRESNET, sk_min_channels=8)),
}


def _register(name, family, depth, attention, arch, twin, paper, imagenet=None):
    register(name, ResNetModel, dict(arch, depth=depth, attention=attention), twin=twin, family=family, paper=paper, imagenet=imagenet)


# weights="imagenet" of the SENet paper's models loads timm's legacy_* release
# (the official Caffe weights); SKNet-50's, timm's skresnext50_32x4d.
for _depth in DEPTHS:
    _register(f"resnet{_depth}", "resnet", _depth, None, RESNET, None, f"ResNet-{_depth}")
    _register(
        f"se_resnet{_depth}",
        "resnet",
        _depth,
        "se",
        RESNET,
        f"resnet{_depth}",
        f"SE-ResNet-{_depth}",
        _imagenet(f"legacy_seresnet{_depth}"),
    )
for _depth in (50, 101):
    _register(f"resnext{_depth}_32x4d", "resnext", _depth, None, RESNEXT, None, f"ResNeXt-{_depth} (32x4d)")
    _register(
        f"se_resnext{_depth}_32x4d",
        "resnext",
        _depth,
        "se",
        RESNEXT,
        f"resnext{_depth}_32x4d",
        f"SE-ResNeXt-{_depth} (32x4d)",
        _imagenet(f"legacy_seresnext{_depth}_32x4d"),
    )
    _register(
        f"sknet{_depth}", "sknet", _depth, "sk", SKNET, f"resnext{_depth}_32x4d", f"SKNet-{_depth}", _imagenet(f"skresnext{_depth}_32x4d")
    )
_register("senet154_plain", "senet154", 152, None, SENET154, None, None)
_register("senet154", "senet154", 152, "se", SENET154, "senet154_plain", "SENet-154", _imagenet("legacy_senet154"))
register_presets("timm", TIMM_PRESETS)
