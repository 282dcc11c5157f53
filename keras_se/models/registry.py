"""One registry of model builders: `list_models` and `create_model`."""

import difflib
import fnmatch

_REGISTRY = {}


class ModelEntry:
    """A registered model: its builder, default arguments and plain twin."""

    def __init__(self, name, builder, kwargs, twin, family, paper):
        self.name = name
        self.builder = builder
        self.kwargs = kwargs
        self.twin = twin
        self.family = family
        self.paper = paper

    def __call__(self, **kwargs):
        return self.builder(**{**self.kwargs, **kwargs})


def register(name, builder, defaults, twin=None, family=None, paper=None):
    """Registers `builder(**defaults)` under `name`.

    Args:
        name: str. Registry name (`se_resnet50`).
        builder: callable returning a model.
        defaults: dict. Default arguments for `builder`.
        twin: str or None. Name of the same architecture without attention.
        family: str. Model family, for listing.
        paper: str or None. The model's name in the paper's tables.
    """
    if name in _REGISTRY:
        raise ValueError(f"Model {name!r} is already registered.")
    _REGISTRY[name] = ModelEntry(name, builder, dict(defaults), twin, family, paper)
    return _REGISTRY[name]


def list_models(pattern=None):
    """Names of registered models, sorted; `pattern` is a shell glob (`"se*"`)."""
    names = sorted(_REGISTRY)
    if pattern is None:
        return names
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def get_entry(name):
    """The `ModelEntry` for `name`; unknown names raise a `ValueError` with suggestions."""
    if not isinstance(name, str) or name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown model name. Received: name={name!r}.{hint} "
            f"See keras_se.list_models() for all {len(_REGISTRY)} names."
        )
    return _REGISTRY[name]


def create_model(name, **kwargs):
    """Builds a registered model.

    Args:
        name: str. A name from `list_models()`, e.g. `"se_resnet50"`.
        **kwargs: builder arguments (`input_shape`, `classes`, `weights`,
            `reduction`, ...), overriding the registered defaults.

    Returns:
        A `keras.Model` (or a tf_keras model with `flavour="tf_keras"`).

    Example:

    >>> model = keras_se.create_model("se_resnet50", input_shape=(128, 128, 3))
    """
    return get_entry(name)(**kwargs)
