"""Pretrained weights from PyTorch: timm checkpoints for the residual SE / SK
networks (`.safetensors` without torch; `.pth` / `.pt` / `.bin` with it).

>>> model = keras_se.create_model("timm:seresnet50", weights="seresnet50.safetensors")
>>> keras_se.weights.load_timm(model, "seresnet50.safetensors")  # the same, on a built model
"""

from keras_se.weights.io import read_state_dict
from keras_se.weights.timm import (
    SCHEMES,
    detect_scheme,
    load_timm,
    timm_models,
    timm_name,
    timm_scheme,
    to_timm_state_dict,
)

__all__ = [
    "SCHEMES",
    "detect_scheme",
    "load_timm",
    "read_state_dict",
    "timm_models",
    "timm_name",
    "timm_scheme",
    "to_timm_state_dict",
]
