"""Tests for keras_se.layers.activations: hard-swish's int8 spelling is the same function."""

import keras
import numpy as np
import pytest

from keras_se.layers import flavour
from keras_se.layers.activations import apply_hard_swish_int8, hard_swish_int8_layers, is_builtin_hard_swish

X = np.array([-5.0, -3.0, -1.5, 0.0, 1.0, 2.5, 3.0, 7.0], "float32")
# x * relu6(x + 3) / 6 by hand (timm's F.hardswish).
EXPECTED = np.array([0.0, 0.0, -0.375, 0.0, 2.0 / 3.0, 2.5 * 5.5 / 6.0, 3.0, 7.0], "float32")


@pytest.mark.parametrize("name", ["keras", "tf_keras"])
def test_flavour_hard_swish_is_timms(name):
    fl = flavour(name)
    inputs = fl.Input((2, 2, 2))
    model = fl.Model(inputs, fl.layers.HardSwish(name="act")(inputs))
    y = model(X.reshape(1, 2, 2, 2))
    np.testing.assert_allclose(np.asarray(y).ravel(), EXPECTED, rtol=1e-6, atol=1e-7)
    # Keras 3 keeps the builtin (one HARD_SWISH op); tf_keras has none and spells it in layers.
    types = {type(layer).__name__ for layer in model.layers}
    assert types == ({"InputLayer", "Activation"} if name == "keras" else {"InputLayer", "Rescaling", "ReLU", "Multiply"})


def test_int8_spelling_and_builtin_agree():
    parts = hard_swish_int8_layers(keras.layers, "act")
    assert [layer.name for layer in parts.values()] == ["act_sixth", "act_shift", "act_relu6", "act"]
    np.testing.assert_allclose(np.asarray(apply_hard_swish_int8(parts, X)), EXPECTED, rtol=1e-6, atol=1e-7)
    assert is_builtin_hard_swish(keras.layers.Activation("hard_swish"))
    assert not is_builtin_hard_swish(keras.layers.Activation("relu")) and not is_builtin_hard_swish(parts["relu6"])
