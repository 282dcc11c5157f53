"""The timm models keras_se reproduces, and the timm naming scheme of a keras_se model.

The models and their releases are the families' presets tables
(`TIMM_PRESETS` in `keras_se.models.resnet`, `.mobilenet_v3`, `.vgg`,
`.inception_resnet`), registered as `timm:NAME` aliases; the scheme that
names a model's tensors is read from the model's class and config.
"""

from keras_se.models import get_entry, presets
from keras_se.models.inception_resnet import InceptionResNetModel
from keras_se.models.mobilenet_v3 import MobileNetV3Model
from keras_se.models.resnet import ResNetModel
from keras_se.models.vgg import VGGModel


def timm_models():
    """Names of the timm models keras_se reproduces (`create_model("timm:NAME")`)."""
    return sorted(presets("timm"))


def timm_scheme(timm_name):
    """The naming scheme of a timm model keras_se reproduces.

    Example:

    >>> timm_scheme("legacy_seresnet50")
    'legacy'
    """
    if timm_name not in presets("timm"):
        raise ValueError(f"timm_name must be one of timm_models(). Received: timm_name={timm_name!r}")
    entry = get_entry(f"timm:{timm_name}")
    return scheme_of_config(entry.cls, entry.cls.architecture(**{k: v for k, v in entry.kwargs.items() if k != "name"}))


def scheme_of_config(cls, config):
    """The timm naming scheme a keras_se model's architecture follows, or None.

    Residual models: SK models follow timm's sknet.py (basic blocks at
    depth 18 and 34); the others follow senet.py with Caffe's ceil-mode stem
    pool, resnet.py with a padded one, and resnet.py's -D / -T naming with
    average-pool shortcuts. VGG, Inception-ResNet and MobileNetV3 models
    follow timm's vgg.py, inception_resnet_v2.py and mobilenetv3.py.

    Args:
        cls: the model's class (a `keras_se.models.base.SEModel` subclass).
        config: `model.get_config()`.
    """
    if issubclass(cls, VGGModel):
        return "vgg"
    if issubclass(cls, InceptionResNetModel):
        return "inception_resnet_v2"
    if issubclass(cls, MobileNetV3Model):
        return f"mobilenetv3_{config['variant']}"
    if not issubclass(cls, ResNetModel):
        return None
    if config["attention"] == "sk":
        return "sknet_basic" if config["depth"] in (18, 34) else "sknet"
    if config.get("avg_down"):
        return "resnet_d"
    return "legacy" if config["stem_pool"] == "ceil" else "resnet"


def scheme_of_model(model):
    """`scheme_of_config` of a built model; None for anything but a keras_se model."""
    if not isinstance(model, (ResNetModel, VGGModel, InceptionResNetModel, MobileNetV3Model)):
        return None
    return scheme_of_config(type(model), model.get_config())
