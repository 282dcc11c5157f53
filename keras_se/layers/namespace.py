"""One model description, two Kerases.

Every keras_se builder creates its layers through a `Flavour`: the layer
classes, `Input` and `Model` of one Keras. `flavour("keras")` gives Keras 3
with the keras_se primitives; `flavour("tf_keras")` gives the tf_keras twin
that only quantisation-aware training needs (tfmot quantises only tf_keras
models), made in `keras_se.quantization.flavour` and registered here by the
package (`register_flavour`), so that nothing here imports the layers above.
"""

import functools

import keras

from keras_se.layers import primitives

FLAVOURS = ("keras", "tf_keras")


def _builtin_hard_swish(name=None, **kwargs):
    """Hard-swish in Keras 3: `Activation("hard_swish")`, one HARD_SWISH op in TFLite."""
    return keras.layers.Activation("hard_swish", name=name, **kwargs)


class _Layers:
    """`module.layers` plus the keras_se primitives made for that module."""

    def __init__(self, base, custom):
        self._base = base
        self.__dict__.update(custom)

    def __getattr__(self, name):
        return getattr(self._base, name)


class Flavour:
    """The layer classes, `Input` and `Model` of one Keras.

    `attention`: attention kinds this flavour spells itself, each a function
    `(layers, x, name, **options)` (tf_keras: ECA and CBAM as standard
    layers); any other kind is its registered layer.
    """

    def __init__(self, name, module, custom, attention=None):
        self.name = name
        self.module = module
        self.attention = dict(attention or {})
        self.layers = _Layers(module.layers, custom)
        self.Input = module.Input
        self.Model = module.Model

    def __repr__(self):
        return f"Flavour({self.name!r})"


@functools.cache
def _keras_flavour():
    custom = {n: getattr(primitives, n) for n in ("GroupConv2D", "ChannelShuffle", "ChannelSlice", "KernelSelect")}
    return Flavour("keras", keras, {**custom, "HardSwish": _builtin_hard_swish})


# Flavours made elsewhere, by name: the package registers "tf_keras" (made
# by keras_se.quantization.flavour, which only quantisation-aware training
# needs) once Keras is imported.
_PROVIDERS = {}


def register_flavour(name, make):
    """Makes `flavour(name)` return `make()`, a `Flavour`."""
    _PROVIDERS[name] = make


def flavour(name="keras"):
    """Returns the `Flavour` for `"keras"` (Keras 3) or `"tf_keras"` (for tfmot)."""
    if name == "keras":
        return _keras_flavour()
    if name in _PROVIDERS:
        return _PROVIDERS[name]()
    raise ValueError(f"flavour must be one of {FLAVOURS}. Received: flavour={name!r}")


def as_flavour(value):
    """Accepts a `Flavour` or its name."""
    return value if isinstance(value, Flavour) else flavour(value)
