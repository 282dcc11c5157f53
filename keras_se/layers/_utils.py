"""Helpers shared by the keras_se layers: width rounding and argument checks."""

import math
import numbers

# PyTorch and the official Caffe models use 1e-5; Keras defaults to 1e-3.
# One constant so every layer and builder agrees with ported weights.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def make_divisible(value, divisor=8, min_value=None, round_limit=0.9):
    """Round `value` to a multiple of `divisor`, as timm's `make_divisible`.

    Args:
        value: float. The width to round.
        divisor: int, defaults to 8. The result is a multiple of it.
        min_value: int or None. Lower bound; defaults to `divisor`.
        round_limit: float, defaults to 0.9. If rounding down lost more than
            `1 - round_limit` of `value`, round up instead. timm's SE modules
            pass 0.0 (never bump).

    Returns:
        int.
    """
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return int(new_value)


def check_positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return value
    # numbers.Integral: numpy integers too.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int. Received: {name}={value!r}")
    return int(value)


def check_positive_number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number. Received: {name}={value!r}")
    return value


def check_choice(name, value, choices):
    if value not in choices:
        # In the given order, by repr: choices may mix None and strings, which do not sort.
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}. Received: {name}={value!r}")
    return value


def check_rank4(layer_name, input_shape):
    shape = tuple(input_shape)
    if len(shape) != 4:
        raise ValueError(f"{layer_name} expects a 4-D input (batch, height, width, channels). Received: input_shape={shape}")
    if shape[-1] is None:
        raise ValueError(f"{layer_name} needs a known channel dimension. Received: input_shape={shape}")
    return shape


ACTIVATIONS = ("relu", "relu6", "silu", "swish", "gelu", "tanh", "elu")


def dtype_kwarg(dtype):
    """`{"dtype": dtype}` for the sublayers of a composite layer, `{}` for None.

    A composite layer hands its dtype policy to its sublayers (Keras'
    convention); builders pass None and keep the global policy. None is left
    out rather than passed: tf_keras records constructor arguments in a
    layer's config, so an explicit `dtype=None` would change saved configs.
    """
    return {} if dtype is None else {"dtype": dtype}


def make_activation(layers, activation, name, dtype=None):
    """An activation layer that both Kerases and tfmot understand.

    `dtype`: a dtype policy for the layer, or None for the global one.
    """
    dt = dtype_kwarg(dtype)
    check_choice("activation", activation, ACTIVATIONS)
    if activation == "relu":
        return layers.ReLU(name=name, **dt)
    if activation == "relu6":
        return layers.ReLU(max_value=6.0, name=name, **dt)
    return layers.Activation(activation, name=name, **dt)


def build_chain(chain, input_shape):
    """Builds single-input layers in order; returns the last output shape."""
    shape = tuple(input_shape)
    for layer in chain:
        if not layer.built:
            layer.build(shape)
        shape = tuple(layer.compute_output_shape(shape))
    return shape


def chain_output_shape(chain, input_shape):
    """Output shape of single-input layers applied in order (no building)."""
    shape = tuple(input_shape)
    for layer in chain:
        shape = tuple(layer.compute_output_shape(shape))
    return shape


def join_name(prefix, role):
    """`{prefix}_{role}`, or `role` alone inside a composite layer."""
    return f"{prefix}_{role}" if prefix else role
