"""SE-ShuffleNet: ShuffleNet v1 with SE on the residual branch."""

from keras_se.layers._utils import check_choice, make_divisible
from keras_se.models import _common
from keras_se.models.base import SEModel
from keras_se.models.registry import register_twins

# ShuffleNet v1 Table 1: stage 2 output channels at 1x, by groups (stages 3
# and 4 double it), and units per stage.
STAGE2_CHANNELS = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}
UNITS = (4, 8, 4)
STAGES = (2, 3, 4)
SCALES = (0.5, 1.0, 1.5, 2.0)
STEM_CHANNELS = 24


@_common.builder(STAGES)
def shufflenet_graph(spec, groups=3, scale=1.0, se_position="standard"):
    """The graph of ShuffleNet v1 (g groups, width `scale`), with SE or plain: `(inputs, outputs)`.

    Unit: 1x1 group conv -> BN -> ReLU -> channel shuffle -> 3x3 depthwise
    (stride) -> BN -> 1x1 group conv -> BN -> [SE] -> add and ReLU (stride 1),
    or ReLU and concat with a 3x3/2 average-pooled shortcut (stride 2). The first unit's
    first 1x1 conv is not grouped (its input has only 24 channels); the
    bottleneck is a quarter of the unit's output channels. SE on the residual
    branch before the add/concat (`se_position="standard"`) reproduces the
    SENet paper's Table 3 (2.4 M parameters at 1x, g=3); `"post"` puts it on
    the unit output instead (2.6 M).

    Args:
        attention: `"se"` or None.
        groups: int, defaults to 3. One of 1, 2, 3, 4, 8.
        scale: float, defaults to 1.0. One of 0.5, 1.0, 1.5, 2.0. Stage widths
            are rounded to a multiple of 4 * groups where the scaled width is
            not one already.
        include_top, input_tensor, input_shape, pooling, classes,
            classifier_activation: as in `keras.applications`.
        reduction, se_bias, se_gate, se_divisor, se_stages: SE options
            (stages 2-4).
        se_position: `"standard"` or `"post"`.
        features_only: bool, defaults to False. A backbone returning the
            features at `out_indices` (timm's `features_only`;
            `model.pyramid_outputs` names them `"P1"`..`"P5"`); no head,
            and no stage after the last returned one.
        out_indices: feature indices: 0 the stem conv (stride 2, 24
            channels), 1 the stem max pool (stride 4, 24 channels: ShuffleNet
            has no stage at stride 4), 2-4 the outputs of stages 2-4
            (strides 8, 16, 32; the stage widths, e.g. 240, 480, 960 for
            g=3 at 1x). Defaults to (1, 2, 3, 4).
        flavour: `"keras"` or `"tf_keras"`.

    Reference:
        - [Zhang et al., ShuffleNet](https://arxiv.org/abs/1707.01083)
        - [Hu et al., Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507)
    """
    fl = spec.fl
    layers = fl.layers
    check_choice("groups", groups, tuple(STAGE2_CHANNELS))
    check_choice("scale", scale, SCALES)
    check_choice("se_position", se_position, ("standard", "post"))
    stages = spec.stages
    se = spec.attention
    features = spec.features

    inputs = spec.inputs
    x = _common.conv_bn(layers, inputs, STEM_CHANNELS, 3, "stem_conv", strides=2, bn_name="stem_bn", act_name="stem_relu")
    if features.done(x):
        return features.head(fl, inputs)
    x = _common.max_pool(layers, x, "stem_pool", "pad")
    if features.done(x):
        return features.head(fl, inputs)
    out_channels = make_divisible(STAGE2_CHANNELS[groups] * scale, 4 * groups, round_limit=0.0)
    for stage, units in zip(STAGES, UNITS):
        for u in range(units):
            x = _shuffle_unit(
                layers,
                x,
                out_channels,
                groups,
                strides=2 if u == 0 else 1,
                first_grouped=not (stage == 2 and u == 0),
                name=f"stage{stage}_block{u + 1}",
                se=se if stage in stages else None,
                se_position=se_position,
            )
        out_channels *= 2
        if features.done(x):
            return features.head(fl, inputs)
    return spec.head(x)


def _shuffle_unit(layers, x, out_channels, groups, strides, first_grouped, name, se, se_position):
    in_channels = x.shape[-1]
    mid = out_channels // 4
    branch_out = out_channels - in_channels if strides == 2 else out_channels
    y = _common.conv_bn(
        layers, x, mid, 1, f"{name}_gconv1", groups=groups if first_grouped else 1, bn_name=f"{name}_bn1", act_name=f"{name}_relu1"
    )
    if groups > 1:
        y = layers.ChannelShuffle(groups, name=f"{name}_shuffle")(y)
    y = _common.conv_bn(layers, y, None, 3, f"{name}_dw", strides=strides, depthwise=True, bn_name=f"{name}_bn2", act=None)
    y = _common.conv_bn(layers, y, branch_out, 1, f"{name}_gconv2", groups=groups, bn_name=f"{name}_bn3", act=None)
    if se is not None and se_position == "standard":
        y = se(layers, y, name)
    if strides == 2:
        shortcut = layers.ZeroPadding2D(1, name=f"{name}_shortcut_pad")(x)
        shortcut = layers.AveragePooling2D(3, strides=2, name=f"{name}_shortcut_pool")(shortcut)
        # ReLU(concat(pool(x), y)) == concat(pool(x), ReLU(y)): x is a ReLU
        # output, so its pooled half is already non-negative. Applying ReLU to
        # the branch only (as the official code does) lets int8 ReLU fuse into
        # the branch's last op; a ReLU after an int8 concat falls off XNNPACK.
        y = layers.ReLU(name=f"{name}_branch_relu")(y)
        x = layers.Concatenate(name=f"{name}_out")([shortcut, y])
    else:
        x = layers.Add(name=f"{name}_add")([x, y])
        x = layers.ReLU(name=f"{name}_out")(x)
    if se is not None and se_position == "post":
        x = se(layers, x, name)
    return x


class ShuffleNetModel(SEModel, graph=shufflenet_graph, default_name="shufflenet"):
    """SE-ShuffleNet and ShuffleNet v1; the arguments are those of `shufflenet_graph`.

    Example:

    >>> model = ShuffleNetModel(attention="se", groups=3, input_shape=(224, 224, 3))
    """


for _g in STAGE2_CHANNELS:
    register_twins(
        f"shufflenet_g{_g}",
        f"se_shufflenet_g{_g}",
        ShuffleNetModel,
        dict(groups=_g),
        "shufflenet",
        papers=(f"ShuffleNet 1x (g={_g})", f"SE-ShuffleNet 1x (g={_g})"),
    )
