"""SE-Inception-ResNet-v2: Inception-ResNet-v2 with SE on the residual branch of every Inception-ResNet module."""

from keras_se.models import _common
from keras_se.models.base import SEModel
from keras_se.models.registry import INCEPTION_MEAN, INCEPTION_STD, Preset, Release, register_presets, register_twins

# timm's (and TensorFlow-Slim's) BatchNorm epsilon for this network.
BN_EPSILON = 1e-3
STAGES = (3, 4, 5)
# Residual modules per stage (Block35, Block17, Block8) and their scales;
# the last Block8 has scale 1.0 and no ReLU.
REPEATS = {3: 10, 4: 20, 5: 10}
SCALES = {3: 0.17, 4: 0.10, 5: 0.20}


@_common.builder(STAGES, min_size=75, default_size=299)
def inception_resnet_graph(spec):
    """The graph of Inception-ResNet-v2, with SE (`attention="se"`) or plain (None): `(inputs, outputs)`.

    The plain twin computes exactly timm's `inception_resnet_v2` (55,843,464
    parameters): every convolution is conv (no bias) -> BN (epsilon 1e-3,
    with gamma) -> ReLU, the residual up-projection is a 1x1 conv with bias,
    and unpadded ("valid") convolutions and pools where timm has no padding.
    keras.applications' `InceptionResNetV2` is the same network except that
    its BatchNorms have no gamma (`scale=False`): 55,813,192 trainable
    parameters, 30,272 fewer (the weights of every other layer have the same shapes).

    SE (FCs with bias, width C // 16) sits on the residual branch of each
    of the 40 Inception-ResNet modules, on the up-projection's output, before
    the residual scaling and the add (SENet paper Section 3.3, Fig. 3 applied
    to Inception-ResNet). The reduction modules Mixed_5b, Mixed_6a and Mixed_7a
    carry none.

    Layer names: the stem is `stem_conv1a` / `stem_bn1a` ... `stem_conv4a`
    and `stem_pool3a` / `stem_pool5a` (timm's `conv2d_1a` ...). Stage s works at
    1/2^s of the input: `stage3_block1` is Mixed_5b, `stage3_block2-11` the
    Block35 modules, `stage4_block1` Mixed_6a, `stage4_block2-21` Block17,
    `stage5_block1` Mixed_7a, `stage5_block2-11` Block8 (block 11 has no
    ReLU) and `stage5_block12` timm's `conv2d_7b`. In a module, `b{i}_conv`
    is branch i's single convolution and `b{i}_conv{j}` the j-th module of
    branch i (timm's `branch{i}.{j-1}`); `conv` is the up-projection.

    Args:
        attention: `"se"` or None (the plain twin).
        include_top, input_tensor, input_shape, pooling, classes,
            classifier_activation: as in `keras.applications.InceptionResNetV2`
            (default input 299x299, at least 75x75).
        reduction, se_bias, se_gate, se_divisor: SE options, as in
            `keras_se.models.resnet.resnet_graph`.
        se_stages: stages (3-5) whose residual modules carry SE; None for all.
        dropout: float, defaults to 0.0 (timm's `drop_rate`).
        features_only: bool, defaults to False. A backbone returning the
            features at `out_indices` (timm's `features_only`;
            `model.pyramid_outputs` names them `"P1"`..`"P5"`); no head,
            and nothing after the last returned feature is built.
        out_indices: feature indices, timm's `feature_info`: 0 `stem_relu2b`
            (timm's `conv2d_2b`, 64 channels, stride 2), 1 `stem_relu4a`
            (`conv2d_4a`, 192, stride 4), 2-4 the outputs of stages 3, 4 and
            5 (`repeat`, `repeat_1`, `conv2d_7b`: 320, 1088, 1536 channels;
            strides 8, 16, 32). The strides are nominal: the unpadded
            convolutions and pools give 147, 71, 35, 17 and 8 pixels at
            299x299 (15, 7, 3 and 1 below 35 at 75x75). Defaults to
            (1, 2, 3, 4).
        flavour: `"keras"` or `"tf_keras"`.

    Example:

    >>> inputs, outputs = inception_resnet_graph(attention="se", input_shape=(75, 75, 3), classes=10)

    Reference:
        - [Szegedy et al., Inception-v4, Inception-ResNet](https://arxiv.org/abs/1602.07261)
        - [Hu et al., Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507)
    """
    fl = spec.fl
    layers = fl.layers
    stages = spec.stages
    se = spec.attention
    features = spec.features

    inputs = spec.inputs

    def conv(x, filters, kernel, name, strides=1, padding="same", bn=None, relu=None):
        x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=name)(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=_common.BN_MOMENTUM, name=bn)(x)
        return layers.ReLU(name=relu)(x)

    def stem(x, filters, kernel, tag, **kwargs):
        return conv(x, filters, kernel, f"stem_conv{tag}", bn=f"stem_bn{tag}", relu=f"stem_relu{tag}", **kwargs)

    x = stem(inputs, 32, 3, "1a", strides=2, padding="valid")
    x = stem(x, 32, 3, "2a", padding="valid")
    x = stem(x, 64, 3, "2b")
    if features.done(x):
        return features.head(fl, inputs)
    x = layers.MaxPooling2D(3, strides=2, name="stem_pool3a")(x)
    x = stem(x, 80, 1, "3b")
    x = stem(x, 192, 3, "4a", padding="valid")
    if features.done(x):
        return features.head(fl, inputs)
    x = layers.MaxPooling2D(3, strides=2, name="stem_pool5a")(x)

    def branch(x, prefix, specs):
        """One branch: `specs` [(filters, kernel, strides, padding)], a Sequential when longer than one."""
        for j, (filters, kernel, strides, padding) in enumerate(specs, start=1):
            role = f"{prefix}_conv{j}" if len(specs) > 1 else f"{prefix}_conv"
            x = conv(x, filters, kernel, role, strides, padding, bn=role.replace("_conv", "_bn"), relu=role.replace("_conv", "_relu"))
        return x

    def s1(filters, kernel=1):
        return (filters, kernel, 1, "same")

    def s2(filters):
        return (filters, 3, 2, "valid")

    # Mixed_5b
    p = "stage3_block1"
    pooled = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{p}_b3_pool")(x)
    x = layers.Concatenate(name=f"{p}_concat")(
        [
            branch(x, f"{p}_b0", [s1(96)]),
            branch(x, f"{p}_b1", [s1(48), s1(64, 5)]),
            branch(x, f"{p}_b2", [s1(64), s1(96, 3), s1(96, 3)]),
            # timm's branch3 is Sequential(AvgPool2d, BasicConv2d): its conv is module 2.
            conv(pooled, 64, 1, f"{p}_b3_conv2", bn=f"{p}_b3_bn2", relu=f"{p}_b3_relu2"),
        ]
    )
    residual = {
        3: [[s1(32)], [s1(32), s1(32, 3)], [s1(32), s1(48, 3), s1(64, 3)]],
        4: [[s1(192)], [s1(128), s1(160, (1, 7)), s1(192, (7, 1))]],
        5: [[s1(192)], [s1(192), s1(224, (1, 3)), s1(256, (3, 1))]],
    }

    def residual_block(x, stage, b, scale, relu=True):
        p = f"stage{stage}_block{b}"
        y = layers.Concatenate(name=f"{p}_concat")([branch(x, f"{p}_b{i}", specs) for i, specs in enumerate(residual[stage])])
        y = layers.Conv2D(x.shape[-1], 1, name=f"{p}_conv")(y)
        if se is not None and stage in stages:
            y = se(layers, y, p)
        if scale != 1.0:
            y = layers.Rescaling(scale, name=f"{p}_residual_scale")(y)
        x = layers.Add(name=f"{p}_add")([x, y])
        return layers.ReLU(name=f"{p}_out")(x) if relu else x

    for b in range(2, REPEATS[3] + 2):
        x = residual_block(x, 3, b, SCALES[3])
    if features.done(x):
        return features.head(fl, inputs)
    # Mixed_6a
    p = "stage4_block1"
    x = layers.Concatenate(name=f"{p}_concat")(
        [
            branch(x, f"{p}_b0", [s2(384)]),
            branch(x, f"{p}_b1", [s1(256), s1(256, 3), s2(384)]),
            layers.MaxPooling2D(3, strides=2, name=f"{p}_b2_pool")(x),
        ]
    )
    for b in range(2, REPEATS[4] + 2):
        x = residual_block(x, 4, b, SCALES[4])
    if features.done(x):
        return features.head(fl, inputs)
    # Mixed_7a
    p = "stage5_block1"
    x = layers.Concatenate(name=f"{p}_concat")(
        [
            branch(x, f"{p}_b0", [s1(256), s2(384)]),
            branch(x, f"{p}_b1", [s1(256), s2(288)]),
            branch(x, f"{p}_b2", [s1(256), s1(288, 3), s2(320)]),
            layers.MaxPooling2D(3, strides=2, name=f"{p}_b3_pool")(x),
        ]
    )
    for b in range(2, REPEATS[5] + 1):
        x = residual_block(x, 5, b, SCALES[5])
    x = residual_block(x, 5, REPEATS[5] + 1, 1.0, relu=False)
    x = conv(
        x, 1536, 1, f"stage5_block{REPEATS[5] + 2}_conv", bn=f"stage5_block{REPEATS[5] + 2}_bn", relu=f"stage5_block{REPEATS[5] + 2}_relu"
    )
    if features.done(x):
        return features.head(fl, inputs)
    return spec.head(x)


class InceptionResNetModel(SEModel, graph=inception_resnet_graph, default_name="inception_resnet_v2"):
    """SE-Inception-ResNet-v2 and Inception-ResNet-v2; the arguments are those of `inception_resnet_graph`.

    Example:

    >>> model = InceptionResNetModel(attention="se", input_shape=(75, 75, 3), classes=10)
    """


# timm has no SE variant: the plain twin has timm's port of TensorFlow's release (inputs on [-1, 1]).
TIMM_PRESETS = {
    "inception_resnet_v2": Preset(
        "inception_resnet_v2", {}, Release("tf_in1k", crop_pct=0.8975, size=299, mean=INCEPTION_MEAN, std=INCEPTION_STD)
    )
}
register_twins(
    "inception_resnet_v2",
    "se_inception_resnet_v2",
    InceptionResNetModel,
    {},
    "inception_resnet",
    papers=("Inception-ResNet-v2", "SE-Inception-ResNet-v2"),
    imagenet=("timm:inception_resnet_v2", None),
)
register_presets("timm", TIMM_PRESETS)
