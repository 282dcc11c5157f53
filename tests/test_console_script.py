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
