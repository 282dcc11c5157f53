"""keras_se on Keras' JAX and PyTorch backends, each in its own interpreter.

Keras picks its backend once per process (`KERAS_BACKEND`), so each case runs
a child interpreter: Keras' own layer harness (`run_layer_test`, mixed
precision included) over every keras_se layer, and the builders of every
family, built, trained one step and saved as `.keras`; this process
(TensorFlow) then loads each file and computes the same outputs.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_se  # noqa: F401  (registers the classes the saved files name)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One model per primitive: grouped convolutions (ResNeXt), SK's select,
# the channel shuffle, hard-swish and SE in MobileNetV3, ECA and CBAM.
MODELS = {
    "se_resnext50_32x4d": dict(depth=26),
    "sknet50": dict(depth=26),
    "se_shufflenet_g3": {},
    "mobilenetv3_small": dict(alpha=0.5),
    "se_resnet18_eca": dict(attention="eca"),
    "se_resnet18_cbam": dict(attention="cbam"),
}
# The other families, at the sizes their tests use.
MORE_MODELS = {
    "se_mobilenet": dict(alpha=0.25),
    "senet154": dict(depth=26),
    "se_vgg16": {},
    "se_bn_inception": {},
    "se_inception_resnet_v2": {},
}
# 64 px: at 32 the last stages are 1x1, and batch norm over a batch of a
# few single pixels sends the first step's gradients to 1e4.
SIZES = {"se_vgg16": 32, "se_inception_resnet_v2": 75}

CHILD = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np
    import keras_se
    models, out = json.loads(sys.argv[1]), sys.argv[2]
    report, built = {}, {}
    for key, (name, options, size) in models.items():
        model = keras_se.create_model(name, input_shape=(size, size, 3), classes=5, **options)
        x = np.random.default_rng(0).uniform(0, 1, (4, size, size, 3)).astype("float32")
        before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
        model.compile(optimizer=keras.optimizers.SGD(1e-2), loss="sparse_categorical_crossentropy")
        loss = float(model.train_on_batch(x, np.array([1, 3, 0, 2])))
        changed = sum(not np.array_equal(b, keras.ops.convert_to_numpy(w)) for b, w in zip(before, model.trainable_weights))
        built[key] = model, x, model.predict(x, verbose=0)
        report[key] = {"loss": loss, "changed": changed, "weights": len(before)}
    # Saving may load TensorFlow (Keras' file utilities use it where installed).
    report["tensorflow_imported"] = "tensorflow" in sys.modules
    for key, (model, x, y) in built.items():
        model.save(f"{out}/{key}.keras")
        np.save(f"{out}/{key}_x.npy", x)
        np.save(f"{out}/{key}_y.npy", y)
    print("REPORT " + json.dumps(report))
    """
)


def _env(backend):
    if importlib.util.find_spec(backend) is None:
        return None
    # JAX computes in float32 unless told otherwise; the harness checks float64 layers.
    return dict(os.environ, KERAS_BACKEND=backend, JAX_ENABLE_X64="1", PYTHONPATH=ROOT)


def _child(backend, not_run, *args, timeout=900):
    env = _env(backend)
    if env is None:
        not_run(f"the {backend} backend is not installed (pip install {'jax[cpu]' if backend == 'jax' else 'torch'})")
    result = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("backend", ["torch", pytest.param("jax", marks=pytest.mark.large)])  # JAX compiles each case: 80 s
def test_keras_layer_harness_on_the_backend(backend, not_run):
    out = _child(
        backend, not_run, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "tests/layers/test_keras_harness.py"
    )
    assert " passed" in out and "failed" not in out and "skipped" not in out, out[-2000:]


def _check_models(backend, models, not_run, tmp_path):
    spec = {
        key: (key.rsplit("_", 1)[0] if key.endswith(("_eca", "_cbam")) else key, options, SIZES.get(key, 64))
        for key, options in models.items()
    }
    out = _child(backend, not_run, "-c", CHILD, json.dumps(spec), str(tmp_path))
    report = json.loads(out.split("REPORT ", 1)[1])
    # Building, training and predicting do not load TensorFlow.
    assert report["tensorflow_imported"] is False
    for key in models:
        row = report[key]
        # The step moved (nearly) every weight: a tiny model's dead ReLUs may leave a tensor or two at zero gradient.
        assert np.isfinite(row["loss"]) and row["changed"] >= 0.95 * row["weights"] > 0, (key, row)
        # TensorFlow loads the file and computes what the backend computed.
        model = keras.saving.load_model(tmp_path / f"{key}.keras")
        expected = np.load(tmp_path / f"{key}_y.npy")
        assert np.isfinite(expected).all(), key
        got = model.predict(np.load(tmp_path / f"{key}_x.npy"), verbose=0)
        assert np.linalg.norm(got - expected) <= 1e-5 * np.linalg.norm(expected), key


# 40 s on PyTorch, 90 s on JAX (xlarge: JAX's harness and weights cases run with large).
@pytest.mark.large
@pytest.mark.parametrize("backend", ["torch", pytest.param("jax", marks=pytest.mark.xlarge)])
def test_builders_train_on_the_backend_and_load_in_tensorflow(backend, not_run, tmp_path):
    _check_models(backend, MODELS, not_run, tmp_path)
    # The console script converts a file the backend saved, even with KERAS_BACKEND still set to it.
    out = tmp_path / "converted"
    command = [os.path.join(os.path.dirname(sys.executable), "keras-se"), "convert", str(tmp_path / "se_shufflenet_g3.keras")]
    result = subprocess.run(
        [*command, "--quantize", "int8", "--out", str(out)], env=_env(backend), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert [p.name for p in out.iterdir()] == ["se_shufflenet_g3_int8.tflite"]


PHONE_PATH = textwrap.dedent(
    """
    import keras_se
    from keras_se.export import to_onnx, to_tflite
    from keras_se.quantization import quantize_model
    model = keras_se.create_model("se_resnet18", input_shape=(32, 32, 3), classes=5)
    for step in (lambda: to_tflite(model, "m.tflite"), lambda: to_onnx(model, "m.onnx"), lambda: quantize_model(model)):
        try:
            step()
        except ValueError as error:
            print("REFUSED " + str(error))
    """
)


def test_the_phone_path_says_it_needs_tensorflow(not_run, tmp_path):
    out = _child("torch", not_run, "-c", PHONE_PATH, timeout=300)
    lines = [line for line in out.splitlines() if line.startswith("REFUSED ")]
    assert [line.split(" needs ")[0] for line in lines] == [
        "REFUSED TFLite conversion",
        "REFUSED ONNX export",
        "REFUSED Quantisation-aware training (tfmot)",
    ]
    assert all("keras-se convert model.keras" in line and "'torch'" in line for line in lines), lines


@pytest.mark.xlarge  # two minutes a backend: the five other families at their test sizes
@pytest.mark.large
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_every_other_family_trains_on_the_backend(backend, not_run, tmp_path):
    _check_models(backend, MORE_MODELS, not_run, tmp_path)


FIXTURES = os.path.join(ROOT, "..", "shared", "fixtures", "timm")
TIMM_FIXTURES = ("legacy_seresnet18", "ecaresnet26t", "seresnext26t_32x4d", "mobilenetv3_small_100")
WEIGHTS_AND_REPORTS = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np
    import keras_se
    from keras_se.analysis import complexity_report
    fixtures, names = sys.argv[1], sys.argv[2].split(",")
    report = {"errors": {}}
    for name in names:
        data = np.load(f"{fixtures}/{name}_io.npz")
        x = data["input_nchw"].transpose(0, 2, 3, 1)
        model = keras_se.create_model(f"timm:{name}", weights=f"{fixtures}/{name}.safetensors", input_shape=x.shape[1:],
                                      classifier_activation=None)
        y = keras.ops.convert_to_numpy(model(x, training=False))
        report["errors"][name] = float(np.linalg.norm(y - data["logits"]) / np.linalg.norm(data["logits"]))
    r = complexity_report("se_resnet50")
    report["se_resnet50"] = [r.params, r.macs, r.attention.formula, r.attention.layer_params]
    report["preprocess"] = keras_se.preprocess_input(np.full((1, 2, 2, 3), 255.0, "float32"), "se_resnet50")[0, 0, 0].tolist()
    backbone = keras_se.create_model("se_resnet18", features_only=True, input_shape=(64, 64, 3))
    report["features"] = [info["level"] for info in backbone.feature_info]
    report["feature_shapes"] = [list(keras.ops.shape(t))[1:] for t in backbone(np.zeros((1, 64, 64, 3), "float32"))]
    report["tensorflow_imported"] = "tensorflow" in sys.modules
    print("REPORT " + json.dumps(report))
    """
)


@pytest.mark.large  # four 224 px timm models per backend
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_weights_and_reports_on_the_backend(backend, not_run):
    from keras_se.analysis import complexity_report

    missing = [n for n in TIMM_FIXTURES if not os.path.exists(os.path.join(FIXTURES, f"{n}.safetensors"))]
    if missing:
        not_run(f"timm fixtures not present at {FIXTURES}: {missing}")
    out = _child(backend, not_run, "-c", WEIGHTS_AND_REPORTS, FIXTURES, ",".join(TIMM_FIXTURES))
    report = json.loads(out.split("REPORT ", 1)[1])
    # timm's logits through the same loader (TensorFlow: within 1e-6 relative).
    assert max(report["errors"].values()) <= 1e-5, report["errors"]
    # The complexity report, the input convention and the backbone outputs as under TensorFlow.
    r = complexity_report("se_resnet50")
    assert report["se_resnet50"] == [r.params, r.macs, r.attention.formula, r.attention.layer_params]
    expected = keras_se.preprocess_input(np.full((1, 2, 2, 3), 255.0, "float32"), "se_resnet50")[0, 0, 0]
    np.testing.assert_allclose(report["preprocess"], expected, rtol=1e-6)
    backbone = keras_se.create_model("se_resnet18", features_only=True, input_shape=(64, 64, 3))
    assert report["features"] == [info["level"] for info in backbone.feature_info]
    assert report["feature_shapes"] == [list(t.shape[1:]) for t in backbone.outputs]
    assert report["tensorflow_imported"] is False
