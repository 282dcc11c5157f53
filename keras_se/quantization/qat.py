"""Quantisation-aware training of keras_se models with tfmot.

tfmot quantises only tf_keras models (tensorflow/model-optimization#1144), so
`quantize_model` builds the same architecture again in tf_keras from the
model's config (`model.get_config()` holds its architecture), copies the
weights layer by layer, checks both models give the same outputs, and applies
tfmot's default 8-bit scheme plus keras_se's QuantizeConfigs
(`keras_se.quantization.configs`).

What the user ends with:

- the tf_keras QAT model `quantize_model` returns: train it with `fit`, then
  `keras_se.export.to_tflite(qat_model, "model.tflite", quantize="int8")`
  writes a fully int8 TFLite file (int8 input and output, no float op);
- optionally the Keras 3 model again, with the fine-tuned float weights:
  `copy_float_weights(qat_model, model)`. That model is float; it is what
  to keep training or save as `.keras`, not what runs in int8.
"""

import numpy as np

from keras_se.errors import require_tensorflow_backend
from keras_se.quantization import configs as _configs

# Outputs of the Keras 3 model and its tf_keras rebuild agree to this much of
# the output's magnitude: the same float32 ops in both Kerases, differing only
# in summation order (about 1e-7 relative per op, a few hundred ops deep).
REBUILD_RTOL = 1e-4


def is_quantized(model):
    """True if `model` holds tfmot quantisation wrappers or Keras int8 layers."""
    return any(_configs.is_quantized_layer(layer) for layer in getattr(model, "layers", []))


def _is_tf_keras(model):
    import tf_keras

    return isinstance(model, tf_keras.Model)


def _weight_layers(model):
    """(name in the tf_keras flavour, layer holding the weights) for each weighted layer of a Keras 3 `model`.

    A layer the tf_keras flavour spells as several weighted layers (CBAM)
    gives one entry per sublayer (`flavour_weight_layers`).
    """
    from keras_se.quantization.flavour import flavour_weight_layers

    for layer in model.layers:
        if layer.weights:
            yield from flavour_weight_layers(layer)


def _copy_weights(source, target):
    """Copies weights layer by layer (matched by name) from `source` to `target`."""
    by_name = {layer.name: layer for layer in target.layers}
    for name, layer in _weight_layers(source):
        values = layer.get_weights()
        other = by_name.get(name)
        if other is None:
            raise ValueError(f"Layer {name!r} has weights but no counterpart in model {target.name!r}.")
        other = getattr(other, "layer", other)  # inside a tfmot wrapper
        shapes = [tuple(w.shape) for w in other.get_weights()]
        if shapes != [tuple(v.shape) for v in values]:
            raise ValueError(f"Layer {name!r}: weight shapes differ ({[tuple(v.shape) for v in values]} vs {shapes}).")
        other.set_weights(values)


def average_pools_as_depthwise(model):
    """A tf_keras model with every valid-padded `AveragePooling2D` as a fixed `DepthwiseConv2D`.

    The QAT counterpart of `keras_se.export.forms.average_pools_as_depthwise`
    (which rewrites Keras 3 models for post-training int8): XNNPACK runs
    AVERAGE_POOL_2D in float only, a depthwise convolution with every weight
    1 / (k * l) is the same function, and int8 stores that weight exactly.
    The depthwise layer keeps the pool's name and is not trainable, so QAT
    cannot turn the average into something else.

    Args:
        model: a functional tf_keras model.

    Returns:
        A new model with the other layers' weights copied, or `model` itself
        when it has no such pool.
    """
    import tf_keras

    def replaceable(layer):
        return type(layer) is tf_keras.layers.AveragePooling2D and layer.padding == "valid" and layer.data_format == "channels_last"

    pools = [layer for layer in model.layers if replaceable(layer)]
    if not pools:
        return model

    def clone(layer):
        if not replaceable(layer):
            return layer.__class__.from_config(layer.get_config())
        return tf_keras.layers.DepthwiseConv2D(
            layer.pool_size, strides=layer.strides, padding="valid", use_bias=False, trainable=False, name=layer.name
        )

    rewritten = tf_keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.weights:
            rewritten.get_layer(layer.name).set_weights(layer.get_weights())
    for pool in pools:
        depthwise = rewritten.get_layer(pool.name)
        height, width = pool.pool_size
        depthwise.set_weights([np.full(depthwise.depthwise_kernel.shape, 1.0 / (height * width), "float32")])
    return rewritten


def _probe_inputs(model, count=2, seed=0):
    shape = tuple(64 if d is None else d for d in model.input_shape[1:])
    return np.random.default_rng(seed).uniform(0.0, 1.0, (count, *shape)).astype("float32")


def rebuild_tf_keras(model):
    """The same model in tf_keras, with the same weights.

    Built from `model.get_config()`: a keras_se model carries its
    architecture, also when loaded from a `.keras` file.

    Args:
        model: a Keras 3 keras_se model (`keras_se.create_model`, a keras_se
            constructor such as `keras_se.SEResNet18`, or one loaded with
            `keras.saving.load_model`).

    Returns:
        A tf_keras functional model (SK select spelt as quantisable layers,
        see `keras_se.quantization.flavour`; ECA and CBAM as standard layers,
        `keras_se.quantization.flavour.eca_as_layers` / `cbam_as_layers`) whose
        outputs equal the input model's.

    Raises:
        ValueError: the model is not a keras_se model, or the rebuilt model
            disagrees with it.
    """
    require_tensorflow_backend("Quantisation-aware training (tfmot)")
    from keras_se.models.base import model_config
    from keras_se.quantization.flavour import tf_keras_model

    config = model_config(model)
    rebuilt = tf_keras_model(type(model), config)
    _copy_weights(model, rebuilt)
    x = _probe_inputs(model)
    expected = np.asarray(model(x, training=False))
    actual = np.asarray(rebuilt(x, training=False))
    error = float(np.max(np.abs(expected - actual))) if expected.shape == actual.shape else np.inf
    bound = REBUILD_RTOL * max(1.0, float(np.max(np.abs(expected))))
    if not error <= bound:
        raise ValueError(
            f"The tf_keras rebuild of {model.name!r} differs from it (max abs error {error:.3g}, "
            f"bound {bound:.3g}): was the model changed after keras_se built it?"
        )
    return rebuilt


def quantize_model(model):
    """Prepares a keras_se model for quantisation-aware training.

    Rebuilds the model in tf_keras (`rebuild_tf_keras`: same layer names,
    weights copied, outputs checked equal), writes valid average pools as
    fixed depthwise convolutions (`average_pools_as_depthwise`: XNNPACK runs
    them in int8, as post-training int8 files get), then applies tfmot's default
    8-bit scheme with keras_se's QuantizeConfigs for the SE scale,
    hard-sigmoid gate, avg-max squeeze, SK path selection, channel shuffle
    and grouped convolution (`keras_se.quantization.configs`).

    Train the result with `fit` (compile it with a `tf_keras` optimizer, or
    a string such as `"adam"`), then convert it:
    `keras_se.export.to_tflite(qat_model, "model.tflite", quantize="int8")`
    gives a fully int8 TFLite model. `copy_float_weights(qat_model, model)`
    puts the fine-tuned float weights back into the Keras 3 model.

    Call it inside a `tf.distribute` strategy's scope to train on several
    devices.

    Args:
        model: a float Keras 3 keras_se model (from `keras_se.create_model`,
            a keras_se constructor, or `keras.saving.load_model` of a saved
            one: the model's config holds its architecture), or a tf_keras
            functional model of standard tf_keras and keras_se layers,
            quantised as it is.

    Returns:
        A tf_keras model with tfmot quantisation wrappers, ready to `fit`.

    Raises:
        ValueError: the model is already quantised, has layers keras_se
            cannot quantise (each named), or cannot be rebuilt.

    Example:

    >>> model = keras_se.create_model("se_mobilenet", input_shape=(32, 32, 3), classes=10, alpha=0.25)
    >>> qat = keras_se.quantization.quantize_model(model)
    >>> qat.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> qat.fit(x_train, y_train, epochs=2)
    >>> keras_se.export.to_tflite(qat, "se_mobilenet_int8.tflite", quantize="int8")

    Reference:
        - [Jacob et al., Quantization and Training of Neural Networks for
          Efficient Integer-Arithmetic-Only Inference](https://arxiv.org/abs/1712.05877)
        - [Hu et al., Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507)
        - [Li et al., Selective Kernel Networks](https://arxiv.org/abs/1903.06586)
    """
    import keras

    if is_quantized(model):
        raise ValueError(f"Model {getattr(model, 'name', model)!r} is already quantised; pass the float model.")
    if isinstance(model, keras.Model):
        float_model = rebuild_tf_keras(model)
    elif _is_tf_keras(model):
        float_model = model
    else:
        raise ValueError(f"model must be a Keras 3 or tf_keras model. Received: model={model!r}")
    return _apply_tfmot(average_pools_as_depthwise(float_model))


def _apply_tfmot(float_model):
    import tf_keras

    tfmot = _configs.import_tfmot()
    plan = _configs.quantize_plan(float_model)
    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def clone(layer):
        return annotate(layer, plan.get(layer.name))

    with _configs.quantize_scope():
        annotated = tf_keras.models.clone_model(float_model, clone_function=clone)
        return tfmot.quantization.keras.quantize_apply(annotated)


def tflite_converter(qat_model):
    """A `tf.lite.TFLiteConverter` for a QAT model, from a batch-1 function.

    `TFLiteConverter.from_keras_model` first exports a tf_keras model as a
    SavedModel, tracing every layer of every tfmot wrapper (a minute for a
    small SE-MobileNet on two cores); converting the frozen batch-1 call
    gives the same int8 graph in seconds. The caller sets the quantisation
    options (`keras_se.export.to_tflite` does).
    """
    import tensorflow as tf

    if not is_quantized(qat_model):
        raise ValueError(f"qat_model must come from quantize_model. Received: {qat_model.name!r}")
    spec = tf.TensorSpec((1, *qat_model.input_shape[1:]), tf.float32, name="input")
    function = tf.function(lambda x: qat_model(x, training=False)).get_concrete_function(spec)
    # Without a trackable object the converter freezes the function's
    # variables itself (the "deprecated" path; TF 2.21 logs a warning).
    return tf.lite.TFLiteConverter.from_concrete_functions([function])


def copy_float_weights(qat_model, model):
    """Copies a QAT model's trained float weights into the Keras 3 model.

    The QAT model keeps float weights (fake-quantised on the fly); this puts
    them back into the keras_se model `quantize_model` started from, e.g. to
    save it as `.keras` or keep training in Keras 3. The int8 model for
    phones is `keras_se.export.to_tflite(qat_model, path, quantize="int8")`.

    Args:
        qat_model: the model `quantize_model(model)` returned.
        model: the Keras 3 model it was made from (or one with the same
            architecture).

    Returns:
        `model`, updated in place.

    Example:

    >>> qat = keras_se.quantization.quantize_model(model)
    >>> qat.fit(...)
    >>> keras_se.quantization.copy_float_weights(qat, model).save("fine_tuned.keras")
    """
    if not is_quantized(qat_model):
        raise ValueError(f"qat_model must come from quantize_model. Received a model without quantisation wrappers: {qat_model.name!r}")
    variables = {}
    for layer in qat_model.layers:
        inner = getattr(layer, "layer", layer)
        # A tfmot wrapper owns the wrapped layer's variables (named
        # "<layer>/kernel:0", trainable ones first, as Keras lists them) next
        # to its quantisers' ("quant_<layer>/kernel_min:0").
        owned = [v for v in layer.weights if v.name.rpartition("/")[0] == inner.name]
        if owned:
            variables[inner.name] = owned
    for name, layer in _weight_layers(model):
        source = variables.get(name)
        if source is None:
            raise ValueError(f"Layer {name!r} of {model.name!r} has no counterpart in the QAT model.")
        shapes = [tuple(v.shape) for v in source]
        if shapes != [tuple(w.shape) for w in layer.weights]:
            raise ValueError(
                f"Layer {name!r}: weight shapes {shapes} in the QAT model, {[tuple(w.shape) for w in layer.weights]} in {model.name!r}."
            )
        for weight, variable in zip(layer.weights, source):
            weight.assign(variable.numpy())
    return model
