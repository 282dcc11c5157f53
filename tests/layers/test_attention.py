"""The attention registry, ECA and CBAM: golden values from NumPy transcriptions of timm's modules."""

import math

import keras
import numpy as np
import pytest

import keras_se
from keras_se.layers import CBAM, EfficientChannelAttention, attention_kinds, create_attention, register_attention
from keras_se.layers.attention import eca_kernel_size


@pytest.fixture(autouse=True)
def _registry_restored(monkeypatch):
    # Kinds a test registers are gone after it.
    import keras_se.layers.attention as attention

    monkeypatch.setattr(attention, "_KINDS", dict(attention._KINDS))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_builtin_kinds_are_registered():
    assert {"se", "eca", "cbam", "sk"} <= set(attention_kinds())
    assert isinstance(create_attention("eca", 64, name="a"), EfficientChannelAttention)
    assert isinstance(create_attention("cbam", 64, name="b"), CBAM)
    assert isinstance(create_attention("se", 64), keras_se.layers.SqueezeExcite)
    assert create_attention("sk", 64).filters == 64


@pytest.mark.parametrize(
    "args, message",
    [
        (("Bad-Name", lambda channels, name=None: None), "name must be lower-case"),
        ((None, lambda channels, name=None: None), "name must be lower-case"),
        (("fine", "not callable"), "factory must be callable"),
        (("se", lambda channels, name=None: None), "already registered"),
    ],
)
def test_register_attention_refuses_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        register_attention(*args)


def test_an_unknown_kind_names_the_registered_ones():
    # It used to be a TypeError from inside the check's own message (None and str do not sort).
    with pytest.raises(
        ValueError, match=r"attention must be None or a registered attention kind \('cbam', 'eca'.*'se', 'sk'.*Received: attention='nope'"
    ):
        keras_se.create_model("resnet18", attention="nope", input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="must return a Keras layer"):
        register_attention("returns_none", lambda channels, name=None: None)
        create_attention("returns_none", 8)


@pytest.mark.parametrize("channels, k", [(16, 3), (64, 3), (128, 5), (256, 5), (512, 5), (1024, 5), (2048, 7)])
def test_eca_kernel_size_is_the_papers_formula(channels, k):
    # |log2(C) / 2 + 1 / 2| to the next odd number (ECA-Net eq. 12, gamma 2, b 1), at least 3: by hand.
    t = int((math.log2(channels) + 1) / 2)
    assert eca_kernel_size(channels) == k == max(t if t % 2 else t + 1, 3)


def test_eca_matches_timm_ecamodule_in_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 4, 16)).astype("float32")
    layer = EfficientChannelAttention(kernel_size=5)
    layer(x)
    w = rng.normal(size=5).astype("float32")  # timm's conv.weight[0, 0, :]
    layer.conv.set_weights([w.reshape(1, 5, 1, 1)])
    # timm EcaModule: y = conv1d(mean over H, W; padding (k - 1) // 2, no bias); x * sigmoid(y).
    pooled = x.mean(axis=(1, 2))
    padded = np.pad(pooled, ((0, 0), (2, 2)))
    conv = np.stack([(padded[:, c : c + 5] * w).sum(axis=1) for c in range(16)], axis=1)
    expected = x * _sigmoid(conv)[:, None, None, :]
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-6)


def test_cbam_matches_timm_cbammodule_in_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 5, 16)).astype("float32")
    layer = CBAM(reduction=4)
    layer(x)
    w1, b1 = rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=4).astype("float32")
    w2, b2 = rng.normal(size=(4, 16)).astype("float32"), rng.normal(size=16).astype("float32")
    ws = rng.normal(size=(7, 7, 2)).astype("float32")
    gamma, beta, mean, var = 1.5, 0.2, 0.1, 2.0
    layer.fc1.set_weights([w1.reshape(1, 1, 16, 4), b1])
    layer.fc2.set_weights([w2.reshape(1, 1, 4, 16), b2])
    layer.spatial_conv.set_weights([ws.reshape(7, 7, 2, 1)])
    layer.spatial_bn.set_weights([np.array([v], "float32") for v in (gamma, beta, mean, var)])

    def mlp(z):
        return np.maximum(z @ w1 + b1, 0) @ w2 + b2

    # timm CbamModule: channel gate from mean and max through one MLP, then a
    # 7x7 conv (no bias) + BN of [mean, max] over channels, both sigmoid gates.
    y = x * _sigmoid(mlp(x.mean(axis=(1, 2))) + mlp(x.max(axis=(1, 2))))[:, None, None, :]
    pooled = np.pad(np.stack([y.mean(axis=-1), y.max(axis=-1)], axis=-1), ((0, 0), (3, 3), (3, 3), (0, 0)))
    s = np.zeros(y.shape[:3], "float32")
    for i in range(6):
        for j in range(5):
            s[:, i, j] = (pooled[:, i : i + 7, j : j + 7, :] * ws).sum(axis=(1, 2, 3))
    s = (s - mean) / np.sqrt(var + 1e-5) * gamma + beta
    expected = y * _sigmoid(s)[..., None]
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (EfficientChannelAttention, {"kernel_size": 4}, "kernel_size must be odd"),
        (EfficientChannelAttention, {"kernel_size": 0}, "kernel_size must be a positive int"),
        (EfficientChannelAttention, {"gamma": 0}, "gamma must not be 0"),
        (EfficientChannelAttention, {"gate": "tanh"}, "gate must be one of"),
        (CBAM, {"spatial_kernel_size": 6}, "spatial_kernel_size must be odd"),
        (CBAM, {"reduction": -1}, "reduction must be a positive number"),
    ],
)
def test_bad_options_name_the_argument(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_a_model_with_eca_and_cbam_saves_and_loads(tmp_path):
    x = np.random.default_rng(2).normal(size=(1, 32, 32, 3)).astype("float32")
    for kind in ("eca", "cbam"):
        model = keras_se.create_model(
            "se_resnet18", attention=kind, attention_options={"gate": "hard_sigmoid"}, input_shape=(32, 32, 3), classes=3
        )
        path = tmp_path / f"{kind}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        assert loaded.get_config()["attention"] == kind and loaded.get_config()["attention_options"] == {"gate": "hard_sigmoid"}
        np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-6, atol=1e-7)
