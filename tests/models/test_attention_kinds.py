"""Every family takes any registered attention kind, a user's included, without editing a builder."""

import math

import keras
import numpy as np
import pytest

import keras_se
from keras_se.layers import register_attention

# One SE model of every family class, at its smallest input.
FAMILIES = {
    "se_resnet18": dict(input_shape=(32, 32, 3)),
    "se_mobilenet": dict(input_shape=(32, 32, 3), alpha=0.25),
    "se_shufflenet_g3": dict(input_shape=(32, 32, 3), scale=0.5),
    "mobilenetv3_small": dict(input_shape=(32, 32, 3)),
    "se_vgg16": dict(input_shape=(32, 32, 3), include_top=False, pooling="avg"),
    "se_bn_inception": dict(input_shape=(64, 64, 3)),
    "se_inception_resnet_v2": dict(input_shape=(75, 75, 3)),
}


class ChannelScale(keras.layers.Layer):
    """A user's attention: one learned scale per channel (registered below, in this file only)."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

    def call(self, x):
        return x * self.scale


@pytest.fixture
def channel_scale(monkeypatch):
    import keras_se.layers.attention as attention

    monkeypatch.setattr(attention, "_KINDS", dict(attention._KINDS))
    register_attention("channel_scale", lambda channels, name=None, **options: ChannelScale(name=name, **options))
    return "channel_scale"


def _learned(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def _attention_blocks(model, suffix):
    return [layer for layer in model.layers if layer.name.endswith(suffix)]


# The two Inception families (the largest graphs) in the large run.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.large) if "inception" in n else n for n in FAMILIES])
def test_a_kind_registered_here_goes_where_se_goes_in_every_family(name, channel_scale):
    se = keras_se.create_model(name, classes=5, **FAMILIES[name])
    model = keras_se.create_model(name, classes=5, attention=channel_scale, **FAMILIES[name])
    blocks = _attention_blocks(model, "_channel_scale")
    # One per SE block, at the same place (its layer name is the SE block's prefix).
    se_prefixes = sorted({layer.name.rsplit("_se_", 1)[0] for layer in se.layers if "_se_" in layer.name})
    assert sorted(b.name.removesuffix("_channel_scale") for b in blocks) == se_prefixes
    assert all(isinstance(b, ChannelScale) for b in blocks)
    # Its parameters: one per channel of each block, over the plain twin's.
    assert _learned(model) - _learned(model.plain_twin()) == sum(b.scale.shape[0] for b in blocks) > 0
    x = np.random.default_rng(0).uniform(0, 1, (1, *model.input_shape[1:])).astype("float32")
    assert np.isfinite(np.asarray(model(x))).all()


def test_resnet50_with_cbam_and_eca_have_the_papers_counts():
    plain = _learned(keras_se.ResNet50())
    se = _learned(keras_se.SEResNet50())
    # CBAM (Woo et al., Table 2: ResNet-50 + CBAM 28.09 M): SE's MLP, plus per
    # block a 7x7 conv of 2 maps (98) and its BN (2): 16 blocks x 100 over SE-ResNet-50.
    assert _learned(keras_se.create_model("se_resnet50", attention="cbam")) == se + 16 * 100 == 28_089_624
    # ECA: k weights per block, k = 5 for 256, 512 and 1024 channels, 7 for 2048
    # (eca_kernel_size by hand): 3 x 5 + 4 x 5 + 6 x 5 + 3 x 7 = 86 over ResNet-50.
    assert _learned(keras_se.create_model("se_resnet50", attention="eca")) == plain + 86


def test_se_positions_apply_to_every_kind():
    for position in ("pre", "post", "identity", "after_3x3"):
        model = keras_se.create_model("se_resnet18", attention="eca", se_position=position, input_shape=(32, 32, 3), classes=3)
        assert len(_attention_blocks(model, "_eca")) == 8


def test_attention_options_reach_the_layer_and_bad_ones_are_refused():
    model = keras_se.create_model("se_resnet18", attention="eca", attention_options={"kernel_size": 7}, input_shape=(32, 32, 3))
    assert {b.conv.kernel.shape for b in _attention_blocks(model, "_eca")} == {(1, 7, 1, 1)}
    with pytest.raises(ValueError, match="attention_options must be a dict"):
        keras_se.create_model("se_resnet18", attention="eca", attention_options=[7], input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        keras_se.create_model("se_resnet18", attention="eca", attention_options={"kernel_size": 4}, input_shape=(32, 32, 3))


def test_qat_flavour_refuses_kinds_it_cannot_quantise(channel_scale):
    from keras_se.models.resnet import ResNetModel
    from keras_se.quantization.flavour import tf_keras_model

    model = keras_se.create_model("se_resnet18", attention=channel_scale, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="supports attention='se', 'eca', 'cbam' or None. Received: attention='channel_scale'"):
        tf_keras_model(ResNetModel, model.get_config())


@pytest.mark.parametrize(
    "width, options",
    [
        (5, {"reduction": 4}),
        # An unknown width takes the Permute spelling of the channel-wise pools.
        (None, {"reduced_channels": 3, "use_bias": False, "activation": "gelu", "gate": "hard_sigmoid", "spatial_kernel_size": 3}),
    ],
)
def test_cbam_spelt_as_tf_keras_layers_is_the_cbam_layer(width, options):
    # What QAT quantises (cbam_as_layers, tf_keras) against the CBAM layer
    # (tests/layers/test_attention.py checks it against timm's module), with
    # random weights and BN statistics copied sublayer by sublayer.
    import tf_keras

    from keras_se.layers import CBAM
    from keras_se.layers.namespace import flavour
    from keras_se.quantization.flavour import cbam_as_layers, flavour_weight_layers

    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 6, 5, 16)).astype("float32")
    layer = CBAM(name="b_cbam", **options)
    inputs = keras.Input((6, width, 16))
    keras_model = keras.Model(inputs, layer(inputs))
    inputs = tf_keras.Input((6, width, 16))
    spelt = tf_keras.Model(inputs, cbam_as_layers(flavour("tf_keras").layers, inputs, "b_cbam", **options))
    names = {layer.name for layer in spelt.layers}
    assert ("b_cbam_channel_max" in names) and ("b_cbam_pixels" in names) == (width is not None)
    for name, sub in flavour_weight_layers(layer):
        values = [rng.normal(size=w.shape).astype("float32") for w in sub.weights]
        if sub.name == "spatial_bn":
            values[-1] = np.abs(values[-1]) + 0.5  # a variance
        sub.set_weights(values)
        spelt.get_layer(name).set_weights(values)
    expected = np.asarray(keras_model(x, training=False))
    np.testing.assert_allclose(spelt(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-6)
