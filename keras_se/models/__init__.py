"""keras_se model builders and their registry."""

from keras_se.models import inception, inception_resnet, mobilenet, mobilenet_v3, resnet, shufflenet, vgg  # noqa: F401  (registers the models)
from keras_se.models.registry import create_model, get_entry, list_models
from keras_se.models.registry import register_alias as _register_alias
from keras_se.weights.timm_variants import TIMM_VARIANTS as _TIMM_VARIANTS

# After every family: the aliases name models of several modules.
for _timm_name, (_target, _options, _scheme) in _TIMM_VARIANTS.items():
    _register_alias(f"timm:{_timm_name}", _target, dict(_options, name=_timm_name))

__all__ = ["create_model", "get_entry", "list_models"]
