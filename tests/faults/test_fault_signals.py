"""SIGINT, SIGTERM and SIGKILL at several points of `convert` and `train`:
afterwards the output folder holds exactly what it held before (nothing
partial, nothing lost), and what a killed writer left is removed by the next
write."""

import json
import os
import signal
import subprocess
import sys

import pytest

from keras_se.io_utils import remove_stale_parts

from .conftest import ROOT, assert_one_line, cli_env, parts_in, snapshot

# Runs `keras_se.cli.main(argv)` with a signal sent to itself at one point:
# deterministic, where a timer would hit a different step on a loaded machine.
_DRIVER = """
import json, os, signal, sys
point, signum, argv = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])

def fire():
    os.kill(os.getpid(), signum)

def after(module, name):
    original = getattr(module, name)
    def hooked(*args, **kwargs):
        result = original(*args, **kwargs)
        fire()
        return result
    setattr(module, name, hooked)

def before(module, name):
    original = getattr(module, name)
    def hooked(*args, **kwargs):
        fire()
        return original(*args, **kwargs)
    setattr(module, name, hooked)

import keras_se.io_utils as io_utils
if point == "commit":  # the output is written and synced, not yet renamed
    after(io_utils.os, "fsync")
elif point == "swap":  # the run is complete in its staging folder
    before(io_utils, "_swap_into_place")
elif point == "convert":
    import keras_se.export.tflite as tflite
    after(tflite, "_converter")
elif point == "fit":
    import keras_se.training.trainer as trainer
    before(trainer, "_fit")
elif point == "save":  # model.keras half written
    import keras
    original = keras.Model.save
    def save(self, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"PK" + b"x" * 1000)
        fire()
    keras.Model.save = save
from keras_se.cli import main
sys.exit(main(argv))
"""


def _run(point, signum, argv, timeout=300):
    env = cli_env()
    env["PYTHONPATH"] = ROOT
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, point, str(int(signum)), json.dumps([str(a) for a in argv])],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return done


def _check(done, signum, folder, before):
    """The contract after a signal; returns the stale parts a SIGKILL left."""
    if signum == signal.SIGKILL:
        assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    else:
        # Training reports the image folder it read ("Found N files ...") before it starts.
        stderr = "".join(line for line in done.stderr.splitlines(True) if not line.startswith(("Found ", "Using ")))
        assert_one_line(stderr, done.returncode, 128 + signum, f"interrupted ({signal.Signals(signum).name})")
    after = {k: v for k, v in snapshot(folder).items() if not k.split(os.sep)[0].endswith(".part")}
    assert after == before  # nothing partial, nothing lost
    stale = parts_in(folder)
    if signum != signal.SIGKILL:
        assert stale == []
    return stale


def _previous_convert(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "tiny_float32.tflite").write_bytes(b"the previous, complete file")
    return out


def _previous_run(tmp_path):
    parent = tmp_path / "runs"
    run = parent / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "model.keras").write_bytes(b"previous model")
    (run / "model_int8.tflite").write_bytes(b"previous int8 model")
    (run / "train.json").write_text('{"previous": true}')
    (run / "checkpoints" / "float-epoch001.weights.h5").write_bytes(b"previous checkpoint")
    return parent, run


def _convert_case(tmp_path, tiny_model_files, point, signum):
    out = _previous_convert(tmp_path)
    before = snapshot(out)
    done = _run(point, signum, ["convert", tiny_model_files["keras"], "--out", out, "--force", "--format", "json"])
    stale = _check(done, signum, out, before)
    if stale:
        assert remove_stale_parts(str(out), "tiny_float32.tflite") == [str(out / p) for p in stale]


def _train_case(tmp_path, image_folder, point, signum):
    parent, run = _previous_run(tmp_path)
    before = snapshot(parent)
    argv = ["train", "se_mobilenet", "--data", image_folder, "--image-size", "32", "--epochs", "1", "--batch-size", "4"]
    argv += ["--model-arg", "alpha=0.25", "--output-dir", run, "--force", "--no-progress"]
    done = _run(point, signum, argv)
    stale = _check(done, signum, parent, before)
    if stale:
        assert sorted(remove_stale_parts(str(parent), "run")) == sorted(str(parent / p) for p in stale)
        assert parts_in(parent) == []


def test_sigterm_while_convert_commits(tmp_path, tiny_model_files):
    _convert_case(tmp_path, tiny_model_files, "commit", signal.SIGTERM)


@pytest.mark.large
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("point", ["convert", "commit"])
def test_convert_signal_matrix(tmp_path, tiny_model_files, point, signum):
    _convert_case(tmp_path, tiny_model_files, point, signum)


# Every point and every signal once (a training run costs about 30 s on two
# cores; the full 3 x 3 matrix would add minutes to CI for no new path).
@pytest.mark.large
@pytest.mark.parametrize(
    "point, signum",
    [("fit", signal.SIGTERM), ("save", signal.SIGKILL), ("swap", signal.SIGINT)],
    ids=["fit-SIGTERM", "save-SIGKILL", "swap-SIGINT"],
)
def test_train_signal_matrix(tmp_path, image_folder, point, signum):
    _train_case(tmp_path, image_folder, point, signum)


@pytest.mark.large
def test_force_rerun_leaves_no_file_of_the_previous_run(tmp_path, image_folder, capsys):
    from .conftest import call_main

    parent, run = _previous_run(tmp_path)
    argv = ["train", "se_mobilenet", "--data", image_folder, "--image-size", "32", "--epochs", "1", "--batch-size", "4"]
    code, err = call_main(capsys, argv + ["--model-arg", "alpha=0.25", "--output-dir", run, "--force", "--no-progress"])
    assert code == 0, err
    # The previous run's int8 file is gone with it: this run had no --qat.
    assert sorted(os.listdir(run)) == ["checkpoints", "model.keras", "train.json"]
    assert os.listdir(run / "checkpoints") == ["float-epoch001.weights.h5"]
    record = json.loads((run / "train.json").read_text())
    assert record["files"]["model"] == str(run / "model.keras")
    import keras

    assert keras.models.load_model(run / "model.keras").output_shape == (None, 2)
    assert parts_in(parent) == []
