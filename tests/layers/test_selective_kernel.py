"""Tests for keras_se.layers.selective_kernel."""

import inspect
import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_se.layers import KernelSelect, SelectiveKernel, selective_kernel
from keras_se.layers.selective_kernel import sk_attention_channels, sk_path_geometry

HYPOTHESIS = settings(max_examples=15, deadline=None)
BN_EPS = 1e-5  # PyTorch / timm; the value the layer must use


def _raises_naming(name, value):
    return pytest.raises(ValueError, match=re.escape(f"{name}={value!r}"))


def _randomise(variables, rng):
    """Random non-trivial weights and BN statistics (variance > 0)."""
    for v in variables:
        role = v.path.split("/")[-1]
        if role == "gamma":
            value = rng.uniform(0.5, 1.5, v.shape)
        elif role == "moving_variance":
            value = rng.uniform(0.3, 2.0, v.shape)
        elif role in ("beta", "moving_mean"):
            value = rng.normal(0.0, 0.5, v.shape)
        else:
            value = rng.normal(0.0, 0.4, v.shape)
        v.assign(value.astype("float32"))


def _weights_by_role(variables, prefix=""):
    """{"path0_conv/kernel": array, ...}; `prefix` is stripped from layer names."""
    out = {}
    for v in variables:
        layer, role = v.path.split("/")[-2:]
        out[f"{layer[len(prefix) :]}/{role}"] = np.asarray(v.numpy(), np.float64)
    return out


# --- NumPy reference (Li et al., Selective Kernel Networks, eqs. 1-6) ------------


def _np_conv(x, kernel, stride=1, dilation=1, pad=0, groups=1):
    """Direct NHWC convolution with groups, dilation, stride and symmetric zero pad."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n, h, w, cin = x.shape
    kh, kw, cin_g, cout = kernel.shape
    assert cin_g * groups == cin and cout % groups == 0
    cout_g = cout // groups
    ho = (h - dilation * (kh - 1) - 1) // stride + 1
    wo = (w - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, ho, wo, cout))
    for a in range(kh):
        for b in range(kw):
            rows = slice(a * dilation, a * dilation + stride * (ho - 1) + 1, stride)
            cols = slice(b * dilation, b * dilation + stride * (wo - 1) + 1, stride)
            patch = x[:, rows, cols, :]
            for g in range(groups):
                out[..., g * cout_g : (g + 1) * cout_g] += (
                    patch[..., g * cin_g : (g + 1) * cin_g] @ kernel[a, b, :, g * cout_g : (g + 1) * cout_g]
                )
    return out


def _np_bn(x, w, prefix):
    scale = w[f"{prefix}/gamma"] / np.sqrt(w[f"{prefix}/moving_variance"] + BN_EPS)
    return (x - w[f"{prefix}/moving_mean"]) * scale + w[f"{prefix}/beta"]


def _np_path(x, w, m, kernel_size, dilation, stride, groups):
    pad = dilation * (kernel_size - 1) // 2
    y = _np_conv(x, w[f"path{m}_conv/kernel"], stride, dilation, pad, groups)
    return np.maximum(_np_bn(y, w, f"path{m}_bn"), 0.0)


def _np_sk(x, w, kernels, dilations, stride, groups, split_input=False):
    x = x.astype(np.float64)
    # timm's split_input: torch.split(x, C // M, dim=channels), slice m to path m.
    inputs = np.split(x, len(kernels), axis=-1) if split_input else [x] * len(kernels)
    paths = [_np_path(xm, w, m, k, d, stride, groups) for m, (xm, k, d) in enumerate(zip(inputs, kernels, dilations))]
    u = sum(paths)
    s = u.mean(axis=(1, 2))  # (N, C)
    z = np.maximum(_np_bn(s @ w["fc1/kernel"][0, 0], w, "fc1_bn"), 0.0)
    logits = z @ w["fc2/kernel"][0, 0]  # (N, M*C), path m channel c at m*C + c
    n, channels = s.shape
    a = logits.reshape(n, len(paths), channels)
    a = np.exp(a - a.max(axis=1, keepdims=True))
    a = a / a.sum(axis=1, keepdims=True)
    return sum(a[:, m, None, None, :] * p for m, p in enumerate(paths))


def test_reference_conv_matches_keras_conv():
    # The reference itself, on a case Keras computes without any keras_se code.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 7, 7, 4)).astype("float32")
    conv = keras.layers.Conv2D(6, 3, padding="same", dilation_rate=2, use_bias=False)
    y = np.asarray(conv(x))
    np.testing.assert_allclose(y, _np_conv(x, conv.get_weights()[0], 1, 2, 2), rtol=1e-5, atol=1e-5)
    conv = keras.layers.Conv2D(6, 3, strides=2, padding="valid", use_bias=False)
    np.testing.assert_allclose(np.asarray(conv(x)), _np_conv(x, conv.get_weights()[0], 2), rtol=1e-5, atol=1e-5)


# --- geometry ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        ((2, 3, None), ([3, 3], [1, 2])),
        ((3, 3, None), ([3, 3, 3], [1, 2, 3])),
        ((2, [3, 5], None), ([3, 5], [1, 1])),
        ((3, [3, 5, 7], [1, 1, 2]), ([3, 5, 7], [1, 1, 2])),
        ((2, 3, 2), ([3, 3], [2, 2])),
    ],
)
def test_path_geometry(args, expected):
    assert sk_path_geometry(*args) == expected


@pytest.mark.parametrize(
    "args, expected",
    [((64, 16, None, 32), 32), ((1024, 16, None, 32), 64), ((64, 1, None, 32), 64), ((64, 16, 8, 32), 8)],
)
def test_attention_channels(args, expected):
    assert sk_attention_channels(*args) == expected


# --- shapes --------------------------------------------------------------------

SHAPE_CASES = [
    # (kwargs, input shape, output shape, per-path kernel sizes)
    ({"filters": 16, "reduction": 4}, (2, 6, 6, 8), (2, 6, 6, 16), [3, 3]),
    ({"filters": 16, "num_paths": 3, "reduction": 4}, (1, 6, 5, 8), (1, 6, 5, 16), [3, 3, 3]),
    ({"filters": 16, "groups": 4, "reduction": 4}, (1, 6, 6, 8), (1, 6, 6, 16), [3, 3]),
    ({"filters": 64, "groups": 32}, (1, 5, 5, 32), (1, 5, 5, 64), [3, 3]),
    ({"filters": 64, "groups": 32, "strides": 2}, (1, 7, 7, 32), (1, 4, 4, 64), [3, 3]),
    ({"filters": 16, "strides": 2, "reduction": 4}, (2, 6, 6, 8), (2, 3, 3, 16), [3, 3]),
    ({"filters": 16, "strides": 2, "groups": 4, "reduction": 4}, (1, 7, 6, 8), (1, 4, 3, 16), [3, 3]),
    ({"filters": 8, "kernel_size": [3, 5], "reduction": 4}, (1, 6, 6, 8), (1, 6, 6, 8), [3, 5]),
    ({"filters": 8, "num_paths": 3, "kernel_size": [1, 3, 5], "reduction": 4}, (1, 6, 6, 4), (1, 6, 6, 8), [1, 3, 5]),
    (
        {"filters": 8, "num_paths": 3, "kernel_size": [3, 5, 7], "strides": 2, "reduction": 4},
        (1, 9, 9, 8),
        (1, 5, 5, 8),
        [3, 5, 7],
    ),
    (
        {"filters": 8, "num_paths": 3, "dilation": [1, 2, 4], "strides": 2, "groups": 2, "reduction": 4},
        (1, 8, 8, 8),
        (1, 4, 4, 8),
        [3, 3, 3],
    ),
]


@pytest.mark.parametrize("kwargs, in_shape, out_shape, kernels", SHAPE_CASES)
def test_output_shape(kwargs, in_shape, out_shape, kernels):
    layer = SelectiveKernel(**kwargs)
    y = layer(np.random.default_rng(0).normal(size=in_shape).astype("float32"))
    assert tuple(y.shape) == out_shape
    assert tuple(layer.compute_output_shape(in_shape)) == out_shape
    groups, filters = kwargs.get("groups", 1), kwargs["filters"]
    width = max(filters // kwargs.get("reduction", 16), 32)  # d = max(C / r, L), L = 32
    w = _weights_by_role(layer.weights)
    for m, k in enumerate(kernels):
        assert w[f"path{m}_conv/kernel"].shape == (k, k, in_shape[-1] // groups, filters)
    assert f"path{len(kernels)}_conv/kernel" not in w
    assert w["fc1/kernel"].shape == (1, 1, filters, width)
    assert w["fc2/kernel"].shape == (1, 1, width, len(kernels) * filters)


@pytest.mark.parametrize("strides", [1, 2])
def test_symbolic_unknown_spatial_dims(strides):
    inputs = keras.Input((None, None, 8))
    outputs = SelectiveKernel(8, groups=2, strides=strides, reduction=4)(inputs)
    assert tuple(outputs.shape) == (None, None, None, 8)
    model = keras.Model(inputs, outputs)
    expected = (1, (7 - 1) // strides + 1, (5 - 1) // strides + 1, 8)  # symmetric padding
    assert tuple(model(np.ones((1, 7, 5, 8), "float32")).shape) == expected


def test_reduced_channels_overrides_reduction():
    # "reduced_channels: Explicit d; overrides the formula": the reduction it
    # overrides must not be validated against filters (SqueezeExcite does not).
    layer = SelectiveKernel(8, reduced_channels=4)
    layer(np.ones((1, 4, 4, 8), "float32"))
    assert _weights_by_role(layer.weights)["fc1/kernel"].shape == (1, 1, 8, 4)


# --- config and serialisation ---------------------------------------------------

CONFIG_CASES = [
    {"filters": 16, "reduction": 4},
    {
        "filters": 8,
        "num_paths": 3,
        "kernel_size": [3, 5, 3],
        "dilation": [1, 1, 2],
        "groups": 2,
        "reduction": 2,
        "reduced_channels": 6,
        "min_channels": 4,
    },
    {"filters": 8, "groups": 4, "strides": 2, "reduction": 4.0, "min_channels": 8},
]


@pytest.mark.parametrize("kwargs", CONFIG_CASES)
def test_config_round_trip(kwargs):
    layer = SelectiveKernel(name="sk", **kwargs)
    config = layer.get_config()
    init_args = set(inspect.signature(SelectiveKernel.__init__).parameters) - {"self", "kwargs"}
    assert set(config) == init_args | {"name", "trainable", "dtype"}
    for key, value in kwargs.items():
        assert config[key] == value
    clone = SelectiveKernel.from_config(config)
    assert clone.get_config() == config


@pytest.mark.parametrize("kwargs", CONFIG_CASES)
def test_keras_save_load_safe_mode(kwargs, tmp_path):
    rng = np.random.default_rng(1)
    inputs = keras.Input((6, 6, 8))
    layer = SelectiveKernel(name="sk", **kwargs)
    model = keras.Model(inputs, layer(inputs))
    _randomise(layer.weights, rng)
    path = tmp_path / "sk.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("sk"), SelectiveKernel)
    assert loaded.get_layer("sk").get_config() == layer.get_config()
    x = rng.normal(size=(2, 6, 6, 8)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)))


def test_training_step_updates_weights_and_statistics():
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    inputs = keras.Input((6, 6, 8))
    layer = SelectiveKernel(8, groups=2, reduction=4, min_channels=4, name="sk")
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = _weights_by_role(layer.weights)
    x = rng.normal(size=(4, 6, 6, 8)).astype("float32")
    history = model.fit(x, rng.normal(size=x.shape).astype("float32"), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = _weights_by_role(layer.weights)
    assert before.keys() == after.keys()
    for key in (
        "path0_conv/kernel",
        "path1_conv/kernel",
        "fc1/kernel",
        "fc2/kernel",
        "path0_bn/gamma",
        "fc1_bn/beta",
        "path1_bn/moving_mean",
        "fc1_bn/moving_variance",
    ):
        assert not np.allclose(before[key], after[key]), key


# --- golden --------------------------------------------------------------------

GOLDEN_CASES = [
    # (layer kwargs, input shape, kernels, dilations)
    ({"filters": 8, "groups": 2}, (2, 6, 6, 8), [3, 3], [1, 2]),
    ({"filters": 8, "groups": 2, "strides": 2}, (1, 6, 6, 8), [3, 3], [1, 2]),
    ({"filters": 8, "groups": 2, "strides": 2}, (1, 7, 7, 8), [3, 3], [1, 2]),
    ({"filters": 8, "num_paths": 3, "kernel_size": [3, 5, 3], "dilation": [1, 1, 3]}, (1, 6, 6, 4), [3, 5, 3], [1, 1, 3]),
    ({"filters": 8, "num_paths": 3, "dilation": [1, 2, 4], "groups": 4, "strides": 2}, (1, 6, 6, 8), [3, 3, 3], [1, 2, 4]),
    ({"filters": 8, "kernel_size": [3, 5], "groups": 2, "strides": 2}, (1, 6, 6, 4), [3, 5], [1, 1]),
    ({"filters": 8, "split_input": True}, (2, 6, 6, 6), [3, 3], [1, 2]),
    ({"filters": 8, "split_input": True, "strides": 2, "groups": 2}, (1, 7, 7, 8), [3, 3], [1, 2]),
    ({"filters": 6, "num_paths": 3, "split_input": True, "dilation": [1, 2, 4], "strides": 2}, (1, 6, 6, 9), [3, 3, 3], [1, 2, 4]),
]


@pytest.mark.parametrize("kwargs, in_shape, kernels, dilations", GOLDEN_CASES)
def test_golden_against_numpy(kwargs, in_shape, kernels, dilations):
    rng = np.random.default_rng(4)
    layer = SelectiveKernel(reduction=4, min_channels=4, **kwargs)
    x = rng.normal(size=in_shape).astype("float32")
    layer.build(x.shape)
    _randomise(layer.weights, rng)
    expected = _np_sk(
        x,
        _weights_by_role(layer.weights),
        kernels,
        dilations,
        kwargs.get("strides", 1),
        kwargs.get("groups", 1),
        kwargs.get("split_input", False),
    )
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, in_shape, kernels, dilations", [GOLDEN_CASES[1], GOLDEN_CASES[7]])
def test_float64_policy_computes_in_float64(kwargs, in_shape, kernels, dilations):
    # Against the float64 reference to 1e-10: float32 anywhere inside (a
    # sublayer on the global policy) would miss by ~1e-6.
    rng = np.random.default_rng(6)
    layer = SelectiveKernel(reduction=4, min_channels=4, dtype="float64", **kwargs)
    x = rng.normal(size=in_shape)
    layer.build(x.shape)
    for v in layer.weights:
        role = v.path.split("/")[-1]
        low = 0.3 if role == "moving_variance" else 0.5 if role == "gamma" else -0.5
        v.assign(rng.uniform(low, 1.5, v.shape))
    expected = _np_sk(
        x,
        _weights_by_role(layer.weights),
        kernels,
        dilations,
        kwargs.get("strides", 1),
        kwargs.get("groups", 1),
        kwargs.get("split_input", False),
    )
    y = layer(x, training=False)
    assert keras.backend.standardize_dtype(y.dtype) == "float64"
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("in_size", [6, 7])
def test_strided_dilated_path_is_true_strided_dilated_conv(in_size):
    # Path 1 (3x3, dilation 2) with strides=2 is computed as subsample + conv;
    # it must equal the strided dilated convolution (stride 2, dilation 2,
    # symmetric zero padding 2), computed here directly.
    rng = np.random.default_rng(5)
    inputs = keras.Input((in_size, in_size, 8))
    outputs = selective_kernel(inputs, 8, "sk", groups=2, strides=2, reduction=4)
    model = keras.Model(inputs, outputs)
    _randomise(model.weights, rng)
    probe = keras.Model(inputs, [model.get_layer("sk_path1_relu").output, model.get_layer("sk_path0_relu").output])
    x = rng.normal(size=(1, in_size, in_size, 8)).astype("float32")
    path1, path0 = (np.asarray(t) for t in probe(x, training=False))
    w = _weights_by_role(model.weights, prefix="sk_")
    kernel1 = w["path1_conv/kernel"]
    expected1 = _np_conv(x.astype(np.float64), kernel1, stride=2, dilation=2, pad=2, groups=2)
    expected1 = np.maximum(_np_bn(expected1, w, "path1_bn"), 0.0)
    out = (in_size - 1) // 2 + 1
    assert path1.shape == expected1.shape == (1, out, out, 8)
    np.testing.assert_allclose(path1, expected1, rtol=1e-5, atol=1e-5)
    expected0 = np.maximum(_np_bn(_np_conv(x.astype(np.float64), w["path0_conv/kernel"], 2, 1, 1, 2), w, "path0_bn"), 0.0)
    np.testing.assert_allclose(path0, expected0, rtol=1e-5, atol=1e-5)


def test_functional_matches_layer():
    rng = np.random.default_rng(6)
    kwargs = {"num_paths": 3, "groups": 2, "dilation": [1, 2, 4], "strides": 2, "reduction": 4}
    inputs = keras.Input((6, 6, 8))
    model = keras.Model(inputs, selective_kernel(inputs, 8, "blk", **kwargs))
    layer = SelectiveKernel(8, **kwargs)
    layer.build((None, 6, 6, 8))
    _randomise(model.weights, rng)
    # Same variables by name (the orders differ: attribute order vs graph order).
    functional = _weights_by_role(model.weights, prefix="blk_")
    assert sorted(functional) == sorted(_weights_by_role(layer.weights))
    for v in layer.weights:
        v.assign(functional["/".join(v.path.split("/")[-2:])].astype("float32"))
    x = rng.normal(size=(2, 6, 6, 8)).astype("float32")
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), np.asarray(model(x, training=False)), rtol=1e-6, atol=1e-6)


# --- properties ----------------------------------------------------------------


@HYPOTHESIS
@given(
    num_paths=st.integers(2, 4),
    channels=st.integers(1, 6),
    height=st.integers(1, 4),
    log_scale=st.floats(-3.0, 4.0),
    seed=st.integers(0, 2**16),
)
def test_kernel_select_weights_sum_to_one(num_paths, channels, height, log_scale, seed):
    rng = np.random.default_rng(seed)
    paths = [np.ones((2, height, 3, channels), "float32")] * num_paths
    logits = (rng.normal(size=(2, 1, 1, num_paths * channels)) * 10.0**log_scale).astype("float32")
    out = np.asarray(KernelSelect()(paths + [logits]))
    np.testing.assert_allclose(out, np.ones_like(paths[0]), rtol=1e-5)


@HYPOTHESIS
@given(
    fill=st.sampled_from([0.0, 1e4, -1e4]),
    noise=st.booleans(),
    num_paths=st.sampled_from([2, 3]),
    strides=st.sampled_from([1, 2]),
)
def test_no_nan(fill, noise, num_paths, strides):
    dilation = [1, 2, 4][:num_paths]
    layer = SelectiveKernel(8, num_paths=num_paths, dilation=dilation, strides=strides, groups=2, reduction=4)
    x = np.full((2, 5, 5, 8), fill, "float32")
    if noise:
        x = x * np.random.default_rng(0).uniform(0.5, 1.5, x.shape).astype("float32")
    for training in (False, True):
        assert np.all(np.isfinite(np.asarray(layer(x, training=training))))


# --- bad arguments -----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name, value",
    [
        ({"filters": 8, "num_paths": 1}, "num_paths", 1),
        ({"filters": 8, "num_paths": 0}, "num_paths", 0),
        ({"filters": 0}, "filters", 0),
        ({"filters": 8, "groups": 3}, "groups", 3),
        ({"filters": 8, "groups": 0}, "groups", 0),
        ({"filters": 8, "kernel_size": [3, 5, 7]}, "kernel_size", [3, 5, 7]),
        ({"filters": 8, "num_paths": 3, "kernel_size": [3, 5]}, "kernel_size", [3, 5]),
        ({"filters": 8, "kernel_size": 4}, "kernel_size", 4),
        ({"filters": 8, "kernel_size": [3, 4]}, "kernel_size", [3, 4]),
        ({"filters": 8, "dilation": [1]}, "dilation", [1]),
        ({"filters": 8, "reduction": 0}, "reduction", 0),
        ({"filters": 8, "reduction": -2.0}, "reduction", -2.0),
        ({"filters": 8, "strides": 0}, "strides", 0),
        ({"filters": 8, "num_paths": 3, "strides": 2}, "dilation", [1, 2, 3]),
        ({"filters": 8, "reduced_channels": 0}, "reduced_channels", 0),
        ({"filters": 8, "min_channels": 0}, "min_channels", 0),
        ({"filters": 8, "split_input": "yes"}, "split_input", "yes"),
    ],
)
def test_bad_arguments_raise(kwargs, name, value):
    kwargs = {"reduction": 4, **kwargs}
    with _raises_naming(name, value):
        SelectiveKernel(**kwargs)
    inputs = keras.Input((6, 6, 8))
    filters = kwargs.pop("filters")
    with _raises_naming(name, value):
        selective_kernel(inputs, filters, "sk", **kwargs)


def test_groups_not_dividing_input_channels_raises_at_build():
    layer = SelectiveKernel(8, groups=4, reduction=4)  # 4 divides filters
    with pytest.raises(ValueError, match=r"groups=4") as info:
        layer(np.ones((1, 6, 6, 6), "float32"))
    assert "6" in str(info.value)
    with pytest.raises(ValueError, match=r"groups=4"):
        selective_kernel(keras.Input((6, 6, 6)), 8, "sk", groups=4, reduction=4)


def test_split_input_needs_channels_divisible_by_paths_and_groups():
    with pytest.raises(ValueError, match=r"split_input needs input channels \(6\) divisible by num_paths. Received: num_paths=4"):
        SelectiveKernel(8, num_paths=4, kernel_size=3, dilation=1, split_input=True, reduction=4)(np.ones((1, 6, 6, 6), "float32"))
    # 8 input channels split in two: 4 per path, which groups=8 does not divide.
    with pytest.raises(ValueError, match=r"each path \(4\). Received: groups=8"):
        selective_kernel(keras.Input((6, 6, 8)), 8, "sk", groups=8, split_input=True, reduction=4)


def test_wrong_input_rank_raises():
    with pytest.raises(ValueError, match=re.escape("input_shape=(2, 6, 8)")):
        SelectiveKernel(8, reduction=4)(np.ones((2, 6, 8), "float32"))
