"""keras_se model architectures and their registry (weights: `keras_se.create_model`)."""

from keras_se.models import inception, inception_resnet, mobilenet, mobilenet_v3, resnet, shufflenet, vgg  # noqa: F401  (registers the models)
from keras_se.models.registry import build_model, get_entry, list_models, presets

__all__ = ["build_model", "get_entry", "list_models", "presets"]
