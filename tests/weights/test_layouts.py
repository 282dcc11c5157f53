"""Tests for keras_se.weights.layouts: PyTorch <-> Keras tensor layouts.

The numerical tests compare a Keras layer holding converted weights with a
direct numpy evaluation of PyTorch's definition (cross-correlation, output
channel o of group o // (out / groups), depthwise channel o from input
channel o // multiplier). Tolerance 1e-5 absolute: float32 sums of at most
36 products of O(1) numbers.
"""

import keras
import numpy as np
import pytest

from keras_se.layers import GroupConv2D
from keras_se.weights import layouts

ATOL = 1e-5


def _torch_conv(x, weight, groups=1):
    """PyTorch Conv2d (stride 1, no padding) on NHWC `x` with an OIHW weight."""
    n, h, w, cin = x.shape
    cout, cin_g, kh, kw = weight.shape
    out = np.zeros((n, h - kh + 1, w - kw + 1, cout), np.float64)
    cout_g = cout // groups
    for o in range(cout):
        g = o // cout_g
        for c in range(cin_g):
            for i in range(kh):
                for j in range(kw):
                    out[..., o] += weight[o, c, i, j] * x[:, i : i + out.shape[1], j : j + out.shape[2], g * cin_g + c]
    return out


@pytest.mark.parametrize(
    "kind, keras_shape, torch_shape",
    [
        ("conv", (7, 7, 3, 64), (64, 3, 7, 7)),
        ("conv", (3, 3, 4, 128), (128, 4, 3, 3)),
        ("depthwise", (3, 3, 32, 2), (64, 1, 3, 3)),
        ("dense", (512, 1000), (1000, 512)),
        ("vector", (64,), (64,)),
    ],
)
def test_torch_shape(kind, keras_shape, torch_shape):
    assert layouts.torch_shape(kind, keras_shape) == torch_shape


def test_golden_conv_and_dense_transposes():
    weight = np.arange(2 * 3 * 1 * 2).reshape(2, 3, 1, 2)  # (out, in, kh, kw)
    kernel = layouts.to_keras("conv", weight, (1, 2, 3, 2))
    # Keras kernel[kh, kw, in, out] == PyTorch weight[out, in, kh, kw].
    assert kernel[0, 1, 2, 1] == weight[1, 2, 0, 1] == 11
    assert kernel[0, 0, 1, 0] == weight[0, 1, 0, 0] == 2
    dense = layouts.to_keras("dense", np.array([[1, 2, 3], [4, 5, 6]]), (3, 2))
    np.testing.assert_array_equal(dense, [[1, 4], [2, 5], [3, 6]])


def test_golden_depthwise():
    # 2 channels, multiplier 2: PyTorch output channel c * 2 + k.
    weight = np.array([10, 11, 20, 21]).reshape(4, 1, 1, 1)
    kernel = layouts.to_keras("depthwise", weight, (1, 1, 2, 2))
    np.testing.assert_array_equal(kernel[0, 0], [[10, 11], [20, 21]])


@pytest.mark.parametrize(
    "kind, keras_shape",
    [("conv", (3, 3, 4, 8)), ("conv", (1, 1, 16, 4)), ("depthwise", (3, 3, 6, 2)), ("dense", (5, 7)), ("vector", (9,))],
)
def test_round_trip(kind, keras_shape):
    array = np.random.default_rng(0).normal(size=keras_shape).astype("float32")
    torch = layouts.to_torch(kind, array)
    assert torch.shape == layouts.torch_shape(kind, keras_shape)
    np.testing.assert_array_equal(layouts.to_keras(kind, torch, keras_shape), array)


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_grouped_conv_matches_pytorch_definition(groups):
    rng = np.random.default_rng(groups)
    x = rng.normal(size=(1, 6, 6, 8)).astype("float32")
    weight = rng.normal(size=(12, 8 // groups, 3, 3)).astype("float32")
    layer = GroupConv2D(12, 3, groups=groups, use_bias=False) if groups > 1 else keras.layers.Conv2D(12, 3, use_bias=False)
    layer.build(x.shape)
    layer.set_weights([layouts.to_keras("conv", weight, layer.kernel.shape)])
    got = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(got, _torch_conv(x, weight, groups), atol=ATOL)


def test_depthwise_conv_matches_pytorch_definition():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 5, 5, 3)).astype("float32")
    weight = rng.normal(size=(6, 1, 3, 3)).astype("float32")  # groups = 3 channels, multiplier 2
    layer = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False)
    layer.build(x.shape)
    layer.set_weights([layouts.to_keras("depthwise", weight, layer.kernel.shape)])
    got = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(got, _torch_conv(x, weight, groups=3), atol=ATOL)


def test_linear_fills_a_1x1_conv_and_back():
    weight = np.random.default_rng(2).normal(size=(4, 16)).astype("float32")  # nn.Linear(16, 4)
    assert layouts.shapes_match("conv", (1, 1, 16, 4), weight.shape)
    kernel = layouts.to_keras("conv", weight, (1, 1, 16, 4))
    np.testing.assert_array_equal(kernel[0, 0], weight.T)
    assert layouts.shapes_match("dense", (16, 4), (4, 16, 1, 1))
    np.testing.assert_array_equal(layouts.to_keras("dense", weight[..., None, None], (16, 4)), weight.T)


def test_mismatched_shape_is_refused():
    assert not layouts.shapes_match("conv", (3, 3, 4, 8), (8, 4, 1, 1))
    with pytest.raises(ValueError, match=r"does not fit a conv weight.*\(8, 4, 3, 3\)"):
        layouts.to_keras("conv", np.zeros((8, 4, 1, 1)), (3, 3, 4, 8))


def test_unknown_kind():
    with pytest.raises(ValueError, match="kind="):
        layouts.torch_shape("conv3d", (1, 1, 1, 1, 1))
