"""keras_se model builders and their registry."""

# mobilenet_v3 before resnet: resnet registers the `timm:` aliases of
# TIMM_VARIANTS, whose targets must be registered first.
from keras_se.models import mobilenet, mobilenet_v3, resnet, shufflenet  # noqa: F401  (registers the models)
from keras_se.models.registry import create_model, get_entry, list_models
