"""The core install (`pip install keras_se`, no extras) on a Keras backend
other than TensorFlow: layers, builders and reports work; what needs an
extra says which, in one line.

The optional packages are hidden from a fresh interpreter by an import
hook (`sitecustomize`), as if they were not installed.
"""

import os
import subprocess
import sys

import pytest

from keras_se.errors import OPTIONAL

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HIDE = """
import importlib.abc, os, sys

HIDDEN = tuple(os.environ["KERAS_SE_TEST_HIDDEN"].split(","))


class Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Hidden())
"""

CORE = """
import json, sys
import keras, keras_se
from keras_se.analysis import complexity_report

model = keras_se.SEResNet18(input_shape=(32, 32, 3), classes=10)
report = complexity_report(model)
missing = {}
for name in ("export.to_tflite", "quantization"):
    try:
        getattr(keras_se.export, "to_tflite") if name == "export.to_tflite" else getattr(keras_se, name)
    except ImportError as error:
        missing[name] = [type(error).__name__, str(error)]
print(json.dumps({"backend": keras.backend.backend(), "params": model.count_params(), "report_params": report.params,
                  "missing": missing, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[1:])}))
"""


@pytest.fixture
def core_env(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(HIDE)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), ROOT]),
        "KERAS_SE_TEST_HIDDEN": ",".join(OPTIONAL),
        "KERAS_BACKEND": "jax",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


def test_core_builds_and_reports_without_the_extras(core_env):
    import json

    done = subprocess.run([sys.executable, "-c", CORE, *OPTIONAL], capture_output=True, text=True, env=core_env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax" and result["loaded"] == []  # no optional package was imported
    # The same counts as on TensorFlow in this process.
    import keras_se
    from keras_se.analysis import complexity_report

    model = keras_se.SEResNet18(input_shape=(32, 32, 3), classes=10)
    assert (result["params"], result["report_params"]) == (model.count_params(), complexity_report(model).params)
    for name, extra in (("export.to_tflite", "export"), ("quantization", "qat")):
        kind, message = result["missing"][name]
        assert kind == "MissingDependency" and message.startswith(f"keras_se.{name} needs "), message
        assert message.endswith(f"pip install 'keras_se[{extra}]'") and "\n" not in message, message


@pytest.mark.parametrize(
    "argv, extra",
    [
        (["convert", "se_resnet18", "--out", "out"], "export"),
        (["bench", "model.tflite"], "export"),
        (["train", "se_mobilenet", "--digits", "--output-dir", "run"], "train"),
    ],
)
def test_cli_names_the_extra_a_command_needs(core_env, tmp_path, argv, extra):
    done = subprocess.run(
        [sys.executable, "-m", "keras_se.cli", *argv], capture_output=True, text=True, env=core_env, cwd=tmp_path, timeout=300
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith(f"keras-se: error: keras-se {argv[0]} needs ") and f"pip install 'keras_se[{extra}]'" in lines[0], lines
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()


def test_cli_lists_and_reports_without_the_extras(core_env, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "keras_se.cli", "report", "se_resnet18", "--input-size", "32", "--format", "json"],
        capture_output=True,
        text=True,
        env=core_env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr[-3000:]
    assert '"se_resnet18"' in done.stdout
