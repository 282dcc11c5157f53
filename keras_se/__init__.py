"""keras_se: Squeeze-and-Excitation and Selective-Kernel networks for Keras 3,
built to ship to phones.

>>> import keras_se
>>> model = keras_se.SEResNet50()
>>> keras_se.list_models("se*")[:3]
"""

__version__ = "0.1.0"

import importlib
import importlib.abc
import importlib.util
import sys

# Attributes are imported on first use; the classes `keras.saving.load_model`
# needs are registered once Keras is imported (below).
_LAZY = {
    "layers": ("keras_se.layers", None),
    "models": ("keras_se.models", None),
    "analysis": ("keras_se.analysis", None),
    "weights": ("keras_se.weights", None),
    "export": ("keras_se.export", None),
    "quantization": ("keras_se.quantization", None),
    "training": ("keras_se.training", None),
    "create_model": ("keras_se.applications", "create_model"),
    "decode_predictions": ("keras_se.weights.imagenet", "decode_predictions"),
    "preprocess_input": ("keras_se.weights.imagenet", "preprocess_input"),
    "list_models": ("keras_se.models.registry", "list_models"),
    "MobileNet": ("keras_se.applications", "MobileNet"),
    "MobileNetV3Large": ("keras_se.applications", "MobileNetV3Large"),
    "MobileNetV3Small": ("keras_se.applications", "MobileNetV3Small"),
    "ResNeXt101": ("keras_se.applications", "ResNeXt101"),
    "ResNeXt50": ("keras_se.applications", "ResNeXt50"),
    "ResNet101": ("keras_se.applications", "ResNet101"),
    "ResNet152": ("keras_se.applications", "ResNet152"),
    "ResNet18": ("keras_se.applications", "ResNet18"),
    "ResNet34": ("keras_se.applications", "ResNet34"),
    "ResNet50": ("keras_se.applications", "ResNet50"),
    "SEMobileNet": ("keras_se.applications", "SEMobileNet"),
    "SENet154": ("keras_se.applications", "SENet154"),
    "SEResNeXt101": ("keras_se.applications", "SEResNeXt101"),
    "SEResNeXt50": ("keras_se.applications", "SEResNeXt50"),
    "SEResNet101": ("keras_se.applications", "SEResNet101"),
    "SEResNet152": ("keras_se.applications", "SEResNet152"),
    "SEResNet18": ("keras_se.applications", "SEResNet18"),
    "SEResNet34": ("keras_se.applications", "SEResNet34"),
    "SEResNet50": ("keras_se.applications", "SEResNet50"),
    "SEShuffleNet": ("keras_se.applications", "SEShuffleNet"),
    "SKNet101": ("keras_se.applications", "SKNet101"),
    "SKNet50": ("keras_se.applications", "SKNet50"),
    "ShuffleNet": ("keras_se.applications", "ShuffleNet"),
    "BNInception": ("keras_se.applications", "BNInception"),
    "InceptionResNetV2": ("keras_se.applications", "InceptionResNetV2"),
    "SEBNInception": ("keras_se.applications", "SEBNInception"),
    "SEInceptionResNetV2": ("keras_se.applications", "SEInceptionResNetV2"),
    "SEVGG16": ("keras_se.applications", "SEVGG16"),
    "VGG16BN": ("keras_se.applications", "VGG16BN"),
}

# The extra each subpackage needs beyond the core install, named when an
# optional package is missing.
_EXTRAS = {"export": "export", "quantization": "qat", "training": "train"}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_se' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    if module_name == "keras_se.models.registry":
        importlib.import_module("keras_se.models")  # registers every builder
    from keras_se.errors import naming_the_extra

    with naming_the_extra(f"keras_se.{name}", _EXTRAS.get(name)):
        module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def _initialising(name):
    """True while module `name` is being imported (its body has not finished)."""
    module = sys.modules.get(name)
    return module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False)


def _register_serializable():
    """Imports the layers and models, registering every serialisable class with Keras."""
    if _initialising("keras_se.layers"):
        return  # it imported Keras; its last step calls `_register_models`
    importlib.import_module("keras_se.layers")
    _register_models()


def _register_models():
    """Imports the models (registering them), unless they are being imported right now; registers the tf_keras flavour."""
    importlib.import_module("keras_se.layers.namespace").register_flavour("tf_keras", _tf_keras_flavour)
    if not _initialising("keras_se.models"):  # else they finish, and register, on their own
        importlib.import_module("keras_se.models")


def _tf_keras_flavour():
    # The package wires the quantisation code's tf_keras flavour into the
    # layers, which sit below it and never import it.
    from keras_se.quantization.flavour import tf_keras_flavour

    return tf_keras_flavour()


class _RegisterWhenKerasLoads(importlib.abc.MetaPathFinder):
    """Registers keras_se's classes as soon as `keras` has been imported.

    `import keras_se` is enough for `keras.saving.load_model` to rebuild any
    saved keras_se model or layer, whichever of the two is imported first;
    yet `import keras_se` alone does not import Keras and TensorFlow (seconds
    of start-up that `keras-se --help`, or a process using only
    `keras_se.io_utils`, should not pay). Python has no post-import hook:
    this finder wraps the loader of the `keras` module, and removes itself
    once Keras has really been loaded. A look-up that loads nothing
    (`importlib.util.find_spec("keras")`, which `import tensorflow` does)
    leaves it in place.
    """

    def __init__(self):
        self.finding = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras" or self.finding:
            return None
        self.finding = True  # the look-up below asks the finders again
        try:
            spec = importlib.util.find_spec("keras")
        finally:
            self.finding = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load = spec.loader.exec_module
        finder = self

        def exec_module(module):
            load(module)
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)
            _register_serializable()

        spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    _register_serializable()
else:
    sys.meta_path.insert(0, _RegisterWhenKerasLoads())


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["__version__"] + sorted(_LAZY)
