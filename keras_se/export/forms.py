"""Graph forms that keep converted files on a runtime's fast or working path.

- `average_pools_as_depthwise`, `hard_swish_for_int8`: int8 graphs stay on
  XNNPACK, LiteRT's CPU fast path (`to_tflite(..., quantize="int8")`).
- `grouped_convolutions_for_gpu`: GPU presets run correctly on LiteRT's GPU accelerator
  (`to_tflite(..., gpu=True)`).

Each is applied to the graph `to_tflite` converts, never to the user's model;
the converted file is verified against the user's model as always.
"""

import numpy as np

from keras_se.keras_graph import is_functional


def _rewritten(model, replaceable, replace):
    """`model` with each layer for which `replaceable(layer)` holds called as `replace(layer, x)`.

    The other layers and their weights are shared, not copied. Returns
    `model` itself when nothing is replaceable or it is not functional:
    clone_model's call_function works on functional models only (Sequential
    and subclassed models have no operation graph to rewire).
    """
    import keras

    functional = isinstance(model, keras.Model) and is_functional(model)
    if not functional or not any(replaceable(layer) for layer in model.layers):
        return model

    def call(layer, *args, **kwargs):
        if not replaceable(layer):
            return layer(*args, **kwargs)
        return replace(layer, args[0] if args else kwargs["inputs"])

    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)


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
        return type(layer) is keras.layers.AveragePooling2D and layer.padding == "valid" and layer.data_format == "channels_last"

    def replace(layer, x):
        height, width = layer.pool_size
        depthwise = keras.layers.DepthwiseConv2D(
            (height, width), strides=layer.strides, padding="valid", use_bias=False, name=f"{layer.name}_depthwise"
        )
        y = depthwise(x)
        depthwise.set_weights([np.full((height, width, x.shape[-1], 1), 1.0 / (height * width), "float32")])
        return y

    return _rewritten(model, replaceable, replace)


def hard_swish_for_int8(model):
    """The same model with every `Activation("hard_swish")` in ops XNNPACK runs in int8.

    XNNPACK has no int8 HARD_SWISH (its delegate takes the op in float
    only), so in a full-integer file each one runs on LiteRT's own int8
    kernel between XNNPACK partitions: keras.applications' MobileNetV3Large
    is slower in int8 than in float32. The converter fuses
    `x * relu6(x + 3) / 6` back into HARD_SWISH. This form computes
    `x * relu6(x + 3)`, six times hard-swish (ADD with a fused RELU6, MUL:
    no pattern to fuse), and moves the 1/6 into the layers that read it:
    through linear layers (padding, global pooling, flatten, dropout, the
    SE scale's multiply) into the kernel of the next convolution or dense
    layer (a copy with the kernel divided by 6; exact in float, per-channel
    int8 scales absorb it). Where a value cannot carry the factor (an add,
    a BN, an activation, a model output) a 1x1 depthwise convolution by 1/6
    restores it (a `Rescaling` on other than 4-D tensors).
    Two element-wise passes per hard-swish instead of three: measured in
    BENCHMARKS.md, "MobileNetV3 in int8". Float files keep HARD_SWISH,
    XNNPACK's fastest float form.

    Args:
        model: a functional Keras 3 model.

    Returns:
        A model sharing `model`'s other layers and weights, or `model`
        itself when it has no hard-swish activation (or is not functional).
    """
    import keras

    from keras_se.layers.activations import is_builtin_hard_swish

    functional = isinstance(model, keras.Model) and hasattr(model, "_operations_by_depth")
    if not functional or not any(is_builtin_hard_swish(layer) for layer in model.layers):
        return model
    sixfold = {}  # id -> tensor: outputs holding 6x what the original model computes there
    passes = (keras.layers.ZeroPadding2D, keras.layers.GlobalAveragePooling2D, keras.layers.Flatten, keras.layers.Dropout)
    absorbs = (keras.layers.DepthwiseConv2D, keras.layers.Conv2D, keras.layers.Dense)

    def mark(tensor):
        sixfold[id(tensor)] = tensor
        return tensor

    def restore(tensor, name):
        if id(tensor) not in sixfold:
            return tensor
        if len(tensor.shape) != 4:
            return keras.layers.Rescaling(1.0 / 6.0, name=name)(tensor)
        # A 1x1 depthwise convolution, not a MUL: the converter would fuse
        # `x * relu6(x + 3) * (1/6)` back into HARD_SWISH.
        scale = keras.layers.DepthwiseConv2D(1, use_bias=False, name=name)
        y = scale(tensor)
        scale.set_weights([np.full((1, 1, tensor.shape[-1], 1), 1.0 / 6.0, "float32")])
        return y

    def call(layer, *args, **kwargs):
        inputs = args[0] if args else kwargs.pop("inputs")
        args = args[1:]
        flat = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        scaled = [id(t) in sixfold for t in flat]
        if is_builtin_hard_swish(layer):
            x = restore(inputs, f"{layer.name}_sixth")
            gate = keras.layers.ReLU(6.0, name=f"{layer.name}_relu6")(
                keras.layers.Rescaling(1.0, offset=3.0, name=f"{layer.name}_shift")(x)
            )
            return mark(keras.layers.Multiply(name=f"{layer.name}_times6")([x, gate]))
        if not any(scaled):
            return layer(inputs, *args, **kwargs)
        if len(flat) == 1 and type(layer) in passes:
            return mark(layer(inputs, *args, **kwargs))
        if len(flat) == 2 and sum(scaled) == 1 and type(layer) is keras.layers.Multiply:
            return mark(layer(inputs, *args, **kwargs))
        if len(flat) == 1 and type(layer) in absorbs:
            folded = type(layer).from_config({**layer.get_config(), "name": f"{layer.name}_folded"})
            y = folded(inputs, *args, **kwargs)
            weights = layer.get_weights()
            folded.set_weights([weights[0] / 6.0] + weights[1:])
            return y
        restored = [restore(t, f"{layer.name}_input{i}_sixth") for i, t in enumerate(flat)]
        return layer(restored if isinstance(inputs, (list, tuple)) else restored[0], *args, **kwargs)

    rewritten = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    if not any(id(t) in sixfold for t in rewritten.outputs):
        return rewritten
    outputs = [restore(t, f"output{i}_sixth") for i, t in enumerate(rewritten.outputs)]
    inputs = rewritten.inputs if len(rewritten.inputs) > 1 else rewritten.inputs[0]
    return keras.Model(inputs, outputs if len(outputs) > 1 else outputs[0], name=model.name)


MAX_SPLIT_GROUPS = 8


def gpu_accelerator_fault(in_per_group, out_per_group):
    """How LiteRT's GPU accelerator fails a grouped CONV_2D: "crash", "wrong" or None.

    ai-edge-litert 2.3's GPU accelerator (ML Drift over WebGPU) computes a
    grouped convolution correctly only when the input and output channels
    per group are both multiples of 4 (or both 1). Otherwise it either dies
    with SIGILL while compiling (more than 4 input channels per group, e.g.
    ShuffleNet g = 2: 25 in / 100 out) or, worse, runs "fully accelerated"
    and returns wrong outputs (relative error about 1; e.g. 2 in / 4 out,
    SENet-154's first stage). Measured on 19 shapes x 2 group counts;
    `tests/export/test_gpu_run.py` pins every case, so a LiteRT upgrade
    that fixes or moves it is noticed. No upstream report was found.
    """
    if (in_per_group % 4 == 0 and out_per_group % 4 == 0) or in_per_group == out_per_group == 1:
        return None
    return "crash" if in_per_group > 4 else "wrong"


def _merge_factor(groups, in_per_group, out_per_group):
    """The smallest k dividing `groups` that makes k * channels per group multiples of 4, or None."""
    return next(
        (k for k in range(2, groups) if groups % k == 0 and (k * in_per_group) % 4 == 0 and (k * out_per_group) % 4 == 0),
        None,
    )


def grouped_convolutions_for_gpu(model):
    """The same model with every grouped convolution the GPU accelerator gets wrong re-spelled.

    Each grouped `Conv2D` / `GroupConv2D` for which `gpu_accelerator_fault`
    is not None becomes the same function in a form the accelerator
    computes correctly:
      - up to `MAX_SPLIT_GROUPS` groups (ShuffleNet g = 2, 4, 8): SPLIT ->
        one `Conv2D` per group -> CONCATENATION, the same multiply-adds (the
        classic GPU delegate performs this very split internally);
      - more groups (SENet-154's 64): k neighbouring groups merged into one
        whose kernel is block-diagonal (zeros between the original groups),
        with k the smallest making the channels per group multiples of 4:
        one CONV_2D, k times that layer's multiply-adds;
      - otherwise split.

    Args:
        model: a functional Keras 3 model.

    Returns:
        A model sharing `model`'s other layers and weights, or `model`
        itself when nothing needs re-spelling (or it is not functional).
    """
    import keras

    from keras_se.layers import GroupConv2D

    def replaceable(layer):
        groups = getattr(layer, "groups", 1)
        if not isinstance(layer, keras.layers.Conv2D) or groups <= 1 or layer.data_format != "channels_last":
            return False
        return gpu_accelerator_fault(layer.kernel.shape[2], layer.filters // groups) is not None

    def conv(layer, filters, groups, name):
        options = dict(
            strides=layer.strides,
            padding=layer.padding,
            dilation_rate=layer.dilation_rate,
            activation=layer.activation,
            use_bias=layer.use_bias,
            name=name,
        )
        return (
            GroupConv2D(filters, layer.kernel_size, groups=groups, **options)
            if groups > 1
            else keras.layers.Conv2D(filters, layer.kernel_size, **options)
        )

    def replace(layer, x):
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        bias = [keras.ops.convert_to_numpy(layer.bias)] if layer.use_bias else []
        groups, in_per_group = layer.groups, kernel.shape[2]
        out_per_group = layer.filters // groups
        k = _merge_factor(groups, in_per_group, out_per_group) if groups > MAX_SPLIT_GROUPS else None
        if k:
            merged = conv(layer, layer.filters, groups // k, f"{layer.name}_merged{k}")
            y = merged(x)
            block = np.zeros((*kernel.shape[:2], k * in_per_group, layer.filters), kernel.dtype)
            for group in range(groups):
                rows = slice((group % k) * in_per_group, (group % k + 1) * in_per_group)
                columns = slice(group * out_per_group, (group + 1) * out_per_group)
                block[:, :, rows, columns] = kernel[..., columns]
            merged.set_weights([block] + bias)
            return y
        outputs = []
        for group, part in enumerate(keras.ops.split(x, groups, axis=-1)):
            single = conv(layer, out_per_group, 1, f"{layer.name}_group{group}")
            outputs.append(single(part))
            columns = slice(group * out_per_group, (group + 1) * out_per_group)
            single.set_weights([kernel[..., columns]] + [b[columns] for b in bias])
        return keras.ops.concatenate(outputs, axis=-1)

    return _rewritten(model, replaceable, replace)
