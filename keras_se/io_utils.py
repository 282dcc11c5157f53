"""File and console helpers shared by the exporters, reports and CLI."""

import contextlib
import io
import os
import platform
import sys
import tempfile


def refuse_overwrite(path, overwrite=False):
    """Returns `path` as a str; raises `FileExistsError` if it exists and not `overwrite`."""
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force on the command line) to replace it")
    return path


@contextlib.contextmanager
def atomic_output(path, overwrite=False, mode="wb"):
    """Yields a temporary file that replaces `path` only on success.

    A killed or failing writer never leaves a partial file at `path`, and an
    existing `path` is kept unless `overwrite`.

    Raises:
        FileExistsError: `path` exists and `overwrite` is False.
    """
    path = refuse_overwrite(path, overwrite)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"output directory does not exist: {directory}")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        # mkstemp creates 0600; give the file the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path, data, overwrite=False):
    """Writes bytes or str to `path` atomically (see `atomic_output`)."""
    with atomic_output(path, overwrite, "wb" if isinstance(data, (bytes, bytearray)) else "w") as handle:
        handle.write(data)


@contextlib.contextmanager
def quiet_native_logs(enabled=True):
    """Silences TensorFlow's C++ logging (fd 2) and Keras' export chatter (stdout).

    TensorFlow 2.21's converter and runtime log from C++ regardless of
    TF_CPP_MIN_LOG_LEVEL. Python exceptions still carry the error text.
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_SIMD_FLAGS = {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_int8", "amx_bf16"}


def machine_summary():
    """CPU model, cores and the versions that matter, for benchmark records."""
    import ai_edge_litert
    import keras
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        with open("/proc/cpuinfo") as handle:
            info = handle.read().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
        present = next(line.split(":", 1)[1].split() for line in info if line.startswith("flags"))
        # The SIMD extensions XNNPACK and lavapipe's LLVM pick kernels by.
        simd = [f for f in present if f in _SIMD_FLAGS]
        flags = f" ({' '.join(simd)})" if simd else ""
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}{flags}, {os.cpu_count()} cores; Python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, ai-edge-litert {getattr(ai_edge_litert, '__version__', '?')}"
    )
