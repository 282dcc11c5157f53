"""Squeeze-and-Excitation: the channel attention of SENet."""

import keras

from keras_se.layers import _utils
from keras_se.layers._utils import (
    check_choice,
    check_positive_int,
    check_positive_number,
    check_rank4,
    make_divisible,
)
from keras_se.layers._utils import (
    join_name as _join,
)
from keras_se.layers.namespace import as_flavour

GATES = ("sigmoid", "hard_sigmoid")
# The options of a reduce-expand channel MLP and its gate: SqueezeExcite's and CBAM's.
MLP_OPTIONS = ("reduction", "reduced_channels", "divisor", "min_channels", "use_bias", "activation", "gate")
SQUEEZES = ("avg", "max", "avgmax")


def se_reduced_channels(channels, reduction=16, reduced_channels=None, divisor=1, min_channels=None):
    """The bottleneck width of an SE block.

    `reduced_channels` wins when given. With `divisor=1` (default) the width
    is `max(channels // reduction, min_channels or 1)`, the official SENet
    code's `channels // reduction` (SE-ShuffleNet's 216-channel branch gets 13,
    as in the paper's count). With `divisor > 1` it is timm's
    `make_divisible(channels / reduction, divisor, min_channels, round_limit=0)`.
    """
    if reduced_channels is not None:
        return check_positive_int("reduced_channels", reduced_channels)
    if reduction > channels:
        raise ValueError(f"reduction must not exceed the input channels ({channels}). Received: reduction={reduction}")
    if divisor == 1:
        return max(int(channels / reduction), min_channels or 1)
    return make_divisible(channels / reduction, divisor, min_channels, round_limit=0.0)


def check_se_options(reduction, reduced_channels, divisor, min_channels, use_bias, activation, gate, squeeze):
    check_positive_number("reduction", reduction)
    check_positive_int("reduced_channels", reduced_channels, allow_none=True)
    check_positive_int("divisor", divisor)
    check_positive_int("min_channels", min_channels, allow_none=True)
    if not isinstance(use_bias, bool):
        raise ValueError(f"use_bias must be a bool. Received: use_bias={use_bias!r}")
    check_choice("activation", activation, _utils.ACTIVATIONS)
    check_choice("gate", gate, GATES)
    check_choice("squeeze", squeeze, SQUEEZES)


def make_gate(layers, gate, name, dtype=None):
    """The gate as explicit layers.

    `hard_sigmoid` is relu6(x + 3) / 6 (MobileNetV3, timm). Keras 3 and tf_keras
    disagree on `activation="hard_sigmoid"` (tf_keras uses clip(0.2x + 0.5)) and
    tfmot cannot quantise either, so it is spelt as shift -> ReLU6 -> scale:
    the same function in both Kerases, and three layers a quantiser knows.
    """
    check_choice("gate", gate, GATES)
    dt = _utils.dtype_kwarg(dtype)
    if gate == "sigmoid":
        return {"gate": layers.Activation("sigmoid", name=name, **dt)}
    return {
        "gate_shift": layers.Rescaling(1.0, offset=3.0, name=_join(name, "shift"), **dt),
        "gate_relu6": layers.ReLU(max_value=6.0, name=_join(name, "relu6"), **dt),
        "gate": layers.Rescaling(1.0 / 6.0, name=name, **dt),
    }


def apply_gate(parts, x):
    for role in ("gate_shift", "gate_relu6", "gate"):
        if role in parts:
            x = parts[role](x)
    return x


def make_se_layers(
    layers,
    channels,
    name,
    reduction=16,
    reduced_channels=None,
    divisor=1,
    min_channels=None,
    use_bias=True,
    activation="relu",
    gate="sigmoid",
    squeeze="avg",
    dtype=None,
):
    """Creates the layers of one SE block (not yet connected).

    The one definition of SE in keras_se: the `SqueezeExcite` layer and every
    builder call it, so weights, names and the TFLite graph agree. The
    excitation FCs are 1x1 convolutions on the (N, 1, 1, C) squeeze: the same
    weights as dense layers, and the gate stays 4-D for the scale multiply.

    Args:
        layers: a layers namespace (`keras_se.layers.namespace.flavour(...).layers`).
        channels: int. Channels of the input to recalibrate.
        name: str. Prefix of every layer name (`stage2_block3_se`).
        dtype: a dtype policy (or its name) for every layer, or None (default)
            for the global policy. `SqueezeExcite` passes its own.
        Remaining args: as `SqueezeExcite`.

    Returns:
        dict from role to layer, for `apply_se`.
    """
    check_se_options(reduction, reduced_channels, divisor, min_channels, use_bias, activation, gate, squeeze)
    width = se_reduced_channels(channels, reduction, reduced_channels, divisor, min_channels)
    dt = _utils.dtype_kwarg(dtype)
    parts = {}
    if squeeze == "avgmax":
        # timm's add_maxpool: 0.5 * mean + 0.5 * max.
        parts["squeeze_avg"] = layers.GlobalAveragePooling2D(keepdims=True, name=_join(name, "squeeze_avg"), **dt)
        parts["squeeze_max"] = layers.GlobalMaxPooling2D(keepdims=True, name=_join(name, "squeeze_max"), **dt)
        parts["squeeze"] = layers.Average(name=_join(name, "squeeze"), **dt)
    elif squeeze == "max":
        parts["squeeze"] = layers.GlobalMaxPooling2D(keepdims=True, name=_join(name, "squeeze"), **dt)
    else:
        parts["squeeze"] = layers.GlobalAveragePooling2D(keepdims=True, name=_join(name, "squeeze"), **dt)
    parts["reduce"] = layers.Conv2D(width, 1, use_bias=use_bias, name=_join(name, "reduce"), **dt)
    parts["act"] = _utils.make_activation(layers, activation, _join(name, "act"), dtype=dtype)
    parts["expand"] = layers.Conv2D(channels, 1, use_bias=use_bias, name=_join(name, "expand"), **dt)
    parts.update(make_gate(layers, gate, _join(name, "gate"), dtype=dtype))
    parts["scale"] = layers.Multiply(name=_join(name, "scale"), **dt)
    return parts


def se_gate(parts, x):
    """Squeeze and excite: the (N, 1, 1, C) gate for `x`."""
    if "squeeze_avg" in parts:
        s = parts["squeeze"]([parts["squeeze_avg"](x), parts["squeeze_max"](x)])
    else:
        s = parts["squeeze"](x)
    s = parts["expand"](parts["act"](parts["reduce"](s)))
    return apply_gate(parts, s)


def apply_se(parts, x):
    """Connects the layers of `make_se_layers`: `x * gate(x)`."""
    return parts["scale"]([x, se_gate(parts, x)])


def squeeze_excite(x, name, flavour="keras", **options):
    """Functional SE block: `x * gate(x)`, layers named `{name}_...`."""
    parts = make_se_layers(as_flavour(flavour).layers, x.shape[-1], name, **options)
    return apply_se(parts, x)


@keras.saving.register_keras_serializable(package="keras_se")
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-Excitation block (channel attention).

    Squeeze: global pooling to a per-channel descriptor z. Excitation:
    `s = gate(W2 act(W1 z))` with W1 reducing the channels by `reduction`.
    Scale: `x * s`, the gate broadcast as a (N, 1, 1, C) tensor.

    Args:
        reduction: float, defaults to 16. The ratio r; the bottleneck width
            is floor(C / r) (see `divisor`).
        reduced_channels: int or None. An explicit bottleneck width; overrides
            `reduction`.
        divisor: int, defaults to 1. If > 1, the bottleneck width is timm's
            `make_divisible(C / r, divisor)` (timm's `SEModule` uses 8).
        min_channels: int or None. Lower bound of the bottleneck width;
            defaults to `divisor`.
        use_bias: bool, defaults to True. Bias on both FCs (the released
            SENet models have it; the paper's ablations do not).
        activation: str, defaults to `"relu"`. One of `"relu"`, `"relu6"`,
            `"silu"`, `"swish"`, `"gelu"`, `"tanh"`, `"elu"`.
        gate: str, defaults to `"sigmoid"`. `"sigmoid"` or `"hard_sigmoid"`
            (relu6(x + 3) / 6 in both Kerases).
        squeeze: str, defaults to `"avg"`. `"avg"`, `"max"`, or `"avgmax"`
            (mean of both, timm's `add_maxpool`).
        **kwargs: standard layer arguments (`name`, `dtype`, ...).

    Example:

    >>> se = SqueezeExcite(reduction=16)
    >>> se(keras.ops.ones((2, 7, 7, 64))).shape
    TensorShape([2, 7, 7, 64])

    Reference:
        - [Hu et al., Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507)
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
        squeeze="avg",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_se_options(reduction, reduced_channels, divisor, min_channels, use_bias, activation, gate, squeeze)
        self.reduction = reduction
        self.reduced_channels = reduced_channels
        self.divisor = divisor
        self.min_channels = min_channels
        self.use_bias = use_bias
        self.activation = activation
        self.gate = gate
        self.squeeze = squeeze

    def build(self, input_shape):
        shape = check_rank4("SqueezeExcite", input_shape)
        # The expand FC's width is the input's channel count, known only here.
        self.parts = make_se_layers(
            keras.layers,
            shape[-1],
            "",
            reduction=self.reduction,
            reduced_channels=self.reduced_channels,
            divisor=self.divisor,
            min_channels=self.min_channels,
            use_bias=self.use_bias,
            activation=self.activation,
            gate=self.gate,
            squeeze=self.squeeze,
            # Sublayers follow this layer's policy (Keras' convention), so
            # mixed_float16 computes in float16 and dtype="float64" holds
            # float64 weights.
            dtype=self.dtype_policy,
        )
        pooled = (shape[0], 1, 1, shape[-1])
        for role in ("squeeze_avg", "squeeze_max"):
            if role in self.parts:
                self.parts[role].build(shape)
        _utils.build_chain([self.parts[r] for r in ("reduce", "act", "expand")], pooled)

    def call(self, inputs):
        return apply_se(self.parts, inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({key: getattr(self, key) for key in (*MLP_OPTIONS, "squeeze")})
        return config
