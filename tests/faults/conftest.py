"""Shared pieces of the fault-injection suite.

Every case checks the same contract: the exit status, exactly one line on
stderr, no traceback, nothing partial written and nothing that existed lost.
"""

import contextlib
import errno
import hashlib
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def console_script(not_run):
    script = shutil.which("keras-se") or os.path.join(os.path.dirname(sys.executable), "keras-se")
    if not os.path.isfile(script):
        not_run("the keras-se console script is not installed (pip install -e .)")
    return script


def cli_env():
    """The installed console script, with this tree's package first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the CLI must silence TensorFlow itself
    return env


@pytest.fixture(scope="session")
def keras_se_cli(not_run):
    """`keras_se_cli(*args, timeout=...)`: runs the installed `keras-se` in a subprocess."""
    script = console_script(not_run)

    def run(*args, timeout=300, **kwargs):
        return subprocess.run([script, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=cli_env(), **kwargs)

    return run


def assert_one_line(stderr, returncode, expected_code, *fragments):
    """The CLI failed with `expected_code` and one clean line on stderr."""
    lines = stderr.splitlines()
    assert returncode == expected_code, stderr[-3000:]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr
    assert lines[0].startswith("keras-se"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def call_main(capsys, argv):
    """(exit status, stderr) of `keras_se.cli.main(argv)` in this process."""
    from keras_se.cli import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    return code, capsys.readouterr().err


def snapshot(folder):
    """relative path -> (kind, sha256) of everything under `folder`, hidden files included."""
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            state[os.path.relpath(os.path.join(root, name), folder)] = ("dir", None)
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                state[os.path.relpath(path, folder)] = ("file", hashlib.sha256(handle.read()).hexdigest())
    return state


def parts_in(folder):
    """Temporary files or folders (`.NAME.XXXXXXXX.part`) left in `folder`."""
    return sorted(n for n in os.listdir(folder) if n.startswith(".") and n.endswith(".part"))


@contextlib.contextmanager
def small_mount(path, size="256k", read_only=False):
    """A tmpfs of `size` at `path` (root only); yields False where mounting is not permitted."""
    os.makedirs(path, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    if os.geteuid() != 0 or not shutil.which("mount"):
        yield False
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(folder):
    """Fills the file system of `folder` (a small tmpfs) with one file, so that nothing more fits.

    A tmpfs's size is rounded up to whole pages (4 KiB on x86-64, 16 or 64
    KiB on some ARM kernels): a small output can fit in what is left, and a
    test of a full disk would then test nothing.
    """
    path = os.path.join(folder, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 512):
            pass
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    return path


def fail_writes(monkeypatch, code=errno.ENOSPC):
    """Where no tmpfs can be mounted: the atomic writer's commit fails as a full disk would."""
    from keras_se import io_utils

    def fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(io_utils.os, "fsync", fsync)


@pytest.fixture(scope="session")
def tiny_model_files(tmp_path_factory):
    """A small SE network as a `.keras` file and as float32 and int8 `.tflite` files."""
    import keras

    from keras_se.export import to_tflite
    from keras_se.layers import squeeze_excite

    folder = tmp_path_factory.mktemp("tiny")
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = squeeze_excite(x, "se", reduction=4)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4)(x)
    model = keras.Model(inputs, outputs, name="tiny")
    model.save(folder / "tiny.keras")
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        to_tflite(model, folder / "tiny_float32.tflite", verify=False)
        to_tflite(model, folder / "tiny_int8.tflite", quantize="int8", representative_data=rng.uniform(0, 1, (4, 16, 16, 3)), verify=False)
    return {
        "keras": str(folder / "tiny.keras"),
        "float32": str(folder / "tiny_float32.tflite"),
        "int8": str(folder / "tiny_int8.tflite"),
    }


@pytest.fixture()
def image_folder(tmp_path):
    """Two classes of six 40x40 PNG images."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / label / f"{i}.png")
    return root
