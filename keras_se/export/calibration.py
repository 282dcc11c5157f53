"""Representative data for int8 calibration: image folders, .npy files, or
(with a loud warning) random data."""

import os
import warnings

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
PREPROCESSING = ("unit", "imagenet", "raw")
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], "float32")
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], "float32")


class RandomCalibrationWarning(UserWarning):
    """int8 calibration fell back to random data: the quantisation ranges are
    not those of real inputs, so accuracy on real data will suffer."""


def preprocess(images, mode="unit"):
    """Maps uint8-range images to the model's input range.

    `"unit"`: x / 255. `"imagenet"`: (x / 255 - mean) / std (timm weights).
    `"raw"`: unchanged 0-255 floats.
    """
    if mode not in PREPROCESSING:
        raise ValueError(f"preprocess must be one of {PREPROCESSING}. Received: preprocess={mode!r}")
    x = np.asarray(images, "float32")
    if mode == "raw":
        return x
    x = x / 255.0
    if mode == "imagenet":
        x = (x - _IMAGENET_MEAN) / _IMAGENET_STD
    return x


def load_image_dir(directory, image_size, limit=100, mode="unit"):
    """Loads up to `limit` images from `directory` (recursively), resized.

    Args:
        directory: path of a folder of images (.jpg, .png, .bmp, .gif).
        image_size: (height, width).
        limit: int, defaults to 100. Images to load (sorted by path).
        mode: preprocessing, see `preprocess`.

    Returns:
        float32 array (N, height, width, 3).

    Raises:
        ValueError: the folder is missing or holds no readable image.
    """
    import keras

    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"calibration directory not found. Received: calib_dir={directory!r}")
    paths = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(directory)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS)
    )[:limit]
    if not paths:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in calibration directory {directory!r}")
    images = []
    for path in paths:
        try:
            image = keras.utils.load_img(path, color_mode="rgb", target_size=tuple(image_size), interpolation="bilinear")
        except Exception as error:  # PIL raises several types for unreadable files
            raise ValueError(f"cannot read calibration image {path!r}: {error}") from None
        images.append(keras.utils.img_to_array(image))
    return preprocess(np.stack(images), mode)


def load_npy(path, input_shape):
    """Loads a (N, H, W, C) float array and checks it against `input_shape`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"calibration file not found. Received: {path!r}")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as error:
        raise ValueError(f"cannot read calibration array {path!r}: {error}") from None
    return check_samples(data, input_shape, "representative_data")


def check_samples(data, input_shape, name="representative_data"):
    data = np.asarray(data, "float32")
    expected = tuple(input_shape)
    if data.ndim != len(expected) + 1 or data.shape[0] == 0 or any(
        e is not None and d != e for d, e in zip(data.shape[1:], expected)
    ):
        raise ValueError(
            f"{name} must have shape (N, {', '.join(str(e) for e in expected)}) with N >= 1. "
            f"Received: shape {data.shape}"
        )
    return data


def random_samples(input_shape, count=8, seed=0):
    """Uniform [0, 1) samples, with a `RandomCalibrationWarning`."""
    warnings.warn(
        "int8 calibration is using RANDOM data: pass representative_data "
        "(or --calib-dir / --calib-npy) with real inputs, or the int8 model's "
        "accuracy will suffer.",
        RandomCalibrationWarning,
        stacklevel=3,
    )
    return np.random.default_rng(seed).uniform(0, 1, (count, *input_shape)).astype("float32")
