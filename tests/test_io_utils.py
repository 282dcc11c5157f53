import os
import stat

import pytest

from keras_se.io_utils import atomic_output, write_atomic


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "out.bin"
    write_atomic(path, b"first")
    assert path.read_bytes() == b"first"
    with pytest.raises(FileExistsError, match="--force"):
        write_atomic(path, b"second")
    with pytest.raises(RuntimeError):
        with atomic_output(path, overwrite=True) as handle:
            handle.write(b"partial")
            raise RuntimeError("killed mid-write")
    assert path.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["out.bin"]  # no temporary left behind


def test_atomic_write_uses_the_default_file_mode(tmp_path):
    path = tmp_path / "report.json"
    write_atomic(path, "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_atomic(tmp_path / "missing" / "x.txt", "x")


def test_staged_directory_blames_only_its_own_files(tmp_path):
    from keras_se.io_utils import staged_directory

    other = tmp_path / "cache" / "blob"
    other.mkdir(parents=True)
    with pytest.raises(IsADirectoryError) as raised:
        with staged_directory(tmp_path / "run"):
            open(other, "rb")  # an input read inside the block: its error names the input
    assert raised.value.filename == str(other) and "cannot write" not in str(raised.value)
    with pytest.raises(OSError, match=r"cannot write .*run: No space left on device"):
        with staged_directory(tmp_path / "run"):
            raise OSError(28, "No space left on device")  # no file named: the output's
    assert sorted(os.listdir(tmp_path)) == ["cache"]


def test_machine_summary_names_the_cpu_its_flags_and_the_versions():
    import platform

    import ai_edge_litert
    import keras
    import tensorflow as tf

    from keras_se.io_utils import machine_summary

    summary = machine_summary()
    with open("/proc/cpuinfo") as handle:
        info = handle.read().splitlines()
    cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    flags = next(line.split(":", 1)[1].split() for line in info if line.startswith("flags"))
    assert summary.startswith(cpu) and f"{os.cpu_count()} cores" in summary
    assert ("avx2" in summary) == ("avx2" in flags) and "sse4_2" in flags and "sse4_2" in summary
    for version in (f"Python {platform.python_version()}", f"TensorFlow {tf.__version__}", f"Keras {keras.__version__}"):
        assert version in summary
    assert f"ai-edge-litert {ai_edge_litert.__version__}" in summary
