"""Tests for keras_se.quantization.qat, following tfmot's steps: build ->
quantise -> fit -> convert -> run the interpreter -> check.

Every registered model goes quantise -> one fit step -> int8 TFLite with no
float op left (int8 input and output, so no float tensor at all). The full
sweep is `large`; the default run keeps SE-MobileNet (hard-sigmoid gate),
SE-ResNet-18, SE-ShuffleNet g3, timm's skresnet18 (split-input SK) and, at
depth 26 (two blocks per stage, the same layers as depth 50), SKNet and
SE-ResNeXt: together every layer kind and QuantizeConfig keras_se builds.
"""

import keras
import numpy as np
import pytest

import keras_se
from keras_se.export import read_tflite, to_tflite
from keras_se.export.verify import compare_outputs
from keras_se.quantization import copy_float_weights, float_ops, is_quantized, quantize_model, rebuild_tf_keras

SIZE = 32
SUBSET = {
    "se_mobilenet": {"alpha": 0.25, "se_gate": "hard_sigmoid"},
    "se_resnet18": {},
    "se_shufflenet_g3": {},
    "sknet50": {"depth": 26},
    "se_resnext50_32x4d": {"depth": 26},
    "timm:skresnet18": {},  # split-input SK: ChannelSlice
    "mobilenetv3_small": {"alpha": 0.25},  # hard-swish, hard-sigmoid gate, inverted residuals
}


def _data(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, SIZE, SIZE, 3)).astype("float32"), rng.integers(0, 10, n)


def _quantize_fit_convert(name, kwargs, path):
    model = keras_se.create_model(name, input_shape=(SIZE, SIZE, 3), classes=10, **kwargs)
    qat = quantize_model(model)
    x, y = _data()
    # One eager step: tracing the QAT training graph costs more than the step.
    qat.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    qat.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    result = to_tflite(qat, path, quantize="int8", representative_data=x, verify=False)
    # LiteRT against the fake-quantised Keras model on 16 fresh inputs. Both
    # apply the same ranges; they differ by rounding and requantisation steps
    # that add up with depth: a few hundredths in probabilities (a few 1/256
    # output steps; 0.009 on SE-ResNeXt-50). A broken conversion errs by the
    # size of the probabilities themselves.
    # Top-1 agreement is not checked here: untrained outputs are near ties
    # (ResNet-152's top two differ by about the error itself); agreement on
    # real data is test_digits_quick's and the benchmark's job.
    result.parity = compare_outputs(qat, path, _data(16, seed=1)[0])
    assert result.parity.max_abs_error < 0.1, result.parity
    return model, qat, result


def _assert_int8_only(path):
    floats = float_ops(path)
    assert floats == [], "float ops left:\n" + "\n".join(str(op) for op in floats)
    graph = read_tflite(path)
    assert graph.inputs[0].dtype == "INT8" and graph.outputs[0].dtype == "INT8"


@pytest.fixture(scope="module")
def mobilenet_qat(tmp_path_factory):
    path = tmp_path_factory.mktemp("qat") / "se_mobilenet.tflite"
    return _quantize_fit_convert("se_mobilenet", SUBSET["se_mobilenet"], path)


def test_se_mobilenet_hard_sigmoid_is_int8_only(mobilenet_qat):
    model, qat, result = mobilenet_qat
    _assert_int8_only(result.path)
    # The hard-sigmoid gate: shift (ADD), ReLU6 (fused), scale (MUL); SE scale (MUL).
    assert result.ops["MUL"] >= 2 * 13 and result.ops["ADD"] >= 13
    assert result.parity.max_abs_error < 0.05


def test_mobilenetv3_hard_swish_stays_out_of_hard_swish_ops(tmp_path):
    # tf_keras spells hard-swish (x / 6) * relu6(x + 3): int8 MUL, ADD with
    # a fused RELU6, MUL, which XNNPACK runs; never an int8 HARD_SWISH.
    _, _, result = _quantize_fit_convert("mobilenetv3_small", SUBSET["mobilenetv3_small"], tmp_path / "mobilenetv3_small.tflite")
    _assert_int8_only(result.path)
    assert "HARD_SWISH" not in result.ops and "RELU6" not in result.ops
    hard_swish = 1 + 2 * 11 + 1 + 1  # stem, two per block but the ds block's one, the cn block, the top
    assert result.ops["MUL"] >= 2 * hard_swish and result.ops["ADD"] >= hard_swish


# `-m large` (the QAT sweep there covers every SE / SK model; the default run
# quantises the ECA, hard-swish and hard-sigmoid models below and the digits one).
# Only timm's skresnet18 (split-input SK) runs in CI: the sweep below
# quantises the others at full depth (xlarge here).
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.large if n.startswith("timm:") else [pytest.mark.large, pytest.mark.xlarge])
        for n in SUBSET
        if n not in ("se_mobilenet", "mobilenetv3_small")
    ],
)
def test_registered_subset_is_int8_only(name, tmp_path):
    model, _, result = _quantize_fit_convert(name, SUBSET[name], tmp_path / f"{name.replace(':', '_')}.tflite")
    _assert_int8_only(result.path)
    _assert_no_average_pool(model, result.path)


def _assert_no_average_pool(model, path):
    # Valid average pools (SE-ShuffleNet's shortcuts, SKNet's strided dilated
    # paths) are depthwise convolutions in the QAT file too: XNNPACK runs
    # AVERAGE_POOL_2D in float only.
    pools = [layer for layer in model.layers if type(layer).__name__ == "AveragePooling2D"]
    ops = [op.name for op in read_tflite(path).ops]
    assert "AVERAGE_POOL_2D" not in ops
    if pools:
        assert ops.count("DEPTHWISE_CONV_2D") >= len(pools)


QAT_XLARGE = (
    "se_resnet34",
    "se_resnet101",
    "se_resnet152",
    "se_resnext101_32x4d",
    "senet154",
    "sknet101",
    "se_shufflenet_g1",
    "se_shufflenet_g2",
    "se_shufflenet_g4",
)


@pytest.mark.large
# Inception-ResNet-v2 needs 75x75, and VGG-16's 120 M-parameter top makes a
# QAT model of gigabytes: both are tests/export/test_table2_models.py's.
# SE and SK models only: a plain twin's layers are its SE model's less SE.
# SE-ResNet-34 and the deeper ResNets, SENet-154 and SKNet-101 repeat the
# blocks of SE-ResNet-18 / -50, SE-ResNeXt-50 and SKNet-50, and
# SE-ShuffleNet g = 1, 2, 4 the units of g = 3 and 8 (other group counts of
# the same GroupConv2D): xlarge (minutes in CI otherwise).
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xlarge) if n in QAT_XLARGE else n
        for n in keras_se.list_models()
        if keras_se.models.get_entry(n).twin and "inception_resnet" not in n and "vgg" not in n
    ],
)
def test_every_registered_model_is_int8_only(name, tmp_path):
    model, _, result = _quantize_fit_convert(name, {}, tmp_path / f"{name}.tflite")
    _assert_int8_only(result.path)
    _assert_no_average_pool(model, result.path)


def test_config_holds_the_architecture_and_is_rebuilt_exactly():
    model = keras_se.create_model("se_mobilenet", input_shape=(SIZE, SIZE, 3), classes=10, alpha=0.25)
    config = model.get_config()
    assert (config["input_shape"], config["classes"], config["alpha"], config["attention"]) == ((SIZE, SIZE, 3), 10, 0.25, "se")
    rebuilt = rebuild_tf_keras(model)
    layers = {layer.name: layer for layer in rebuilt.layers}
    for layer in model.layers:
        for a, b in zip(layer.get_weights(), layers[layer.name].get_weights()):
            np.testing.assert_array_equal(a, b)
    x, _ = _data(2, seed=3)
    # Same float32 ops in both Kerases: equal up to summation order.
    np.testing.assert_allclose(rebuilt(x, training=False).numpy(), model(x, training=False).numpy(), atol=1e-6)


@pytest.mark.large
def test_tf_keras_flavour_model_is_quantised_as_it_is():
    # The tf_keras flavour spells SK's select with standard layers, so the
    # model tfmot gets is the model create_model built.
    model = keras_se.create_model("sknet50", depth=26, flavour="tf_keras", input_shape=(SIZE, SIZE, 3), classes=10)
    qat = quantize_model(model)
    names = {layer.name for layer in qat.layers}
    assert "quant_stage2_block1_sk_select_softmax" in names and "quant_stage2_block1_sk_select" in names
    x, _ = _data(2)
    np.testing.assert_allclose(qat(x, training=False).numpy(), model(x, training=False).numpy(), atol=0.05)


def test_loaded_model_is_quantised_from_its_config(tmp_path):
    model = keras_se.create_model("se_mobilenet", input_shape=(SIZE, SIZE, 3), classes=10, alpha=0.25)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert loaded.get_config() == model.get_config()
    rebuilt = rebuild_tf_keras(loaded)
    x, _ = _data(2)
    np.testing.assert_allclose(rebuilt(x, training=False).numpy(), model(x, training=False).numpy(), atol=1e-6)
    quantize_model(loaded)


def test_a_model_keras_se_did_not_build_is_refused():
    inputs = keras.Input((SIZE, SIZE, 3))
    plain = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs), name="mine")
    with pytest.raises(ValueError, match=r"model must be a keras_se model.*Functional 'mine'"):
        quantize_model(plain)


def test_already_quantised_model_is_refused(mobilenet_qat):
    _, qat, _ = mobilenet_qat
    assert is_quantized(qat)
    with pytest.raises(ValueError, match="already quantised"):
        quantize_model(qat)
    inputs = keras.Input((8,))
    dense = keras.Model(inputs, keras.layers.Dense(4)(inputs))
    dense.quantize("int8")  # Keras 3's own int8 (Dense only, no QAT)
    with pytest.raises(ValueError, match="already quantised"):
        quantize_model(dense)


def test_not_a_model():
    with pytest.raises(ValueError, match="must be a Keras 3 or tf_keras model"):
        quantize_model("se_mobilenet")


def test_copy_float_weights_back_to_keras3(mobilenet_qat):
    model, qat, _ = mobilenet_qat
    target = keras_se.create_model("se_mobilenet", input_shape=(SIZE, SIZE, 3), classes=10, **SUBSET["se_mobilenet"])
    assert copy_float_weights(qat, target) is target
    # tf_keras names a depthwise kernel "depthwise_kernel", Keras 3 "kernel".
    qat_variables = {v.name.split(":")[0].replace("depthwise_kernel", "kernel"): v.numpy() for v in qat.weights}
    for weight in target.weights:
        np.testing.assert_array_equal(weight.numpy(), qat_variables[weight.path])
    # The fit step changed the weights: they are the QAT model's, not the original's.
    assert not np.array_equal(target.get_layer("predictions").get_weights()[0], model.get_layer("predictions").get_weights()[0])
    with pytest.raises(ValueError, match="must come from quantize_model"):
        copy_float_weights(rebuild_tf_keras(model), target)


def _benchmark_module():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "qat_digits.py")
    spec = importlib.util.spec_from_file_location("qat_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_eca_model_is_quantised_and_int8_only(tmp_path):
    # ECA spelt as standard layers in the tf_keras flavour: its (1, k) kernel copies by name.
    model, qat, result = _quantize_fit_convert("se_resnet18", {"attention": "eca"}, tmp_path / "eca.tflite")
    _assert_int8_only(result.path)
    assert sum(layer.name.endswith("_eca") for layer in model.layers) == 8
    assert "LOGISTIC" in result.ops and "MEAN" in result.ops


@pytest.mark.large  # default-run budget: ECA's QAT case stays default
def test_cbam_model_is_quantised_and_int8_only(tmp_path):
    # CBAM spelt as standard layers in the tf_keras flavour (cbam_as_layers):
    # its MLP, spatial conv and BN copy by name as `{block}_cbam_{sublayer}`.
    from keras_se.export.delegation import xnnpack_delegation

    model, qat, result = _quantize_fit_convert("se_resnet18", {"attention": "cbam"}, tmp_path / "cbam.tflite")
    _assert_int8_only(result.path)
    blocks = [layer for layer in model.layers if layer.name.endswith("_cbam")]
    assert len(blocks) == 8
    # Both attentions are there, in the ops of CBAM's own int8 file: MEAN and
    # REDUCE_MAX over H, W and over channels (the last stage's 1x1 maps need
    # none over H, W), the [mean, max] maps concatenated, two sigmoid gates a
    # block; the stem's MAX_POOL_2D only.
    assert result.ops["MEAN"] == result.ops["REDUCE_MAX"] + 1 == 8 + 6 + 1  # + the head's mean
    assert result.ops["CONCATENATION"] == 8 and result.ops["LOGISTIC"] == 2 * 8 and result.ops["MAX_POOL_2D"] == 1
    # One XNNPACK partition; only the int8 SOFTMAX at the end (XNNPACK has none) is left out.
    delegation = xnnpack_delegation(result.path)
    assert delegation.partitions == 1 and [name for _, name in delegation.left] == ["SOFTMAX"], delegation
    # The fit step's weights go back into the Keras 3 CBAM layers (sublayer by sublayer).
    target = keras_se.create_model("se_resnet18", attention="cbam", input_shape=(SIZE, SIZE, 3), classes=10)
    copy_float_weights(qat, target)
    trained = {v.name.split(":")[0]: v.numpy() for v in qat.weights}
    for block in (target.get_layer(b.name) for b in blocks):
        for sub in ("fc1", "fc2", "spatial_conv", "spatial_bn"):
            for weight in getattr(block, sub).weights:
                np.testing.assert_array_equal(weight.numpy(), trained[f"{block.name}_{sub}/{weight.name}"])
    changed = target.get_layer(blocks[0].name).fc1.kernel.numpy()
    assert not np.array_equal(changed, model.get_layer(blocks[0].name).fc1.kernel.numpy())


@pytest.mark.large
@pytest.mark.xlarge
def test_digits_quick(tmp_path):
    # The quick version of benchmarks/qat_digits.py (same code, fewer epochs):
    # SE-ResNet-18 on scikit-learn's real handwritten digits. xlarge: the
    # default run trains the same model on the same data to an int8 file
    # (tests/training/test_trainer.py::test_training_on_digits_learns_and_the_int8_file_keeps_it).
    from keras_se.training import load_digits

    bench = _benchmark_module()
    row = bench.run_model(
        "se_resnet18", {}, load_digits(), epochs=4, qat_epochs=1, batch_size=64, learning_rate=3e-3, seed=0, workdir=str(tmp_path)
    )
    assert row["qat_float_ops"] == 0 and row["ptq_float_ops"] == 0
    assert row["qat_int8"] > 0.9
    assert row["qat_int8"] >= row["float"] - 0.01  # the bar: within 1 point of float
