"""Training data: scikit-learn's handwritten digits, an image directory, or
arrays, checked against the model's input before any training starts."""

import contextlib
import io
import os
import sys

import numpy as np

from keras_se.errors import optional_import

# The digits demo's fixed split: 25 % test, stratified, seed 0.
DIGITS_TEST_SIZE = 0.25
DIGITS_SEED = 0


def load_digits(image_size=32, test_size=DIGITS_TEST_SIZE, seed=DIGITS_SEED):
    """scikit-learn's 1,797 handwritten digits as small RGB images.

    The 8x8 grey images (values 0-16) are scaled to [0, 1], resized
    bilinearly to `image_size` and repeated over three channels, then split
    (stratified, fixed seed) into train and test sets.

    Args:
        image_size: int, defaults to 32.
        test_size: float, defaults to 0.25. Fraction held out for testing.
        seed: int, defaults to 0. Seed of the split.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: float32 images
        (N, image_size, image_size, 3) in [0, 1] and int32 labels 0-9.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_digits()
    >>> x_train.shape, x_test.shape
    ((1347, 32, 32, 3), (450, 32, 32, 3))
    """
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8. Received: image_size={image_size!r}")
    sklearn_digits = optional_import("sklearn.datasets", "The digits demo").load_digits
    train_test_split = optional_import("sklearn.model_selection", "The digits demo").train_test_split
    import tensorflow as tf

    digits = sklearn_digits()
    images = (digits.images.astype("float32") / 16.0)[..., None]
    images = tf.image.resize(images, (image_size, image_size), method="bilinear").numpy()
    images = np.clip(np.repeat(images, 3, axis=-1), 0.0, 1.0)
    labels = digits.target.astype("int32")
    x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=test_size, random_state=seed, stratify=labels)
    return (x_train, y_train), (x_test, y_test)


# The image files Keras' image_dataset_from_directory reads.
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def _check_names(directory, classes):
    """Class folders and image files must have UTF-8 names: TensorFlow takes
    paths as UTF-8 strings, and its error would name no file."""
    for name in classes:
        candidates = [name] + [
            os.path.join(name, f) for f in os.listdir(os.path.join(directory, name)) if f.lower().endswith(IMAGE_SUFFIXES)
        ]
        for relative in candidates:
            try:
                relative.encode("utf-8")
            except UnicodeEncodeError:
                shown = os.fsencode(relative).decode("utf-8", "replace")
                raise ValueError(
                    f"cannot read images from {directory!r}: {shown!r} ({os.fsencode(relative)!r}) has a name that is not UTF-8, "
                    "which TensorFlow cannot open; rename it"
                ) from None


def image_directory(directory, image_size, batch_size=32, validation_split=0.2, seed=0):
    """An image folder (one sub-folder per class) as training and validation sets.

    `keras.utils.image_dataset_from_directory`, with pixels scaled to [0, 1]
    (the range the digits demo and `keras-se convert --preprocess unit` use).

    Args:
        directory: path with one sub-folder of images per class.
        image_size: int. Images are resized to (image_size, image_size).
        batch_size: int, defaults to 32. The global batch size.
        validation_split: float, defaults to 0.2. 0 for no validation set.
        seed: int, defaults to 0. Shuffling and split seed.

    Returns:
        `(train, validation, class_names)`: batched `tf.data.Dataset`s of
        (float32 images, int32 labels); `validation` is None when
        `validation_split` is 0.

    Raises:
        ValueError: the folder is missing, holds no class folders or no
            images.
    """
    import keras

    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"image directory not found. Received: data={directory!r}")
    classes = sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))
    if not classes:
        raise ValueError(
            f"the image directory must hold one sub-folder of images per class. Received: data={directory!r} with no sub-folders"
        )
    if len(classes) < 2:
        raise ValueError(
            f"the image directory must hold at least 2 class sub-folders (a classifier of one class learns nothing). "
            f"Received: data={directory!r} with only {classes[0]!r}"
        )
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1). Received: validation_split={validation_split}")
    _check_names(directory, classes)
    options = dict(
        labels="inferred",
        label_mode="int",
        image_size=(image_size, image_size),
        batch_size=batch_size,
        seed=seed,
        shuffle=True,
    )
    try:
        # Keras prints "Found N files belonging to C classes." on stdout: keep
        # it, on stderr once the images are checked, so that stdout stays the
        # command's JSON summary and an error is the only line.
        with contextlib.redirect_stdout(io.StringIO()) as found:
            if validation_split:
                train, validation = keras.utils.image_dataset_from_directory(
                    directory, validation_split=validation_split, subset="both", **options
                )
            else:
                train, validation = keras.utils.image_dataset_from_directory(directory, **options), None
    except ValueError as error:  # "No images found in directory ..."
        raise ValueError(f"cannot read images from {directory!r}: {str(error).splitlines()[0]}") from None
    class_names = list(train.class_names)
    check_images(list(train.file_paths) + (list(validation.file_paths) if validation is not None else []))
    sys.stderr.write(found.getvalue())

    def scale(images, labels):
        return images / 255.0, labels

    train = train.map(scale)
    validation = validation.map(scale) if validation is not None else None
    return train, validation, class_names


def check_images(paths):
    """Decodes every image as training will (`tf.io.decode_image`); raises
    `ValueError` naming the first file that cannot be read, before training
    starts rather than as a TensorFlow error in the middle of an epoch.

    The files are decoded in parallel by tf.data, about as long as one
    epoch's reading.
    """
    import tensorflow as tf

    if not paths:
        return

    def decode(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return path, tf.shape(image)

    readable = tf.data.Dataset.from_tensor_slices(paths).map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    readable = readable.ignore_errors()
    from keras_se.io_utils import quiet_native_logs

    with quiet_native_logs():  # libjpeg's and libpng's own complaints
        good = {path.decode() for path, _ in readable.as_numpy_iterator()}
    bad = [p for p in paths if p not in good]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ValueError(f"cannot decode image {bad[0]!r}{more}: damaged, or not a BMP, GIF, JPEG or PNG file; remove or fix it")


def random_shift(input_shape, seed=0):
    """A `tf.data` map of (images, labels) batches: each image shifted by up to
    1/16 of its size (zero padding, then a random crop)."""
    import tensorflow as tf

    height, width, channels = input_shape
    pad_h, pad_w = max(1, height // 16), max(1, width // 16)
    generator = tf.random.Generator.from_seed(seed)

    def shift(images, labels):
        padded = tf.pad(images, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])
        batch = tf.shape(images)[0]
        offsets_h = generator.uniform([batch], 0, 2 * pad_h + 1, dtype=tf.int32)
        offsets_w = generator.uniform([batch], 0, 2 * pad_w + 1, dtype=tf.int32)

        def crop(args):
            image, dy, dx = args
            return tf.slice(image, [dy, dx, 0], [height, width, channels])

        shifted = tf.map_fn(crop, (padded, offsets_h, offsets_w), fn_output_signature=images.dtype)
        return shifted, labels

    return shift


def check_arrays(x, y, input_shape=None, name="x"):
    """Checks images and labels before training; returns them as arrays.

    Args:
        x: images (N, H, W, C).
        y: integer labels (N,).
        input_shape: optional (H, W, C) the model expects.
        name: str, the argument named in errors.

    Returns:
        `(x, y)` as float32 and int32 arrays.

    Raises:
        ValueError: empty data, a wrong shape (naming the expected one), or
            labels that do not match the images.
    """
    expected = f"(N, {', '.join(str(d) for d in input_shape)})" if input_shape else "(N, height, width, channels)"
    x = np.asarray(x)
    if x.size == 0 or x.ndim == 0 or len(x) == 0:
        raise ValueError(f"{name} is empty; expected images of shape {expected} with N >= 1. Received: shape={x.shape}")
    if x.ndim != 4 or (input_shape is not None and tuple(x.shape[1:]) != tuple(input_shape)):
        raise ValueError(f"{name} must have shape {expected}. Received: shape={x.shape}")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"labels must have shape ({len(x)},), one integer per image. Received: shape={y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers (class indices). Received: dtype={y.dtype}")
    return x.astype("float32", copy=False), y.astype("int32", copy=False)


def check_dataset(dataset, input_shape=None, name="dataset"):
    """Checks a batched `tf.data.Dataset` of (images, labels); returns (H, W, C)."""
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(f"{name} must be a tf.data.Dataset or an (x, y) pair of arrays. Received: {type(dataset).__name__}")
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(f"{name} must yield (images, labels) batches. Received: element_spec={spec}")
    shape = tuple(spec[0].shape)
    expected = f"(batch, {', '.join(str(d) for d in input_shape)})" if input_shape else "(batch, height, width, channels)"
    if len(shape) != 4 or any(d is None for d in shape[1:]) or (input_shape is not None and shape[1:] != tuple(input_shape)):
        raise ValueError(f"{name} must yield image batches of shape {expected}. Received: {shape}")
    if dataset.cardinality() == 0:
        raise ValueError(f"{name} is empty; expected image batches of shape {expected}.")
    return shape[1:]
