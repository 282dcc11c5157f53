"""QuantizeConfigs for what tfmot's default 8-bit scheme lacks, and the
per-layer plan that says which layer gets which.

tfmot's default scheme has no entry for the SE scale (`Multiply`,
tensorflow/model-optimization#733), the hard-sigmoid gate's `Rescaling`
layers (#980), the avg-max squeeze's `Average`, nor keras_se's `GroupConv2D`,
`ChannelShuffle` and `ChannelSlice`. Each gets the quantisation TFLite's
int8 kernels expect:

| layer | QuantizeConfig | TFLite op |
|---|---|---|
| `Multiply` (SE scale, SK path weighting) | output only | MUL |
| `Rescaling` (hard-sigmoid shift / scale) | output only | ADD / MUL |
| `GroupConv2D` | per-channel symmetric kernel, output unless a BN follows | CONV_2D |
| `BatchNormalization` after `GroupConv2D` | output, or none if a ReLU follows | folded into CONV_2D |
| `ChannelShuffle` | none (a permutation keeps the input's scale) | RESHAPE, TRANSPOSE |
| `ChannelSlice` | none (a slice keeps the input's scale) | STRIDED_SLICE |

`KernelSelect` (softmax across SK paths and the weighted sum), `Average`
(the avg-max squeeze: a sum, then a division) and `Add` of three or more
tensors are spelt as several standard layers in keras_se's tf_keras flavour
(`keras_se.quantization.flavour`), so every intermediate tensor has a range:
int8 SOFTMAX, STRIDED_SLICE, MUL, ADD.

tfmot is imported inside functions only: importing it sets
`TF_USE_LEGACY_KERAS=1`, which would turn `tf.keras` into tf_keras for the
whole process (`import_tfmot` prevents that).
"""

import functools
import os
import types

from keras_se.keras_graph import inbound_layers

# tfmot's wrappers: a model holding one is quantised (or annotated) already.
QUANTIZED_LAYERS = ("QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer", "QuantizeAnnotate")


def is_quantized_layer(layer):
    """A tfmot wrapper (quantised or annotated), or a Keras 3 layer after `model.quantize(...)`."""
    return type(layer).__name__ in QUANTIZED_LAYERS or bool(getattr(layer, "quantization_mode", None))


def is_qat_model(model):
    """True for a tfmot quantisation-aware model (`quantize_model`'s result)."""
    return any(type(layer).__name__ in ("QuantizeWrapperV2", "QuantizeLayer") for layer in getattr(model, "layers", []))


# Activations tfmot's `Default8BitActivationQuantizeConfig` accepts.
_TFMOT_ACTIVATIONS = ("relu", "relu6", "swish", "gelu", "linear", "softmax", "sigmoid", "tanh")


def import_tfmot():
    """Imports tensorflow_model_optimization without flipping `tf.keras`.

    tfmot sets `TF_USE_LEGACY_KERAS=1` at import; `tf.keras` is resolved
    lazily, so if nothing touched it before, it would become tf_keras for
    the whole process. Resolving it first keeps it Keras 3, and the
    variable is restored so child processes see the caller's environment.
    """
    import tensorflow as tf

    getattr(tf.keras, "__name__", None)  # resolves the lazy tf.keras now
    saved = os.environ.get("TF_USE_LEGACY_KERAS")
    try:
        import tensorflow_model_optimization as tfmot
    finally:
        if saved is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = saved
    return tfmot


@functools.cache
def config_classes():
    """The keras_se QuantizeConfig classes (created on first use, after tfmot).

    Returns:
        A namespace with `OutputQuantizeConfig`, `NoOpQuantizeConfig` and
        `GroupConvQuantizeConfig`.
    """
    tfmot = import_tfmot()
    # tfmot has no public name for its per-channel conv kernel quantizer.
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantizers,
    )

    QuantizeConfig = tfmot.quantization.keras.QuantizeConfig
    quantizers = tfmot.quantization.keras.quantizers

    def activation_quantizer():
        # tfmot's activation quantizer: 8-bit asymmetric, moving-average range.
        return quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)

    class _NoWeights(QuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

    class OutputQuantizeConfig(_NoWeights):
        """Quantises a weightless layer's output only (SE scale, gate, squeeze).

        An int8 MUL or ADD needs a scale for its output; its inputs already
        carry theirs. Quantising inside the layer too would add fake-quant
        nodes TFLite has no tensor for.
        """

        def get_output_quantizers(self, layer):
            return [activation_quantizer()]

        def get_config(self):
            return {}

    class NoOpQuantizeConfig(_NoWeights):
        """Leaves a layer unquantised: a permutation (channel shuffle) keeps
        its input's scale, and a BN before a ReLU is folded into the conv."""

        def get_output_quantizers(self, layer):
            return []

        def get_config(self):
            return {}

    class GroupConvQuantizeConfig(QuantizeConfig):
        """`GroupConv2D` as tfmot quantises `Conv2D`: symmetric per-channel
        kernel, and the output unless a BatchNormalization follows (TFLite
        folds the BN into the convolution).

        Args:
            quantize_output: bool, defaults to True.
        """

        def __init__(self, quantize_output=True):
            self.quantize_output = quantize_output

        def get_weights_and_quantizers(self, layer):
            return [(layer.kernel, default_8bit_quantizers.Default8BitConvWeightsQuantizer())]

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            layer.kernel = quantize_weights[0]

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [activation_quantizer()] if self.quantize_output else []

        def get_config(self):
            return {"quantize_output": self.quantize_output}

    classes = (OutputQuantizeConfig, NoOpQuantizeConfig, GroupConvQuantizeConfig)
    for cls in classes:
        cls.__module__ = __name__
    return types.SimpleNamespace(**{cls.__name__: cls for cls in classes})


def custom_objects():
    """Everything tfmot must deserialise when it clones a keras_se QAT model:
    the QuantizeConfigs and the tf_keras twins of the keras_se primitives."""
    from keras_se.quantization.flavour import CUSTOM, tf_keras_flavour

    layers = tf_keras_flavour().layers
    objects = {name: getattr(layers, name) for name in CUSTOM}
    objects.update(vars(config_classes()))
    return objects


def quantize_scope():
    """`tfmot.quantization.keras.quantize_scope` with keras_se's objects.

    Needed to load a saved keras_se QAT model:

    >>> with keras_se.quantization.quantize_scope():
    ...     model = tf_keras.models.load_model("qat.h5")
    """
    return import_tfmot().quantization.keras.quantize_scope(custom_objects())


def _consumers(model):
    consumers = {layer.name: [] for layer in model.layers}
    for layer in model.layers:
        for producer in inbound_layers(layer):
            consumers.setdefault(producer.name, []).append(layer)
    return consumers


def _is_relu(layer, tf_keras):
    if type(layer) is tf_keras.layers.ReLU:
        return True
    return type(layer) is tf_keras.layers.Activation and getattr(layer.activation, "__name__", "") in ("relu", "relu6")


def quantize_plan(model):
    """Which QuantizeConfig each layer of a tf_keras model gets.

    Args:
        model: a tf_keras functional model: a keras_se model built with
            `flavour="tf_keras"` (what `quantize_model` does), or one of
            standard tf_keras layers.

    Returns:
        dict from layer name to a keras_se QuantizeConfig; layers not in it
        take tfmot's default 8-bit scheme.

    Raises:
        ValueError: naming every layer neither tfmot's default scheme nor
            keras_se knows how to quantise.
    """
    import tf_keras

    tfmot = import_tfmot()
    from keras_se.quantization.flavour import tf_keras_flavour

    twins = tf_keras_flavour().layers
    configs = config_classes()
    registry = tfmot.quantization.keras.default_8bit.Default8BitQuantizeRegistry()
    consumers = _consumers(model)
    folds_bn = (tf_keras.layers.Conv2D, tf_keras.layers.DepthwiseConv2D, tf_keras.layers.Dense)
    plan = {}
    unsupported = []
    for layer in model.layers:
        kind = type(layer)
        after = consumers.get(layer.name, [])
        if is_quantized_layer(layer):
            raise ValueError(
                f"The model is already quantised or annotated for quantisation (layer {layer.name!r} "
                f"is a {type(layer).__name__}). Pass the float model."
            )
        if kind is tf_keras.layers.InputLayer:
            continue
        if kind is twins.GroupConv2D:
            feeds_bn = len(after) == 1 and type(after[0]) is tf_keras.layers.BatchNormalization
            plan[layer.name] = configs.GroupConvQuantizeConfig(quantize_output=not feeds_bn)
        elif kind in (twins.ChannelShuffle, twins.ChannelSlice):
            plan[layer.name] = configs.NoOpQuantizeConfig()
        elif kind in (tf_keras.layers.Multiply, tf_keras.layers.Rescaling):
            plan[layer.name] = configs.OutputQuantizeConfig()
        elif kind is tf_keras.layers.Add and len(inbound_layers(layer)) > 2:
            unsupported.append(f"{layer.name!r} (Add of {len(inbound_layers(layer))} tensors: spell it as a chain of two-input Adds)")
        elif kind is tf_keras.layers.Average:
            # Adds, then divides: the sum would have no range and stay float.
            unsupported.append(f"{layer.name!r} (Average: spell it as Add then Rescaling)")
        elif kind is tf_keras.layers.BatchNormalization:
            producers = inbound_layers(layer)
            producer = producers[0] if len(producers) == 1 else None
            if producer is not None and type(producer) is twins.GroupConv2D:
                relu_next = len(after) == 1 and _is_relu(after[0], tf_keras)
                plan[layer.name] = configs.NoOpQuantizeConfig() if relu_next else configs.OutputQuantizeConfig()
            elif not (
                producer is not None
                and type(producer) in folds_bn
                and getattr(producer.activation, "__name__", "") == "linear"
                and len(consumers[producer.name]) == 1
            ):
                unsupported.append(f"{layer.name!r} (BatchNormalization not directly after a linear convolution or dense layer)")
        elif kind is tf_keras.layers.Activation:
            name = getattr(layer.activation, "__name__", str(layer.activation))
            if name not in _TFMOT_ACTIVATIONS:
                unsupported.append(f"{layer.name!r} (Activation {name!r})")
        elif not registry.supports(layer):
            unsupported.append(f"{layer.name!r} ({kind.__name__})")
    if unsupported:
        raise ValueError(
            "keras_se cannot quantise these layers (no QuantizeConfig in tfmot's default 8-bit "
            f"scheme or in keras_se): {', '.join(unsupported)}"
        )
    return plan
