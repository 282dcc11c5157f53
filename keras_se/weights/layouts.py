"""Tensor layouts between PyTorch and Keras.

PyTorch stores a convolution kernel as (out, in / groups, kh, kw), a
depthwise kernel as (channels * multiplier, 1, kh, kw) and a linear layer as
(out, in). Keras stores them as (kh, kw, in / groups, out),
(kh, kw, channels, multiplier) and (in, out). Biases and BatchNorm vectors are
the same in both. PyTorch's grouped convolution and Keras' (`groups=` or
`GroupConv2D`) both give group g the input channels
[g * in / groups, (g + 1) * in / groups) and the output channels
[g * out / groups, (g + 1) * out / groups), so a grouped kernel needs the same
transpose as a dense one.
"""

import numpy as np

KINDS = ("conv", "depthwise", "dense", "vector", "conv1d")


def _check_kind(kind):
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}. Received: kind={kind!r}")


def torch_shape(kind, keras_shape):
    """The PyTorch shape of a Keras weight of `keras_shape`.

    Args:
        kind: str. `"conv"` (Conv2D and grouped Conv2D kernels),
            `"depthwise"` (DepthwiseConv2D kernels), `"dense"` (Dense
            kernels), `"vector"` (biases and BatchNorm vectors) or
            `"conv1d"` (a PyTorch Conv1d kernel (out, in, k) held as a
            (1, k, in, out) Conv2D kernel: ECA's).
        keras_shape: tuple of ints.

    Returns:
        tuple of ints.

    Example:

    >>> torch_shape("conv", (3, 3, 4, 128))
    (128, 4, 3, 3)
    """
    _check_kind(kind)
    shape = tuple(int(d) for d in keras_shape)
    if kind == "conv":
        kh, kw, cin, cout = shape
        return (cout, cin, kh, kw)
    if kind == "depthwise":
        kh, kw, channels, multiplier = shape
        return (channels * multiplier, 1, kh, kw)
    if kind == "dense":
        cin, cout = shape
        return (cout, cin)
    if kind == "conv1d":
        _, k, cin, cout = shape
        return (cout, cin, k)
    return shape


def shapes_match(kind, keras_shape, shape):
    """Whether a PyTorch tensor of `shape` can fill a Keras weight.

    Exact layouts match, and so do a linear layer and a 1x1 convolution of the
    same widths (an FC stored as either): (out, in) for a (1, 1, in, out)
    Conv2D kernel, (out, in, 1, 1) for an (in, out) Dense kernel.
    """
    expected = torch_shape(kind, keras_shape)
    shape = tuple(int(d) for d in shape)
    if shape == expected:
        return True
    if kind == "conv" and expected[2:] == (1, 1):
        return shape == expected[:2]
    if kind == "dense":
        return shape == expected + (1, 1)
    return False


def to_keras(kind, tensor, keras_shape):
    """Converts a PyTorch tensor to the Keras layout of `keras_shape`.

    Args:
        kind: str. As in `torch_shape`.
        tensor: array in PyTorch layout (any float dtype).
        keras_shape: tuple of ints. The Keras weight's shape.

    Returns:
        A numpy array of `keras_shape`, dtype of `tensor`.

    Example:

    >>> to_keras("dense", np.zeros((1000, 512)), (512, 1000)).shape
    (512, 1000)
    """
    array = np.asarray(tensor)
    keras_shape = tuple(int(d) for d in keras_shape)
    if not shapes_match(kind, keras_shape, array.shape):
        raise ValueError(
            f"tensor shape {tuple(array.shape)} does not fit a {kind} weight of Keras shape "
            f"{keras_shape} (PyTorch shape {torch_shape(kind, keras_shape)}). "
            f"Received: tensor.shape={tuple(array.shape)}"
        )
    if kind == "conv":
        # A linear layer's (out, in) is a 1x1 kernel's (out, in, 1, 1).
        array = array.reshape(torch_shape(kind, keras_shape))
        return np.ascontiguousarray(array.transpose(2, 3, 1, 0))
    if kind == "depthwise":
        kh, kw, channels, multiplier = keras_shape
        # PyTorch output channel c * multiplier + k is Keras' [..., c, k].
        array = array.reshape(channels, multiplier, kh, kw)
        return np.ascontiguousarray(array.transpose(2, 3, 0, 1))
    if kind == "dense":
        return np.ascontiguousarray(array.reshape(keras_shape[::-1]).T)
    if kind == "conv1d":
        return np.ascontiguousarray(array.transpose(2, 1, 0)).reshape(keras_shape)
    return array.reshape(keras_shape)


def to_torch(kind, array):
    """Converts a Keras weight to PyTorch layout; the inverse of `to_keras`.

    Example:

    >>> to_torch("conv", np.zeros((7, 7, 3, 64))).shape
    (64, 3, 7, 7)
    """
    _check_kind(kind)
    array = np.asarray(array)
    if kind == "conv":
        return np.ascontiguousarray(array.transpose(3, 2, 0, 1))
    if kind == "depthwise":
        kh, kw, channels, multiplier = array.shape
        return np.ascontiguousarray(array.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw))
    if kind == "dense":
        return np.ascontiguousarray(array.T)
    if kind == "conv1d":
        return np.ascontiguousarray(array[0].transpose(2, 1, 0))
    return array
