import os
import shutil
import subprocess
import sys


def _console_script(not_run):
    script = shutil.which("keras-se") or os.path.join(os.path.dirname(sys.executable), "keras-se")
    if not os.path.isfile(script):
        not_run("the keras-se console script is not installed (pip install -e .)")
    return script


def test_installed_console_script_help_writes_nothing_to_stderr(not_run):
    # In-process tests import TensorFlow first and cannot see its start-up logging.
    done = subprocess.run([_console_script(not_run), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "convert" in done.stdout
    assert done.stderr == ""


def _run(not_run, *args):
    from tests.faults.conftest import cli_env

    return subprocess.run([_console_script(not_run), *args], capture_output=True, text=True, timeout=300, env=cli_env())


def test_version_and_a_mistake_print_no_tensorflow_logging(not_run):
    done = _run(not_run, "--version")
    assert done.returncode == 0 and done.stdout.startswith("keras-se ") and done.stderr == ""
    done = _run(not_run, "convert", "no_such_model", "--out", "/nonexistent-dir/out")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("keras-se: error: Unknown model name") and "Traceback" not in done.stderr
    done = _run(not_run, "convert", "m", "--out", "x", "--bogus-flag")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--bogus-flag" in done.stderr


# The console script's own entry point, with the signal sent by the process
# itself the moment `import tensorflow` begins: deterministic, where a timer
# before the signal hits another moment (or none) on a loaded machine.
# Ctrl-C as in a terminal: a process started in the background of a
# non-interactive shell (a CI runner's `cmd &`) inherits SIGINT ignored, and
# Python then never raises KeyboardInterrupt for it.
_SIGNAL_AT_TENSORFLOW_IMPORT = """
import importlib.abc, importlib.metadata, os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
signum = int(sys.argv[1])

class Fire(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signum)
        return None

sys.meta_path.insert(0, Fire())
(entry,) = importlib.metadata.entry_points(group="console_scripts", name="keras-se")
sys.argv = ["keras-se", *sys.argv[2:]]
sys.exit(entry.load()())
"""


def test_ctrl_c_and_sigterm_while_tensorflow_imports_print_one_line(not_run):
    import signal

    from tests.faults.conftest import cli_env

    _console_script(not_run)
    for signum in (signal.SIGINT, signal.SIGTERM):
        argv = [sys.executable, "-c", _SIGNAL_AT_TENSORFLOW_IMPORT, str(int(signum)), "report", "se_resnet18", "--format", "json"]
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=cli_env(), timeout=300)
        assert done.returncode == 128 + signum and done.stderr == f"keras-se: interrupted ({signum.name})\n", done.stderr
