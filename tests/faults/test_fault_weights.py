"""Weights under faults: bad values in weights files, and a Hugging Face
cache whose entries are damaged (a blob that is a folder or a FIFO, an
unreadable ref)."""

import os
import shutil

import h5py
import numpy as np
import pytest

import keras_se
from keras_se.weights import load_timm, load_weights, to_timm_state_dict

from .conftest import assert_one_line

SIZE = (32, 32, 3)


def _timm_model():
    return keras_se.create_model("timm:legacy_seresnet18", input_shape=SIZE, classifier_activation=None)


def _same(model, weights):
    return all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))


@pytest.fixture(scope="module")
def timm_state():
    """A timm state dict of legacy_seresnet18 (random weights) and its tensor names, in model order."""
    return to_timm_state_dict(_timm_model())


def _bad_state(state, key, fault):
    bad = dict(state)
    if fault == "nan":
        bad[key] = state[key].copy()
        bad[key].reshape(-1)[3] = np.nan
    elif fault == "inf":
        bad[key] = state[key].copy()
        bad[key].reshape(-1)[0] = -np.inf
    else:
        bad[key] = np.clip(np.round(state[key] * 100), -128, 127).astype(fault)
    return bad


@pytest.mark.parametrize("fault, message", [("nan", "non-finite"), ("inf", "non-finite"), ("int8", "stored as int8")])
@pytest.mark.parametrize("form", ["safetensors", "dict"])
def test_timm_checkpoint_with_bad_values_is_refused_whole(tmp_path, timm_state, fault, message, form):
    from safetensors.numpy import save_file

    key = "layer4.1.bn2.running_var"  # late in the model: earlier layers would be set first by a partial load
    bad = _bad_state(timm_state, key, fault)
    checkpoint = bad
    if form == "safetensors":
        checkpoint = tmp_path / "bad.safetensors"
        save_file(bad, str(checkpoint))
    model = _timm_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=rf"'{key}'.*{message}.*Nothing was loaded") as raised:
        load_timm(model, checkpoint)
    assert "\n" not in str(raised.value)
    assert _same(model, before)


def test_timm_checkpoint_with_good_values_still_loads(timm_state):
    model = _timm_model()
    load_timm(model, timm_state)
    assert all(np.array_equal(value, timm_state[key]) for key, value in to_timm_state_dict(model).items())
    x = np.random.default_rng(0).normal(size=(1, *SIZE)).astype("float32")
    assert np.isfinite(model.predict(x, verbose=0)).all()


@pytest.fixture(scope="module")
def keras_weights(tmp_path_factory):
    model = keras_se.create_model("se_mobilenet", input_shape=SIZE, classes=4, alpha=0.25)
    folder = tmp_path_factory.mktemp("keras_weights")
    model.save_weights(folder / "good.weights.h5")
    model.save(folder / "good.keras")
    return folder


def _damage_h5(path, fault):
    """Damages the last float dataset of a .weights.h5 file; returns its name."""
    with h5py.File(path, "r+") as handle:
        names = []
        handle.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        name = names[-1]
        values = handle[name][()]
        del handle[name]
        if fault == "nan":
            values.reshape(-1)[0] = np.nan
            handle.create_dataset(name, data=values)
        else:
            handle.create_dataset(name, data=np.clip(np.round(values * 100), -128, 127).astype(fault))
    return name


@pytest.mark.parametrize("fault, message", [("nan", "non-finite"), ("int8", "stored as int8")])
def test_keras_weights_file_with_bad_values_is_refused_whole(keras_weights, tmp_path, fault, message):
    path = tmp_path / "bad.weights.h5"
    shutil.copy(keras_weights / "good.weights.h5", path)
    name = _damage_h5(path, fault)
    model = keras_se.create_model("se_mobilenet", input_shape=SIZE, classes=4, alpha=0.25)
    before = model.get_weights()
    with pytest.raises(ValueError, match=rf"'{name}'.*{message}.*Nothing was loaded.*bad\.weights\.h5") as raised:
        load_weights(model, path)
    assert "\n" not in str(raised.value)
    assert _same(model, before)
    with pytest.raises(ValueError, match=message):
        keras_se.create_model("se_mobilenet", input_shape=SIZE, classes=4, alpha=0.25, weights=path)


def test_keras_file_with_nan_weights_is_refused(keras_weights, tmp_path):
    import zipfile

    inner = tmp_path / "model.weights.h5"
    with zipfile.ZipFile(keras_weights / "good.keras") as archive:
        inner.write_bytes(archive.read("model.weights.h5"))
        members = {n: archive.read(n) for n in archive.namelist() if n != "model.weights.h5"}
    name = _damage_h5(inner, "nan")
    path = tmp_path / "bad.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
        archive.writestr("model.weights.h5", inner.read_bytes())
    model = keras_se.create_model("se_mobilenet", input_shape=SIZE, classes=4, alpha=0.25)
    with pytest.raises(ValueError, match=rf"'{name}'.*non-finite"):
        load_weights(model, path)


def test_good_keras_weights_file_still_loads(keras_weights):
    model = keras_se.create_model("se_mobilenet", input_shape=SIZE, classes=4, alpha=0.25)
    load_weights(model, keras_weights / "good.weights.h5")
    load_weights(model, keras_weights / "good.keras")


def test_nan_checkpoint_through_the_cli(tmp_path, timm_state, keras_se_cli):
    from safetensors.numpy import save_file

    key = "layer2.0.conv1.weight"
    save_file(_bad_state(timm_state, key, "nan"), str(tmp_path / "bad.safetensors"))
    done = keras_se_cli(
        "convert", "timm:legacy_seresnet18", "--weights", tmp_path / "bad.safetensors", "--input-size", "32", "--out", tmp_path / "o"
    )
    assert_one_line(done.stderr, done.returncode, 2, key, "non-finite", "bad.safetensors")
    assert not os.path.exists(tmp_path / "o") or os.listdir(tmp_path / "o") == []


# -- a damaged Hugging Face cache --------------------------------------------

REPO = "timm/legacy_seresnet18.in1k"
REVISION = "0123456789abcdef0123456789abcdef01234567"


def _damaged_cache(root, damage):
    """A hub cache of REPO whose model.safetensors blob (or refs/main) is damaged; returns the damaged path."""
    folder = root / ("models--" + REPO.replace("/", "--"))
    (folder / "blobs").mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_bytes(b"\xff\xfe\x00main" if damage == "ref" else REVISION.encode())
    snapshot = folder / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    blob = folder / "blobs" / ("ab" * 32)
    if damage == "folder":
        blob.mkdir()
    elif damage == "fifo":
        os.mkfifo(blob)
    else:
        blob.write_bytes(b"never read")
    os.symlink(os.path.relpath(blob, snapshot), snapshot / "model.safetensors")
    return folder / "refs" / "main" if damage == "ref" else blob


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.mark.parametrize("damage, what", [("folder", "is a folder"), ("fifo", "is a FIFO"), ("ref", "not UTF-8")])
def test_damaged_cache_entry_is_named(offline_cache, damage, what):
    import threading

    damaged = _damaged_cache(offline_cache, damage)
    opened = []
    if damage == "fifo":
        # A writer that returns only if the loader opens the FIFO for reading
        # (which would otherwise wait for ever); the test then fails on `opened`.
        def writer():
            fd = os.open(damaged, os.O_WRONLY)
            opened.append(True)
            os.close(fd)

        threading.Thread(target=writer, daemon=True).start()
    model = keras_se.create_model("se_resnet18", input_shape=SIZE)
    before = model.get_weights()
    with pytest.raises(ValueError, match="damaged") as raised:
        load_weights(model, "imagenet")
    message = str(raised.value)
    assert str(damaged) in message and what in message and "Nothing was loaded" in message and "\n" not in message
    assert _same(model, before)
    if damage == "fifo":
        assert opened == []
        os.close(os.open(damaged, os.O_RDONLY | os.O_NONBLOCK))  # lets the writer thread end


def test_damaged_cache_blob_inside_train_is_named(tmp_path, not_run):
    import subprocess

    from .conftest import cli_env, console_script

    cache = tmp_path / "hub"
    blob = _damaged_cache(cache, "folder")
    argv = ["train", "se_resnet18", "--digits", "--epochs", "1", "--weights", "imagenet", "--output-dir", tmp_path / "run"]
    env = {**cli_env(), "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([console_script(not_run), *map(str, argv)], capture_output=True, text=True, timeout=300, env=env)
    line = assert_one_line(done.stderr, done.returncode, 2, str(blob), "is a folder")
    assert "cannot write" not in line
    assert not (tmp_path / "run").exists()
