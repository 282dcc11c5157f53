"""SE-VGG-16: VGG-16 with batch norm and an SE block after every convolution."""

from keras_se.layers._utils import BN_EPSILON, BN_MOMENTUM
from keras_se.models import _common
from keras_se.models.base import SEModel
from keras_se.models.registry import Preset, Release, register_presets, register_twins

# VGG-16 (configuration D): the widths of the 3x3 convolutions of each
# stage; a 2x2 max pool ends each stage. Stage s works at 1/2^s of the input.
VGG16 = ((64, 64), (128, 128), (256,) * 3, (512,) * 3, (512,) * 3)
STAGES = (0, 1, 2, 3, 4)
# timm's ConvMlp: a 7x7 "fc1" convolution over the last feature map.
HEAD_KERNEL = 7
HEAD_WIDTH = 4096


@_common.builder(STAGES)
def vgg_graph(spec):
    """The graph of VGG-16 with batch norm, with SE (`attention="se"`) or plain (None): `(inputs, outputs)`.

    Each convolution is 3x3 conv (with bias) -> BN -> ReLU, and SE sits after
    the ReLU of every convolution (the SENet paper's integration for VGG-16,
    Table 2: "we add Batch Normalization layers after each convolution").
    Convolutions are grouped in stages by resolution: stage s (0-4) works at
    1/2^s of the input and ends with a 2x2 max pool (`stage{s}_pool`).

    The top computes exactly timm's `vgg16_bn` (138,365,992 parameters),
    which is not keras.applications' Flatten + three Dense layers: timm's
    `ConvMlp` pre-logits head is a 7x7 convolution with bias (`fc1`, 4096)
    -> ReLU -> dropout -> 1x1 convolution with bias (`fc2`, 4096) -> ReLU,
    then global average pooling -> dropout -> the classifier. At 224x224 the
    7x7 convolution sees one 7x7 map, so it is the same function (and the same
    weights) as torchvision's first FC; at larger inputs it slides and the
    pooling averages. Below 224x224 timm first resizes the feature map to
    7x7 with an adaptive average pool; so does this graph (`pre_logits_pool`,
    slices and 2x1 averages, exact for any size). `include_top=False` returns the
    last max pool's output (`pooling` as in keras.applications).

    Args:
        attention: `"se"` or None (the plain twin).
        include_top, input_tensor, input_shape, pooling, classes,
            classifier_activation: as in `keras.applications.VGG16`.
        reduction, se_bias, se_gate, se_divisor: SE options, as in
            `keras_se.models.resnet.resnet_graph`.
        se_stages: stages (0-4) whose convolutions carry SE; None for all.
        dropout: float, defaults to 0.0 (timm's `drop_rate`). Dropout after
            `fc1` and before the classifier.
        features_only: bool, defaults to False. A backbone returning the
            features at `out_indices` (timm's `features_only`;
            `model.pyramid_outputs` names them `"P1"`..`"P5"`); no head,
            and nothing after the last returned feature is built.
        out_indices: feature indices: 0-3 the outputs of stages 1-4 before
            their max pool (after the last convolution's ReLU, or its SE;
            128, 256, 512, 512 channels; strides 2 to 16), 4 the last max
            pool's output (`stage4_pool`, 512 channels, stride 32). These are
            timm's vgg16_bn `feature_info` entries 1-5; its entry 0, stage
            0 at stride 1 (64 channels), has no index here. Defaults to
            (1, 2, 3, 4).
        flavour: `"keras"` or `"tf_keras"`.

    Example:

    >>> inputs, outputs = vgg_graph(attention="se", input_shape=(32, 32, 3), classes=10)

    Reference:
        - [Simonyan and Zisserman, Very Deep Convolutional Networks](https://arxiv.org/abs/1409.1556)
        - [Hu et al., Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507)
    """
    fl, layers, features = spec.fl, spec.fl.layers, spec.features
    x = inputs = spec.inputs
    for stage, widths in zip(STAGES, VGG16):
        for b, filters in enumerate(widths, start=1):
            prefix = f"stage{stage}_block{b}"
            x = layers.Conv2D(filters, 3, padding="same", name=f"{prefix}_conv")(x)
            x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{prefix}_bn")(x)
            x = layers.ReLU(name=f"{prefix}_relu")(x)
            if spec.attention_at(stage) is not None:
                x = spec.attention(layers, x, prefix)
        if stage > 0:  # stage 0 works at stride 1, below feature 0
            if features.done(x):
                return features.head(fl, inputs)
        x = layers.MaxPooling2D(2, strides=2, name=f"stage{stage}_pool")(x)
    if features.done(x):  # the last feature
        return features.head(fl, inputs)
    if not spec.include_top:
        return spec.head(x)
    x = _adaptive_pool_up(layers, x, HEAD_KERNEL, "pre_logits_pool")
    x = layers.Conv2D(HEAD_WIDTH, HEAD_KERNEL, name="pre_logits_fc1")(x)
    x = layers.ReLU(name="pre_logits_relu1")(x)
    if spec.dropout:
        x = layers.Dropout(spec.dropout, name="pre_logits_dropout")(x)
    x = layers.Conv2D(HEAD_WIDTH, 1, name="pre_logits_fc2")(x)
    x = layers.ReLU(name="pre_logits_relu2")(x)
    return spec.head(x)


def adaptive_bins(size, out):
    """PyTorch `adaptive_avg_pool2d` bins along one axis: [(start, end)] for `out` outputs."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def _adaptive_pool_up(layers, x, size, name):
    """timm's `ConvMlp` resize: adaptive average pooling to `size` along an axis shorter than `size`.

    Each output row is one input row or the mean of two neighbours (the
    bins of a smaller input overlap), spelt as crops, 2x1 average pools and a
    concatenation: TFLite builtins that quantise and run on the GPU.
    """
    for axis in (1, 2):
        length = x.shape[axis]
        if length is None or length >= size:
            continue
        pieces, cache = [], {}
        for start, end in adaptive_bins(length, size):
            if (start, end) not in cache:
                crop = ((start, length - end), (0, 0)) if axis == 1 else ((0, 0), (start, length - end))
                y = x if (start, end) == (0, length) else layers.Cropping2D(crop, name=f"{name}{axis}_crop{start}_{end}")(x)
                if end - start == 2:
                    pool = (2, 1) if axis == 1 else (1, 2)
                    y = layers.AveragePooling2D(pool, name=f"{name}{axis}_mean{start}_{end}")(y)
                cache[(start, end)] = y
            pieces.append(cache[(start, end)])
        x = layers.Concatenate(axis=axis, name=f"{name}{axis}")(pieces)
    return x


class VGGModel(SEModel, graph=vgg_graph, default_name="vgg"):
    """SE-VGG-16 and VGG-16 with batch norm; the arguments are those of `vgg_graph`.

    Example:

    >>> model = VGGModel(attention="se", input_shape=(32, 32, 3), classes=10)
    """


# timm has no SE-VGG: the plain twin has timm's weights.
TIMM_PRESETS = {"vgg16_bn": Preset("vgg16_bn", {}, Release("tv_in1k", "bilinear"))}
register_twins("vgg16_bn", "se_vgg16", VGGModel, {}, "vgg", papers=("VGG-16", "SE-VGG-16"), imagenet=("timm:vgg16_bn", None))
register_presets("timm", TIMM_PRESETS)
