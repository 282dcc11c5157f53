"""The `keras-se` command line."""

import argparse
import errno
import importlib
import json
import os
import signal
import sys

from keras_se.errors import UserError, missing_dependency
from keras_se.io_utils import handle_termination, private_tempdir, quiet_native_logs

# Modules that contribute subcommands; each defines `add_commands(subparsers)`
# and keeps its heavy imports inside the command functions.
COMMAND_MODULES = ("keras_se.analysis.cli", "keras_se.export.cli", "keras_se.training.cli")


__all__ = ["UserError", "build_parser", "main"]  # UserError lives in keras_se.errors


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: no usage block before the message."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _has_tensorflow():
    """Whether TensorFlow is installed (the `tensorflow` extra): `list` and
    `report` run without it, on the Keras backend that is installed."""
    import importlib.util

    try:
        return importlib.util.find_spec("tensorflow") is not None
    except ImportError:
        return False


def _quiet_tensorflow():
    """Imports TensorFlow with its native start-up logging silenced.

    TensorFlow 2.21 prints absl INFO lines (oneDNN, CUDA probing) from C++ at
    import and first device use, ignoring TF_CPP_MIN_LOG_LEVEL; a command
    line tool should not.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not _has_tensorflow():
        return
    with quiet_native_logs():
        import tensorflow as tf

        tf.config.list_physical_devices()
        import keras  # noqa: F401


def _cmd_list(args):
    from rich.console import Console
    from rich.table import Table

    import keras_se
    from keras_se.models.registry import get_entry

    names = keras_se.list_models(args.pattern)
    if not names:
        raise UserError(f"no model matches pattern {args.pattern!r}")
    params = {}
    if args.params:
        from rich.progress import track

        from keras_se.analysis import count_params

        for name in track(names, description="Building models", console=Console(stderr=True), transient=True):
            params[name] = count_params(keras_se.create_model(name, weights=None))
    rows = []
    for name in names:
        entry = get_entry(name)
        row = {"name": name, "family": entry.family, "paper": entry.paper, "plain_twin": entry.twin}
        if args.params:
            row["params"] = params[name]
        rows.append(row)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"keras_se models ({len(rows)})")
    for column in rows[0]:
        table.add_column(column, justify="right" if column == "params" else "left")
    for row in rows:
        table.add_row(*("" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()))
    Console().print(table)


def build_parser():
    parser = _Parser(
        prog="keras-se",
        description="Squeeze-and-Excitation and Selective-Kernel models for Keras 3, built to ship to phones.",
    )
    from keras_se import __version__

    parser.add_argument("--version", action="version", version=f"keras-se {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("list", help="list the registered models", description="List the registered models.")
    p.add_argument("pattern", nargs="?", default=None, help="shell-style pattern, e.g. 'se_*'")
    p.add_argument("--params", action="store_true", help="build each model and show its parameter count (slow)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    p.set_defaults(func=_cmd_list)

    # Feature modules add their own subcommands: `add_commands(subparsers)`.
    # keras_se.analysis imports Keras (and TensorFlow, with its native
    # start-up logging) as a package: keep that off the user's terminal.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with quiet_native_logs():
        modules = [importlib.import_module(name) for name in COMMAND_MODULES]
    for module in modules:
        module.add_commands(sub)
    return parser


# The extra each command needs beyond the core install (`list` and
# `report` need none), named when an optional package is missing.
_EXTRAS = {"convert": "export", "bench": "export", "train": "train"}

# OS errors that are the machine's state rather than a mistake in the command:
# exit status 1 from every command (a read-only or full disk, an I/O error);
# any other OS error (a missing folder, no permission) names the path the
# command was given, exit status 2. Subcommands re-raise OS errors with
# their errno, never as UserError, so that this one table decides.
_ENVIRONMENT_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG, errno.ENOMEM}


def _one_line(error):
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror + (f": {error.filename}" if error.filename else "")
    else:
        text = str(error) or type(error).__name__
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _os_error_in(error):
    """The OSError an exception wraps (TensorFlow and h5py re-raise their own types), or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _run(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_tensorflow()
    try:
        with private_tempdir():
            args.func(args)
    except (ValueError, ImportError) as error:
        missing = missing_dependency(error, f"keras-se {args.command}", _EXTRAS.get(args.command))
        print(f"keras-se: error: {_one_line(missing or error)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `keras-se list | head -1`: the reader left; nothing is wrong.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        raise
    except Exception as error:
        cause = _os_error_in(error)
        if cause is None:
            if isinstance(error, MemoryError):
                print("keras-se: error: out of memory", file=sys.stderr)
                return 1
            raise  # a bug: the traceback is what a report needs
        print(f"keras-se: error: {_one_line(cause)}", file=sys.stderr)
        return 1 if cause.errno in _ENVIRONMENT_ERRORS else 2
    return 0


def main(argv=None):
    """The console script. Exit status: 0 success, 2 a mistake in the command
    (one line on stderr), 1 the machine failed it (disk full, read-only),
    130 / 143 / 129 interrupted by SIGINT / SIGTERM / SIGHUP."""
    handle_termination()
    try:
        # The phone path (TFLite, tfmot, tf.distribute) runs on TensorFlow, and a
        # .keras file does not depend on the backend that saved it: where
        # TensorFlow is installed the command runs Keras on it whatever
        # KERAS_BACKEND says (set before any subcommand module can import Keras).
        if "keras" not in sys.modules and _has_tensorflow():
            os.environ["KERAS_BACKEND"] = "tensorflow"
        return _run(argv)
    except KeyboardInterrupt as error:
        signum = getattr(error, "signum", signal.SIGINT)
        print(f"keras-se: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
