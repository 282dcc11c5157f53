"""Tests for keras_se.training.cli: `keras-se train` and tools/train.py."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_se.cli import main
from keras_se.training.cli import parse_model_args

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _image_folder(root, classes=("a", "b"), per_class=6):
    import keras

    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            keras.utils.save_img(str(root / c / f"{i}.png"), rng.integers(0, 256, (40, 40, 3)).astype("uint8"))
    return root


def test_parse_model_args():
    assert parse_model_args(["alpha=0.5", "se_gate=hard_sigmoid", "se_stages=(2, 3)"]) == {
        "alpha": 0.5,
        "se_gate": "hard_sigmoid",
        "se_stages": (2, 3),
    }


def _error_line(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "/nonexistent/images"], "keras-se: error: image directory not found"),
        (["--digits", "--epochs", "-1"], "--epochs must be >= 0, got -1"),
        (["--digits", "--batch-size", "0"], "--batch-size must be positive, got 0"),
        (["--digits", "--image-size", "16"], "--image-size must be at least 32, got 16"),
        (["--digits", "--model-arg", "alpha"], "--model-arg must be KEY=VALUE, got 'alpha'"),
        (["--digits", "--model-arg", "classes=3"], "--model-arg classes is set by keras-se train itself"),
        (["--digits", "--model-arg", "alpha=-1"], "alpha must be a positive number"),
        (["--digits", "--model-arg", "features_only=True"], "train fits a classifier, and features_only=True"),
        (["--digits", "--cluster-timeout", "inf"], "--cluster-timeout must be a positive, finite number of seconds, got inf"),
        (["--digits", "--cluster-timeout", "nan"], "--cluster-timeout must be a positive, finite number of seconds, got nan"),
    ],
)
def test_user_errors_are_one_line(capsys, tmp_path, argv, message):
    line = _error_line(capsys, ["train", "se_mobilenet", "--output-dir", str(tmp_path), *argv])
    assert message in line


def test_unknown_model(capsys, tmp_path):
    line = _error_line(capsys, ["train", "se_mobilenett", "--digits", "--output-dir", str(tmp_path)])
    assert "Unknown model name" in line and "se_mobilenet" in line


def test_data_source_is_required(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["train", "se_mobilenet", "--output-dir", str(tmp_path)])
    assert info.value.code == 2
    assert "one of the arguments --data --digits is required" in capsys.readouterr().err


def test_train_on_an_image_folder(capsys, tmp_path):
    data = _image_folder(tmp_path / "images")
    out = tmp_path / "run"
    argv = ["train", "se_mobilenet", "--data", str(data), "--image-size", "32", "--epochs", "1", "--batch-size", "4"]
    argv += ["--model-arg", "alpha=0.25", "--output-dir", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["model"] == "se_mobilenet" and summary["replicas"] == 1
    assert 0.0 <= summary["float_accuracy"] <= 1.0
    assert "float 1/1" in captured.err  # the progress bar
    assert sorted(os.listdir(out)) == ["checkpoints", "model.keras", "train.json"]
    # Running again refuses to overwrite without --force.
    assert "model.keras exists; use --force to replace it" in _error_line(capsys, argv)


def test_tools_train_is_the_same_command():
    run = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train.py"), "--help"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0
    assert run.stdout.startswith("usage: keras-se train")
    assert "--strategy {default,mirrored,multi_worker}" in run.stdout


def test_features_only_is_refused_by_the_console_script(tmp_path, not_run):
    from tests.faults.conftest import assert_one_line, cli_env, console_script

    argv = ["train", "se_mobilenet", "--digits", "--output-dir", str(tmp_path / "run"), "--model-arg", "features_only=True"]
    done = subprocess.run([console_script(not_run), *argv], capture_output=True, text=True, timeout=300, env=cli_env())
    assert_one_line(done.stderr, done.returncode, 2, "features_only=True")
    assert not (tmp_path / "run").exists()
