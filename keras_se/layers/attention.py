"""Attention as a plug-in: a registry of kinds (timm's `create_attn`), ECA and CBAM.

A kind is a name and a factory `factory(channels, name=None, **options)`
returning a Keras layer that maps (B, H, W, C) to the same shape. Builders
ask the registry for a kind by name (`attention="eca"`); where it goes is the
block's business, what it computes is the kind's. Built in:

- `"se"`: `SqueezeExcite` (SENet);
- `"eca"`: `EfficientChannelAttention` (ECA-Net, timm's `EcaModule`);
- `"cbam"`: `CBAM` (channel then spatial attention, timm's `CbamModule`);
- `"sk"`: `SelectiveKernel` (SKNet; ResNet builders put it in place of the 3x3).

Example:

>>> def gate_only(channels, name=None, **options):
...     return keras.layers.Activation("sigmoid", name=name)  # any (B, H, W, C) -> same shape
>>> register_attention("gate_only", gate_only)
>>> keras_se.create_model("resnet18", attention="gate_only")
"""

import math
import re

import keras

from keras_se.layers._utils import BN_EPSILON, check_choice, check_positive_int, check_rank4
from keras_se.layers.selective_kernel import SelectiveKernel
from keras_se.layers.squeeze_excite import GATES, MLP_OPTIONS, SqueezeExcite, check_se_options, se_reduced_channels

_KINDS = {}
_CLASS_KINDS = {}  # layer class -> kind, for readers of a built model (the complexity report)
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def register_attention(name, factory, overwrite=False):
    """Registers an attention kind under `name`, for every builder's `attention=`.

    Args:
        name: str. Lower-case letters, digits and underscores, starting with
            a letter (it becomes part of layer names: `stage2_block1_{name}`).
        factory: callable `factory(channels, name=None, **options)` returning
            a Keras layer that maps (B, H, W, C) to the same shape. Builders
            pass the options given in their `attention_options`.
        overwrite: bool, defaults to False. Replace a kind of that name.

    Returns:
        `factory`, so that this works as a decorator's body.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"name must be lower-case letters, digits and underscores, starting with a letter. Received: name={name!r}")
    if not callable(factory):
        raise ValueError(f"factory must be callable as factory(channels, name=None, **options). Received: factory={factory!r}")
    if name in _KINDS and not overwrite:
        raise ValueError(f"attention kind {name!r} is already registered (pass overwrite=True to replace it). Received: name={name!r}")
    _KINDS[name] = factory
    return factory


def attention_kinds():
    """The registered attention kinds, sorted: `("cbam", "eca", "se", "sk", ...)`."""
    return tuple(sorted(_KINDS))


def check_attention(attention):
    """`attention` if it is None or a registered kind; a `ValueError` naming the kinds otherwise."""
    if attention is not None and (not isinstance(attention, str) or attention not in _KINDS):
        raise ValueError(
            f"attention must be None or a registered attention kind ({', '.join(map(repr, attention_kinds()))}; "
            f"keras_se.layers.register_attention adds one). Received: attention={attention!r}"
        )
    return attention


def create_attention(kind, channels, name=None, **options):
    """The layer of attention kind `kind` for `channels` channels (timm's `create_attn`)."""
    check_attention(kind)
    check_positive_int("channels", channels)
    layer = _KINDS[kind](channels, name=name, **options)
    if not isinstance(layer, keras.layers.Layer):
        raise ValueError(f"the factory of attention kind {kind!r} must return a Keras layer. Received: {layer!r}")
    _CLASS_KINDS.setdefault(type(layer), kind)
    return layer


def attention_kind_of(layer):
    """The attention kind whose layer `layer` is (`"eca"` for an `EfficientChannelAttention`), or None."""
    for cls in type(layer).__mro__:
        if cls in _CLASS_KINDS:
            return _CLASS_KINDS[cls]
    return None


def _gate(x, gate):
    if gate == "sigmoid":
        return keras.ops.sigmoid(x)
    return keras.ops.relu6(x + 3.0) / 6.0  # MobileNetV3's hard sigmoid, as SqueezeExcite's


def eca_kernel_size(channels, gamma=2, beta=1):
    """ECA-Net's adaptive kernel size: |log2(C) / gamma + beta / gamma|, to odd, at least 3 (timm's `EcaModule`)."""
    t = int(abs(math.log2(channels) + beta) / gamma)
    return max(t if t % 2 else t + 1, 3)


@keras.saving.register_keras_serializable(package="keras_se")
class EfficientChannelAttention(keras.layers.Layer):
    """Efficient Channel Attention (ECA-Net): a 1-D convolution across pooled channels.

    `x * gate(conv1d_k(mean_hw(x)))`: no reduction, k weights per block. The
    1-D convolution is spelt as a (1, k) convolution of the (N, 1, C, 1)
    pooled tensor: the same weights (timm's (1, 1, k) kernel is this (1, k,
    1, 1) one) and a 4-D graph that LiteRT's GPU delegate runs.

    Args:
        kernel_size: odd int or None (default). None takes ECA's adaptive
            size from the channel count (`eca_kernel_size`).
        gamma: number, defaults to 2. gamma of the adaptive size.
        beta: number, defaults to 1. b of the adaptive size.
        gate: str, defaults to `"sigmoid"`. `"sigmoid"` or `"hard_sigmoid"`.
        **kwargs: standard layer arguments (`name`, `dtype`, ...).

    Example:

    >>> eca = EfficientChannelAttention()
    >>> eca(keras.ops.ones((2, 7, 7, 256))).shape  # k = 5 for 256 channels
    (2, 7, 7, 256)

    Reference:
        - [Wang et al., ECA-Net: Efficient Channel Attention for Deep
          Convolutional Neural Networks](https://arxiv.org/abs/1910.03151)
    """

    def __init__(self, kernel_size=None, gamma=2, beta=1, gate="sigmoid", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("kernel_size", kernel_size, allow_none=True)
        if kernel_size is not None and kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (the convolution is centred on each channel). Received: kernel_size={kernel_size}")
        for arg, value in (("gamma", gamma), ("beta", beta)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{arg} must be a finite number. Received: {arg}={value!r}")
        if gamma == 0:
            raise ValueError(f"gamma must not be 0. Received: gamma={gamma!r}")
        check_choice("gate", gate, GATES)
        self.kernel_size = kernel_size
        self.gamma = gamma
        self.beta = beta
        self.gate = gate

    def build(self, input_shape):
        channels = check_rank4("EfficientChannelAttention", input_shape)[-1]
        k = self.kernel_size or eca_kernel_size(channels, self.gamma, self.beta)
        self.conv = keras.layers.Conv2D(1, (1, k), padding="same", use_bias=False, name="conv", dtype=self.dtype_policy)
        self.conv.build((None, 1, channels, 1))

    def call(self, inputs):
        channels = inputs.shape[-1]
        y = keras.ops.mean(inputs, axis=(1, 2), keepdims=True)
        y = self.conv(keras.ops.reshape(y, (-1, 1, channels, 1)))
        y = _gate(keras.ops.reshape(y, (-1, 1, 1, channels)), self.gate)
        return inputs * y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"kernel_size": self.kernel_size, "gamma": self.gamma, "beta": self.beta, "gate": self.gate})
        return config


@keras.saving.register_keras_serializable(package="keras_se")
class CBAM(keras.layers.Layer):
    """Convolutional Block Attention Module: channel attention, then spatial attention.

    Channel: `x * gate(mlp(mean_hw(x)) + mlp(max_hw(x)))`, one MLP (1x1
    convolutions C -> C/r -> C) shared by both descriptors. Spatial:
    `x * gate(bn(conv_k([mean_c(x), max_c(x)])))`, a k x k convolution of the
    two channel-pooled maps (in timm's order: mean, then max). timm's
    `CbamModule`; the paper's ResNet-50 + CBAM has 28.09 M parameters.

    Args:
        reduction: float, defaults to 16. r of the shared MLP.
        reduced_channels: int or None. An explicit MLP width; overrides `reduction`.
        divisor: int, defaults to 1. Round the MLP width to a multiple (as SE's).
        min_channels: int or None. Lower bound of the MLP width.
        use_bias: bool, defaults to True. Bias on the MLP.
        activation: str, defaults to `"relu"`. The MLP's activation.
        gate: str, defaults to `"sigmoid"`. `"sigmoid"` or `"hard_sigmoid"`.
        spatial_kernel_size: odd int, defaults to 7. k of the spatial convolution.
        **kwargs: standard layer arguments (`name`, `dtype`, ...).

    Example:

    >>> cbam = CBAM()
    >>> cbam(keras.ops.ones((2, 14, 14, 64))).shape
    (2, 14, 14, 64)

    Reference:
        - [Woo et al., CBAM: Convolutional Block Attention Module](https://arxiv.org/abs/1807.06521)
    """

    def __init__(
        self,
        reduction=16,
        reduced_channels=None,
        divisor=1,
        min_channels=None,
        use_bias=True,
        activation="relu",
        gate="sigmoid",
        spatial_kernel_size=7,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_se_options(reduction, reduced_channels, divisor, min_channels, use_bias, activation, gate, "avg")
        check_positive_int("spatial_kernel_size", spatial_kernel_size)
        if spatial_kernel_size % 2 == 0:
            raise ValueError(f"spatial_kernel_size must be odd. Received: spatial_kernel_size={spatial_kernel_size}")
        self.reduction = reduction
        self.reduced_channels = reduced_channels
        self.divisor = divisor
        self.min_channels = min_channels
        self.use_bias = use_bias
        self.activation = activation
        self.gate = gate
        self.spatial_kernel_size = spatial_kernel_size

    def build(self, input_shape):
        shape = check_rank4("CBAM", input_shape)
        channels = shape[-1]
        width = se_reduced_channels(channels, self.reduction, self.reduced_channels, self.divisor, self.min_channels)
        dt = dict(dtype=self.dtype_policy)
        self.fc1 = keras.layers.Conv2D(width, 1, use_bias=self.use_bias, name="fc1", **dt)
        self.act = keras.layers.Activation(self.activation, name="act", **dt)
        self.fc2 = keras.layers.Conv2D(channels, 1, use_bias=self.use_bias, name="fc2", **dt)
        k = self.spatial_kernel_size
        self.spatial_conv = keras.layers.Conv2D(1, k, padding="same", use_bias=False, name="spatial_conv", **dt)
        self.spatial_bn = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name="spatial_bn", **dt)
        self.fc1.build((None, 1, 1, channels))
        self.fc2.build((None, 1, 1, width))
        self.spatial_conv.build((*shape[:3], 2))
        self.spatial_bn.build((*shape[:3], 1))

    def call(self, inputs, training=None):
        def mlp(z):
            return self.fc2(self.act(self.fc1(z)))

        # In int8 TFLite these maxima are REDUCE_MAX and the pooled maps a
        # CONCATENATION: ai-edge-litert 2.3's XNNPACK runs both in int8, so
        # the file stays one partition (tests/export/test_attention_export.py).
        avg = keras.ops.mean(inputs, axis=(1, 2), keepdims=True)
        top = keras.ops.max(inputs, axis=(1, 2), keepdims=True)
        x = inputs * _gate(mlp(avg) + mlp(top), self.gate)
        pooled = keras.ops.concatenate([keras.ops.mean(x, axis=-1, keepdims=True), keras.ops.max(x, axis=-1, keepdims=True)], axis=-1)
        return x * _gate(self.spatial_bn(self.spatial_conv(pooled), training=training), self.gate)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({key: getattr(self, key) for key in (*MLP_OPTIONS, "spatial_kernel_size")})
        return config


_CLASS_KINDS.update({EfficientChannelAttention: "eca", CBAM: "cbam"})
register_attention("se", lambda channels, name=None, **options: SqueezeExcite(name=name, **options))
register_attention("eca", lambda channels, name=None, **options: EfficientChannelAttention(name=name, **options))
register_attention("cbam", lambda channels, name=None, **options: CBAM(name=name, **options))
register_attention("sk", lambda channels, name=None, **options: SelectiveKernel(channels, name=name, **options))
