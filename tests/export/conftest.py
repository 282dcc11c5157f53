import keras
import numpy as np
import pytest


@pytest.fixture(scope="module")
def tiny_se_model():
    """A small SE/SK network with non-trivial BN statistics and logits output."""
    from keras_se.layers import selective_kernel, squeeze_excite

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = squeeze_excite(x, "se", reduction=4)
    x = selective_kernel(x, 16, "sk", groups=4, reduced_channels=8)
    x = squeeze_excite(x, "se2", reduction=4, gate="hard_sigmoid")
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    model.set_weights(
        [
            rng.uniform(0.5, 1.5, w.shape).astype("float32") if "variance" in w.path else rng.normal(0, 0.3, w.shape).astype("float32")
            for w in model.weights
        ]
    )
    return model


def _convert_function(fn, *specs):
    import tensorflow as tf

    concrete = tf.function(fn).get_concrete_function(*specs)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


@pytest.fixture(scope="session")
def convert_function():
    """`convert_function(fn, *TensorSpecs)`: TFLite bytes of a tf.function, builtin ops only."""
    return _convert_function


@pytest.fixture(scope="session")
def gpu_adapter(not_run):
    """The GPU accelerator's `GpuRun` of a one-op file; the test is "not run" where no adapter exists."""
    import tensorflow as tf

    from keras_se.export.gpu_run import run_on_gpu_accelerator

    data = _convert_function(lambda x: tf.nn.relu(x), tf.TensorSpec([1, 4, 4, 8], tf.float32))
    run = run_on_gpu_accelerator(data, np.full((1, 4, 4, 8), -1.0, "float32"))
    if run.status == "not run":
        not_run(f"LiteRT GPU accelerator: {run.reason}")
    assert run.passed, run.verdict()
    return run


@pytest.fixture
def float32_gpu_run_fails(monkeypatch):
    """`float32_gpu_run_fails(status, reason, fully_accelerated=None)`: the GPU accelerator's float16 run
    gives LiteRT's CPU outputs, fully accelerated; its float32 kernel run gives what it is told (no outputs,
    or partly accelerated ones). No GPU needed."""

    def patch(status, reason="", fully_accelerated=None):
        from keras_se.export import gpu_run
        from keras_se.export.verify import run_tflite

        def fake(tflite, samples=None, runs=0, warmup=2, timeout=gpu_run.DEFAULT_TIMEOUT, precision="float16"):
            outputs = run_tflite(tflite, samples)
            if precision == "float16":
                return gpu_run.GpuRun("ran", fully_accelerated=True, adapter="fake", software=True, outputs=outputs)
            ran = status == "ran"
            return gpu_run.GpuRun(status, reason, fully_accelerated=fully_accelerated, outputs=outputs if ran else None)

        monkeypatch.setattr(gpu_run, "run_on_gpu_accelerator", fake)

    return patch


@pytest.fixture(scope="session")
def qnn_htp(not_run):
    """The QNN HTP's `NpuRun` of a one-op QDQ file; the test is "not run" where onnxruntime-qnn is missing."""
    import onnx
    from onnx import TensorProto, helper

    from keras_se.export.npu import quantize_qdq, run_on_npu

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 8])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 9
    onnx.checker.check_model(proto)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 1, 4, 4, 8)).astype("float32").reshape(2, 4, 4, 8)
    qdq, _ = quantize_qdq(proto, x)
    run = run_on_npu(qdq.SerializeToString(), x)
    if run.status == "not run":
        not_run(f"QNN HTP: {run.reason}")
    assert run.passed, run.verdict()
    return run
