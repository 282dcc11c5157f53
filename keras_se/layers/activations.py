"""Hard-swish, MobileNetV3's activation, in the two spellings LiteRT needs.

hard_swish(x) = x * relu6(x + 3) / 6 (Howard et al.; timm's and Keras' own).

- `"builtin"`: Keras' `Activation("hard_swish")`. The TFLite converter
  writes one HARD_SWISH op: XNNPACK's fastest float kernel, and an op the
  GPU delegate runs.
- `"int8"`: the same function as four standard layers,
  `(x * 1/6) * relu6(x + 3)`: MUL, ADD with a fused RELU6, MUL. XNNPACK
  has no int8 HARD_SWISH: in a full-integer file every HARD_SWISH runs on
  LiteRT's own int8 kernel, between XNNPACK partitions, and keras.applications'
  MobileNetV3Large runs slower in int8 than in float32 (BENCHMARKS.md,
  "MobileNetV3 in int8"). XNNPACK runs int8 ADD and MUL. The converter's
  optimiser fuses `x * relu6(x + 3) / 6` and `x * relu6(x + 3) * (1/6)`
  back into HARD_SWISH; it has no pattern for the division applied to `x`
  first, so this spelling survives conversion. Each layer is one tfmot
  knows (`Rescaling` and `Multiply` with keras_se's output QuantizeConfig,
  `ReLU`), so quantisation-aware training gives the same int8 graph.

The tf_keras flavour (`keras_se.quantization.flavour`, for tfmot) always
spells it so. Post-training int8 conversion goes one step further
(`keras_se.export.forms.hard_swish_for_int8`): `x * relu6(x + 3)` with the
1/6 moved into the kernels of the layers that read it, two element-wise
ops instead of three.

Reference:
    - [Howard et al., Searching for MobileNetV3](https://arxiv.org/abs/1905.02244)
"""

from keras_se.layers._utils import join_name as _join


def hard_swish_int8_layers(layers, name):
    """The layers of hard-swish spelt for int8 (not yet connected).

    Args:
        layers: a layers namespace (`keras.layers`, `tf_keras.layers` or a
            flavour's `layers`).
        name: str. The product keeps it; the parts are `{name}_sixth`,
            `{name}_shift` and `{name}_relu6`.

    Returns:
        dict from role to layer, for `apply_hard_swish_int8`.
    """
    return {
        "sixth": layers.Rescaling(1.0 / 6.0, name=_join(name, "sixth")),
        "shift": layers.Rescaling(1.0, offset=3.0, name=_join(name, "shift")),
        "relu6": layers.ReLU(max_value=6.0, name=_join(name, "relu6")),
        "product": layers.Multiply(name=name),
    }


def apply_hard_swish_int8(parts, x):
    """`(x / 6) * relu6(x + 3)` from the layers of `hard_swish_int8_layers`."""
    return parts["product"]([parts["sixth"](x), parts["relu6"](parts["shift"](x))])


def is_builtin_hard_swish(layer):
    """True for a Keras 3 `Activation("hard_swish")` layer (the builtin spelling)."""
    import keras

    # Keras 3 names the function hard_silu; "hard_swish" is its alias.
    return type(layer) is keras.layers.Activation and getattr(layer.activation, "__name__", "") in ("hard_silu", "hard_swish")
