"""keras_se: Squeeze-and-Excitation and Selective-Kernel networks for Keras 3,
built to ship to phones.

>>> import keras_se
>>> model = keras_se.SEResNet50()
>>> keras_se.list_models("se*")[:3]
"""

__version__ = "0.1.0"

import importlib
import os
import sys

# Attributes are imported on first use; the classes `keras.saving.load_model`
# needs are registered at import (below).
_LAZY = {
    "layers": ("keras_se.layers", None),
    "models": ("keras_se.models", None),
    "analysis": ("keras_se.analysis", None),
    "weights": ("keras_se.weights", None),
    "create_model": ("keras_se.models.registry", "create_model"),
    "list_models": ("keras_se.models.registry", "list_models"),
    "MobileNet": ("keras_se.models.applications", "MobileNet"),
    "MobileNetV3Large": ("keras_se.models.applications", "MobileNetV3Large"),
    "MobileNetV3Small": ("keras_se.models.applications", "MobileNetV3Small"),
    "ResNeXt101": ("keras_se.models.applications", "ResNeXt101"),
    "ResNeXt50": ("keras_se.models.applications", "ResNeXt50"),
    "ResNet101": ("keras_se.models.applications", "ResNet101"),
    "ResNet152": ("keras_se.models.applications", "ResNet152"),
    "ResNet18": ("keras_se.models.applications", "ResNet18"),
    "ResNet34": ("keras_se.models.applications", "ResNet34"),
    "ResNet50": ("keras_se.models.applications", "ResNet50"),
    "SEMobileNet": ("keras_se.models.applications", "SEMobileNet"),
    "SENet154": ("keras_se.models.applications", "SENet154"),
    "SEResNeXt101": ("keras_se.models.applications", "SEResNeXt101"),
    "SEResNeXt50": ("keras_se.models.applications", "SEResNeXt50"),
    "SEResNet101": ("keras_se.models.applications", "SEResNet101"),
    "SEResNet152": ("keras_se.models.applications", "SEResNet152"),
    "SEResNet18": ("keras_se.models.applications", "SEResNet18"),
    "SEResNet34": ("keras_se.models.applications", "SEResNet34"),
    "SEResNet50": ("keras_se.models.applications", "SEResNet50"),
    "SEShuffleNet": ("keras_se.models.applications", "SEShuffleNet"),
    "SKNet101": ("keras_se.models.applications", "SKNet101"),
    "SKNet50": ("keras_se.models.applications", "SKNet50"),
    "ShuffleNet": ("keras_se.models.applications", "ShuffleNet"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_se' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    if module_name == "keras_se.models.registry":
        importlib.import_module("keras_se.models")  # registers every builder
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def _register_serializable():
    """Imports the layers and models, registering every serialisable class with Keras."""
    importlib.import_module("keras_se.layers")
    importlib.import_module("keras_se.models")


# `import keras_se` is enough for `keras.saving.load_model` to rebuild any
# saved keras_se model or layer. The `keras-se` command is the exception: it
# imports TensorFlow itself, quietly and interruptibly, and only for the
# commands that need it (`--help` stays instant).
if os.path.basename((getattr(sys, "argv", None) or [""])[0]) != "keras-se":
    _register_serializable()


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["__version__"] + sorted(_LAZY)
