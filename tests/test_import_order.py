"""A saved keras_se model loads whatever a fresh process imported first.

`import keras_se` registers keras_se's classes with Keras through an import
hook (keras_se/__init__.py). `import tensorflow` looks Keras up without
loading it, the console script imports TensorFlow first, and importing
`keras_se.layers` imports Keras from inside keras_se: each order runs in a
fresh interpreter, because in this process everything is already imported.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import keras_se
from tests.test_console_script import _console_script

_LOAD = textwrap.dedent(
    """
    import sys
    {imports}
    import keras
    model = keras.saving.load_model(sys.argv[1], safe_mode=True)
    print("LOADED", type(model).__name__)
    """
)

# The orders that broke (TensorFlow first or after, keras_se.layers alone) by
# default; the others, which always worked, in the large run.
ORDERS = [
    "import keras_se, tensorflow",
    "import tensorflow, keras_se",
    *(
        pytest.param(order, marks=pytest.mark.large)
        for order in (
            "import keras_se.layers",
            "import keras_se.models.resnet",
            "import keras_se",
            "import keras_se, keras",
            "import keras, keras_se",
            "import keras_se, tf_keras",
            "from keras_se.layers import SqueezeExcite",
            "import keras_se.export",
        )
    ),
]


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "model.keras"
    keras_se.create_model("se_mobilenet", input_shape=(32, 32, 3), classes=3, alpha=0.25).save(path)
    return path


@pytest.mark.parametrize("imports", ORDERS)
def test_a_saved_model_loads_after_any_import_order(imports, saved_model):
    child = _LOAD.format(imports=imports)
    proc = subprocess.run([sys.executable, "-c", child, str(saved_model)], capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0 and proc.stdout.split() == ["LOADED", "MobileNetModel"], proc.stderr[-2000:]


def test_import_keras_se_layers_alone_works_in_a_fresh_interpreter():
    child = "import keras_se.layers as layers; print(layers.SqueezeExcite.__name__, layers.GroupConv2D.__name__)"
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.stdout.split() == ["SqueezeExcite", "GroupConv2D"], proc.stderr[-2000:]


def test_the_console_script_reports_a_saved_model(saved_model, not_run):
    # The console script imports TensorFlow before Keras: the train -> convert workflow.
    script = _console_script(not_run)
    report = subprocess.run(
        [script, "report", str(saved_model), "--format", "json"], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["model"] == "model.keras"


@pytest.mark.large
def test_the_console_script_converts_a_saved_model(saved_model, tmp_path, not_run):
    script = _console_script(not_run)
    out = tmp_path / "out"
    convert = subprocess.run(
        [script, "convert", str(saved_model), "--out", str(out), "--format", "json"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert convert.returncode == 0, convert.stderr
    assert [p.suffix for p in out.iterdir()] == [".tflite"]
