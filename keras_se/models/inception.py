"""SE-BN-Inception: BN-Inception with an SE block on the output of every Inception module."""

from keras_se.models import _common
from keras_se.models.base import SEModel
from keras_se.models.registry import register_twins

# The ten Inception modules of the official SE-BN-Inception prototxt
# (hujie-frank/SENet, models/SE-BN-Inception.prototxt), grouped by the stage
# whose resolution they output (stage s: 1/2^s of the input):
# (prototxt name, strides, 1x1, (3x3 reduce, 3x3), (double 3x3 reduce, double 3x3), (pool, pool projection)).
# A stride-2 module has no 1x1 branch and no projection after its max pool.
MODULES = {
    3: (
        ("inception_3a", 1, 64, (64, 64), (64, 96), ("avg", 32)),
        ("inception_3b", 1, 64, (64, 96), (64, 96), ("avg", 64)),
    ),
    4: (
        ("inception_3c", 2, None, (128, 160), (64, 96), ("max", None)),
        ("inception_4a", 1, 224, (64, 96), (96, 128), ("avg", 128)),
        ("inception_4b", 1, 192, (96, 128), (96, 128), ("avg", 128)),
        ("inception_4c", 1, 160, (128, 160), (128, 160), ("avg", 128)),
        ("inception_4d", 1, 96, (128, 192), (160, 192), ("avg", 128)),
    ),
    5: (
        ("inception_4e", 2, None, (128, 192), (192, 256), ("max", None)),
        ("inception_5a", 1, 352, (192, 320), (160, 224), ("avg", 128)),
        ("inception_5b", 1, 352, (192, 320), (192, 224), ("max", 128)),
    ),
}
STAGES = tuple(MODULES)


@_common.builder(STAGES)
def inception_graph(spec):
    """The graph of BN-Inception, with SE (`attention="se"`) or plain (None): `(inputs, outputs)`.

    Built from the official SE-BN-Inception prototxt (hujie-frank/SENet): stem
    7x7/2 conv -> 3x3/2 max pool -> 1x1 conv -> 3x3 conv -> 3x3/2 max pool,
    then ten Inception modules (`MODULES`) of four branches (1x1; 1x1 -> 3x3;
    1x1 -> 3x3 -> 3x3; 3x3 pool -> 1x1) concatenated, every convolution
    followed by BN (epsilon 1e-5) and ReLU; global average pooling and the
    classifier. SE (FCs with bias, width C // 16) recalibrates the
    concatenated output of every module (SENet paper Fig. 2):
    11,931,622 parameters with SE and 11,285,224 without (counted from the prototxt).
    Max pools use Caffe's ceil mode; the modules' 3x3 average pools count
    the zero padding (Caffe's rule). Module k of stage s is named
    `stage{s}_block{k}` (stage 3: 3a-3b, stage 4: 3c-4d, stage 5: 4e-5b); the
    branches inside are `b0_conv` (1x1), `b1_conv1`/`b1_conv2` (3x3),
    `b2_conv1`-`b2_conv3` (double 3x3), `b3_pool` and `b3_conv` (projection).

    Args:
        attention: `"se"` or None (the plain twin: the same network without SE).
        include_top, input_tensor, input_shape, pooling, classes,
            classifier_activation: as in `keras.applications`.
        reduction, se_bias, se_gate, se_divisor: SE options, as in
            `keras_se.models.resnet.resnet_graph`.
        se_stages: stages (3-5) whose modules carry SE; None for all.
        dropout: float, defaults to 0.0 (the deploy prototxt has none).
            Dropout before the classifier.
        features_only: bool, defaults to False. A backbone returning the
            features at `out_indices` (timm's `features_only`;
            `model.pyramid_outputs` names them `"P1"`..`"P5"`); no head,
            and nothing after the last returned feature is built.
        out_indices: feature indices, the last output at each stride (timm
            has no BN-Inception; this is the rule of its Inception-v3
            `feature_info`): 0 `stem_relu1` (the 7x7 conv, 64 channels,
            stride 2), 1 `stem_relu3` (the 3x3 conv, 192, stride 4), 2-4
            the outputs of stages 3, 4 and 5 (after their SE: 320, 608,
            1024 channels; strides 8, 16, 32). Defaults to (1, 2, 3, 4).
        flavour: `"keras"` or `"tf_keras"`.

    Example:

    >>> inputs, outputs = inception_graph(attention="se", input_shape=(64, 64, 3), classes=10)

    Reference:
        - [Ioffe and Szegedy, Batch Normalization](https://arxiv.org/abs/1502.03167)
        - [Hu et al., Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507)
    """
    fl = spec.fl
    layers = fl.layers
    stages = spec.stages
    se = spec.attention
    features = spec.features

    inputs, shape = spec.inputs, spec.input_shape
    x = _common.conv_bn(layers, inputs, 64, 7, "stem_conv1", strides=2, bn_name="stem_bn1", act_name="stem_relu1")
    if features.done(x):
        return features.head(fl, inputs)
    x = _common.max_pool(layers, x, "stem_pool1", "ceil")
    x = _common.conv_bn(layers, x, 64, 1, "stem_conv2", bn_name="stem_bn2", act_name="stem_relu2")
    x = _common.conv_bn(layers, x, 192, 3, "stem_conv3", bn_name="stem_bn3", act_name="stem_relu3")
    if features.done(x):
        return features.head(fl, inputs)
    x = _common.max_pool(layers, x, "stem_pool2", "ceil")
    for stage, modules in MODULES.items():
        for k, module in enumerate(modules, start=1):
            prefix = f"stage{stage}_block{k}"
            x = _module(layers, x, prefix, *module[1:], input_shape=shape)
            if se is not None and stage in stages:
                x = se(layers, x, prefix)
        if features.done(x):
            return features.head(fl, inputs)
    return spec.head(x)


def _module(layers, x, name, strides, c1x1, c3x3, cdouble, pool, input_shape):
    def conv(y, filters, kernel, role, strides=1):
        return _common.conv_bn(
            layers,
            y,
            filters,
            kernel,
            f"{name}_{role}",
            strides=strides,
            bn_name=f"{name}_{role.replace('conv', 'bn')}",
            act_name=f"{name}_{role.replace('conv', 'relu')}",
        )

    branches = []
    if c1x1:
        branches.append(conv(x, c1x1, 1, "b0_conv"))
    y = conv(x, c3x3[0], 1, "b1_conv1")
    branches.append(conv(y, c3x3[1], 3, "b1_conv2", strides))
    y = conv(x, cdouble[0], 1, "b2_conv1")
    y = conv(y, cdouble[1], 3, "b2_conv2")
    branches.append(conv(y, cdouble[1], 3, "b2_conv3", strides))
    kind, projection = pool
    if strides == 2:
        y = _common.max_pool(layers, x, f"{name}_b3_pool", "ceil")
    elif kind == "max":
        y = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_b3_pool")(x)
    else:
        # Caffe's average pool divides by 9 at the border too (zeros count).
        y = layers.ZeroPadding2D(1, name=f"{name}_b3_pad")(x)
        y = layers.AveragePooling2D(3, strides=1, name=f"{name}_b3_pool")(y)
    if projection:
        y = conv(y, projection, 1, "b3_conv")
    branches.append(y)
    sizes = {tuple(b.shape[1:3]) for b in branches}
    if len(sizes) != 1:
        raise ValueError(
            f"input_shape gives {name}'s strided convolutions and Caffe's ceil-mode max pool different sizes "
            f"{sorted(sizes)}; use a size such as 224 or a multiple of 32. Received: input_shape={input_shape!r}"
        )
    return layers.Concatenate(name=f"{name}_concat")(branches)


class InceptionModel(SEModel, graph=inception_graph, default_name="bn_inception"):
    """SE-BN-Inception and BN-Inception; the arguments are those of `inception_graph`.

    Example:

    >>> model = InceptionModel(attention="se", input_shape=(64, 64, 3), classes=10)
    """


register_twins("bn_inception", "se_bn_inception", InceptionModel, {}, "inception", papers=("BN-Inception", "SE-BN-Inception"))
