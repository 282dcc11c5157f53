"""File and console helpers shared by the exporters, reports and CLI.

Every output of keras_se is written the way `git` writes its refs: into a
hidden temporary sibling that is renamed into place only once complete, so a
reader never sees a partial file and a failure or a kill leaves the old file
untouched. On top of that:

- A symlink is followed: its target is written, the link stays.
- A character device or a FIFO (`/dev/null`, `/dev/stdout`, a named pipe) is
  a stream the user asked to write to: it is written through, never replaced
  by a regular file. A socket, a block device or a directory is refused.
- Without `overwrite`, "does not exist yet" and the final rename are one
  atomic step (`link(2)`, or `renameat2(RENAME_NOREPLACE)` where hard links
  are not supported): of two concurrent writers one wins, the other fails.
- A writer holds an `flock` on its temporary file. A temporary file of ours
  (`.NAME.XXXXXXXX.part` beside NAME) that nobody holds belongs to a writer
  that died (SIGKILL, power loss): the next write of NAME removes it.
- `staged_directory` does the same for a folder of outputs (a training run):
  everything is written into a hidden sibling folder that is swapped into
  place at the end (`renameat2(RENAME_EXCHANGE)` where available).
"""

import contextlib
import ctypes
import errno
import fcntl
import io
import os
import platform
import re
import shutil
import signal
import stat
import sys
import tempfile


def _resolve(path):
    """The path writing `path` lands on: symlinks followed (also a dangling one)."""
    return os.path.realpath(os.fspath(path))


def _kind(target):
    """ "missing", "file", "stream" (char device, FIFO) or what else `target` is."""
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return "missing"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "stream"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def refuse_overwrite(path, overwrite=False):
    """Checks that `path` can be written; returns it as a str.

    Called before slow work (a conversion) so that a mistake costs nothing.

    Raises:
        FileExistsError: `path` is an existing file and not `overwrite`.
        FileNotFoundError: the folder that would hold `path` does not exist.
        IsADirectoryError: `path` is a directory.
        ValueError: `path` is a socket or a block device (never replaced).
    """
    path = os.fspath(path)
    target = _resolve(path)
    kind = _kind(target)
    if kind == "stream":
        return path  # written through: nothing is replaced
    if kind == "directory":
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", path)
    if kind not in ("missing", "file"):
        raise ValueError(f"{path} is a {kind}; keras_se writes only regular files (or streams such as /dev/stdout)")
    if kind == "file" and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force on the command line) to replace it")
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"output directory does not exist: {os.path.dirname(os.path.abspath(path))}")
    return path


_PART_RE = r"\.{name}\.[A-Za-z0-9_]{{8}}\.part"


def _try_lock(fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def remove_stale_parts(directory, name):
    """Removes our temporary files for `name` in `directory` whose writer died.

    A temporary file is ours when it is named `.NAME.XXXXXXXX.part` (or is a
    `.NAME.XXXXXXXX.part` folder of `staged_directory`); its writer is dead
    when nobody holds its `flock` (the kernel drops a lock with its process,
    SIGKILL included). Returns the paths removed.
    """
    pattern = re.compile(_PART_RE.format(name=re.escape(name)) + r"$")
    removed = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for entry in entries:
        if not pattern.match(entry):
            continue
        path = os.path.join(directory, entry)
        is_dir = os.path.isdir(path) and not os.path.islink(path)
        lock_path = os.path.join(path, _LOCK) if is_dir else path
        try:
            fd = os.open(lock_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            if not _try_lock(fd):
                continue  # a live writer
            with contextlib.suppress(FileNotFoundError):
                if os.stat(lock_path).st_ino != os.fstat(fd).st_ino:
                    continue  # replaced meanwhile: not the file we locked
                if is_dir:
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
                removed.append(path)
        finally:
            os.close(fd)
    return removed


def _locked_temp(directory, name, make_dir=False):
    """A new, flock-ed `.NAME.XXXXXXXX.part` file (or folder); returns (path, fd)."""
    while True:
        if make_dir:
            path = tempfile.mkdtemp(prefix=f".{name}.", suffix=".part", dir=directory)
            fd = os.open(os.path.join(path, _LOCK), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        else:
            fd, path = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
        # Between creation and the lock a cleaner could take the file for a
        # dead writer's: then it has no name any more, and we start over.
        if _try_lock(fd) and os.fstat(fd).st_nlink > 0:
            return path, fd
        os.close(fd)


_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100


def _renameat2(source, target, flags):
    """Linux renameat2(2); raises OSError (ENOSYS/EINVAL where unsupported)."""
    if platform.system() != "Linux":
        raise OSError(errno.ENOSYS, "renameat2 is Linux only")
    libc = ctypes.CDLL(None, use_errno=True)
    function = getattr(libc, "renameat2", None)
    if function is None:
        raise OSError(errno.ENOSYS, "no renameat2 in this C library")
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), target)


def _move_noreplace(source, target):
    """Renames `source` to `target` unless `target` exists, in one atomic step.

    Raises:
        FileExistsError: `target` exists (e.g. another writer was faster).
    """
    try:
        os.link(source, target)  # fails with EEXIST atomically, as git does
        os.unlink(source)
        return
    except FileExistsError:
        raise FileExistsError(f"{target} exists (written meanwhile by someone else); pass --force to replace it") from None
    except OSError as error:  # a file system without hard links (vfat, some FUSE)
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
            raise
    try:
        _renameat2(source, target, _RENAME_NOREPLACE)
    except FileExistsError:
        raise FileExistsError(f"{target} exists (written meanwhile by someone else); pass --force to replace it") from None
    except OSError as error:
        if error.errno not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        # Neither is available: the best a plain rename can do.
        if os.path.lexists(target):
            raise FileExistsError(f"{target} exists; pass --force to replace it") from None
        os.rename(source, target)


def _default_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def check_keras_archive(path):
    """Raises `ValueError` naming `path` unless it is a whole `.keras` archive with a config.json.

    Checked before Keras opens it, so that a truncated or damaged file is
    called that, rather than whatever Keras' loader guesses ("File not found").
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            names = set(archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"cannot load a Keras model from {path}: it is not a readable .keras file "
            f"(not a .keras archive, or a truncated or damaged one: {error})"
        ) from None
    if damaged is not None:
        raise ValueError(
            f"cannot load a Keras model from {path}: it is not a readable .keras file (the archive is damaged: {damaged} fails its CRC check)"
        )
    if "config.json" not in names:
        raise ValueError(
            f"cannot load a Keras model from {path}: it is not a readable .keras file (the archive has no config.json: not Keras 3's format)"
        )


def _write_error(error, path):
    """An OSError from writing, as one that names the output (ENOSPC has no file name)."""
    if isinstance(error, OSError) and not isinstance(error, (FileExistsError, FileNotFoundError)) and error.errno:
        return OSError(error.errno, f"cannot write {path}: {error.strerror or error}")
    return None


def _names_no_other_file(error, *folders):
    """Whether an OSError names no file (a full disk) or one inside `folders`."""
    filename = getattr(error, "filename", None)
    if filename is None:
        return True
    filename = os.path.abspath(os.fsdecode(filename))
    return any(filename == folder or filename.startswith(folder + os.sep) for folder in map(os.path.abspath, folders))


@contextlib.contextmanager
def atomic_output(path, overwrite=False, mode="wb"):
    """Yields a file handle whose contents replace `path` only on success.

    A killed or failing writer never leaves a partial file at `path`, and an
    existing `path` is kept unless `overwrite`. A symlink is followed; a
    character device or FIFO is written through (see the module docstring).

    Raises:
        FileExistsError: `path` exists and `overwrite` is False (also when
            another writer created it while this one wrote).
        FileNotFoundError, IsADirectoryError, ValueError: see `refuse_overwrite`.
        OSError: the write failed (disk full, read-only), naming `path`.
    """
    path = refuse_overwrite(path, overwrite)
    target = _resolve(path)
    if _kind(target) == "stream":
        with open(target, mode) as handle:
            yield handle
        return
    directory, name = os.path.split(target)
    remove_stale_parts(directory, name)
    try:
        tmp, fd = _locked_temp(directory, name)
    except OSError as error:
        raise (_write_error(error, path) or error) from None
    try:
        with os.fdopen(fd, mode, closefd=False) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; give the file the mode a plain open() would.
        os.chmod(tmp, _default_mode())
        if overwrite:
            os.replace(tmp, target)
        else:
            _move_noreplace(tmp, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        replacement = _write_error(error, path)
        if replacement is not None:
            raise replacement from None
        raise
    finally:
        os.close(fd)


def write_atomic(path, data, overwrite=False):
    """Writes bytes or str to `path` atomically (see `atomic_output`)."""
    with atomic_output(path, overwrite, "wb" if isinstance(data, (bytes, bytearray)) else "w") as handle:
        handle.write(data)


_LOCK = ".keras_se.lock"


@contextlib.contextmanager
def staged_directory(path, overwrite=False, allowed=None):
    """Yields an empty hidden sibling folder that becomes `path` on success.

    Everything a run writes goes into the yielded folder; when the block
    ends without an error the folder is swapped into place as a whole, so
    `path` holds either the previous run's complete outputs or this run's,
    never a mix (a file of the previous run that this one does not write is
    gone with it). On an error, Ctrl-C or SIGTERM the staged folder is
    removed and `path` is untouched; after a SIGKILL the next run removes it
    (`remove_stale_parts`).

    Args:
        path: the output folder. A symlink to a folder is followed.
        overwrite: bool, defaults to False. Replace an existing `path`
            holding a previous run; without it an existing non-empty `path`
            is refused.
        allowed: optional callable(relative_path) -> bool: which entries
            of an existing `path` may be replaced. Anything else in it is
            never deleted: such a folder is refused.

    Raises:
        FileExistsError: `path` holds files and not `overwrite`.
        NotADirectoryError: `path` exists and is not a folder.
        ValueError: `path` holds files that `allowed` does not accept.
        OSError: the parent folder is missing or not writable.
    """
    path = os.fspath(path)
    target = _resolve(path)
    check_replaceable_directory(path, overwrite, allowed)
    parent, name = os.path.split(target)
    if not os.path.isdir(parent):
        raise FileNotFoundError(
            errno.ENOENT, "the folder that would hold the output folder does not exist", os.path.dirname(os.path.abspath(path))
        )
    remove_stale_parts(parent, name)
    try:
        staging, fd = _locked_temp(parent, name, make_dir=True)
    except OSError as error:
        raise (_write_error(error, path) or error) from None
    try:
        # mkdtemp creates 0700; give the folder the mode a plain mkdir() would.
        os.chmod(staging, 0o777 & ~_umask())
        yield staging
        check_replaceable_directory(path, overwrite, allowed)  # again: the run took a while
        if os.path.isdir(target):
            _swap_into_place(staging, target)
        else:
            _move_noreplace_dir(staging, target)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(target, _LOCK))
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        # An error about another file (an input read inside the block) is not the output's.
        replacement = _write_error(error, path) if _names_no_other_file(error, staging, target) else None
        if replacement is not None:
            raise replacement from None
        raise
    finally:
        os.close(fd)


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def check_replaceable_directory(path, overwrite=False, allowed=None):
    """Raises unless `path` is missing, empty, or (with `overwrite`) a previous run's folder."""
    target = _resolve(path)
    if not os.path.lexists(target):
        return
    if not os.path.isdir(target):
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", os.fspath(path))
    entries = []
    for root, dirs, files in os.walk(target):
        for entry in dirs + files:
            if entry != _LOCK:  # left by a run killed while it swapped folders
                entries.append(os.path.relpath(os.path.join(root, entry), target))
    if not entries:
        return
    foreign = [e for e in sorted(entries) if allowed is not None and not allowed(e)]
    if foreign:
        raise ValueError(
            f"{os.fspath(path)} holds files that are not a keras-se run's (e.g. {foreign[0]}); "
            "give a new or empty folder (nothing in it is deleted)"
        )
    if not overwrite:
        # Name a file of the run (model.keras) rather than checkpoints/.
        first = os.path.join(os.fspath(path), min(entries, key=lambda e: (os.sep in e, os.path.isdir(os.path.join(target, e)), e)))
        raise FileExistsError(f"{first} exists; pass overwrite=True (--force on the command line) to replace the run")


def _swap_into_place(staging, target):
    """Puts `staging` at `target` (an existing folder), then deletes the old one.

    The old folder gets a held lock file first, so that if this process dies
    while deleting it, the next run knows it for a dead writer's and removes it.
    """
    fd = os.open(os.path.join(target, _LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            _renameat2(staging, target, _RENAME_EXCHANGE)
            old = staging  # now holds the previous contents
        except OSError as error:
            if error.errno not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            # Two renames: for a moment `target` is missing, never half-written.
            old = tempfile.mktemp(prefix=f".{os.path.basename(target)}.", suffix=".part", dir=os.path.dirname(target))
            os.rename(target, old)
            os.rename(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        os.close(fd)


def _move_noreplace_dir(staging, target):
    try:
        _renameat2(staging, target, _RENAME_NOREPLACE)
        return
    except FileExistsError:
        raise FileExistsError(f"{target} was created meanwhile by someone else; its contents are kept") from None
    except OSError as error:
        if error.errno not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    try:
        os.mkdir(target)  # claims the name atomically
    except FileExistsError:
        raise FileExistsError(f"{target} was created meanwhile by someone else; its contents are kept") from None
    os.rmdir(target)
    os.rename(staging, target)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C's KeyboardInterrupt so that the
    same clean-up runs (temporary files and folders removed)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def handle_termination():
    """Makes SIGTERM and SIGHUP raise `Interrupted` (a KeyboardInterrupt)."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            signal.signal(signum, _raise_interrupted)


@contextlib.contextmanager
def private_tempdir(prefix="keras-se"):
    """Points `tempfile` (TensorFlow's SavedModel folders included) at a
    folder of this process, removed at the end; removes those of dead
    processes (their `flock` is free) first."""
    base = tempfile.gettempdir()
    remove_stale_parts(base, prefix)
    try:
        folder, fd = _locked_temp(base, prefix, make_dir=True)
    except OSError:
        yield None  # no usable temporary folder: leave tempfile as it is
        return
    saved = tempfile.tempdir
    tempfile.tempdir = folder
    try:
        yield folder
    finally:
        tempfile.tempdir = saved
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


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


_SIMD_FLAGS = {
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_int8",
    "amx_bf16",
}


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
