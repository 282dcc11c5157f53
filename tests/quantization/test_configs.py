"""Tests for keras_se.quantization.configs: which QuantizeConfig each layer
gets, and that each one gives int8 TFLite ops (tfmot's steps: build ->
quantise -> fit -> convert -> run)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tf_keras

from keras_se.export import read_tflite, to_tflite
from keras_se.layers import selective_kernel, squeeze_excite
from keras_se.layers.namespace import flavour
from keras_se.models import _common
from keras_se.quantization import float_ops, quantize_model, quantize_plan, quantize_scope
from keras_se.quantization.configs import config_classes


def _head(fl, inputs, x):
    x = fl.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return fl.Model(inputs, fl.layers.Dense(10, activation="softmax", name="predictions")(x))


def _se_block(gate="hard_sigmoid", squeeze="avgmax"):
    fl = flavour("tf_keras")
    inputs = fl.Input((8, 8, 3), name="input")
    x = _common.conv_bn(fl.layers, inputs, 16, 3, "stem")
    x = squeeze_excite(x, "se", flavour=fl, reduction=4, gate=gate, squeeze=squeeze)
    return _head(fl, inputs, x)


def _sk_block():
    fl = flavour("tf_keras")
    inputs = fl.Input((8, 8, 3), name="input")
    x = _common.conv_bn(fl.layers, inputs, 16, 3, "stem")
    x = selective_kernel(x, 16, "sk", flavour=fl, num_paths=3, dilation=[1, 2, 4], groups=4, strides=2, reduction=4, min_channels=4)
    return _head(fl, inputs, x)


def _shuffle_block():
    fl = flavour("tf_keras")
    layers = fl.layers
    inputs = fl.Input((8, 8, 3), name="input")
    x = _common.conv_bn(layers, inputs, 16, 3, "stem")
    y = _common.conv_bn(layers, x, 16, 1, "g1", groups=4)
    y = layers.ChannelShuffle(4, name="shuffle")(y)
    y = _common.conv_bn(layers, y, 16, 1, "g2", groups=4, act=None)
    x = layers.ReLU(name="out")(layers.Add(name="add")([x, y]))
    return _head(fl, inputs, x)


BLOCKS = {
    "se_hard_sigmoid_avgmax": (_se_block, ("MEAN", "REDUCE_MAX", "MUL", "ADD")),
    "se_sigmoid": (lambda: _se_block("sigmoid", "avg"), ("MEAN", "LOGISTIC", "MUL")),
    "sk_3_paths_strided_grouped": (_sk_block, ("SOFTMAX", "STRIDED_SLICE", "MUL", "ADD", "CONV_2D")),
    "shuffle_grouped": (_shuffle_block, ("RESHAPE", "TRANSPOSE", "CONV_2D")),
}


@pytest.mark.large
def test_import_tfmot_keeps_tf_keras_keras3():
    # Importing tfmot directly flips tf.keras to tf_keras for the process;
    # import_tfmot must not (run in fresh interpreters: the flip is global).
    probe = "import os, keras, tensorflow as tf; print(tf.keras.Model is keras.Model, os.environ.get('TF_USE_LEGACY_KERAS'))"
    ours = f"from keras_se.quantization import import_tfmot; import_tfmot(); {probe}"
    naive = f"import tensorflow_model_optimization; {probe}"
    results = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.split() for code in (ours, naive)
    ]
    assert results[0] == ["True", "None"]
    assert results[1] == ["False", "1"]  # the trap the helper avoids


def test_plan_gives_each_layer_its_config():
    configs = config_classes()
    plan = quantize_plan(_shuffle_block())
    assert isinstance(plan["g1"], configs.GroupConvQuantizeConfig) and not plan["g1"].quantize_output  # BN follows
    assert isinstance(plan["g1_bn"], configs.NoOpQuantizeConfig)  # ReLU follows: folded, ReLU quantises
    assert isinstance(plan["g2_bn"], configs.OutputQuantizeConfig)  # feeds the Add
    assert isinstance(plan["shuffle"], configs.NoOpQuantizeConfig)
    assert "stem" not in plan and "add" not in plan  # tfmot's default scheme
    plan = quantize_plan(_se_block())
    # Average spelt as Add + Rescaling, the hard-sigmoid's two Rescalings, the scale.
    for name in ("se_squeeze", "se_gate_shift", "se_gate", "se_scale"):
        assert isinstance(plan[name], configs.OutputQuantizeConfig), name
    plan = quantize_plan(_sk_block())
    assert isinstance(plan["sk_select_path0"], configs.OutputQuantizeConfig)


def test_config_round_trip():
    configs = config_classes()
    config = configs.GroupConvQuantizeConfig(quantize_output=False)
    assert config.get_config() == {"quantize_output": False}
    assert configs.GroupConvQuantizeConfig.from_config(config.get_config()).quantize_output is False
    assert configs.OutputQuantizeConfig().get_config() == {}


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_block_converts_to_int8_only(block, tmp_path):
    make, expected_ops = BLOCKS[block]
    model = make()
    qat = quantize_model(model)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (16, 8, 8, 3)).astype("float32")
    qat.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    qat.fit(x, rng.integers(0, 10, 16), batch_size=16, epochs=1, verbose=0)
    result = to_tflite(qat, tmp_path / "m.tflite", quantize="int8", representative_data=x)
    assert float_ops(result.path) == []
    graph = read_tflite(result.path)
    assert graph.inputs[0].dtype == "INT8" and graph.outputs[0].dtype == "INT8"
    for op in expected_ops:
        assert op in result.ops, (op, result.ops)
    # Int8 probabilities against the fake-quantised Keras model: a few output
    # steps (1/256) apart, more would mean a range was lost in conversion.
    assert result.parity.max_abs_error < 0.05


def _tf_keras_model(make_middle):
    inputs = tf_keras.Input((8, 8, 16), name="input")
    x = make_middle(inputs)
    return tf_keras.Model(inputs, tf_keras.layers.Dense(2, name="predictions")(tf_keras.layers.GlobalAveragePooling2D(name="pool")(x)))


@pytest.mark.parametrize(
    "middle, named",
    [
        (lambda x: tf_keras.layers.LayerNormalization(name="ln")(x), "'ln' (LayerNormalization)"),
        (lambda x: tf_keras.layers.Activation("elu", name="act")(x), "'act' (Activation 'elu')"),
        (
            lambda x: tf_keras.layers.BatchNormalization(name="bn")(tf_keras.layers.Add(name="add")([x, x])),
            "'bn' (BatchNormalization not directly after",
        ),
        (
            lambda x: tf_keras.layers.Add(name="add3")([x, x, x]),
            "'add3' (Add of 3 tensors: spell it as a chain of two-input Adds)",
        ),
        (
            lambda x: tf_keras.layers.Average(name="avg")([x, x]),
            "'avg' (Average: spell it as Add then Rescaling)",
        ),
    ],
)
def test_unsupported_layer_is_named(middle, named):
    with pytest.raises(ValueError, match="cannot quantise these layers") as info:
        quantize_plan(_tf_keras_model(middle))
    assert named in str(info.value)


def test_quantize_scope_loads_a_saved_qat_model(tmp_path):
    qat = quantize_model(_se_block())
    path = str(tmp_path / "qat.h5")
    qat.save(path)
    with quantize_scope():
        loaded = tf_keras.models.load_model(path)
    x = np.random.default_rng(1).uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x).numpy(), qat(x).numpy(), atol=1e-6)


def test_tfmot_not_imported_by_package_import():
    code = textwrap.dedent(
        """
        import sys
        import keras_se.quantization, keras_se.training
        print(any(m.startswith("tensorflow_model_optimization") for m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.split()
    assert out == ["False"]
