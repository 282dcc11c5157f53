"""keras.applications' companions for ImageNet weights: `preprocess_input` and `decode_predictions`.

The 1000 ImageNet-1k class names ship with the package
(`imagenet_classes.txt`: WordNet id and lemmas per class index, from timm's
`timm/data/_info/imagenet_synsets.txt` and `imagenet_synset_to_lemma.txt`),
so nothing is downloaded at run time.
"""

import functools
import math
from importlib import resources

import numpy as np

from keras_se.models.registry import IMAGENET_MEAN, IMAGENET_STD
from keras_se.weights.pretrained import pretrained_config

_DEFAULT = dict(input_size=(224, 224, 3), interpolation="bicubic", crop_pct=0.875, mean=IMAGENET_MEAN, std=IMAGENET_STD)


@functools.lru_cache(maxsize=1)
def imagenet_classes():
    """The ImageNet-1k classes in index order: a tuple of 1000 `(wordnet_id, name)` pairs.

    Example:

    >>> keras_se.weights.imagenet_classes()[0]
    ('n01440764', 'tench, Tinca tinca')
    """
    text = resources.files("keras_se.weights").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    classes = tuple(tuple(line.split("\t", 1)) for line in text.splitlines() if line)
    if len(classes) != 1000:
        raise RuntimeError(f"keras_se's imagenet_classes.txt holds {len(classes)} classes, not 1000: reinstall keras_se.")
    return classes


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each prediction, as keras.applications' `decode_predictions`.

    Args:
        preds: array (N, 1000) of probabilities or logits.
        top: int, defaults to 5.

    Returns:
        A list (one per sample) of lists of `(wordnet_id, name, score)`,
        highest score first.

    Example:

    >>> model = keras_se.SEResNet50(weights="imagenet")
    >>> x = keras_se.preprocess_input(image, "se_resnet50")
    >>> wordnet_id, name, score = keras_se.decode_predictions(model.predict(x[None]))[0][0]
    """
    preds = np.asarray(preds)
    if preds.dtype.kind not in "fiu":
        raise ValueError(f"preds must hold numeric scores (float or int). Received: preds.dtype={preds.dtype}")
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(f"preds must be a batch of 1000-class ImageNet predictions (N, 1000). Received: preds.shape={preds.shape}")
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= 1000:
        raise ValueError(f"top must be an int from 1 to 1000. Received: top={top!r}")
    classes = imagenet_classes()
    results = []
    for row in preds:
        order = np.argsort(-row, kind="stable")[:top]
        results.append([(classes[i][0], classes[i][1], float(row[i])) for i in order])
    return results


def preprocess_input(x, model=None, weights="imagenet", resize=True):
    """Images as a model's ImageNet weights expect them (timm's `pretrained_cfg`).

    RGB images with values 0-255 are, when `resize` and their size is not
    the model's, resized so the shorter side is `input_size / crop_pct`
    (with the weights' interpolation, antialiased) and centre-cropped to
    `input_size`, as timm evaluates; then scaled to [0, 1] and normalised
    with the weights' mean and std.

    Args:
        x: array (H, W, 3) or (N, H, W, 3), RGB, 0-255 (uint8 or float).
        model: the model's registered name (`"se_resnet50"`), a keras_se
            model, or None for the ImageNet default (224 x 224, bicubic,
            crop 0.875, ImageNet mean and std), which every model in
            `pretrained_weights()` shares except in interpolation and crop.
        weights: `"imagenet"` (default) or a default release
            `"hf://timm/<name>.<tag>"`.
        resize: bool, defaults to True. False keeps the size (inputs
            already `input_size`, or a fully convolutional use).

    Returns:
        float32 array (N, H, W, 3) (or (H, W, 3)).

    Example:

    >>> x = keras_se.preprocess_input(np.asarray(PIL.Image.open("cat.jpg").convert("RGB")), "se_resnet50")
    >>> x.shape
    (224, 224, 3)
    """
    if model is None:
        config = _DEFAULT
    elif isinstance(model, str) or callable(getattr(model, "get_config", None)):
        name = model if isinstance(model, str) else model.get_config().get("name")
        config = pretrained_config(name, weights)
    else:
        raise ValueError(f"model must be a registered model name, a keras_se model or None. Received: model={model!r}")
    x = np.asarray(x)
    single = x.ndim == 3
    if x.ndim not in (3, 4) or x.shape[-1] != 3:
        raise ValueError(f"x must be RGB images (H, W, 3) or (N, H, W, 3). Received: x.shape={x.shape}")
    if 0 in x.shape[-3:-1]:
        raise ValueError(f"x must have a height and width of at least 1. Received: x.shape={x.shape}")
    _check_pixels(x)
    x = x[None] if single else x
    x = x.astype("float32")
    height, width = config["input_size"][:2]
    if resize and tuple(x.shape[1:3]) != (height, width):
        x = _resize_and_crop(x, height, width, config["crop_pct"], config["interpolation"])
    x = (x / 255.0 - np.asarray(config["mean"], "float32")) / np.asarray(config["std"], "float32")
    return x[0] if single else x


def _check_pixels(x):
    """Values 0-255: uint8 or float images, or integers in that range; never 16-bit images."""
    if x.dtype.kind == "f" or x.dtype == np.uint8:
        return
    if x.dtype == np.uint16:
        raise ValueError(
            "x must be 8-bit RGB (0-255, uint8 or float); 16-bit images need scaling first (x / 257). Received: x.dtype=uint16"
        )
    if x.dtype.kind not in "iu":
        raise ValueError(f"x must hold pixel values 0-255 (uint8 or float). Received: x.dtype={x.dtype}")
    if x.size and (x.min() < 0 or x.max() > 255):
        raise ValueError(f"x must hold pixel values 0-255 (uint8 or float). Received: x.dtype={x.dtype} with values {x.min()} to {x.max()}")


def _resize_and_crop(x, height, width, crop_pct, interpolation):
    """timm's eval transform: shorter side to floor(size / crop_pct), centre crop (height, width)."""
    import keras

    scale_size = math.floor(max(height, width) / crop_pct)
    h, w = x.shape[1:3]
    short = min(h, w)
    new = (scale_size, round(w * scale_size / short)) if h <= w else (round(h * scale_size / short), scale_size)
    resized = keras.ops.image.resize(x, new, interpolation=interpolation, antialias=True, data_format="channels_last")
    resized = np.clip(keras.ops.convert_to_numpy(resized), 0.0, 255.0)
    top, left = int(round((new[0] - height) / 2.0)), int(round((new[1] - width) / 2.0))
    return resized[:, top : top + height, left : left + width]
