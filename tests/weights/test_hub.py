"""Tests for keras_se.weights.hub and pretrained: `weights="imagenet"` and `"hf://..."`.

Offline throughout: each test builds a Hugging Face cache folder in a
temporary directory, laid out as `huggingface_hub` writes it
(`models--timm--<name>.<tag>/blobs/<sha256>`, `snapshots/<revision>/<file>`
linking to the blob, `refs/main` naming the revision), from the shared
fixture of timm's legacy_seresnet18 (real timm weights, float16, and the
logits timm computed), and `HF_HUB_OFFLINE` is on, so no test can reach
the network. Tolerance: 1e-4 on logits, as tests/weights/test_timm.py.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_se
from keras_se.weights import hub

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "timm"
CHECKPOINT = FIXTURES / "legacy_seresnet18.safetensors"
REPO = "timm/legacy_seresnet18.in1k"
REVISION = "0123456789abcdef0123456789abcdef01234567"
ATOL = 1e-4


def _needs_fixture(not_run, path=CHECKPOINT):
    if not Path(path).is_file():
        not_run(f"timm fixture not present at {path}")


def write_cache(root, repo=REPO, files=None, revision=REVISION):
    """A Hugging Face hub cache under `root` holding `files` ({name: path}) of `repo`; returns the snapshot folder."""
    folder = Path(root) / ("models--" + repo.replace("/", "--"))
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(revision)
    snapshot = folder / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, source in (files or {}).items():
        data = Path(source).read_bytes()
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / name)
    return snapshot


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty hub cache, used by huggingface_hub with HF_HUB_OFFLINE on."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.fixture
def seresnet18_cache(offline_cache, not_run):
    _needs_fixture(not_run)
    write_cache(
        offline_cache, files={"model.safetensors": CHECKPOINT, "config.json": FIXTURES / "hf_config" / "legacy_seresnet18.in1k.json"}
    )
    return offline_cache


def _fixture_io():
    data = np.load(FIXTURES / "legacy_seresnet18_io.npz")
    return data["input_nchw"].transpose(0, 2, 3, 1), data["logits"]


def _predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


# --- weights="imagenet" from the cache ---------------------------------------


def test_imagenet_weights_reproduce_timm_logits(seresnet18_cache):
    x, logits = _fixture_io()
    model = keras_se.SEResNet18(weights="imagenet", classifier_activation=None)
    # timm's legacy_seresnet18 has a ReLU before SE: the weights' options are applied.
    assert model.get_config()["basic_last_relu"] is True
    assert np.abs(_predict(model, x) - logits).max() <= ATOL


def test_hf_uri_and_timm_alias_load_the_fixture(seresnet18_cache):
    x = _fixture_io()[0][:, :64, :64]
    small = dict(classifier_activation=None, input_shape=(64, 64, 3))
    reference = _predict(keras_se.create_model("timm:legacy_seresnet18", weights=CHECKPOINT, **small), x)
    for name, weights in (("timm:legacy_seresnet18", "imagenet"), ("se_resnet18", f"hf://{REPO}")):
        np.testing.assert_allclose(_predict(keras_se.create_model(name, weights=weights, **small), x), reference, atol=1e-6)


def test_include_top_false_backbone_has_the_pretrained_features(seresnet18_cache):
    x = _fixture_io()[0][:, :64, :64]
    full = keras_se.SEResNet18(weights="imagenet", input_shape=(64, 64, 3))
    backbone = keras_se.SEResNet18(weights="imagenet", include_top=False, pooling="avg", input_shape=(64, 64, 3))
    features = keras.Model(full.input, full.get_layer("avg_pool").output)
    np.testing.assert_allclose(_predict(backbone, x), _predict(features, x), atol=1e-6)


def test_imagenet_weights_into_a_features_only_backbone(seresnet18_cache):
    """A backbone stops at its last returned stage; the later stages' tensors are left out, the rest loaded."""
    x = _fixture_io()[0][:, :64, :64]
    full = keras_se.SEResNet18(weights="imagenet", input_shape=(64, 64, 3))
    backbone = keras_se.SEResNet18(weights="imagenet", features_only=True, out_indices=(1, 2), input_shape=(64, 64, 3))
    assert not any(layer.name.startswith("stage4") for layer in backbone.layers)
    stages = keras.Model(full.input, [full.get_layer(i["layer"]).output for i in backbone.feature_info])
    for actual, expected in zip(backbone(x), stages(x)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(actual), keras.ops.convert_to_numpy(expected), atol=1e-5)


MNV3_REPO = "timm/mobilenetv3_small_100.lamb_in1k"


@pytest.fixture
def mobilenetv3_cache(offline_cache, not_run):
    """The shared mobilenetv3_small_100 fixture as its hub release."""
    checkpoint = FIXTURES / "mobilenetv3_small_100.safetensors"
    _needs_fixture(not_run, checkpoint)
    write_cache(offline_cache, MNV3_REPO, {"model.safetensors": checkpoint})
    return offline_cache


def test_mobilenetv3_imagenet_weights_reproduce_timm_logits(mobilenetv3_cache):
    """weights="imagenet" on the registered model loads the fixture's hub release."""
    data = np.load(FIXTURES / "mobilenetv3_small_100_io.npz")
    model = keras_se.create_model("mobilenetv3_small", weights="imagenet", classifier_activation=None)
    assert model.get_config()["dropout"] == 0.2  # keras.applications' default rate: dropout holds no weights
    assert np.abs(_predict(model, data["input_nchw"].transpose(0, 2, 3, 1)) - data["logits"]).max() <= ATOL


def test_mobilenetv3_backbone_with_imagenet_weights(mobilenetv3_cache):
    """include_top=False (keras.applications' top: the 1x1 head conv and the classifier) loads the rest."""
    x = np.load(FIXTURES / "mobilenetv3_small_100_io.npz")["input_nchw"].transpose(0, 2, 3, 1)[:, :64, :64]
    full = keras_se.create_model("mobilenetv3_small", weights="imagenet", input_shape=(64, 64, 3))
    backbone = keras_se.create_model("mobilenetv3_small", weights="imagenet", include_top=False, input_shape=(64, 64, 3))
    assert not any(layer.name in ("head_conv", "predictions") for layer in backbone.layers)
    features = keras.Model(full.input, full.get_layer(backbone.layers[-1].name).output)
    np.testing.assert_allclose(_predict(backbone, x), _predict(features, x), atol=1e-5)


def test_tf_keras_flavour_loads_imagenet(seresnet18_cache):
    x, logits = _fixture_io()
    model = keras_se.create_model("se_resnet18", weights="imagenet", flavour="tf_keras", classifier_activation=None)
    assert np.abs(model(x, training=False).numpy() - logits).max() <= ATOL


# --- refusals ------------------------------------------------------------------


def test_other_classes_refused_before_download(offline_cache):
    # The cache is empty: the refusal cannot come from the download.
    with pytest.raises(ValueError, match=r"1000-class .*include_top=False.*Received: classes=10"):
        keras_se.SEResNet18(weights="imagenet", classes=10, input_shape=(32, 32, 3))


@pytest.mark.parametrize("name", ["se_mobilenet", "resnet50", "sknet101", "timm:seresnet18"])
def test_model_without_weights_lists_what_has_them(offline_cache, name):
    with pytest.raises(ValueError, match=r"has no published ImageNet weights.*se_resnet50.*Received: weights='imagenet'"):
        keras_se.create_model(name, weights="imagenet", input_shape=(32, 32, 3))


def test_offline_and_not_cached_names_repository_and_fetch_command(offline_cache):
    with pytest.raises(hub.WeightsUnavailableError) as info:
        keras_se.SEResNet50(weights="imagenet", input_shape=(32, 32, 3))
    message = str(info.value)
    assert "timm/legacy_seresnet50.in1k" in message and "HF_HUB_OFFLINE" in message
    assert "hf download timm/legacy_seresnet50.in1k model.safetensors" in message
    assert "\n" not in message


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_cached_file_is_refused_and_nothing_loaded(offline_cache, tmp_path, damage, not_run):
    _needs_fixture(not_run)
    data = bytearray(CHECKPOINT.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[-1000] ^= 0xFF  # inside the last tensor: the header still parses
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    snapshot = write_cache(offline_cache, files={"model.safetensors": bad})
    # Cache it under the real file's hash, as a download that went wrong would.
    blob = Path(os.path.realpath(snapshot / "model.safetensors"))
    real = blob.parent / hashlib.sha256(CHECKPOINT.read_bytes()).hexdigest()
    blob.rename(real)
    (snapshot / "model.safetensors").unlink()
    os.symlink(os.path.relpath(real, snapshot), snapshot / "model.safetensors")

    model = keras_se.create_model("timm:legacy_seresnet18", input_shape=(32, 32, 3))
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"truncated or corrupt.*delete .*Nothing was loaded"):
        keras_se.weights.load_weights(model, "imagenet")
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_truncated_file_without_blob_link_is_refused(offline_cache, tmp_path, not_run):
    _needs_fixture(not_run)
    snapshot = write_cache(offline_cache)
    (snapshot / "model.safetensors").write_bytes(CHECKPOINT.read_bytes()[:4096])
    # No hash to check it against: said, and the reader still refuses it.
    with pytest.warns(hub.UncheckedWeightsWarning, match="not checked against a hash"):
        with pytest.raises(ValueError, match=r"timm/legacy_seresnet18.in1k are truncated or corrupt"):
            keras_se.create_model("timm:legacy_seresnet18", weights="imagenet", input_shape=(32, 32, 3))


def _linked(tmp_path, data, blob_name):
    """`snapshots/rev/file` linking to `blobs/<blob_name>` holding `data`, as the Hugging Face cache lays it out."""
    (tmp_path / "blobs").mkdir(exist_ok=True)
    (tmp_path / "snapshots" / "rev").mkdir(parents=True, exist_ok=True)
    (tmp_path / "blobs" / blob_name).write_bytes(data)
    link = tmp_path / "snapshots" / "rev" / "file"
    link.unlink(missing_ok=True)
    os.symlink(os.path.join("..", "..", "blobs", blob_name), link)
    return link


def test_cached_file_is_checked_against_its_sha256_or_git_blob_id(tmp_path, recwarn):
    data = bytes(range(256)) * 40
    source = tmp_path / "source"
    source.write_bytes(data)
    # The git blob id, from git itself: what the Hub names a small (non-LFS) file's blob by.
    git_id = subprocess.run(["git", "hash-object", str(source)], capture_output=True, text=True, check=True).stdout.strip()
    for name, what in [(hashlib.sha256(data).hexdigest(), "SHA-256"), (git_id, "git blob id")]:
        hub.check_cached_file(_linked(tmp_path, data, name), REPO)
        damaged = bytearray(data)
        damaged[1000] ^= 0xFF
        with pytest.raises(ValueError, match=rf"truncated or corrupt \(its {what} is .*Nothing was loaded"):
            hub.check_cached_file(_linked(tmp_path, bytes(damaged), name), REPO)
    assert not [w for w in recwarn if issubclass(w.category, hub.UncheckedWeightsWarning)]


def test_cached_file_without_a_hash_says_it_was_not_checked(tmp_path):
    plain = tmp_path / "model.safetensors"
    plain.write_bytes(b"whatever")
    with pytest.warns(hub.UncheckedWeightsWarning, match=rf"{REPO}: the cached model.safetensors was not checked.*only the safetensors"):
        hub.check_cached_file(plain, REPO)
    with pytest.warns(hub.UncheckedWeightsWarning, match="not checked against a hash"):
        hub.check_cached_file(_linked(tmp_path, b"whatever", "not-a-hash"), REPO)


def test_weights_of_another_architecture_named(seresnet18_cache):
    # legacy_seresnet18's weights into SE-ResNet-34: missing blocks, nothing loaded.
    with pytest.raises(ValueError, match=r"hf://timm/legacy_seresnet18.in1k.*missing.*Nothing was loaded"):
        keras_se.create_model("se_resnet34", weights=f"hf://{REPO}", input_shape=(32, 32, 3))


@pytest.mark.parametrize("weights", ["hf://timm", "hf://timm/a/b", "hf:///x", 3])
def test_bad_weights_values(weights, offline_cache):
    with pytest.raises(ValueError, match="weights"):
        keras_se.create_model("se_resnet18", weights=weights, input_shape=(32, 32, 3))


# --- the table ------------------------------------------------------------------


def test_pretrained_weights_table():
    table = keras_se.weights.pretrained_weights()
    assert table["se_resnet50"] == "timm/legacy_seresnet50.in1k"
    assert table["sknet50"] == "timm/skresnext50_32x4d.ra_in1k"
    assert table["timm:seresnet50"] == "timm/seresnet50.a1_in1k"
    assert table["mobilenetv3_large"] == "timm/mobilenetv3_large_100.ra_in1k"
    assert table["inception_resnet_v2"] == "timm/inception_resnet_v2.tf_in1k"
    assert keras_se.weights.pretrained_config("inception_resnet_v2")["input_size"] == (299, 299, 3)
    assert "se_mobilenet" not in table and "timm:seresnet18" not in table and "se_vgg16" not in table
    registered = set(keras_se.list_models()) | set(keras_se.list_models("timm:*"))
    assert set(table) <= registered


@pytest.mark.parametrize(
    "name, repo",
    [
        ("se_resnet18", REPO),
        ("mobilenetv3_small", MNV3_REPO),
        ("timm:ecaresnet26t", "timm/ecaresnet26t.ra2_in1k"),
        ("timm:seresnext26t_32x4d", "timm/seresnext26t_32x4d.bt_in1k"),
    ],
)
def test_pretrained_config_equals_timm_hub_config(name, repo, not_run):
    import json

    path = FIXTURES / "hf_config" / f"{repo.split('/')[1]}.json"
    _needs_fixture(not_run, path)
    hub_config = json.loads(path.read_text())["pretrained_cfg"]
    config = keras_se.weights.pretrained_config(name)
    assert config["repo"] == repo
    c, h, w = hub_config["input_size"]
    assert config["input_size"] == (h, w, c)
    for key in ("interpolation", "crop_pct", "num_classes"):
        assert config["classes" if key == "num_classes" else key] == hub_config[key]
    assert config["mean"] == tuple(hub_config["mean"]) and config["std"] == tuple(hub_config["std"])


def test_env_variables_drive_the_cache_and_offline_mode(tmp_path, not_run):
    """HF_HOME and HF_HUB_OFFLINE, read by huggingface_hub at import, in a fresh process."""
    _needs_fixture(not_run)
    write_cache(tmp_path / "home" / "hub", files={"model.safetensors": CHECKPOINT})
    script = f"from keras_se.weights.hub import download; print(download({REPO!r}))"
    env = {**os.environ, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("HF_HUB_CACHE", None)
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith(f"snapshots/{REVISION}/model.safetensors")
    assert str(tmp_path / "home" / "hub") in result.stdout


# --- fine-tuning and the command line ---------------------------------------------


def test_fine_tuning_starts_from_imagenet_with_a_new_classifier(seresnet18_cache):
    from keras_se.training.trainer import _build_model

    net = _build_model("se_resnet18", "imagenet", dict(input_shape=(32, 32, 3), classes=3))
    reference = keras_se.SEResNet18(weights="imagenet", input_shape=(32, 32, 3))
    assert net.get_config()["basic_last_relu"] is True and net.output_shape == (None, 3)
    for layer in reference.layers:
        if layer.weights and layer.name != "predictions":
            assert all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), net.get_layer(layer.name).get_weights()))


def test_convert_and_train_commands_take_weights_imagenet():
    from keras_se.cli import build_parser

    parser = build_parser()
    convert = parser.parse_args(["convert", "se_resnet50", "--out", "x", "--weights", "imagenet"])
    train = parser.parse_args(["train", "se_resnet50", "--digits", "--output-dir", "x", "--weights", "imagenet"])
    assert convert.weights == train.weights == "imagenet"


def test_train_refuses_imagenet_for_a_model_without_weights_before_any_work(offline_cache):
    from keras_se.training import train

    with pytest.raises(ValueError, match="se_mobilenet' has no published ImageNet weights"):
        train("se_mobilenet", (np.zeros((4, 32, 32, 3), "float32"), np.zeros(4, "int64")), weights="imagenet", epochs=1)


def test_convert_command_offline_without_cache_is_one_line(tmp_path, offline_cache, capsys):
    from keras_se.cli import main

    code = main(["convert", "se_resnet18", "--input-size", "32", "--weights", "imagenet", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "timm/legacy_seresnet18.in1k" in err and "hf download" in err


def test_ecaresnet26t_imagenet_weights_through_the_cache(offline_cache, not_run):
    """weights="imagenet" on a timm -T alias loads its default release (the shared fixture as that release)."""
    checkpoint = FIXTURES / "ecaresnet26t.safetensors"
    _needs_fixture(not_run, checkpoint)
    write_cache(offline_cache, "timm/ecaresnet26t.ra2_in1k", {"model.safetensors": checkpoint})
    data = np.load(FIXTURES / "ecaresnet26t_io.npz")
    model = keras_se.create_model("timm:ecaresnet26t", weights="imagenet", classifier_activation=None, input_shape=(224, 224, 3))
    y = _predict(model, data["input_nchw"].transpose(0, 2, 3, 1))
    assert np.linalg.norm(y - data["logits"]) / np.linalg.norm(data["logits"]) <= 1e-4
