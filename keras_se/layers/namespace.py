"""One model description, two Kerases.

tfmot quantises only tf_keras models (tensorflow/model-optimization#1144), so
every keras_se builder takes a `Flavour` and creates its layers through it.
`flavour("keras")` gives Keras 3; `flavour("tf_keras")` gives tf_keras with
twins of the keras_se primitives that share their code (the mixins in
`keras_se.layers.primitives`), and with `KernelSelect` (SK's softmax over
paths and weighted sum), `Average` (SE's avg-max squeeze), `Add` of more
than two tensors and `HardSwish` (MobileNetV3's activation) spelt as several
standard layers, so that tfmot can quantise every intermediate tensor. None of these has weights: layer names
of weighted layers and weight order are identical in both flavours.
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
}


class _AddGraph:
    """`Add` of n > 2 tensors spelt as a chain of two-input Adds, in the tf_keras flavour.

    tf_keras' `Add` sums n tensors inside one layer; only the total gets a
    quantisation range, so TFLite keeps the partial sums float (SK's fuse
    and select with three or more paths). A chain gives each partial sum a
    range. Two inputs stay one `Add`; the last Add keeps the name.
    """

    def __init__(self, name=None, **kwargs):
        self.name = name
        self.kwargs = kwargs

    def __call__(self, inputs):
        import tf_keras

        total = inputs[0]
        for i, other in enumerate(inputs[1:-1], start=1):
            total = tf_keras.layers.Add(name=f"{self.name}_partial{i}")([total, other])
        return tf_keras.layers.Add(name=self.name, **self.kwargs)([total, inputs[-1]])


class _KernelSelectGraph:
    """`KernelSelect` spelt in layers tfmot can quantise, in the tf_keras flavour.

    Logits (N, 1, 1, M*C), path-major -> Reshape (N, 1, M, C) -> Softmax over
    the paths -> per path a Cropping2D to its (N, 1, 1, C) weights ->
    Multiply with the path -> Add. The same function as `KernelSelect`
    (no weights), but every intermediate tensor is a layer output that
    carries a quantisation range, so TFLite gets int8 SOFTMAX, MUL and ADD.
    The sum keeps the select layer's name (`..._sk_select`).
    """

    def __init__(self, name=None, **kwargs):
        self.name = name

    def __call__(self, inputs):
        import tf_keras

        layers = tf_keras.layers
        paths, logits = inputs[:-1], inputs[-1]
        num_paths, channels = len(paths), paths[0].shape[-1]
        attn = layers.Reshape((1, num_paths, channels), name=f"{self.name}_logits")(logits)
        attn = layers.Softmax(axis=2, name=f"{self.name}_softmax")(attn)
        weighted = []
        for m, path in enumerate(paths):
            weight = layers.Cropping2D(((0, 0), (m, num_paths - m - 1)), name=f"{self.name}_weight{m}")(attn)
            weighted.append(layers.Multiply(name=f"{self.name}_path{m}")([path, weight]))
        return _AddGraph(name=self.name)(weighted)


class _AverageGraph:
    """`Average` spelt as Add -> Rescaling(1/n), in the tf_keras flavour.

    tf_keras' `Average` adds then divides inside one layer, so the sum has
    no quantisation range and TFLite keeps it float (the avg-max squeeze
    of SE). As two layers both results are layer outputs with ranges:
    int8 ADD and MUL. The scale keeps the average's name.
    """

    def __init__(self, name=None, **kwargs):
        self.name = name

    def __call__(self, inputs):
        import tf_keras

        total = tf_keras.layers.Add(name=f"{self.name}_sum")(inputs)
        return tf_keras.layers.Rescaling(1.0 / len(inputs), name=self.name)(total)


class _HardSwishGraph:
    """Hard-swish as `(x / 6) * relu6(x + 3)` in standard layers, in the tf_keras flavour.

    tf_keras has no hard-swish activation and tfmot quantises none; this
    spelling is one tfmot quantises and the TFLite converter does not fuse
    back into HARD_SWISH, which XNNPACK cannot run in int8
    (`keras_se.layers.activations`). The product keeps the name.
    """

    def __init__(self, name=None, **kwargs):
        self.name = name

    def __call__(self, x):
        import tf_keras

        from keras_se.layers.activations import apply_hard_swish_int8, hard_swish_int8_layers

        return apply_hard_swish_int8(hard_swish_int8_layers(tf_keras.layers, self.name), x)


def _builtin_hard_swish(name=None, **kwargs):
    """Hard-swish in Keras 3: `Activation("hard_swish")`, one HARD_SWISH op in TFLite."""
    return keras.layers.Activation("hard_swish", name=name, **kwargs)


# The tf_keras flavour exists for tfmot: these spellings give every
# intermediate tensor a layer of its own, hence a quantisation range.
_TF_KERAS_SPELLINGS = {"KernelSelect": _KernelSelectGraph, "Average": _AverageGraph, "Add": _AddGraph, "HardSwish": _HardSwishGraph}


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
        return Flavour(name, keras, {**{n: getattr(primitives, n) for n in _CUSTOM}, "HardSwish": _builtin_hard_swish})
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
        custom.update(_TF_KERAS_SPELLINGS)
        return Flavour(name, tf_keras, custom)
    raise ValueError(f"flavour must be one of {FLAVOURS}. Received: flavour={name!r}")


def as_flavour(value):
    """Accepts a `Flavour` or its name."""
    return value if isinstance(value, Flavour) else flavour(value)
