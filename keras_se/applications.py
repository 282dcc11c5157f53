"""The front door: `create_model` and keras.applications-style constructors for every keras_se model.

`weights=` is dispatched here: the registry (`keras_se.models`) builds the
architecture, `keras_se.weights.load_weights` loads the weights into it.

Each constructor is `create_model(name, **kwargs)`: `weights` and the arguments of the
family's graph function (`keras_se.models.resnet.resnet_graph`,
`...mobilenet.mobilenet_graph`, `...shufflenet.shufflenet_graph`):
`include_top`, `input_tensor`,
`input_shape`, `pooling`, `classes`, `classifier_activation`, the SE options
(`reduction`, `se_bias`, `se_gate`, `se_stages`, `se_position`, ...) and
`flavour="tf_keras"` for quantisation-aware training.
"""

from keras_se.layers._utils import check_choice
from keras_se.models import get_entry
from keras_se.models.shufflenet import STAGE2_CHANNELS
from keras_se.weights import load_weights
from keras_se.weights.pretrained import weights_options


def create_model(name, weights=None, flavour="keras", **kwargs):
    """Builds a registered model and loads its weights.

    Args:
        name: str. A name from `list_models()`, e.g. `"se_resnet50"`, or
            an alias from `list_models("timm:*")`, e.g.
            `"timm:legacy_seresnet50"`: the configuration that reproduces
            that timm model, whose checkpoint `weights=` then loads.
        weights: None; `"imagenet"` (the model's ImageNet release on the
            Hugging Face Hub, see `keras_se.weights.pretrained_weights()`);
            `"hf://timm/<name>.<tag>"`; or a weights file: a `.keras` /
            `.weights.h5` file saved from the same model, or a timm
            checkpoint (`.safetensors`, `.pth`); see
            `keras_se.weights.load_weights`.
        flavour: `"keras"` (default), or `"tf_keras"` for the same model
            in tf_keras (for tfmot).
        **kwargs: architecture arguments (`input_shape`, `classes`,
            `reduction`, ...), overriding the registered defaults.

    Returns:
        A keras_se model (a `keras.Model` subclass whose `get_config()`
        holds its architecture), or a tf_keras model with
        `flavour="tf_keras"`.

    Example:

    >>> model = keras_se.create_model("se_resnet50", input_shape=(128, 128, 3))
    >>> model = keras_se.create_model("timm:seresnet50", weights="seresnet50.safetensors")
    >>> model = keras_se.create_model("se_resnet50", weights="imagenet", include_top=False)
    """
    entry = get_entry(name)
    # Options the weights need (timm's legacy_seresnet18 has a ReLU before
    # SE); a model without such weights is refused before building.
    model = entry(flavour=flavour, **{**weights_options(entry.name, weights), **kwargs})
    return load_weights(model, weights, model_name=entry.name)


def ResNet18(**kwargs):
    """ResNet-18, the plain twin of SE-ResNet-18.

    Example:

    >>> model = keras_se.ResNet18(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("resnet18", **kwargs)


def ResNet34(**kwargs):
    """ResNet-34, the plain twin of SE-ResNet-34.

    Example:

    >>> model = keras_se.ResNet34(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("resnet34", **kwargs)


def ResNet50(**kwargs):
    """ResNet-50 (stride on the first 1x1, as keras.applications), the plain twin of SE-ResNet-50.

    Example:

    >>> model = keras_se.ResNet50(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("resnet50", **kwargs)


def ResNet101(**kwargs):
    """ResNet-101, the plain twin of SE-ResNet-101.

    Example:

    >>> model = keras_se.ResNet101(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("resnet101", **kwargs)


def ResNet152(**kwargs):
    """ResNet-152, the plain twin of SE-ResNet-152.

    Example:

    >>> model = keras_se.ResNet152(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("resnet152", **kwargs)


def SEResNet18(**kwargs):
    """SE-ResNet-18 (11.8 M parameters).

    Example:

    >>> model = keras_se.SEResNet18(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("se_resnet18", **kwargs)


def SEResNet34(**kwargs):
    """SE-ResNet-34 (22.0 M parameters).

    Example:

    >>> model = keras_se.SEResNet34(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("se_resnet34", **kwargs)


def SEResNet50(**kwargs):
    """SE-ResNet-50 (28.1 M parameters, 3.87 GMACs): the SENet paper's Table 2 model.

    Example:

    >>> model = keras_se.SEResNet50(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("se_resnet50", **kwargs)


def SEResNet101(**kwargs):
    """SE-ResNet-101 (49.3 M parameters).

    Example:

    >>> model = keras_se.SEResNet101(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("se_resnet101", **kwargs)


def SEResNet152(**kwargs):
    """SE-ResNet-152 (66.8 M parameters).

    Example:

    >>> model = keras_se.SEResNet152(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("se_resnet152", **kwargs)


def ResNeXt50(**kwargs):
    """ResNeXt-50 (32x4d), the plain twin of SE-ResNeXt-50.

    Example:

    >>> model = keras_se.ResNeXt50(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("resnext50_32x4d", **kwargs)


def ResNeXt101(**kwargs):
    """ResNeXt-101 (32x4d), the plain twin of SE-ResNeXt-101.

    Example:

    >>> model = keras_se.ResNeXt101(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("resnext101_32x4d", **kwargs)


def SEResNeXt50(**kwargs):
    """SE-ResNeXt-50 (32x4d) (27.6 M parameters).

    Example:

    >>> model = keras_se.SEResNeXt50(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("se_resnext50_32x4d", **kwargs)


def SEResNeXt101(**kwargs):
    """SE-ResNeXt-101 (32x4d) (49.0 M parameters).

    Example:

    >>> model = keras_se.SEResNeXt101(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("se_resnext101_32x4d", **kwargs)


def SENet154(**kwargs):
    """SENet-154 (115.1 M parameters): 64-group SE-ResNeXt with a deep stem and 3x3 projections.

    Example:

    >>> model = keras_se.SENet154(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("senet154", **kwargs)


def SKNet50(**kwargs):
    """SKNet-50 (27.5 M parameters): ResNeXt-50 32x4d with SK[2, 32, 16] units.

    Example:

    >>> model = keras_se.SKNet50(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("sknet50", **kwargs)


def SKNet101(**kwargs):
    """SKNet-101: SKNet-50's unit in a [3, 4, 23, 3] network. 48,736,040 parameters,
    0.3 % under the paper's 48.9 M: the unit of timm's skresnext50_32x4d (which
    matches the official SKNet-50 exactly) repeated, with d = max(W/16, 32).

    Example:

    >>> model = keras_se.SKNet101(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("sknet101", **kwargs)


def MobileNet(**kwargs):
    """MobileNet v1 (`alpha` width multiplier), the plain twin of SE-MobileNet.

    Example:

    >>> model = keras_se.MobileNet(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("mobilenet", **kwargs)


def SEMobileNet(**kwargs):
    """SE-MobileNet (4.7 M parameters, 572 M MACs at alpha=1).

    Example:

    >>> model = keras_se.SEMobileNet(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("se_mobilenet", **kwargs)


def MobileNetV3Large(minimalistic=False, **kwargs):
    """MobileNetV3-Large (5.5 M parameters; `alpha` width multiplier), with SE as in the paper.

    As keras.applications' `MobileNetV3Large`, `minimalistic=True` gives the
    variant without SE or hard-swish, with 3x3 kernels (built as the plain
    twin `mobilenetv3_large_plain`). The plain twin with MobileNetV3's
    activations is `keras_se.create_model("mobilenetv3_large_plain")`.

    Example:

    >>> model = keras_se.MobileNetV3Large(input_shape=(224, 224, 3), classes=1000)
    """
    return _mobilenet_v3("large", minimalistic, kwargs)


def MobileNetV3Small(minimalistic=False, **kwargs):
    """MobileNetV3-Small (2.5 M parameters; `alpha` width multiplier), with SE as in the paper.

    Arguments as `MobileNetV3Large`.

    Example:

    >>> model = keras_se.MobileNetV3Small(input_shape=(224, 224, 3), classes=1000)
    """
    return _mobilenet_v3("small", minimalistic, kwargs)


def _mobilenet_v3(variant, minimalistic, kwargs):
    name = f"mobilenetv3_{variant}_plain" if minimalistic is True else f"mobilenetv3_{variant}"
    return create_model(name, minimalistic=minimalistic, **kwargs)


def ShuffleNet(groups=3, **kwargs):
    """ShuffleNet v1 (`groups` 1/2/3/4/8, `scale` 0.5/1/1.5/2), the plain twin of SE-ShuffleNet.

    Example:

    >>> model = keras_se.ShuffleNet(groups=3, scale=1.0)
    """
    check_choice("groups", groups, tuple(STAGE2_CHANNELS))
    return create_model(f"shufflenet_g{groups}", **kwargs)


def SEShuffleNet(groups=3, **kwargs):
    """SE-ShuffleNet v1 (2.5 M parameters at 1x, g=3).

    Example:

    >>> model = keras_se.SEShuffleNet(groups=3, scale=1.0)
    """
    check_choice("groups", groups, tuple(STAGE2_CHANNELS))
    return create_model(f"se_shufflenet_g{groups}", **kwargs)


def VGG16BN(**kwargs):
    """VGG-16 with batch norm: timm's `vgg16_bn` (138.4 M parameters), the plain twin of SE-VGG-16.

    Example:

    >>> model = keras_se.VGG16BN(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("vgg16_bn", **kwargs)


def SEVGG16(**kwargs):
    """SE-VGG-16: SE after every convolution of VGG-16 with batch norm (15.48 GMACs).

    Example:

    >>> model = keras_se.SEVGG16(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("se_vgg16", **kwargs)


def BNInception(**kwargs):
    """BN-Inception (11.3 M parameters), the plain twin of SE-BN-Inception.

    Example:

    >>> model = keras_se.BNInception(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("bn_inception", **kwargs)


def SEBNInception(**kwargs):
    """SE-BN-Inception (11.9 M parameters, official prototxt): SE on every Inception module's output.

    Example:

    >>> model = keras_se.SEBNInception(input_shape=(224, 224, 3), classes=1000)
    """
    return create_model("se_bn_inception", **kwargs)


def InceptionResNetV2(**kwargs):
    """Inception-ResNet-v2: timm's `inception_resnet_v2` (55.8 M parameters), the plain twin of SE-Inception-ResNet-v2.

    Example:

    >>> model = keras_se.InceptionResNetV2(input_shape=(299, 299, 3), classes=1000)
    """
    return create_model("inception_resnet_v2", **kwargs)


def SEInceptionResNetV2(**kwargs):
    """SE-Inception-ResNet-v2 (64.4 M parameters): SE on each residual branch, before the scaling and the add.

    Example:

    >>> model = keras_se.SEInceptionResNetV2(input_shape=(299, 299, 3), classes=1000)
    """
    return create_model("se_inception_resnet_v2", **kwargs)
