"""Tests for keras_se.training.data: the digits demo, image folders, checks."""

import numpy as np
import pytest
import tensorflow as tf

from keras_se.training import check_arrays, check_dataset, image_directory, load_digits
from keras_se.training.data import random_shift


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_digits_fixed_split(digits):
    (x_train, y_train), (x_test, y_test) = digits
    assert x_train.shape == (1347, 32, 32, 3) and x_test.shape == (450, 32, 32, 3)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    np.testing.assert_array_equal(x_train[..., 0], x_train[..., 2])  # grey repeated over RGB
    # Stratified: every digit has 43-46 test images (174-183 scans per digit, split 75/25).
    assert set(np.bincount(y_test, minlength=10)) <= {43, 44, 45, 46}
    # Fixed: scikit-learn's stratified split with seed 0, as its documentation
    # defines it, computed here from the raw scans (not from keras_se).
    from sklearn.datasets import load_digits as raw_digits
    from sklearn.model_selection import train_test_split

    raw = raw_digits()
    _, test_index = train_test_split(np.arange(len(raw.target)), test_size=0.25, random_state=0, stratify=raw.target)
    np.testing.assert_array_equal(y_test, raw.target[test_index])
    # Each image is its scan, enlarged: 4x4 block means of the 32x32 image
    # follow the 8x8 scan (correlation; bilinear resizing blurs edges).
    blocks = x_test[..., 0].reshape(-1, 8, 4, 8, 4).mean(axis=(2, 4)).reshape(len(x_test), -1)
    scans = raw.images[test_index].reshape(len(x_test), -1) / 16.0
    correlation = [np.corrcoef(a, b)[0, 1] for a, b in zip(blocks, scans)]
    assert min(correlation) > 0.9, min(correlation)
    (_, y_again), _ = load_digits()
    np.testing.assert_array_equal(y_again, y_train)


def test_digits_at_native_size_are_the_scans():
    from sklearn.datasets import load_digits as sklearn_digits

    (x_train, y_train), _ = load_digits(image_size=8)
    scans = sklearn_digits().images / 16.0
    # Resizing 8x8 to 8x8 is the identity: each training image is one of the scans.
    first = x_train[0, :, :, 0]
    assert np.min(np.abs(scans - first).reshape(len(scans), -1).max(axis=1)) < 1e-6


def test_digits_bad_size():
    with pytest.raises(ValueError, match="image_size must be an int >= 8. Received: image_size=4"):
        load_digits(image_size=4)


def test_check_arrays_names_the_expected_shape():
    x = np.zeros((4, 32, 32, 3), "float32")
    y = np.zeros(4, "int64")
    out_x, out_y = check_arrays(x, y, (32, 32, 3))
    assert out_x.dtype == np.float32 and out_y.dtype == np.int32
    with pytest.raises(ValueError, match=r"x is empty; expected images of shape \(N, 32, 32, 3\)"):
        check_arrays(np.zeros((0, 32, 32, 3)), np.zeros(0, "int32"), (32, 32, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 32, 32, 3\). Received: shape=\(4, 28, 28, 3\)"):
        check_arrays(np.zeros((4, 28, 28, 3)), y, (32, 32, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(N, height, width, channels\). Received: shape=\(4, 32, 32\)"):
        check_arrays(np.zeros((4, 32, 32)), y)
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\)"):
        check_arrays(x, np.zeros(3, "int32"))
    with pytest.raises(ValueError, match="labels must be integers"):
        check_arrays(x, np.zeros(4, "float32"))


def test_check_dataset():
    images = tf.data.Dataset.from_tensor_slices((np.zeros((4, 32, 32, 3), "float32"), np.zeros(4, "int32"))).batch(2)
    assert check_dataset(images) == (32, 32, 3)
    with pytest.raises(ValueError, match=r"image batches of shape \(batch, 64, 64, 3\). Received: \(None, 32, 32, 3\)"):
        check_dataset(images, (64, 64, 3))
    with pytest.raises(ValueError, match="is empty"):
        check_dataset(images.take(0))
    with pytest.raises(ValueError, match=r"must yield \(images, labels\)"):
        check_dataset(tf.data.Dataset.from_tensor_slices(np.zeros((4, 32, 32, 3))).batch(2))
    with pytest.raises(ValueError, match="must be a tf.data.Dataset"):
        check_dataset([1, 2, 3])


def _image_folder(root, classes=("cat", "dog"), per_class=5, size=20):
    import keras

    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            keras.utils.save_img(str(root / c / f"{i}.png"), rng.integers(0, 256, (size, size, 3)).astype("uint8"))
    return root


def test_image_directory(tmp_path):
    root = _image_folder(tmp_path / "images")
    train, validation, classes = image_directory(root, 32, batch_size=4, validation_split=0.2)
    assert classes == ["cat", "dog"]
    images, labels = next(iter(train))
    assert images.shape[1:] == (32, 32, 3) and images.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    assert sum(int(b[1].shape[0]) for b in train) == 8 and sum(int(b[1].shape[0]) for b in validation) == 2
    train, validation, _ = image_directory(root, 32, validation_split=0.0)
    assert validation is None and sum(int(b[1].shape[0]) for b in train) == 10


def test_image_directory_errors(tmp_path):
    with pytest.raises(ValueError, match="image directory not found"):
        image_directory(tmp_path / "missing", 32)
    (tmp_path / "flat").mkdir()
    with pytest.raises(ValueError, match="one sub-folder of images per class"):
        image_directory(tmp_path / "flat", 32)
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="at least 2 class sub-folders.*only 'a'"):
        image_directory(tmp_path / "empty", 32)
    (tmp_path / "empty" / "b").mkdir(parents=True)
    with pytest.raises(ValueError, match="cannot read images"):
        image_directory(tmp_path / "empty", 32, validation_split=0.0)
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\)"):
        image_directory(_image_folder(tmp_path / "ok"), 32, validation_split=1.0)


def test_random_shift_moves_whole_images():
    images = np.zeros((8, 32, 32, 3), "float32")
    images[:, 16, 16, :] = 1.0
    shifted, labels = random_shift((32, 32, 3), seed=0)(tf.constant(images), tf.range(8))
    shifted = shifted.numpy()
    assert shifted.shape == images.shape and labels.numpy().tolist() == list(range(8))
    offsets = set()
    for image in shifted:
        (ys, xs) = np.nonzero(image[..., 0])
        assert len(ys) == 1 and abs(ys[0] - 16) <= 2 and abs(xs[0] - 16) <= 2  # up to 32 / 16 pixels
        assert np.all(image[ys[0], xs[0]] == 1.0)
        offsets.add((ys[0], xs[0]))
    assert len(offsets) > 1
