"""A saved keras_se model carries its architecture: save `.keras`, then in a
fresh process, after nothing but `import keras_se`, load it with
`safe_mode=True`, quantise it to a fully int8 file and report its
complexity, with no extra argument anywhere.

The default run covers timm's skresnet18 (SK, channel slices; SE-MobileNet's
load-and-quantise is tests/quantization/test_qat.py's); `-m large` an SE model of every family
class (a config is read per class; the plain twins have the same layers
less SE, and every registered model's own round trip is
tests/models/test_registry.py's).
"""

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest

import keras_se

SIZE = 32
DEFAULT = {"timm:skresnet18": {}}

# Runs in a fresh interpreter: only `import keras_se` registers the classes.
_CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras_se  # before keras: registration must not depend on the order
    import keras
    from keras_se.analysis import complexity_report
    from keras_se.export import to_tflite
    from keras_se.quantization import float_ops, quantize_model

    results = {}
    for path, out in json.loads(sys.argv[1]):
        model = keras.saving.load_model(path, safe_mode=True)
        qat = quantize_model(model)
        x = np.random.default_rng(0).uniform(0, 1, (2, *model.input_shape[1:])).astype("float32")
        to_tflite(qat, out, quantize="int8", representative_data=x, verify=False)
        report = complexity_report(model)
        results[path] = {
            "class": type(model).__name__,
            "config": model.get_config(),
            "float_ops": [str(op) for op in float_ops(out)],
            "params": report.params,
            "twin": report.twin,
            "twin_params_delta": report.attention.twin_params_delta if report.attention else None,
        }
    print("RESULT " + json.dumps(results))
    """
)


def _learned(model):
    """Parameters as the papers count them: BN statistics excluded."""
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def _round_trip(models, tmp_path):
    jobs, expected = [], {}
    for name, kwargs in models.items():
        model = keras_se.create_model(name, **{"input_shape": (SIZE, SIZE, 3), "classes": 10, **kwargs})
        path = str(tmp_path / f"{name.replace(':', '_')}.keras")
        model.save(path)
        twin = model.plain_twin()
        expected[path] = (model, _learned(twin) if twin is not None else None)
        jobs.append((path, str(tmp_path / f"{name.replace(':', '_')}_int8.tflite")))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(jobs)], capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    results = json.loads(line[len("RESULT ") :])
    for path, (model, twin_params) in expected.items():
        result = results[path]
        assert result["class"] == type(model).__name__
        config = {k: tuple(v) if isinstance(v, list) else v for k, v in result["config"].items()}
        assert config == {k: tuple(v) if isinstance(v, list) else v for k, v in model.get_config().items()}
        assert result["float_ops"] == [], result["float_ops"]
        assert result["params"] == _learned(model)
        if twin_params is not None:
            assert result["twin"] == f"{model.name}_plain"
            assert result["twin_params_delta"] == _learned(model) - twin_params


@pytest.mark.large
def test_saved_model_rebuilds_quantises_and_reports_in_a_fresh_process(tmp_path):
    _round_trip(DEFAULT, tmp_path)


FAMILIES = {
    "se_resnet18": {},
    "sknet50": dict(depth=26),
    "se_mobilenet": dict(alpha=0.25),
    "se_shufflenet_g3": {},
    "mobilenetv3_small": {},
    "se_bn_inception": {},
    "se_inception_resnet_v2": dict(input_shape=(75, 75, 3)),
    "se_vgg16": dict(include_top=False, pooling="avg"),  # without its 120 M-parameter top
}


@pytest.mark.large
def test_every_model_family_round_trips(tmp_path):
    assert {keras_se.models.get_entry(n).cls for n in keras_se.list_models()} == {
        keras_se.models.get_entry(n).cls for n in [*FAMILIES, *DEFAULT]
    }
    _round_trip(FAMILIES, tmp_path)


def test_import_keras_se_registers_its_classes_whichever_comes_first():
    # `import keras_se` alone stays light (no Keras, no TensorFlow); the
    # classes are registered as soon as Keras is imported, before or after.
    child = textwrap.dedent(
        """
        import sys
        import keras_se
        light = "keras" not in sys.modules and "tensorflow" not in sys.modules
        import keras
        names = ["keras_se>ResNetModel", "keras_se>ShuffleNetModel", "keras_se>SqueezeExcite", "keras_se>ChannelShuffle"]
        print(light, all(keras.saving.get_registered_object(n) is not None for n in names))
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env, timeout=300)
    assert proc.stdout.split() == ["True", "True"], proc.stderr[-2000:]


def test_a_file_saved_by_release_0_1_0_still_loads():
    # Saved by keras_se 0.1.0, before `attention_options` joined the config:
    # the same architecture and outputs.
    import keras
    import numpy as np

    data = os.path.join(os.path.dirname(__file__), "data")
    model = keras.saving.load_model(os.path.join(data, "se_mobilenet_0.1.0.keras"), safe_mode=True)
    io = np.load(os.path.join(data, "se_mobilenet_0.1.0_io.npz"))
    assert model.get_config()["attention_options"] is None and model.get_config()["se_stages"] == (4, 5)
    np.testing.assert_allclose(np.asarray(model(io["x"])), io["y"], rtol=1e-5, atol=1e-7)
