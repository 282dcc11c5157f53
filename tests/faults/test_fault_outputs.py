"""Outputs under faults: special files, a full or read-only disk, concurrent
writers, writers that died."""

import errno
import json
import os
import socket
import stat
import subprocess
import sys
import threading

import pytest

from keras_se.io_utils import atomic_output, remove_stale_parts, staged_directory, write_atomic

from .conftest import ROOT, assert_one_line, call_main, fail_writes, fill, parts_in, small_mount, snapshot

# -- special files as outputs ------------------------------------------------


def test_symlink_is_followed_and_kept(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with pytest.raises(FileExistsError):
        write_atomic(link, "new")
    write_atomic(link, "new", overwrite=True)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "later.json")
    write_atomic(dangling, "x")
    assert dangling.is_symlink() and (tmp_path / "later.json").read_text() == "x"
    assert parts_in(tmp_path) == []


def test_fifo_is_written_through_never_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo, "rb").read()))
    reader.start()
    write_atomic(fifo, b"through the pipe", overwrite=True)
    reader.join(timeout=30)
    assert received == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert parts_in(tmp_path) == []


def test_character_device_is_never_replaced(tmp_path, not_run):
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a second /dev/null
    except (PermissionError, OSError) as error:
        not_run(f"cannot create a character device here ({error.strerror})")
    write_atomic(device, b"discarded", overwrite=True)
    write_atomic(device, b"discarded")  # a stream: nothing exists to keep
    assert stat.S_ISCHR(os.lstat(device).st_mode) and os.major(os.lstat(device).st_rdev) == 1
    assert parts_in(tmp_path) == []


def test_socket_and_directory_are_refused(tmp_path):
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        with pytest.raises(ValueError, match="is a socket"):
            write_atomic(path, "x", overwrite=True)
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
    finally:
        server.close()
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path, "x", overwrite=True)


def test_report_output_to_special_files_through_the_cli(tmp_path, tiny_model_files, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo, "rb").read()))
    reader.start()
    code, err = call_main(capsys, ["report", tiny_model_files["float32"], "--format", "json", "--output", fifo, "--force"])
    reader.join(timeout=30)
    assert code == 0, err
    assert json.loads(received[0])["model"] == "tiny_float32.tflite"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    link = tmp_path / "report.json"
    (tmp_path / "target.json").write_text("{}")
    link.symlink_to(tmp_path / "target.json")
    code, err = call_main(capsys, ["report", tiny_model_files["float32"], "--format", "json", "--output", link, "--force"])
    assert code == 0, err
    assert link.is_symlink() and json.loads((tmp_path / "target.json").read_text())["model"] == "tiny_float32.tflite"


# -- a full or read-only disk ------------------------------------------------


# 64k: what a 4k tmpfs is on a kernel with 64 KiB pages, where the report
# used to fit and the test skipped every time.
@pytest.mark.parametrize("size", ["4k", "64k"])
def test_full_disk_report_output(tmp_path, tiny_model_files, capsys, monkeypatch, size):
    mount = tmp_path / "small"
    with small_mount(mount, size=size) as mounted:
        if not mounted:
            fail_writes(monkeypatch)
        (mount / "keep.json").write_text("previous report")
        if mounted:
            fill(mount)
        before = snapshot(mount)
        code, err = call_main(
            capsys, ["report", tiny_model_files["float32"], "--format", "json", "--layers", "--output", mount / "keep.json", "--force"]
        )
        assert_one_line(err, code, 1, "No space left on device", "keep.json")
        assert snapshot(mount) == before  # nothing partial, nothing lost


def test_full_disk_convert(tmp_path, tiny_model_files, capsys, monkeypatch):
    mount = tmp_path / "small"
    with small_mount(mount, size="4k") as mounted:
        if not mounted:
            fail_writes(monkeypatch)
        if mounted:
            fill(mount)
        before = snapshot(mount)
        code, err = call_main(capsys, ["convert", tiny_model_files["keras"], "--out", mount, "--format", "json"])
        assert_one_line(err, code, 1, "No space left on device", "tiny_float32.tflite")
        assert snapshot(mount) == before


@pytest.mark.large
def test_full_disk_while_train_writes_a_checkpoint(tmp_path, capsys, monkeypatch, image_folder, keras_se_cli):
    mount = tmp_path / "small"
    argv = ["train", "se_mobilenet", "--data", image_folder, "--image-size", "32", "--epochs", "1", "--model-arg", "alpha=0.25"]
    argv += ["--no-progress", "--output-dir", mount / "run"]
    with small_mount(mount, size="256k") as mounted:  # the float checkpoint is about 850 kB
        if mounted:  # the installed script: h5py's clean-up at exit would show there
            done = keras_se_cli(*argv)
            # Keras' "Found 12 files ..." / "Using 10 files ..." lines come first, by design.
            code, err = done.returncode, "\n".join(x for x in done.stderr.splitlines() if not x.startswith(("Found ", "Using ")))
        else:
            from keras_se.training import trainer

            monkeypatch.setattr(trainer, "open", _raise(errno.ENOSPC), raising=False)
            code, err = call_main(capsys, argv)
        assert_one_line(err, code, 1, "No space left on device", "run", "checkpoints/float-epoch001.weights.h5")
        assert "Exception ignored" not in err
        assert snapshot(mount) == {}


def test_read_only_outputs(tmp_path, tiny_model_files, capsys, monkeypatch, image_folder):
    mount = tmp_path / "ro"
    with small_mount(mount, read_only=True) as mounted:
        if not mounted:
            fail_writes(monkeypatch, errno.EROFS)
            monkeypatch.setattr("keras_se.io_utils.tempfile.mkdtemp", _raise(errno.EROFS))
            monkeypatch.setattr("keras_se.training.trainer.os.makedirs", _raise(errno.EROFS))
        code, err = call_main(capsys, ["report", tiny_model_files["float32"], "--format", "json", "--output", mount / "r.json"])
        assert_one_line(err, code, 1, "Read-only file system")
        argv = ["train", "se_mobilenet", "--data", image_folder, "--image-size", "32", "--epochs", "1", "--model-arg", "alpha=0.25"]
        code, err = call_main(capsys, argv + ["--output-dir", mount / "run"])
        assert_one_line(err, code, 1, "Read-only file system")
        code, err = call_main(capsys, ["convert", tiny_model_files["keras"], "--out", mount / "out", "--format", "json"])
        assert_one_line(err, code, 1, "Read-only file system", "out")
        code, err = call_main(capsys, ["convert", tiny_model_files["keras"], "--out", mount, "--format", "json"])
        assert_one_line(err, code, 1, "Read-only file system")
        assert snapshot(mount) == {}


def _raise(code):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return fail


def test_train_output_dir_that_is_a_file_or_foreign(tmp_path, capsys, image_folder):
    argv = ["train", "se_mobilenet", "--data", image_folder, "--image-size", "32", "--epochs", "1", "--model-arg", "alpha=0.25"]
    (tmp_path / "file").write_text("mine")
    code, err = call_main(capsys, argv + ["--output-dir", tmp_path / "file", "--force"])
    assert_one_line(err, code, 2, "not a folder", "file")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    code, err = call_main(capsys, argv + ["--output-dir", tmp_path / "home", "--force"])
    assert_one_line(err, code, 2, "not a keras-se run's", "notes.txt")
    assert (tmp_path / "file").read_text() == "mine" and (tmp_path / "home" / "notes.txt").read_text() == "mine"


# -- concurrent writers ------------------------------------------------------


# Writers are separate Python processes that import only keras_se.io_utils
# (forking a process that has TensorFlow loaded can deadlock).
_WRITER = """
import os, sys, time
from keras_se.io_utils import atomic_output
path, byte, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
while not os.path.exists(go):
    time.sleep(0.001)
try:
    with atomic_output(path) as handle:
        handle.write(bytes([byte]) * 200_000)
        if byte == 255:
            os._exit(9)  # dies mid-write, as with SIGKILL: no clean-up runs
    print("won")
except FileExistsError:
    print("refused")
"""


def _writers(path, bytes_, go):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(b), str(go)], stdout=subprocess.PIPE, text=True, env=env)
        for b in bytes_
    ]


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_writers_without_force_one_wins(tmp_path, round_):
    path, go = tmp_path / "model.tflite", tmp_path / "go"
    writers = _writers(path, range(4), go)
    go.write_text("")
    outcomes = [w.communicate(timeout=60)[0].strip() for w in writers]
    assert sorted(outcomes) == ["refused", "refused", "refused", "won"]
    winner = outcomes.index("won")
    assert path.read_bytes() == bytes([winner]) * 200_000  # complete, and the winner's
    assert parts_in(tmp_path) == []


def test_concurrent_runs_into_one_new_folder(tmp_path):
    target = tmp_path / "run"
    with pytest.raises(FileExistsError, match="exists"):
        with staged_directory(target) as first:
            (tmp_path / first / "model.keras").write_text("first")
            with staged_directory(target) as second:  # a second run finishes first
                (tmp_path / second / "model.keras").write_text("second")
    assert (target / "model.keras").read_text() == "second"  # kept whole, not mixed
    assert sorted(os.listdir(target)) == ["model.keras"] and parts_in(tmp_path) == []


# -- writers that died -------------------------------------------------------


def test_stale_parts_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    path, go = tmp_path / "model.tflite", tmp_path / "go"
    go.write_text("")
    (writer,) = _writers(path, [255], go)
    assert writer.wait(60) == 9
    assert len(parts_in(tmp_path)) == 1 and not path.exists()
    (tmp_path / ".model.tflite.notours.part").write_text("a look-alike")  # not our name pattern: kept
    with atomic_output(path) as handle:
        assert len(parts_in(tmp_path)) == 2  # the stale one is gone, our own live one is kept
        assert remove_stale_parts(str(tmp_path), "model.tflite") == []
        handle.write(b"complete")
    assert path.read_bytes() == b"complete"
    assert parts_in(tmp_path) == [".model.tflite.notours.part"]
