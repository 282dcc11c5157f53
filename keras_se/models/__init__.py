"""keras_se model builders and their registry."""

from keras_se.models import mobilenet, resnet, shufflenet  # noqa: F401  (registers the models)
from keras_se.models.registry import create_model, get_entry, list_models
