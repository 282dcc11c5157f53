"""One model description, two Kerases.

tfmot quantises only tf_keras models (tensorflow/model-optimization#1144), so
every keras_se builder takes a `Flavour` and creates its layers through it.
`flavour("keras")` gives Keras 3; `flavour("tf_keras")` gives tf_keras with
twins of the keras_se primitives that share their code (the mixins in
`keras_se.layers.primitives`). Layer names and weight order are identical.
"""

import functools

import keras

from keras_se.layers import primitives

FLAVOURS = ("keras", "tf_keras")
_CUSTOM = ("GroupConv2D", "ChannelShuffle", "ChannelSlice", "KernelSelect")
_MIXINS = {
    "GroupConv2D": (primitives._GroupConvMixin, "Conv2D"),
    "ChannelShuffle": (primitives._ChannelShuffleMixin, "Layer"),
    "ChannelSlice": (primitives._ChannelSliceMixin, "Layer"),
    "KernelSelect": (primitives._KernelSelectMixin, "Layer"),
}


class _Layers:
    """`module.layers` plus the keras_se primitives made for that module."""

    def __init__(self, base, custom):
        self._base = base
        self.__dict__.update(custom)

    def __getattr__(self, name):
        return getattr(self._base, name)


class Flavour:
    """The layer classes, `Input` and `Model` of one Keras."""

    def __init__(self, name, module, custom):
        self.name = name
        self.module = module
        self.layers = _Layers(module.layers, custom)
        self.Input = module.Input
        self.Model = module.Model

    def __repr__(self):
        return f"Flavour({self.name!r})"


def flavour(name="keras"):
    """Returns the `Flavour` for `"keras"` (Keras 3) or `"tf_keras"`."""
    return _make_flavour(name)


@functools.cache
def _make_flavour(name):
    # One Flavour (and one set of registered tf_keras twins) per name.
    if name == "keras":
        return Flavour(name, keras, {n: getattr(primitives, n) for n in _CUSTOM})
    if name == "tf_keras":
        import tf_keras

        register = tf_keras.utils.register_keras_serializable(package="keras_se")
        custom = {}
        for class_name, (mixin, base) in _MIXINS.items():
            twin = type(
                class_name,
                (mixin, getattr(tf_keras.layers, base)),
                {"__doc__": getattr(primitives, class_name).__doc__, "__module__": __name__},
            )
            custom[class_name] = register(twin)
        return Flavour(name, tf_keras, custom)
    raise ValueError(f"flavour must be one of {FLAVOURS}. Received: flavour={name!r}")


def as_flavour(value):
    """Accepts a `Flavour` or its name."""
    return value if isinstance(value, Flavour) else flavour(value)
