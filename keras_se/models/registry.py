"""One registry of model architectures: `list_models`, `build_model` and the presets.

The registry knows architectures only. `weights=` is handled at the front
door, `keras_se.create_model` (`keras_se/applications.py`), which builds
through this registry and then loads weights with `keras_se.weights`.

Each family module registers its models (`register`, `register_twins`) and
its presets table (`register_presets`): the timm models it reproduces, each
the registered model with options, and the release `weights="imagenet"`
loads (timm's default pretrained tag and input convention).
"""

import difflib
import fnmatch
from typing import NamedTuple

from keras_se.layers.namespace import as_flavour

_REGISTRY = {}
# Namespaced aliases ("timm:seresnet50"): a registered model with options.
_ALIASES = {}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)  # timm's IMAGENET_INCEPTION_MEAN / _STD: inputs on [-1, 1]
INCEPTION_STD = (0.5, 0.5, 0.5)


class Release(NamedTuple):
    """A published checkpoint: timm's pretrained tag and its input convention (timm's `pretrained_cfg`)."""

    tag: str
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    size: int = 224
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    def input_convention(self):
        """`input_size` (H, W, C), `interpolation`, `crop_pct`, `mean`, `std` (RGB, on [0, 1] inputs), `classes`."""
        return dict(
            input_size=(self.size, self.size, 3),
            interpolation=self.interpolation,
            crop_pct=self.crop_pct,
            mean=self.mean,
            std=self.std,
            classes=1000,
        )


class Preset(NamedTuple):
    """A model of another zoo keras_se reproduces: a registered model with builder options.

    `release` is the default published checkpoint (None: the zoo publishes
    no weights for it).
    """

    model: str
    options: dict
    release: Release = None


class ModelEntry:
    """A registered model: its class, default arguments and plain twin.

    `imagenet` names the preset whose release `weights="imagenet"` loads
    (`"timm:legacy_seresnet50"`); `preset` is the alias's own `Preset`.
    """

    def __init__(self, name, cls, kwargs, twin, family, paper, imagenet=None, preset=None):
        self.name = name
        self.cls = cls
        self.kwargs = kwargs
        self.twin = twin
        self.family = family
        self.paper = paper
        self.imagenet = imagenet
        self.preset = preset

    def __call__(self, flavour="keras", **kwargs):
        """Builds the architecture: the entry's defaults, then `kwargs`; no weights."""
        arguments = {"name": self.name, **self.kwargs, **kwargs}
        fl = as_flavour(flavour)
        if fl.name != "keras":
            return self.cls.in_flavour(arguments, fl)
        return self.cls(**arguments)


def register(name, cls, defaults, twin=None, family=None, paper=None, imagenet=None):
    """Registers `cls(**defaults)` under `name`.

    Args:
        name: str. Registry name (`se_resnet50`), also the model's name.
        cls: a `keras_se.models.base.SEModel` subclass.
        defaults: dict. Default arguments for `cls`.
        twin: str or None. Name of the same architecture without attention.
        family: str. Model family, for listing.
        paper: str or None. The model's name in the paper's tables.
        imagenet: str or None. The preset (`"timm:legacy_seresnet50"`)
            whose release `weights="imagenet"` loads.
    """
    if name in _REGISTRY:
        raise ValueError(f"Model {name!r} is already registered.")
    _REGISTRY[name] = ModelEntry(name, cls, dict(defaults), twin, family, paper, imagenet)
    return _REGISTRY[name]


def register_twins(plain, name, cls, defaults, family, papers=(None, None), imagenet=(None, None)):
    """Registers a model with SE (`name`, `attention="se"`) and its plain twin (`plain`, `attention=None`).

    `papers` and `imagenet` give the plain model's value, then the SE model's.
    """
    register(plain, cls, dict(defaults, attention=None), family=family, paper=papers[0], imagenet=imagenet[0])
    register(name, cls, dict(defaults, attention="se"), twin=plain, family=family, paper=papers[1], imagenet=imagenet[1])


def register_presets(namespace, presets):
    """Registers each preset of a family's table as the alias `namespace:name`.

    Args:
        namespace: str. The zoo (`"timm"`).
        presets: dict from the zoo's model name to its `Preset`.
    """
    for name, preset in presets.items():
        alias = f"{namespace}:{name}"
        register_alias(alias, preset.model, dict(preset.options, name=name), preset=preset, imagenet=alias if preset.release else None)


def presets(namespace="timm"):
    """`{name: Preset}` of every registered preset of `namespace`, sorted by name."""
    prefix = f"{namespace}:"
    return {n[len(prefix) :]: e.preset for n, e in sorted(_ALIASES.items()) if n.startswith(prefix)}


def register_alias(name, target, overrides=None, preset=None, imagenet=None):
    """Registers `name` as the registered model `target` with `overrides`.

    Aliases are namespaced (`"timm:seresnet50"`) and stay out of the plain
    `list_models()` listing.

    Args:
        name: str. `"namespace:model"`.
        target: str. A registered model name.
        overrides: dict or None. Builder arguments replacing the target's
            defaults.
        preset: the alias's `Preset`, where it comes from a presets table.
        imagenet: as for `register`.
    """
    if not isinstance(name, str) or name.count(":") != 1:
        raise ValueError(f"An alias name must be 'namespace:model'. Received: name={name!r}")
    if name in _ALIASES:
        raise ValueError(f"Alias {name!r} is already registered.")
    base = get_entry(target)
    _ALIASES[name] = ModelEntry(name, base.cls, {**base.kwargs, **(overrides or {})}, None, base.family, None, imagenet, preset)
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


def build_model(name, flavour="keras", **kwargs):
    """Builds a registered architecture, without weights: `keras_se.create_model` with `weights=None`.

    The arguments are `keras_se.create_model`'s but `weights`: a name from
    `list_models()` or `list_models("timm:*")`, `flavour` (`"keras"` or
    `"tf_keras"`), and architecture arguments overriding the registered
    defaults. Returns a keras_se model (a tf_keras model with
    `flavour="tf_keras"`).

    Example:

    >>> model = keras_se.models.build_model("se_resnet50", input_shape=(128, 128, 3))
    """
    return get_entry(name)(flavour=flavour, **kwargs)
