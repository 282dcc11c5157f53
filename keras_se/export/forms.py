"""Graph forms that keep converted files on a runtime's fast or working path.

- `average_pools_as_depthwise`: int8 graphs stay on XNNPACK, LiteRT's CPU
  fast path (`to_tflite(..., quantize="int8")`).
- `grouped_convolutions_split`: GPU presets run on LiteRT's GPU accelerator
  (`to_tflite(..., gpu=True)`).

Each is applied to the graph `to_tflite` converts, never to the user's model;
the converted file is verified against the user's model as always.
"""

import numpy as np


def _is_functional(model):
    import keras

    # clone_model's call_function works on functional models only (Sequential
    # and subclassed models have no operation graph to rewire).
    return isinstance(model, keras.Model) and hasattr(model, "_operations_by_depth")


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

    if not _is_functional(model) or not any(replaceable(layer) for layer in model.layers):
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


def gpu_accelerator_crashes_on(in_per_group, out_per_group):
    """True for the grouped CONV_2D shapes that crash LiteRT's GPU accelerator.

    ai-edge-litert 2.3's GPU accelerator (ML Drift over WebGPU) dies with
    SIGILL while compiling a grouped convolution with more than 4 input
    channels per group when the input or output channels per group are not
    a multiple of 4 (e.g. ShuffleNet g = 2: 25 in / 100 out per group).
    Groups of up to 4 input channels (SENet-154's stage 2, depthwise-like
    groups) and multiples of 4 run. Measured on every shape from 1 to 12
    channels per group; `tests/export/test_gpu_run.py` pins the boundary so
    a LiteRT upgrade that fixes or moves it is noticed. No upstream report
    was found; the classic delegate splits such convolutions per group.
    """
    return in_per_group > 4 and bool(in_per_group % 4 or out_per_group % 4)


def grouped_convolutions_split(model):
    """The same model with each grouped convolution the GPU accelerator cannot compile split per group.

    A grouped `Conv2D` / `GroupConv2D` for which `gpu_accelerator_crashes_on`
    holds becomes SPLIT -> one `Conv2D` per group -> CONCATENATION: the same
    function and the same multiply-adds, spelled in ops every GPU runtime
    runs (the classic GPU delegate performs this very split internally).

    Args:
        model: a functional Keras 3 model.

    Returns:
        A model sharing `model`'s other layers and weights, or `model`
        itself when nothing needs splitting (or it is not functional).
    """
    import keras

    def replaceable(layer):
        groups = getattr(layer, "groups", 1)
        if not isinstance(layer, keras.layers.Conv2D) or groups <= 1 or layer.data_format != "channels_last":
            return False
        in_per_group, filters = layer.kernel.shape[2], layer.kernel.shape[3]
        return gpu_accelerator_crashes_on(in_per_group, filters // groups)

    if not _is_functional(model) or not any(replaceable(layer) for layer in model.layers):
        return model

    def call(layer, *args, **kwargs):
        if not replaceable(layer):
            return layer(*args, **kwargs)
        x = args[0] if args else kwargs["inputs"]
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        bias = keras.ops.convert_to_numpy(layer.bias) if layer.use_bias else None
        out_per_group = layer.filters // layer.groups
        outputs = []
        for group, part in enumerate(keras.ops.split(x, layer.groups, axis=-1)):
            conv = keras.layers.Conv2D(
                out_per_group,
                layer.kernel_size,
                strides=layer.strides,
                padding=layer.padding,
                dilation_rate=layer.dilation_rate,
                activation=layer.activation,
                use_bias=layer.use_bias,
                name=f"{layer.name}_group{group}",
            )
            outputs.append(conv(part))
            columns = slice(group * out_per_group, (group + 1) * out_per_group)
            conv.set_weights([kernel[..., columns]] + ([bias[columns]] if bias is not None else []))
        return keras.ops.concatenate(outputs, axis=-1)

    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
