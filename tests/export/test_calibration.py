import numpy as np
import pytest
from PIL import Image

from keras_se.export import calibration


def _write_images(directory, count):
    rng = np.random.default_rng(0)
    (directory / "sub").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(directory / "sub" / f"{i}.png")


def test_image_dir_is_loaded_resized_and_scaled(tmp_path):
    _write_images(tmp_path, 5)
    (tmp_path / "notes.txt").write_text("not an image")
    data = calibration.load_image_dir(tmp_path, (16, 16), limit=3)
    assert data.shape == (3, 16, 16, 3) and data.dtype == np.float32
    assert 0.0 <= data.min() and data.max() <= 1.0 and data.max() > 0.5


def test_preprocessing_modes():
    x = np.full((1, 2, 2, 3), 255.0)
    assert calibration.preprocess(x, "raw").max() == 255.0
    assert calibration.preprocess(x, "unit").max() == 1.0
    np.testing.assert_allclose(
        calibration.preprocess(x, "imagenet")[0, 0, 0], (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]), rtol=1e-6
    )
    with pytest.raises(ValueError, match="preprocess='bgr'"):
        calibration.preprocess(x, "bgr")


def test_empty_or_missing_dir_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no images"):
        calibration.load_image_dir(tmp_path, (16, 16))
    with pytest.raises(ValueError, match="not found"):
        calibration.load_image_dir(tmp_path / "missing", (16, 16))


def test_unreadable_image_is_an_error(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match="broken.png"):
        calibration.load_image_dir(tmp_path, (16, 16))


def test_npy_shape_is_checked(tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((4, 16, 16, 3), "float32"))
    assert calibration.load_npy(tmp_path / "ok.npy", (16, 16, 3)).shape == (4, 16, 16, 3)
    np.save(tmp_path / "bad.npy", np.zeros((4, 16, 3), "float32"))
    with pytest.raises(ValueError, match=r"\(N, 16, 16, 3\)"):
        calibration.load_npy(tmp_path / "bad.npy", (16, 16, 3))


def test_random_samples_warn():
    with pytest.warns(calibration.RandomCalibrationWarning):
        assert calibration.random_samples((8, 8, 3), count=2).shape == (2, 8, 8, 3)
