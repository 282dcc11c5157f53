"""Weights for keras_se models: one dispatcher, `load_weights`, and timm
checkpoints for the residual SE / SK networks (`.safetensors` without torch;
`.pth` / `.pt` / `.bin` with it).

>>> model = keras_se.create_model("timm:seresnet50", weights="seresnet50.safetensors")
>>> keras_se.weights.load_timm(model, "seresnet50.safetensors")  # the same, on a built model
"""

import os

from keras_se.weights.io import read_state_dict
from keras_se.weights.timm import (
    SCHEMES,
    detect_scheme,
    load_timm,
    model_scheme,
    timm_name,
    to_timm_state_dict,
)
from keras_se.weights.timm_variants import timm_models, timm_scheme

TIMM_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")

__all__ = [
    "SCHEMES",
    "detect_scheme",
    "load_timm",
    "load_weights",
    "model_scheme",
    "read_state_dict",
    "timm_models",
    "timm_name",
    "timm_scheme",
    "to_timm_state_dict",
]


def load_weights(model, weights):
    """Loads `weights` into a built model: the one place `weights=` is handled.

    Args:
        model: a keras_se model.
        weights: None (nothing to load), or a path: a timm checkpoint
            (`.safetensors`, `.pth`, `.pt`, `.bin`; `load_timm`), or a Keras
            weights file (`.weights.h5`, or a `.keras` file saved from the
            same architecture).

    Returns:
        The model. A file that does not fit raises a `ValueError`, and no
        weight is changed.
    """
    if weights is None:
        return model
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"weights must be None or a path to a weights file. Received: weights={weights!r}")
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise ValueError(f"weights file not found. Received: weights={path!r}")
    if path.endswith(TIMM_SUFFIXES):
        return load_timm(model, path)
    try:
        model.load_weights(path)
    except (ValueError, KeyError) as error:
        config = model.get_config()
        hint = ""
        if config.get("include_top") and config.get("classes") != 1000:
            hint = f" The file may hold a 1000-class classifier. Received: classes={config['classes']}."
        raise ValueError(f"weights file {path!r} does not fit this model ({error}).{hint}") from None
    return model
