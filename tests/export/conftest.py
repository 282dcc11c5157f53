import keras
import numpy as np
import pytest


@pytest.fixture(scope="module")
def tiny_se_model():
    """A small SE/SK network with non-trivial BN statistics and logits output."""
    from keras_se.layers import selective_kernel, squeeze_excite

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = squeeze_excite(x, "se", reduction=4)
    x = selective_kernel(x, 16, "sk", groups=4, reduced_channels=8)
    x = squeeze_excite(x, "se2", reduction=4, gate="hard_sigmoid")
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    model.set_weights(
        [
            rng.uniform(0.5, 1.5, w.shape).astype("float32") if "variance" in w.path else rng.normal(0, 0.3, w.shape).astype("float32")
            for w in model.weights
        ]
    )
    return model
