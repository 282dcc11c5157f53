"""Tests for keras_se.layers.namespace: one model description, two Kerases.

tfmot is never imported here: importing it flips `tf.keras` to tf_keras.
"""

import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tf_keras

from keras_se.layers import Flavour, flavour, primitives, selective_kernel, squeeze_excite
from keras_se.layers.namespace import as_flavour


def _randomise(variables, rng):
    """Random weights and non-trivial BN statistics, shared by both models."""
    values = []
    for v in variables:
        role = v.name.split("/")[-1].split(":")[0]
        if role in ("gamma", "moving_variance"):
            values.append(rng.uniform(0.5, 1.5, tuple(v.shape)))
        else:
            values.append(rng.normal(0.0, 0.5, tuple(v.shape)))
    return [value.astype("float32") for value in values]


def _weight_names(model):
    # Keras 3: "se_reduce/kernel"; tf_keras: "se_reduce/kernel:0".
    return [w.path if hasattr(w, "path") else w.name.split(":")[0] for w in model.weights]


def _build(name, block_options):
    fl = flavour(name)
    inputs = fl.Input((6, 6, 8))
    x = inputs
    if "sk" in block_options:
        x = selective_kernel(x, 8, "sk", flavour=name, **block_options["sk"])
    if "se" in block_options:
        x = squeeze_excite(x, "se", flavour=name, **block_options["se"])
    return fl.Model(inputs, x)


GRAPH_CASES = {
    "se_sigmoid": {"se": {"reduction": 4}},
    "se_hard_sigmoid_avgmax": {"se": {"reduction": 2, "gate": "hard_sigmoid", "squeeze": "avgmax", "activation": "silu"}},
    "se_max_no_bias": {"se": {"reduced_channels": 3, "squeeze": "max", "use_bias": False}},
    "sk_groups": {"sk": {"groups": 2, "reduction": 4}},
    "sk_strided_3paths": {"sk": {"num_paths": 3, "dilation": [1, 2, 4], "groups": 4, "strides": 2, "reduction": 4}},
    "sk_split_input": {"sk": {"split_input": True, "groups": 2, "strides": 2, "reduction": 4}},
    "sk_then_se_hard": {
        "sk": {"groups": 2, "strides": 2, "reduction": 4, "min_channels": 4},
        "se": {"reduction": 4, "gate": "hard_sigmoid"},
    },
}


@pytest.mark.parametrize("options", GRAPH_CASES.values(), ids=GRAPH_CASES.keys())
def test_tf_keras_graph_matches_keras(options):
    k3 = _build("keras", options)
    k2 = _build("tf_keras", options)
    assert isinstance(k3, keras.Model) and isinstance(k2, tf_keras.Model)
    assert not isinstance(k2, keras.Model)
    # Same weighted layers with the same names; the tf_keras flavour spells
    # SK's select, the avg-max squeeze and n-ary adds as several weightless
    # layers (which may reorder layers of equal depth).
    weighted = sorted((layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.weights]) for layer in k3.layers if layer.weights)
    assert weighted == sorted(
        (layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.weights]) for layer in k2.layers if layer.weights
    )
    spelt = {"KernelSelect", "Average"} | ({"Add"} if options.get("sk", {}).get("num_paths", 2) > 2 else set())
    k2_names = {layer.name for layer in k2.layers}
    for layer in k3.layers[1:]:
        assert layer.name in k2_names  # a spelt layer keeps its name on its last step
        if type(layer).__name__ not in spelt:
            assert type(k2.get_layer(layer.name)).__name__ == type(layer).__name__
    assert not {type(layer).__name__ for layer in k2.layers} & {"KernelSelect", "Average"}
    assert sorted(_weight_names(k3)) == sorted(_weight_names(k2))
    assert len(k3.weights) > 0
    if "sk" in options and options["sk"].get("groups", 1) > 1:
        conv = k2.get_layer("sk_path0_conv")
        assert isinstance(conv, tf_keras.layers.Conv2D) and isinstance(conv, primitives._GroupConvMixin)
        assert conv.groups == options["sk"]["groups"]

    rng = np.random.default_rng(0)
    k3.set_weights(_randomise(k3.weights, rng))
    for layer in k3.layers:
        if layer.weights:
            k2.get_layer(layer.name).set_weights(layer.get_weights())
    x = rng.normal(size=(2, 6, 6, 8)).astype("float32")
    y3 = np.asarray(k3(x, training=False))
    y2 = np.asarray(k2(x, training=False))
    assert y3.shape == y2.shape
    np.testing.assert_allclose(y2, y3, rtol=1e-5, atol=1e-5)


def test_hard_sigmoid_gate_is_relu6_form_in_both():
    # tf_keras' own "hard_sigmoid" is clip(0.2x + 0.5): the gate must not use it.
    options = {"se": {"reduced_channels": 1, "gate": "hard_sigmoid"}}
    for name in ("keras", "tf_keras"):
        model = _build(name, options)
        weights = [np.zeros(w.shape, "float32") for w in model.weights]
        weights[-1][:] = 2.0  # expand bias: pre-gate value 2 for every channel
        model.set_weights(weights)
        y = np.asarray(model(np.ones((1, 6, 6, 8), "float32"), training=False))
        np.testing.assert_allclose(y, 5.0 / 6.0, rtol=1e-6)  # relu6(2 + 3) / 6, not 0.9


def test_tf_keras_primitive_twins():
    fl = flavour("tf_keras")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 2, 3, 12)).astype("float32")
    expected = x.reshape(1, 2, 3, 4, 3).transpose(0, 1, 2, 4, 3).reshape(1, 2, 3, 12)
    np.testing.assert_array_equal(np.asarray(fl.layers.ChannelShuffle(4)(x)), expected)
    paths = [rng.normal(size=(1, 2, 2, 3)).astype("float32") for _ in range(2)]
    logits = rng.normal(size=(1, 1, 1, 6)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(fl.layers.KernelSelect(name="select")(paths + [logits])),  # spelt as tf_keras layers
        np.asarray(flavour("keras").layers.KernelSelect()(paths + [logits])),
        rtol=1e-6,
    )
    for cls, args in ((fl.layers.ChannelShuffle, (4,)), (fl.layers.GroupConv2D, (8, 3))):
        assert issubclass(cls, tf_keras.layers.Layer) and not issubclass(cls, keras.layers.Layer)
        kwargs = {"groups": 2} if cls is fl.layers.GroupConv2D else {}
        layer = cls(*args, **kwargs, name="twin")
        clone = tf_keras.layers.deserialize(tf_keras.layers.serialize(layer))
        assert type(clone) is cls
        assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match=re.escape("groups=5")):
        fl.layers.ChannelShuffle(5)(x)


def test_flavour_contents_and_cache():
    k3 = flavour("keras")
    assert k3 is flavour("keras") and k3.name == "keras" and flavour().name == "keras"
    assert k3.layers.GroupConv2D is primitives.GroupConv2D
    assert k3.layers.Conv2D is keras.layers.Conv2D
    assert k3.Input is keras.Input and k3.Model is keras.Model
    tk = flavour("tf_keras")
    assert tk is flavour("tf_keras") and isinstance(tk, Flavour)
    assert tk.layers.Conv2D is tf_keras.layers.Conv2D
    assert tk.Input is tf_keras.Input and tk.Model is tf_keras.Model
    assert as_flavour(tk) is tk and as_flavour("tf_keras") is tk
    assert repr(tk) == "Flavour('tf_keras')"


def test_tf_keras_twins_are_made_once():
    # The twins are registered with tf_keras; a second set (from a differently
    # spelt call) would take over the registry, and models built with the
    # first set would deserialise to other classes.
    twins = flavour("tf_keras")
    names = [f"keras_se>{n}" for n in ("GroupConv2D", "ChannelShuffle", "ChannelSlice")]
    registry = tf_keras.utils.get_custom_objects()
    saved = {n: registry[n] for n in names}
    try:
        assert flavour(name="tf_keras") is twins
        for name in names:
            assert registry[name] is getattr(twins.layers, name.split(">")[1])
    finally:  # leave the registry as the other tests expect it
        registry.update(saved)


@pytest.mark.parametrize("value", ["torch", "Keras", "", None])
def test_unknown_flavour_raises(value):
    with pytest.raises(ValueError, match=re.escape(f"flavour={value!r}")):
        flavour(value)
    with pytest.raises(ValueError, match=re.escape(f"flavour={value!r}")):
        squeeze_excite(keras.Input((4, 4, 8)), "se", flavour=value)
    with pytest.raises(ValueError, match=re.escape(f"flavour={value!r}")):
        selective_kernel(keras.Input((4, 4, 8)), 8, "sk", flavour=value, reduction=4)


def test_tf_keras_flavour_does_not_import_tfmot():
    # In a fresh process (other test modules may import tfmot on purpose):
    # the tf_keras flavour lives with the quantisation code, so Keras 3
    # models of every layer kind build without tf_keras; building tf_keras
    # graphs must not import tfmot or flip tf.keras.
    code = textwrap.dedent(
        """
        import sys
        import keras, tensorflow as tf
        import keras_se
        from keras_se.layers import flavour, selective_kernel, squeeze_excite
        for attention in ("se", "eca", "cbam"):
            keras_se.create_model("se_resnet18", input_shape=(32, 32, 3), classes=4, attention=attention)
        keras_se.create_model("timm:skresnet18", input_shape=(32, 32, 3), classes=4)
        keras_se.create_model("mobilenetv3_small", input_shape=(32, 32, 3), classes=4, alpha=0.25)
        loaded = sorted(m for m in ("tf_keras", "keras_se.quantization") if m in sys.modules)
        assert loaded == [], f"building Keras 3 models imported {loaded}"
        fl = flavour("tf_keras")
        x = fl.Input((4, 4, 8))
        fl.Model(x, squeeze_excite(selective_kernel(x, 8, "sk", groups=2, reduction=4, flavour=fl), "se", reduction=4, flavour=fl))
        assert "tensorflow_model_optimization" not in sys.modules, "tfmot imported"
        assert tf.keras.layers.Dense is keras.layers.Dense, "tf.keras is no longer Keras 3"
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
