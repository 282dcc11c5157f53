"""Weights for keras_se models: one dispatcher, `load_weights`; timm
checkpoints for the residual SE / SK networks (`.safetensors` without torch;
`.pth` / `.pt` / `.bin` with it), from a file or from the Hugging Face Hub
(`weights="imagenet"`, `"hf://timm/<name>.<tag>"`).

>>> model = keras_se.SEResNet50(weights="imagenet")  # timm/legacy_seresnet50.in1k
>>> model = keras_se.create_model("timm:seresnet50", weights="seresnet50.safetensors")
>>> keras_se.weights.load_timm(model, "seresnet50.safetensors")  # the same, on a built model
"""

import os

from keras_se.weights.hub import UncheckedWeightsWarning, WeightsUnavailableError, load_from_hub
from keras_se.weights.imagenet import decode_predictions, imagenet_classes, preprocess_input
from keras_se.weights.io import check_keras_weights_file, read_state_dict
from keras_se.weights.pretrained import HF_PREFIX, pretrained_config, pretrained_weights
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
    "UncheckedWeightsWarning",
    "WeightsUnavailableError",
    "decode_predictions",
    "detect_scheme",
    "imagenet_classes",
    "load_timm",
    "load_weights",
    "model_scheme",
    "pretrained_config",
    "pretrained_weights",
    "preprocess_input",
    "read_state_dict",
    "timm_models",
    "timm_name",
    "timm_scheme",
    "to_timm_state_dict",
]


def load_weights(model, weights, model_name=None):
    """Loads `weights` into a built model: the one place `weights=` is handled.

    Args:
        model: a keras_se model.
        weights: None (nothing to load); `"imagenet"`: the ImageNet release
            of the model on the Hugging Face Hub (`pretrained_weights()`
            names the repository of every model that has one);
            `"hf://timm/<name>.<tag>"`: any timm release (e.g.
            `"hf://timm/seresnet50.a3_in1k"`); or a path: a timm checkpoint
            (`.safetensors`, `.pth`, `.pt`, `.bin`; `load_timm`), or a Keras
            weights file (`.weights.h5`, or a `.keras` file saved from the
            same architecture). Hub files go through the Hugging Face cache
            (`keras_se.weights.hub`).
        model_name: the registered name (or `timm:` alias) the model was
            built as, which decides what `"imagenet"` loads; defaults to
            the name in `model.get_config()` (the registered name unless
            `name=` was given).

    Returns:
        The model. Weights that do not fit raise a `ValueError` (a model
        without ImageNet weights lists the models that have them), and no
        weight is changed. Hub weights neither cached nor reachable raise
        `WeightsUnavailableError` (a `ValueError`) naming the repository.

    Example:

    >>> model = keras_se.create_model("se_resnet50", include_top=False)
    >>> keras_se.weights.load_weights(model, "imagenet")
    """
    if weights is None:
        return model
    if weights == "imagenet" or (isinstance(weights, str) and weights.startswith(HF_PREFIX)):
        if model_name is None:
            model_name = model.get_config().get("name") if hasattr(model, "get_config") else model.name
        return load_from_hub(model, weights, model_name)
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            f"weights must be None, 'imagenet', 'hf://<owner>/<repository>' or a path to a weights file. Received: weights={weights!r}"
        )
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise ValueError(f"weights file not found (weights takes None, 'imagenet', 'hf://...' or a file). Received: weights={path!r}")
    if path.endswith(TIMM_SUFFIXES):
        return load_timm(model, path)
    # Keras sets whatever the file holds, NaN and integers included: check it whole first.
    check_keras_weights_file(path, integers_allowed=any(not _is_float(w.dtype) for w in model.weights))
    try:
        model.load_weights(path)
    except (ValueError, KeyError) as error:
        config = model.get_config()
        hint = ""
        if config.get("include_top") and config.get("classes") != 1000:
            hint = f" The file may hold a 1000-class classifier. Received: classes={config['classes']}."
        raise ValueError(f"weights file {path!r} does not fit this model ({error}).{hint}") from None
    return model


def _is_float(dtype):
    return "float" in str(getattr(dtype, "name", dtype))
