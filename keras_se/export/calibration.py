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

    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"limit (--calib-limit) must be a positive number of images. Received: limit={limit!r}")
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"calibration directory not found. Received: calib_dir={directory!r}")
    paths = sorted(
        os.path.join(root, name) for root, _, names in os.walk(directory) for name in names if name.lower().endswith(IMAGE_EXTENSIONS)
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
        raise ValueError(
            f"cannot read calibration array {path!r}: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
        ) from None
    if isinstance(data, np.lib.npyio.NpzFile):
        names = ", ".join(data.files[:5]) or "none"
        data.close()
        raise ValueError(f"{path!r} is an .npz archive (arrays: {names}); give one array as an .npy file (np.save)")
    return check_samples(data, input_shape, f"calibration array {path!r}")


def check_samples(data, input_shape, name="representative_data"):
    """Checks calibration or verification inputs; returns them as float32.

    Raises:
        ValueError: not a real numeric array (strings, objects, complex,
            booleans), a wrong shape, or a non-finite value (NaN or inf
            poison the int8 ranges: the converter crashes or writes a file
            that computes NaN); the message names how many and where the
            first one is.
    """
    if not isinstance(data, np.ndarray):
        try:
            data = np.asarray(data)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{name} must be an array of real numbers. Received: {type(data).__name__} ({error})") from None
    if data.dtype.kind not in "fiu":
        raise ValueError(f"{name} must hold real numbers (float or int). Received: dtype={data.dtype}")
    expected = tuple(input_shape)
    if data.ndim != len(expected) + 1 or data.shape[0] == 0 or any(e is not None and d != e for d, e in zip(data.shape[1:], expected)):
        raise ValueError(f"{name} must have shape (N, {', '.join(str(e) for e in expected)}) with N >= 1. Received: shape {data.shape}")
    with np.errstate(over="ignore"):  # beyond float32's range becomes inf, reported below
        data = data.astype("float32", copy=False)
    bad = ~np.isfinite(data)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        kinds = "NaN" if np.isnan(data).all(where=bad) else "inf" if np.isinf(data).all(where=bad) else "NaN or inf"
        raise ValueError(
            f"{name} holds {int(bad.sum())} non-finite value(s) ({kinds}) of {data.size}, the first at index {first} "
            f"(sample {first[0]}); calibrate on finite inputs"
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


def trained_like_statistics(model, samples):
    """Sets every BN's moving mean and variance to its input's statistics on `samples`, in place.

    Keras' initial weights make activations shrink layer after layer (SE
    gates of 0.5, Glorot kernels): by the last stage of an untrained
    MobileNet they are ~1e-20, every sigmoid and hard-swish sits at its
    value at zero, and an int8 ADD of such a tensor and the constant 3 has
    a scale ratio XNNPACK refuses. A trained network's BNs output
    unit-scale activations; one forward pass in training mode with
    momentum 0 gives the same here.

    Args:
        model: a Keras 3 model.
        samples: float inputs (N, H, W, C), e.g. the calibration data.

    Returns:
        `model`.
    """
    import keras

    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    try:
        model(np.asarray(samples, "float32"), training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    return model


def trained_like_copy(model, samples):
    """A copy of a Keras 3 `model` (its own weights) with `trained_like_statistics`; `model` is untouched."""
    import keras

    try:
        copy = type(model).from_config(model.get_config())
    except (NotImplementedError, TypeError, ValueError):
        copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return trained_like_statistics(copy, samples)
