"""Graph forms that keep int8 TFLite graphs on XNNPACK, LiteRT's CPU fast path.

Applied by `to_tflite(..., quantize="int8")` to the graph it converts, never
to the user's model; the converted file is verified against the user's model
as always.
"""

import numpy as np


def average_pools_as_depthwise(model):
    """The same model with every valid-padded `AveragePooling2D` as a `DepthwiseConv2D`.

    XNNPACK delegates AVERAGE_POOL_2D in float only: its
    `VisitAveragePool2DNode` requires float32 tensors
    (https://github.com/tensorflow/tensorflow/blob/master/tensorflow/lite/delegates/xnnpack/xnnpack_delegate.cc).
    An int8 average pool therefore runs on LiteRT's own kernel between two
    XNNPACK partitions (SE-ShuffleNet's stride-2 shortcuts, SKNet's strided
    dilated paths). A valid-padded k x l average pool is a depthwise
    convolution with every weight 1 / (k * l), the same function, and int8
    stores that weight exactly (per-channel scale: it quantises to 127).

    Args:
        model: a functional Keras 3 model.

    Returns:
        A model sharing `model`'s layers and weights with each such pool
        replaced, or `model` itself when it has none (or is not functional).
    """
    import keras

    def replaceable(layer):
        return (
            type(layer) is keras.layers.AveragePooling2D
            and layer.padding == "valid"
            and layer.data_format == "channels_last"
        )

    # clone_model's call_function works on functional models only (Sequential
    # and subclassed models have no operation graph to rewire).
    functional = isinstance(model, keras.Model) and hasattr(model, "_operations_by_depth")
    if not functional or not any(replaceable(layer) for layer in model.layers):
        return model

    def call(layer, *args, **kwargs):
        if not replaceable(layer):
            return layer(*args, **kwargs)
        x = args[0] if args else kwargs["inputs"]
        height, width = layer.pool_size
        depthwise = keras.layers.DepthwiseConv2D(
            (height, width), strides=layer.strides, padding="valid", use_bias=False, name=f"{layer.name}_depthwise"
        )
        y = depthwise(x)
        depthwise.set_weights([np.full((height, width, x.shape[-1], 1), 1.0 / (height * width), "float32")])
        return y

    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
