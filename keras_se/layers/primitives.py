"""Export-friendly building blocks: grouped convolution, channel shuffle,
channel slice and the SK path selection.

Each layer's logic lives in a mixin, so the same code serves Keras 3 (the
classes below) and tf_keras (the twins made in `keras_se.quantization.flavour`
for quantisation-aware training). On the TensorFlow backend, and in tf_keras,
it is spelt in TensorFlow ops, the form the TFLite and ONNX converters are
checked against; on JAX and PyTorch the same computation goes through
`keras.ops` (grouped convolutions through Keras' own), with the same weights.
TensorFlow is imported only where it is used.
"""

import keras

from keras_se.layers._utils import check_positive_int, check_rank4


def _tensorflow(layer):
    """TensorFlow's ops module when `layer` runs on TensorFlow (a tf_keras twin, or the TensorFlow backend), else None."""
    if isinstance(layer, keras.layers.Layer) and keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf


class _GroupConvMixin:
    def __init__(self, *args, data_format=None, **kwargs):
        # TensorFlow has no grouped NCHW convolution on CPU, and TFLite and the
        # GPU delegate are NHWC: channels_last only.
        if data_format not in (None, "channels_last"):
            raise ValueError(f"GroupConv2D supports channels_last only. Received: data_format={data_format!r}")
        super().__init__(*args, data_format="channels_last", **kwargs)

    # Keras 3 (and tf_keras) run grouped convolutions inside a jit_compile
    # tf.function. tf2onnx cannot see through that call: it stays a
    # PartitionedCall and onnxruntime rejects the file
    # (https://github.com/onnx/tensorflow-onnx/issues/2099). TensorFlow 2.21
    # runs a grouped tf.nn.convolution on CPU directly, so call it.
    def convolution_op(self, inputs, kernel):
        tf = _tensorflow(self)
        if tf is None:
            return super().convolution_op(inputs, kernel)  # Keras' grouped convolution
        padding = self.padding.upper() if isinstance(self.padding, str) else self.padding
        return tf.nn.convolution(
            inputs,
            kernel,
            strides=list(self.strides),
            padding=padding,
            dilations=list(self.dilation_rate),
        )

    def _jit_compiled_convolution_op(self, inputs, kernel):
        # tf_keras routes groups > 1 here; keep it off XLA for the same reason.
        return self.convolution_op(inputs, kernel)


def _check_divides_channels(layer, arg, value, input_shape):
    """A 4-D input whose channels `value` (the layer's argument `arg`) divides."""
    shape = check_rank4(type(layer).__name__, input_shape)
    if shape[-1] % value:
        raise ValueError(f"{arg} must divide the input channels ({shape[-1]}). Received: {arg}={value}")


class _ChannelShuffleMixin:
    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        self.groups = check_positive_int("groups", groups)

    def build(self, input_shape):
        _check_divides_channels(self, "groups", self.groups, input_shape)
        super().build(input_shape)

    def call(self, inputs):
        # [N, H*W, g, C/g] -> swap the last two -> [N, H, W, C]: the same
        # permutation as ShuffleNet's 5-D reshape/transpose, kept 4-D so the
        # GPU delegate accepts it.
        ops = _tensorflow(self) or keras.ops
        static = inputs.shape
        dynamic = ops.shape(inputs)
        height = static[1] if static[1] is not None else dynamic[1]
        width = static[2] if static[2] is not None else dynamic[2]
        channels = static[3]
        x = ops.reshape(inputs, [-1, height * width, self.groups, channels // self.groups])
        x = ops.transpose(x, [0, 1, 3, 2])
        return ops.reshape(x, [-1, height, width, channels])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"groups": self.groups})
        return config


class _ChannelSliceMixin:
    def __init__(self, index, num_slices, **kwargs):
        super().__init__(**kwargs)
        self.num_slices = check_positive_int("num_slices", num_slices)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < self.num_slices:
            raise ValueError(f"index must be an int in [0, num_slices) = [0, {self.num_slices}). Received: index={index!r}")
        self.index = index

    def build(self, input_shape):
        _check_divides_channels(self, "num_slices", self.num_slices, input_shape)
        super().build(input_shape)

    def call(self, inputs):
        # A static 4-D slice: one TFLite STRIDED_SLICE (GPU delegate: yes).
        size = inputs.shape[-1] // self.num_slices
        return inputs[:, :, :, self.index * size : (self.index + 1) * size]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // self.num_slices)

    def get_config(self):
        config = super().get_config()
        config.update({"index": self.index, "num_slices": self.num_slices})
        return config


class _KernelSelectMixin:
    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 3:
            raise ValueError(
                f"{type(self).__name__} expects [path_1, ..., path_M, logits] with M >= 2. Received: input_shape={input_shape}"
            )
        paths, logits = input_shape[:-1], input_shape[-1]
        shapes = [check_rank4(type(self).__name__, s) for s in paths]
        channels = shapes[0][-1]
        if any(s[1:] != shapes[0][1:] for s in shapes):
            raise ValueError(f"All paths must have the same shape. Received: {shapes}")
        logits = check_rank4(type(self).__name__, logits)
        if logits[1:] != (1, 1, len(paths) * channels):
            raise ValueError(f"logits must have shape (batch, 1, 1, {len(paths) * channels}). Received: {logits}")
        super().build(input_shape)

    def call(self, inputs):
        paths, logits = inputs[:-1], inputs[-1]
        num_paths, channels = len(paths), paths[0].shape[-1]
        # Logits are path-major (path m, channel c at m*C + c), as timm's
        # SelectiveKernelAttn, so ported fc weights need no permutation.
        tf = _tensorflow(self)
        if tf is not None:
            attn = tf.nn.softmax(tf.reshape(logits, [-1, 1, num_paths, channels]), axis=2)
            weights = tf.split(attn, num_paths, axis=2)
        else:
            attn = keras.ops.softmax(keras.ops.reshape(logits, [-1, 1, num_paths, channels]), axis=2)
            weights = keras.ops.split(attn, num_paths, axis=2)
        out = paths[0] * weights[0]
        for path, weight in zip(paths[1:], weights[1:]):
            out = out + path * weight
        return out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])


@keras.saving.register_keras_serializable(package="keras_se")
class GroupConv2D(_GroupConvMixin, keras.layers.Conv2D):
    """2-D grouped convolution that exports to TFLite and ONNX.

    Same arguments and weights as `keras.layers.Conv2D(groups=...)` (kernel
    shape `(kh, kw, in_channels // groups, filters)`), but the convolution is
    a plain `tf.nn.convolution` on the TensorFlow backend: it converts to one
    TFLite `CONV_2D` and one ONNX `Conv` with `group=groups`, where Keras' own
    grouped convolution does not export through tf2onnx. On JAX and PyTorch
    it is Keras' own grouped convolution.

    Args:
        filters: int. Output channels; divisible by `groups`.
        kernel_size: int or tuple of 2 ints.
        groups: int, defaults to 1. Input channels must be divisible by it.
        **kwargs: every other `keras.layers.Conv2D` argument.

    Example:

    >>> layer = GroupConv2D(64, 3, groups=32, padding="same")
    >>> layer(keras.ops.ones((1, 8, 8, 64))).shape
    TensorShape([1, 8, 8, 64])

    Reference:
        - [Xie et al., Aggregated Residual Transformations for Deep Neural
          Networks (ResNeXt)](https://arxiv.org/abs/1611.05431)
    """


@keras.saving.register_keras_serializable(package="keras_se")
class ChannelShuffle(_ChannelShuffleMixin, keras.layers.Layer):
    """ShuffleNet's channel shuffle, kept 4-D for the GPU delegate.

    Channel `g * (C / groups) + i` moves to `i * groups + g`. Implemented as
    reshape `[N, H*W, groups, C/groups]` -> transpose -> reshape, so no 5-D
    tensor appears in the TFLite graph.

    Args:
        groups: int. Number of channel groups; must divide the channels.

    Example:

    >>> x = keras.ops.reshape(keras.ops.arange(6, dtype="float32"), (1, 1, 1, 6))
    >>> ChannelShuffle(2)(x)[0, 0, 0]
    <tf.Tensor: ... numpy=array([0., 3., 1., 4., 2., 5.], dtype=float32)>

    Reference:
        - [Zhang et al., ShuffleNet](https://arxiv.org/abs/1707.01083)
    """


@keras.saving.register_keras_serializable(package="keras_se")
class ChannelSlice(_ChannelSliceMixin, keras.layers.Layer):
    """Slice `index` of `num_slices` equal slices along the channels.

    `x[..., index * C / num_slices : (index + 1) * C / num_slices]`, as
    `torch.split(x, C // num_slices, dim=1)[index]`: timm's split-input
    Selective Kernel feeds each path one slice. No weights; exports as one
    TFLite `STRIDED_SLICE`.

    Args:
        index: int. Which slice, from 0.
        num_slices: int. Number of equal slices; must divide the channels.

    Example:

    >>> x = keras.ops.reshape(keras.ops.arange(6, dtype="float32"), (1, 1, 1, 6))
    >>> ChannelSlice(1, 3)(x)[0, 0, 0]
    <tf.Tensor: ... numpy=array([2., 3.], dtype=float32)>
    """


@keras.saving.register_keras_serializable(package="keras_se")
class KernelSelect(_KernelSelectMixin, keras.layers.Layer):
    """The "select" step of Selective Kernel: softmax over paths, weighted sum.

    Takes `[path_1, ..., path_M, logits]`, each path `(N, H, W, C)` and the
    logits `(N, 1, 1, M * C)` path-major, and returns
    `sum_m softmax_m(logits)[m, c] * path_m`. No weights.

    Example:

    >>> paths = [keras.ops.ones((1, 4, 4, 8)), keras.ops.zeros((1, 4, 4, 8))]
    >>> KernelSelect()(paths + [keras.ops.zeros((1, 1, 1, 16))])[0, 0, 0, 0]
    <tf.Tensor: ... numpy=0.5>

    Reference:
        - [Li et al., Selective Kernel Networks](https://arxiv.org/abs/1903.06586)
    """
