"""One registry of model builders: `list_models` and `create_model`."""

import difflib
import fnmatch

from keras_se.layers.namespace import as_flavour
from keras_se.weights import load_weights
from keras_se.weights.pretrained import weights_options

_REGISTRY = {}
# Namespaced aliases ("timm:seresnet50"): a registered model with options.
_ALIASES = {}


class ModelEntry:
    """A registered model: its class, default arguments and plain twin."""

    def __init__(self, name, cls, kwargs, twin, family, paper):
        self.name = name
        self.cls = cls
        self.kwargs = kwargs
        self.twin = twin
        self.family = family
        self.paper = paper

    def __call__(self, weights=None, flavour="keras", **kwargs):
        # Options the weights need (timm's legacy_seresnet18 has a ReLU
        # before SE); a model without such weights is refused before building.
        arguments = {"name": self.name, **self.kwargs, **weights_options(self.name, weights), **kwargs}
        if as_flavour(flavour).name == "tf_keras":
            model = self.cls.tf_keras_model(arguments)
        else:
            model = self.cls(**arguments)
        return load_weights(model, weights, model_name=self.name)


def register(name, cls, defaults, twin=None, family=None, paper=None):
    """Registers `cls(**defaults)` under `name`.

    Args:
        name: str. Registry name (`se_resnet50`), also the model's name.
        cls: a `keras_se.models.base.SEModel` subclass.
        defaults: dict. Default arguments for `cls`.
        twin: str or None. Name of the same architecture without attention.
        family: str. Model family, for listing.
        paper: str or None. The model's name in the paper's tables.
    """
    if name in _REGISTRY:
        raise ValueError(f"Model {name!r} is already registered.")
    _REGISTRY[name] = ModelEntry(name, cls, dict(defaults), twin, family, paper)
    return _REGISTRY[name]


def register_alias(name, target, overrides=None):
    """Registers `name` as the registered model `target` with `overrides`.

    Aliases are namespaced (`"timm:seresnet50"`) and stay out of the plain
    `list_models()` listing.

    Args:
        name: str. `"namespace:model"`.
        target: str. A registered model name.
        overrides: dict or None. Builder arguments replacing the target's
            defaults.
    """
    if not isinstance(name, str) or name.count(":") != 1:
        raise ValueError(f"An alias name must be 'namespace:model'. Received: name={name!r}")
    if name in _ALIASES:
        raise ValueError(f"Alias {name!r} is already registered.")
    base = get_entry(target)
    _ALIASES[name] = ModelEntry(name, base.cls, {**base.kwargs, **(overrides or {})}, None, base.family, None)
    return _ALIASES[name]


def list_models(pattern=None):
    """Names of registered models, sorted; `pattern` is a shell glob (`"se*"`).

    Namespaced aliases are listed by a pattern with a colon:
    `list_models("timm:*")` gives the timm models keras_se reproduces.
    """
    if pattern is not None and not isinstance(pattern, str):
        raise ValueError(f"pattern must be a shell glob string or None. Received: pattern={pattern!r}")
    names = sorted(_REGISTRY)
    if pattern is None:
        return names
    if ":" in pattern:
        names = sorted(_ALIASES)
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def get_entry(name):
    """The `ModelEntry` for `name`; unknown names raise a `ValueError` with suggestions."""
    if isinstance(name, str) and name in _ALIASES:
        return _ALIASES[name]
    if not isinstance(name, str) or name not in _REGISTRY:
        known = list(_ALIASES) if ":" in str(name) else list(_REGISTRY)
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        listing = f"list_models({str(name).split(':')[0] + ':*'!r})" if ":" in str(name) else "list_models()"
        raise ValueError(f"Unknown model name. Received: name={name!r}.{hint} See keras_se.{listing} for all {len(known)} names.")
    return _REGISTRY[name]


def create_model(name, weights=None, flavour="keras", **kwargs):
    """Builds a registered model.

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
    return get_entry(name)(weights=weights, flavour=flavour, **kwargs)
