"""keras_se layers: Squeeze-and-Excitation, Selective Kernel, ECA, CBAM, the
attention registry, and the export-friendly primitives they are built from."""

from keras_se.layers._utils import make_divisible
from keras_se.layers.attention import CBAM, EfficientChannelAttention, attention_kinds, create_attention, register_attention
from keras_se.layers.namespace import Flavour, flavour
from keras_se.layers.primitives import ChannelShuffle, ChannelSlice, GroupConv2D, KernelSelect
from keras_se.layers.selective_kernel import SelectiveKernel, make_sk_layers, selective_kernel
from keras_se.layers.squeeze_excite import SqueezeExcite, make_se_layers, squeeze_excite

__all__ = [
    "CBAM",
    "EfficientChannelAttention",
    "attention_kinds",
    "create_attention",
    "register_attention",
    "ChannelShuffle",
    "ChannelSlice",
    "Flavour",
    "GroupConv2D",
    "KernelSelect",
    "SelectiveKernel",
    "SqueezeExcite",
    "flavour",
    "make_divisible",
    "make_se_layers",
    "make_sk_layers",
    "selective_kernel",
    "squeeze_excite",
]

# Importing this package imported Keras, whose import hook (keras_se/__init__.py)
# had to leave the models to now: register them, so that `import keras_se.layers`
# alone is enough for `keras.saving.load_model` of a saved keras_se model.
import keras_se  # noqa: E402

keras_se._register_models()
