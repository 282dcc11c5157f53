"""Tests for keras_se.weights.imagenet: preprocess_input, decode_predictions, the class names."""

import configparser
from pathlib import Path

import numpy as np
import pytest

import keras_se
from keras_se.weights import decode_predictions, imagenet_classes, preprocess_input

MEAN = np.array([0.485, 0.456, 0.406], "float32")
STD = np.array([0.229, 0.224, 0.225], "float32")


def test_classes_are_imagenet_1k_in_index_order():
    classes = imagenet_classes()
    ids = [wnid for wnid, _ in classes]
    assert len(classes) == 1000 and len(set(ids)) == 1000
    # ImageNet-1k's class index is the sorted order of its WordNet ids.
    assert ids == sorted(ids)
    assert classes[0] == ("n01440764", "tench, Tinca tinca")
    assert classes[999] == ("n15075141", "toilet tissue, toilet paper, bathroom tissue")


def test_class_names_ship_as_package_data():
    root = Path(__file__).resolve().parents[2]
    config = configparser.ConfigParser()
    config.read(root / "setup.cfg")
    assert "imagenet_classes.txt" in config["options.package_data"]["keras_se.weights"]
    assert (root / "keras_se" / "weights" / "imagenet_classes.txt").is_file()


def test_decode_predictions_orders_the_top_classes():
    preds = np.zeros((2, 1000), "float32")
    preds[0, [7, 3, 500]] = [0.5, 0.3, 0.2]
    preds[1, 999] = 1.0
    decoded = decode_predictions(preds, top=3)
    assert [d[0] for d in decoded[0]] == [imagenet_classes()[i][0] for i in (7, 3, 500)]
    assert [d[2] for d in decoded[0]] == pytest.approx([0.5, 0.3, 0.2])
    assert decoded[1][0] == ("n15075141", "toilet tissue, toilet paper, bathroom tissue", 1.0)
    assert keras_se.decode_predictions is decode_predictions


@pytest.mark.parametrize("preds, top", [(np.zeros((2, 10)), 5), (np.zeros(1000), 5), (np.zeros((1, 1000)), 0)])
def test_decode_predictions_refuses_bad_input(preds, top):
    with pytest.raises(ValueError, match="preds|top"):
        decode_predictions(preds, top=top)


def test_preprocess_normalises_with_the_weights_mean_and_std():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (224, 224, 3)).astype("uint8")
    x = preprocess_input(image, "se_resnet50")
    np.testing.assert_allclose(x, (image / 255.0 - MEAN) / STD, rtol=1e-6, atol=1e-6)
    assert x.dtype == np.float32 and x.shape == (224, 224, 3)
    batch = preprocess_input(np.stack([image, image]), "sknet50")
    assert batch.shape == (2, 224, 224, 3)


def test_preprocess_resizes_the_shorter_side_and_centre_crops_as_timm():
    """Against PIL (what timm's eval transform uses): resize the shorter side to
    floor(224 / crop_pct) = 256 with bicubic, centre crop 224."""
    from PIL import Image

    yy, xx = np.mgrid[0:300, 0:400]
    image = np.stack([xx * 255 / 399, yy * 255 / 299, (xx + yy) * 255 / 698], -1).astype("uint8")
    x = preprocess_input(image, "se_resnet18")  # legacy_seresnet18: bicubic, crop 0.875
    resized = np.asarray(Image.fromarray(image).resize((341, 256), Image.BICUBIC), "float32")
    top, left = 16, 58
    expected = (resized[top : top + 224, left : left + 224] / 255.0 - MEAN) / STD
    assert x.shape == (224, 224, 3)
    # Keras and PIL bicubic kernels differ by under one grey level (1 / 255 / std ~ 0.018).
    assert np.abs(x - expected).mean() < 0.006
    assert np.percentile(np.abs(x - expected), 99) < 0.02  # a crop 4 px off: 0.086


def test_preprocess_without_resize_keeps_the_size_and_refuses_non_rgb():
    image = np.full((64, 48, 3), 255, "uint8")
    x = preprocess_input(image, resize=False)
    assert x.shape == (64, 48, 3)
    np.testing.assert_allclose(x[0, 0], (1 - MEAN) / STD, rtol=1e-6)
    with pytest.raises(ValueError, match="x must be RGB"):
        preprocess_input(np.zeros((32, 32)))
    with pytest.raises(ValueError, match="no published ImageNet weights"):
        preprocess_input(image, "se_mobilenet")


@pytest.mark.parametrize(
    "preds",
    [np.full((1, 1000), "a"), np.zeros((1, 1000), bool), np.array([[None] * 1000]), np.zeros((1, 1000), complex)],
    ids=["str", "bool", "object", "complex"],
)
def test_decode_predictions_refuses_non_numeric_scores(preds):
    with pytest.raises(ValueError, match=rf"preds must hold numeric scores.*Received: preds.dtype={preds.dtype}"):
        decode_predictions(preds)


@pytest.mark.parametrize(
    "x, model, message",
    [
        (np.zeros((0, 0, 3)), None, r"height and width of at least 1. Received: x.shape=\(0, 0, 3\)"),
        (np.zeros((2, 5, 0, 3)), None, r"height and width of at least 1. Received: x.shape=\(2, 5, 0, 3\)"),
        (np.zeros((8, 8, 3)), 5, r"model must be a registered model name.*Received: model=5"),
        (np.zeros((8, 8, 3), "uint16"), None, r"16-bit images.*Received: x.dtype=uint16"),
        (np.full((8, 8, 3), 300), None, r"pixel values 0-255.*Received: x.dtype=int64 with values 300 to 300"),
        (np.zeros((8, 8, 3), bool), None, r"pixel values 0-255.*Received: x.dtype=bool"),
        (np.full((8, 8, 3), "a"), None, r"pixel values 0-255.*Received: x.dtype=<U1"),
    ],
)
def test_preprocess_refuses_bad_arguments_naming_them(x, model, message):
    with pytest.raises(ValueError, match=message):
        preprocess_input(x, model)


def test_preprocess_takes_integer_images_in_range():
    image = np.full((8, 8, 3), 255)  # int64, as np.full makes it
    np.testing.assert_allclose(preprocess_input(image, resize=False), preprocess_input(image.astype("uint8"), resize=False))
