"""SE-MobileNet: MobileNet v1 with an SE block after every depthwise-separable block."""

from keras_se.models import _common
from keras_se.models.base import SEModel
from keras_se.models.registry import register_twins

# (pointwise filters, depthwise stride) of MobileNet v1's 13 blocks.
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)) + ((512, 1),) * 5 + ((1024, 2), (1024, 1))
STAGES = (1, 2, 3, 4, 5)


@_common.builder(STAGES, dropout=1e-3)
def mobilenet_graph(spec, alpha=1.0, activation="relu6"):
    """The graph of MobileNet v1, with SE (`attention="se"`) or plain (None): `(inputs, outputs)`.

    SE (r = 16, FCs with bias) sits on the output of each of the 13
    depthwise-separable blocks, after the pointwise conv-BN-ReLU: the
    placement that reproduces the SENet paper's Table 3 (4.7 M parameters,
    572 M MACs; the paper does not say where SE sits). Blocks are grouped in stages
    by resolution: stage s works at 1/2^s of the input (stage 1 = block 1,
    stage 5 = blocks 12-13), so `se_stages=(1, 2, 3, 4)` drops the last
    stage's SE as the paper suggests for mobile.

    Args:
        attention: `"se"` or None.
        alpha: float, defaults to 1.0. Width multiplier (keras.applications).
        include_top, input_tensor, input_shape, pooling, classes,
            classifier_activation: as in `keras.applications.MobileNet`.
        reduction, se_bias, se_gate, se_divisor, se_stages: SE options, as
            in `keras_se.models.resnet.resnet_graph`.
        activation: `"relu6"` (default, keras.applications) or `"relu"`
            (the MobileNet paper).
        dropout: float, defaults to 1e-3 (keras.applications).
        features_only: bool, defaults to False. A backbone returning the
            outputs of the stages at `out_indices` (timm's `features_only`;
            `model.pyramid_outputs` names them `"P1"`..`"P5"`); no head,
            and no stage after the last returned one.
        out_indices: feature indices: i is the output of stage i + 1, at
            stride 2**(i + 1), with 64, 128, 256, 512, 1024 channels (times
            `alpha`). Defaults to (1, 2, 3, 4): strides 4 to 32.
        flavour: `"keras"` or `"tf_keras"`.

    Reference:
        - [Howard et al., MobileNets](https://arxiv.org/abs/1704.04861)
        - [Hu et al., Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507)
    """
    fl = spec.fl
    layers = fl.layers
    _common.check_width_multiplier("alpha", alpha)
    if int(32 * alpha) < 1:
        raise ValueError(f"alpha must leave every layer at least one channel (the stem has int(32 * alpha)). Received: alpha={alpha!r}")
    if activation not in ("relu", "relu6"):
        raise ValueError(f"activation must be 'relu' or 'relu6'. Received: activation={activation!r}")
    stages = spec.stages
    se = spec.attention
    features = spec.features

    inputs = spec.inputs
    x = _common.conv_bn(layers, inputs, int(32 * alpha), 3, "stem_conv", strides=2, act=activation, bn_name="stem_bn", act_name="stem_relu")
    stage, block = 1, 0
    for filters, strides in BLOCKS:
        if strides == 2:
            if features.done(x):  # the output of the stage that ends here
                return features.head(fl, inputs)
            stage, block = stage + 1, 0
        block += 1
        prefix = f"stage{stage}_block{block}"
        x = _common.conv_bn(
            layers,
            x,
            None,
            3,
            f"{prefix}_dw",
            strides=strides,
            act=activation,
            depthwise=True,
            bn_name=f"{prefix}_dw_bn",
            act_name=f"{prefix}_dw_relu",
        )
        x = _common.conv_bn(
            layers, x, int(filters * alpha), 1, f"{prefix}_pw", act=activation, bn_name=f"{prefix}_pw_bn", act_name=f"{prefix}_pw_relu"
        )
        if se is not None and stage in stages:
            x = se(layers, x, prefix)
    if features.done(x):  # the last feature
        return features.head(fl, inputs)
    return spec.head(x)


class MobileNetModel(SEModel, graph=mobilenet_graph, default_name="mobilenet"):
    """SE-MobileNet and MobileNet v1; the arguments are those of `mobilenet_graph`.

    Example:

    >>> model = MobileNetModel(attention="se", alpha=0.5, input_shape=(128, 128, 3))
    """


register_twins("mobilenet", "se_mobilenet", MobileNetModel, {}, "mobilenet", papers=("MobileNet 1.0-224", "SE-MobileNet"))
