"""Tests for keras_se.layers.squeeze_excite (and make_divisible in _utils)."""

import inspect
import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_se.layers import SqueezeExcite, make_divisible, make_se_layers
from keras_se.layers.squeeze_excite import se_gate, se_reduced_channels

HYPOTHESIS = settings(max_examples=15, deadline=None)


def _raises_naming(name, value):
    """pytest.raises(ValueError) whose message names the argument and value."""
    return pytest.raises(ValueError, match=re.escape(f"{name}={value!r}"))


def _randomise(layer, rng, scale=0.5):
    """Non-trivial weights (biases included) so every term of the maths counts."""
    layer.set_weights([rng.normal(0.0, scale, w.shape).astype("float32") for w in layer.get_weights()])


def _weights_by_role(layer):
    """{"reduce/kernel": array, ...} from get_weights, keyed by variable path."""
    return {"/".join(v.path.split("/")[-2:]): w for v, w in zip(layer.weights, layer.get_weights())}


# --- NumPy reference (Hu et al., eqs. 2-4; timm's add_maxpool and hard_sigmoid) ---


def _np_se(u, weights, squeeze="avg", gate="sigmoid", use_bias=True):
    u = u.astype(np.float64)
    mean = u.mean(axis=(1, 2))
    if squeeze == "avg":
        z = mean
    elif squeeze == "max":
        z = u.max(axis=(1, 2))
    else:
        z = 0.5 * mean + 0.5 * u.max(axis=(1, 2))
    w1 = weights["reduce/kernel"][0, 0].astype(np.float64)  # (C, C/r)
    w2 = weights["expand/kernel"][0, 0].astype(np.float64)  # (C/r, C)
    h = z @ w1 + (weights["reduce/bias"] if use_bias else 0.0)
    h = np.maximum(h, 0.0)
    a = h @ w2 + (weights["expand/bias"] if use_bias else 0.0)
    if gate == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-a))
    else:
        s = np.clip(a + 3.0, 0.0, 6.0) / 6.0
    return s[:, None, None, :] * u


# --- widths -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"value": 4, "divisor": 8}, 8),  # min_value defaults to divisor
        ({"value": 37.5, "divisor": 8}, 40),  # int(41.5) // 8 * 8 = 40 >= 0.9 * 37.5
        ({"value": 36, "divisor": 8}, 40),  # int(40) // 8 * 8 = 40
        ({"value": 35.9, "divisor": 8}, 40),  # int(39.9) // 8 * 8 = 32 < 0.9 * 35.9 -> bumped
        ({"value": 10, "divisor": 8}, 16),  # 8 < 0.9 * 10 = 9 -> bumped to 16
        ({"value": 10, "divisor": 8, "round_limit": 0.0}, 8),  # never bumped
        ({"value": 3, "divisor": 8, "min_value": 2}, 10),  # max(2, 0) = 2 < 0.9 * 3 -> 2 + 8
        ({"value": 96 * 0.25, "divisor": 8}, 24),
        ({"value": 4.0, "divisor": 1, "round_limit": 0.0}, 4),
        ({"value": 2.5, "divisor": 1, "round_limit": 0.0}, 3),  # int(3.0) = 3 (round half up)
    ],
)
def test_make_divisible_golden(kwargs, expected):
    assert make_divisible(**kwargs) == expected


def _timm_make_divisible(v, divisor=8, min_value=None, round_limit=0.9):
    # timm/layers/helpers.py, verbatim.
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


@HYPOTHESIS
@given(
    value=st.floats(0.5, 2048.0),
    divisor=st.sampled_from([1, 4, 8, 16]),
    min_value=st.one_of(st.none(), st.integers(1, 32)),
    round_limit=st.sampled_from([0.0, 0.9]),
)
def test_make_divisible_matches_timm(value, divisor, min_value, round_limit):
    got = make_divisible(value, divisor, min_value, round_limit)
    assert isinstance(got, int)
    assert got == _timm_make_divisible(value, divisor, min_value, round_limit)


@pytest.mark.parametrize(
    "args, kwargs, expected",
    [
        ((64, 16), {}, 4),
        ((64, 16), {"divisor": 8}, 8),  # timm SEModule: make_divisible(4, 8) = 8
        ((256, 16), {"divisor": 8}, 16),
        ((64, 16), {"reduced_channels": 7}, 7),  # override wins
        ((8, 16), {"reduced_channels": 3}, 3),  # override wins even when r > C
        ((64, 4), {"divisor": 8, "min_channels": 4}, 16),
        # divisor=1: the official SENet code's floor(C / r), bounded below by min_channels.
        ((24, 16), {}, 1),  # floor(1.5)
        ((40, 16), {}, 2),  # floor(2.5)
        ((216, 16), {}, 13),  # SE-ShuffleNet's 216-channel branch: floor(13.5)
        ((16, 16), {}, 1),
        ((64, 16), {"min_channels": 8}, 8),
        ((64, 16), {"min_channels": 2}, 4),
        ((100, 2.5), {}, 40),  # float reduction
    ],
)
def test_se_reduced_channels(args, kwargs, expected):
    assert se_reduced_channels(*args, **kwargs) == expected


# --- shapes -------------------------------------------------------------------

SHAPE_CASES = [
    # (kwargs, channels, expected bottleneck width)
    ({}, 32, 2),
    ({"reduction": 4}, 32, 8),
    ({"reduction": 8, "divisor": 8}, 32, 8),
    ({"reduction": 16, "divisor": 4, "min_channels": 12}, 32, 12),
    ({"reduced_channels": 5}, 32, 5),
    ({"reduction": 4, "use_bias": False}, 16, 4),
    ({"reduction": 4, "activation": "silu"}, 16, 4),
    ({"reduction": 4, "activation": "relu6"}, 16, 4),
    ({"reduction": 4, "activation": "gelu"}, 16, 4),
    ({"reduction": 4, "gate": "hard_sigmoid"}, 16, 4),
    ({"reduction": 4, "squeeze": "max"}, 16, 4),
    ({"reduction": 4, "squeeze": "avgmax", "gate": "hard_sigmoid"}, 16, 4),
    ({"reduction": 2.5}, 10, 4),
    ({"reduction": 16}, 24, 1),  # floor(24 / 16)
    ({"reduction": 16, "min_channels": 3}, 24, 3),
]


@pytest.mark.parametrize("kwargs, channels, width", SHAPE_CASES)
def test_output_shape_and_bottleneck_width(kwargs, channels, width):
    layer = SqueezeExcite(**kwargs)
    x = np.random.default_rng(0).normal(size=(2, 5, 3, channels)).astype("float32")
    y = layer(x)
    assert tuple(y.shape) == x.shape
    assert tuple(layer.compute_output_shape(x.shape)) == x.shape
    weights = _weights_by_role(layer)
    assert weights["reduce/kernel"].shape == (1, 1, channels, width)
    assert weights["expand/kernel"].shape == (1, 1, width, channels)
    use_bias = kwargs.get("use_bias", True)
    assert ("reduce/bias" in weights) is use_bias
    assert len(layer.get_weights()) == (4 if use_bias else 2)


def test_symbolic_unknown_spatial_dims():
    inputs = keras.Input((None, None, 16))
    outputs = SqueezeExcite(reduction=4)(inputs)
    assert tuple(outputs.shape) == (None, None, None, 16)
    model = keras.Model(inputs, outputs)
    assert model(np.ones((1, 3, 7, 16), "float32")).shape == (1, 3, 7, 16)


# --- config and serialisation ---------------------------------------------------

CONFIG_CASES = [
    {},
    {"reduction": 4, "divisor": 8, "min_channels": 8, "use_bias": False},
    {"reduced_channels": 6, "activation": "silu", "gate": "hard_sigmoid", "squeeze": "avgmax"},
]


@pytest.mark.parametrize("kwargs", CONFIG_CASES)
def test_config_round_trip(kwargs):
    layer = SqueezeExcite(name="se", **kwargs)
    config = layer.get_config()
    init_args = set(inspect.signature(SqueezeExcite.__init__).parameters) - {"self", "kwargs"}
    base_keys = {"name", "trainable", "dtype"}  # keras.layers.Layer.get_config
    assert set(config) == init_args | base_keys
    for key, value in kwargs.items():
        assert config[key] == value
    clone = SqueezeExcite.from_config(config)
    assert clone.get_config() == config


@pytest.mark.parametrize("kwargs", CONFIG_CASES)
def test_keras_save_load_safe_mode(kwargs, tmp_path):
    rng = np.random.default_rng(1)
    inputs = keras.Input((5, 5, 16))
    layer = SqueezeExcite(name="se", **kwargs)
    model = keras.Model(inputs, layer(inputs))
    _randomise(layer, rng)
    path = tmp_path / "se.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = rng.normal(size=(2, 5, 5, 16)).astype("float32")
    assert isinstance(loaded.get_layer("se"), SqueezeExcite)
    assert loaded.get_layer("se").get_config() == layer.get_config()
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


def test_training_step_updates_weights():
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(2)
    inputs = keras.Input((4, 4, 8))
    layer = SqueezeExcite(reduction=2, name="se")
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    before = layer.get_weights()
    x = rng.normal(size=(4, 4, 4, 8)).astype("float32")
    history = model.fit(x, rng.normal(size=x.shape).astype("float32"), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = layer.get_weights()
    assert len(after) == 4
    for old, new in zip(before, after):
        assert not np.allclose(old, new), "every SE weight must receive a gradient"


# --- golden --------------------------------------------------------------------


@pytest.mark.parametrize("squeeze", ["avg", "max", "avgmax"])
@pytest.mark.parametrize("gate", ["sigmoid", "hard_sigmoid"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_golden_against_numpy(squeeze, gate, use_bias):
    rng = np.random.default_rng(3)
    layer = SqueezeExcite(reduction=4, squeeze=squeeze, gate=gate, use_bias=use_bias)
    u = rng.normal(size=(2, 5, 4, 12)).astype("float32")
    layer.build(u.shape)
    # Large enough that the hard-sigmoid clips on both sides for some channels.
    _randomise(layer, rng, scale=1.5)
    expected = _np_se(u, _weights_by_role(layer), squeeze=squeeze, gate=gate, use_bias=use_bias)
    np.testing.assert_allclose(np.asarray(layer(u)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("squeeze", ["avg", "avgmax"])
def test_float64_policy_computes_in_float64(squeeze):
    # Against the float64 reference to 1e-12: float32 anywhere inside (a
    # sublayer on the global policy) would miss by ~1e-7. Sigmoid gate only:
    # Keras' Rescaling casts its Python-float scale through a float32 tensor,
    # so hard_sigmoid's 1/6 is float32-exact under every policy.
    gate = "sigmoid"
    rng = np.random.default_rng(5)
    layer = SqueezeExcite(reduction=4, squeeze=squeeze, gate=gate, dtype="float64")
    u = rng.normal(size=(2, 5, 4, 12))
    layer.build(u.shape)
    layer.set_weights([rng.normal(0.0, 1.5, w.shape) for w in layer.get_weights()])
    expected = _np_se(u, _weights_by_role(layer), squeeze=squeeze, gate=gate)
    y = layer(u)
    assert keras.backend.standardize_dtype(y.dtype) == "float64"
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-12, atol=1e-12)


def test_golden_hand_computed():
    # C = 2, one reduced channel, identity-like weights: computed by hand.
    # u[..., 0] = [1, 3] (mean 2, max 3), u[..., 1] = [-1, -1] (mean -1).
    layer = SqueezeExcite(reduced_channels=1, gate="hard_sigmoid")
    u = np.array([[[[1.0, -1.0], [3.0, -1.0]]]], "float32")  # (1, 1, 2, 2)
    layer.build(u.shape)
    # h = relu(1 * z0 + 0 * z1 + 0) = 2; a = [1 * h + 0, -1 * h + 1] = [2, -1]
    layer.set_weights(
        [
            np.array([1.0, 0.0], "float32").reshape(1, 1, 2, 1),
            np.zeros(1, "float32"),
            np.array([1.0, -1.0], "float32").reshape(1, 1, 1, 2),
            np.array([0.0, 1.0], "float32"),
        ]
    )
    # s = clip(a + 3, 0, 6) / 6 = [5/6, 2/6]
    expected = u * np.array([5.0 / 6.0, 2.0 / 6.0], "float32")
    np.testing.assert_allclose(np.asarray(layer(u)), expected, rtol=1e-6)


# --- properties ----------------------------------------------------------------


@HYPOTHESIS
@given(
    channels=st.integers(2, 24),
    gate=st.sampled_from(["sigmoid", "hard_sigmoid"]),
    squeeze=st.sampled_from(["avg", "max", "avgmax"]),
    log_scale=st.floats(-2.0, 4.0),
    seed=st.integers(0, 2**16),
)
def test_gate_in_unit_interval(channels, gate, squeeze, log_scale, seed):
    rng = np.random.default_rng(seed)
    parts = make_se_layers(keras.layers, channels, "p", reduced_channels=2, gate=gate, squeeze=squeeze)
    x = (rng.normal(size=(2, 3, 3, channels)) * 10.0**log_scale).astype("float32")
    s = np.asarray(se_gate(parts, x))
    assert s.shape == (2, 1, 1, channels)
    assert np.all(np.isfinite(s))
    assert s.min() >= 0.0 and s.max() <= 1.0


@HYPOTHESIS
@given(
    batch=st.integers(1, 3),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    channels=st.integers(4, 32),
    squeeze=st.sampled_from(["avg", "max", "avgmax"]),
)
def test_output_shape_equals_input_shape(batch, height, width, channels, squeeze):
    layer = SqueezeExcite(reduction=4, squeeze=squeeze)
    x = np.ones((batch, height, width, channels), "float32")
    assert tuple(layer(x).shape) == x.shape


@HYPOTHESIS
@given(
    fill=st.sampled_from([0.0, 1e4, -1e4]),
    gate=st.sampled_from(["sigmoid", "hard_sigmoid"]),
    squeeze=st.sampled_from(["avg", "max", "avgmax"]),
    activation=st.sampled_from(["relu", "silu", "gelu", "tanh", "elu"]),
    noise=st.booleans(),
)
def test_no_nan_on_zero_and_large_inputs(fill, gate, squeeze, activation, noise):
    layer = SqueezeExcite(reduction=4, gate=gate, squeeze=squeeze, activation=activation)
    x = np.full((2, 4, 4, 16), fill, "float32")
    if noise:
        x = x * np.random.default_rng(0).uniform(0.5, 1.5, x.shape).astype("float32")
    y = np.asarray(layer(x))
    assert np.all(np.isfinite(y))
    assert np.all(np.abs(y) <= np.abs(x) + 1e-6)  # a gate in [0, 1] never amplifies


# --- bad arguments -----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name, value",
    [
        ({"reduction": 0}, "reduction", 0),
        ({"reduction": -4}, "reduction", -4),
        ({"reduction": float("nan")}, "reduction", float("nan")),
        ({"reduced_channels": 0}, "reduced_channels", 0),
        ({"divisor": 0}, "divisor", 0),
        ({"min_channels": -1}, "min_channels", -1),
        ({"use_bias": "yes"}, "use_bias", "yes"),
        ({"gate": "tanh"}, "gate", "tanh"),
        ({"squeeze": "sum"}, "squeeze", "sum"),
        ({"activation": "mish"}, "activation", "mish"),
    ],
)
def test_bad_arguments_raise(kwargs, name, value):
    with _raises_naming(name, value):
        SqueezeExcite(**kwargs)
    with _raises_naming(name, value):
        make_se_layers(keras.layers, 16, "se", **kwargs)


def test_reduction_larger_than_channels_raises_at_build():
    layer = SqueezeExcite(reduction=32)  # fine until the channels are known
    with pytest.raises(ValueError, match=r"reduction=32") as info:
        layer(np.ones((1, 4, 4, 16), "float32"))
    assert "16" in str(info.value)


def test_wrong_input_rank_raises():
    with pytest.raises(ValueError, match=re.escape("input_shape=(2, 8, 16)")):
        SqueezeExcite(reduction=4)(np.ones((2, 8, 16), "float32"))
    with pytest.raises(ValueError, match=re.escape("input_shape=(None, 8, 16)")):
        SqueezeExcite(reduction=4)(keras.Input((8, 16)))
