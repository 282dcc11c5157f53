"""The tf_keras flavour of the keras_se layers and builders, for tfmot.

tfmot quantises only tf_keras models (tensorflow/model-optimization#1144).
Every keras_se builder creates its layers through a `Flavour`
(`keras_se.layers.namespace`); this module makes the tf_keras one: twins of
the keras_se primitives that share their code (the mixins in
`keras_se.layers.primitives`), registered with tf_keras, and `KernelSelect`
(SK's softmax over paths and weighted sum), `Average` (SE's avg-max
squeeze), `Add` of more than two tensors and `HardSwish` (MobileNetV3's
activation) spelt as several standard layers, and the ECA and CBAM
attentions likewise, so that tfmot can quantise every intermediate tensor. None of these has weights: layer names of
weighted layers and weight order are identical in both flavours, so a
Keras 3 model's weights copy over one by one (`rebuild_tf_keras`).

Nothing here is needed to build, train or convert a float model; it is
imported when `flavour("tf_keras")` is first asked for.
"""

import functools

import numpy as np

from keras_se.layers import _utils, primitives
from keras_se.layers._utils import BN_EPSILON
from keras_se.layers.attention import CBAM, EfficientChannelAttention, eca_kernel_size
from keras_se.layers.namespace import Flavour
from keras_se.layers.squeeze_excite import apply_gate, make_gate, se_reduced_channels

# The keras_se primitives that tf_keras gets a twin of (registered, so a
# saved QAT model loads), and the Keras 3 base class of each.
CUSTOM = ("GroupConv2D", "ChannelShuffle", "ChannelSlice", "KernelSelect")
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


# The tf_keras flavour exists for tfmot: these spellings give every
# intermediate tensor a layer of its own, hence a quantisation range.
_TF_KERAS_SPELLINGS = {"KernelSelect": _KernelSelectGraph, "Average": _AverageGraph, "Add": _AddGraph, "HardSwish": _HardSwishGraph}


def eca_as_layers(layers, x, name, kernel_size=None, gamma=2, beta=1, gate="sigmoid"):
    """`EfficientChannelAttention` spelt as standard layers, for tfmot (the tf_keras flavour).

    Mean -> Reshape (N, 1, C, 1) -> the (1, k) Conv2D named `name` (the
    layer's one weight, so weights copy by name) -> Reshape -> gate ->
    Multiply: the same function, every tensor a layer output tfmot can
    give a range.
    """
    EfficientChannelAttention(kernel_size=kernel_size, gamma=gamma, beta=beta, gate=gate)  # the layer's checks
    channels = x.shape[-1]
    k = kernel_size or eca_kernel_size(channels, gamma, beta)
    y = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    y = layers.Reshape((1, channels, 1), name=f"{name}_to_row")(y)
    y = layers.Conv2D(1, (1, k), padding="same", use_bias=False, name=name)(y)
    y = layers.Reshape((1, 1, channels), name=f"{name}_to_channels")(y)
    y = apply_gate(make_gate(layers, gate, f"{name}_gate"), y)
    return layers.Multiply(name=f"{name}_scale")([x, y])


# The weighted sublayers of `CBAM`; `cbam_as_layers` names each `{name}_{sublayer}`.
CBAM_SUBLAYERS = ("fc1", "fc2", "spatial_conv", "spatial_bn")


def cbam_as_layers(layers, x, name, **options):
    """`CBAM` spelt as standard layers, for tfmot (the tf_keras flavour).

    The same function as `CBAM`, every tensor a layer output tfmot can give
    a range, every op one XNNPACK runs in int8:

    - channel attention: GlobalAveragePooling2D and GlobalMaxPooling2D
      (MEAN, REDUCE_MAX) through one shared MLP (`{name}_fc1`, `{name}_act`,
      `{name}_fc2`, each called twice, as `CBAM` calls its MLP), Add, gate,
      Multiply;
    - the channel-wise mean and max: tf_keras has no layer that pools over
      channels, but its 1-D global pools with `data_format="channels_first"`
      pool the last axis: Reshape (H * W, C) -> GlobalAveragePooling1D and
      GlobalMaxPooling1D -> Concatenate -> Reshape (H, W, 2) (RESHAPE, MEAN,
      REDUCE_MAX, CONCATENATION: the ops of `CBAM`'s own int8 file);
    - spatial attention: `{name}_spatial_conv` -> `{name}_spatial_bn` ->
      gate -> Multiply.

    A width unknown when the graph is built (an input shape of None) leaves
    no reshape back to (H, W): the mean is then a fixed, untrained 1x1
    convolution with every weight 1 / C (`{name}_channel_mean`) and the max
    a MaxPooling2D over windows of (1, C) between two Permutes -- the same
    function, but a TRANSPOSE of the whole tensor and a one-channel
    MAX_POOL_2D (measured 0.15 ms slower than the reshape form on one
    56x56x128 block in int8, XNNPACK, 1 thread).

    The weighted layers are `CBAM`'s sublayers, named `{name}_{sublayer}`
    (`CBAM_SUBLAYERS`), so weights copy by name (`flavour_weight_layers`).
    """
    cbam = CBAM(**options)  # the layer's checks and defaults
    channels, width, gate = x.shape[-1], x.shape[2], cbam.gate
    hidden = se_reduced_channels(channels, cbam.reduction, cbam.reduced_channels, cbam.divisor, cbam.min_channels)
    fc1 = layers.Conv2D(hidden, 1, use_bias=cbam.use_bias, name=f"{name}_fc1")
    act = _utils.make_activation(layers, cbam.activation, f"{name}_act")
    fc2 = layers.Conv2D(channels, 1, use_bias=cbam.use_bias, name=f"{name}_fc2")
    avg = fc2(act(fc1(layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_avg")(x))))
    top = fc2(act(fc1(layers.GlobalMaxPooling2D(keepdims=True, name=f"{name}_max")(x))))
    y = apply_gate(make_gate(layers, gate, f"{name}_channel_gate"), layers.Add(name=f"{name}_channel_logits")([avg, top]))
    x = layers.Multiply(name=f"{name}_channel_scale")([x, y])

    if width is not None:
        pixels = layers.Reshape((-1, channels), name=f"{name}_pixels")(x)
        mean = layers.GlobalAveragePooling1D(data_format="channels_first", keepdims=True, name=f"{name}_channel_mean")(pixels)
        peak = layers.GlobalMaxPooling1D(data_format="channels_first", keepdims=True, name=f"{name}_channel_max")(pixels)
        pooled = layers.Concatenate(name=f"{name}_pooled_pixels")([mean, peak])
        pooled = layers.Reshape((-1, width, 2), name=f"{name}_pooled")(pooled)
    else:
        channel_mean = layers.Conv2D(1, 1, use_bias=False, trainable=False, name=f"{name}_channel_mean")
        mean = channel_mean(x)
        channel_mean.set_weights([np.full((1, 1, channels, 1), 1.0 / channels, "float32")])
        columns = layers.Permute((1, 3, 2), name=f"{name}_to_columns")(x)
        peak = layers.MaxPooling2D((1, channels), name=f"{name}_channel_max_t")(columns)
        peak = layers.Permute((1, 3, 2), name=f"{name}_channel_max")(peak)
        pooled = layers.Concatenate(name=f"{name}_pooled")([mean, peak])
    s = layers.Conv2D(1, cbam.spatial_kernel_size, padding="same", use_bias=False, name=f"{name}_spatial_conv")(pooled)
    s = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_spatial_bn")(s)
    s = apply_gate(make_gate(layers, gate, f"{name}_spatial_gate"), s)
    return layers.Multiply(name=f"{name}_spatial_scale")([x, s])


# The attention kinds the tf_keras flavour spells as standard layers (SE is flat layers in both).
ATTENTION = {"eca": eca_as_layers, "cbam": cbam_as_layers}


def flavour_weight_layers(layer):
    """Where a Keras 3 layer's weights live in the tf_keras flavour: a list of (layer name, Keras 3 layer).

    A layer the flavour spells as several weighted layers (`CBAM`) has one
    entry per weighted sublayer, named `{layer}_{sublayer}`; any other
    layer is its own entry.
    """
    if isinstance(layer, CBAM):
        return [(f"{layer.name}_{sub}", getattr(layer, sub)) for sub in CBAM_SUBLAYERS]
    return [(layer.name, layer)]


@functools.cache
def tf_keras_flavour():
    """The `Flavour` of tf_keras: one per process, so its twins are registered once."""
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
    return Flavour("tf_keras", tf_keras, custom, attention=ATTENTION)


def tf_keras_model(cls, config):
    """A keras_se model family's graph built in tf_keras (weighted layers' names and weight order identical), for tfmot.

    Args:
        cls: the family (`type(model)`, a `keras_se.models.base.SEModel` subclass).
        config: the model's `get_config()`.
    """
    return cls.in_flavour(config, tf_keras_flavour())
