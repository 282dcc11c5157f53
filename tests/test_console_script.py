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


def test_ctrl_c_and_sigterm_while_tensorflow_imports_print_one_line(not_run):
    import signal
    import time

    from tests.faults.conftest import cli_env

    for signum, delay in ((signal.SIGINT, 1.0), (signal.SIGTERM, 2.0)):
        process = subprocess.Popen(
            [_console_script(not_run), "report", "se_resnet18", "--format", "json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        time.sleep(delay)
        process.send_signal(signum)
        _, err = process.communicate(timeout=120)
        assert process.returncode == 128 + signum and err == f"keras-se: interrupted ({signum.name})\n", err
