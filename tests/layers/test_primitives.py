"""Tests for keras_se.layers.primitives: GroupConv2D, ChannelShuffle, KernelSelect.

Export tolerances: 1e-5 absolute on O(1) outputs of a handful of float32
multiply-adds (<= 72 per output here), i.e. a few float32 ulps of
re-association between TensorFlow, the LiteRT reference kernels and
onnxruntime.
"""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_se.layers import ChannelShuffle, ChannelSlice, GroupConv2D, KernelSelect

EXPORT_ATOL = 1e-5


def _save_load(model, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    return keras.models.load_model(path, safe_mode=True)


def _tflite(model):
    """Converts with builtin ops only; returns an interpreter without delegates
    (so the op list is the graph's, not XNNPACK's partition)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(
        model_content=converter.convert(),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    return interpreter


def _run_tflite(interpreter, x):
    index = interpreter.get_input_details()[0]["index"]
    if tuple(interpreter.get_input_details()[0]["shape"]) != x.shape:
        interpreter.resize_tensor_input(index, x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _op_names(interpreter):
    return [op["op_name"] for op in interpreter._get_ops_details()]


# --- GroupConv2D ---------------------------------------------------------------

GROUP_CASES = [
    # (groups, strides, dilation, padding)
    (2, 1, 1, "same"),
    (4, 1, 1, "valid"),
    (2, 2, 1, "same"),
    (4, 2, 1, "valid"),
    (2, 1, 2, "same"),
    (4, 1, 2, "valid"),
]


def _split_reference(layer, x):
    """Per-group keras Conv2D on channel slices + concatenate, same weights."""
    kernel, bias = layer.get_weights()
    groups = layer.groups
    cin_g, cout_g = kernel.shape[2], kernel.shape[3] // groups
    outputs = []
    for g in range(groups):
        conv = keras.layers.Conv2D(
            cout_g,
            layer.kernel_size,
            strides=layer.strides,
            padding=layer.padding,
            dilation_rate=layer.dilation_rate,
        )
        conv.build((None, None, None, cin_g))
        conv.set_weights([kernel[..., g * cout_g : (g + 1) * cout_g], bias[g * cout_g : (g + 1) * cout_g]])
        outputs.append(conv(x[..., g * cin_g : (g + 1) * cin_g]))
    return np.asarray(keras.ops.concatenate(outputs, axis=-1))


@pytest.mark.parametrize("groups, strides, dilation, padding", GROUP_CASES)
def test_group_conv_equals_split_conv(groups, strides, dilation, padding):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 8, 8)).astype("float32")
    layer = GroupConv2D(12, 3, groups=groups, strides=strides, dilation_rate=dilation, padding=padding)
    layer.build(x.shape)
    layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    assert layer.get_weights()[0].shape == (3, 3, 8 // groups, 12)
    y = np.asarray(layer(x))
    np.testing.assert_allclose(y, _split_reference(layer, x), rtol=1e-5, atol=1e-5)
    # And Keras' own grouped convolution (the weights are interchangeable).
    native = keras.layers.Conv2D(12, 3, groups=groups, strides=strides, dilation_rate=dilation, padding=padding)
    native.build(x.shape)
    native.set_weights(layer.get_weights())
    np.testing.assert_allclose(y, np.asarray(native(x)), rtol=1e-5, atol=1e-5)


def test_group_conv_rejects_channels_first():
    # TFLite, the GPU delegate and TensorFlow's CPU grouped conv are NHWC only.
    with pytest.raises(ValueError, match="data_format='channels_first'"):
        GroupConv2D(4, 3, groups=2, data_format="channels_first")
    assert GroupConv2D(4, 3, groups=2).data_format == "channels_last"


def test_group_conv_bad_groups_raise():
    with pytest.raises(ValueError, match="groups"):
        GroupConv2D(6, 3, groups=4)
    with pytest.raises(ValueError, match="groups"):
        GroupConv2D(8, 3, groups=4)(np.ones((1, 4, 4, 6), "float32"))


def test_group_conv_config_round_trip():
    layer = GroupConv2D(16, (3, 1), groups=4, strides=2, padding="same", use_bias=False, name="gc")
    config = layer.get_config()
    assert config["groups"] == 4 and config["filters"] == 16 and config["kernel_size"] == (3, 1)
    clone = GroupConv2D.from_config(config)
    assert isinstance(clone, GroupConv2D)
    assert clone.get_config() == config


def test_group_conv_save_load_safe_mode(tmp_path):
    rng = np.random.default_rng(2)
    inputs = keras.Input((6, 6, 8))
    model = keras.Model(inputs, GroupConv2D(8, 3, groups=4, padding="same", name="gc")(inputs))
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    loaded = _save_load(model, tmp_path)
    assert type(loaded.get_layer("gc")) is GroupConv2D
    x = rng.normal(size=(2, 6, 6, 8)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


def _tiny_group_conv_model(groups, strides, dilation, rng):
    inputs = keras.Input((8, 8, 8), batch_size=1)
    layer = GroupConv2D(8, 3, groups=groups, strides=strides, dilation_rate=dilation, padding="same")
    model = keras.Model(inputs, layer(inputs))
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return model


@pytest.mark.parametrize("groups, strides, dilation", [(4, 1, 1), (2, 2, 1), (2, 1, 2)])
def test_group_conv_tflite_single_grouped_conv(groups, strides, dilation):
    rng = np.random.default_rng(3)
    model = _tiny_group_conv_model(groups, strides, dilation, rng)
    interpreter = _tflite(model)
    assert _op_names(interpreter) == ["CONV_2D"]  # one native grouped conv, bias fused
    x = rng.normal(size=(1, 8, 8, 8)).astype("float32")
    np.testing.assert_allclose(_run_tflite(interpreter, x), np.asarray(model(x)), rtol=1e-5, atol=EXPORT_ATOL)
    filters = [d for d in interpreter.get_tensor_details() if tuple(d["shape"]) == (8, 3, 3, 8 // groups)]
    assert len(filters) == 1, "the TFLite filter must be (out, kh, kw, in / groups)"


@pytest.mark.parametrize("groups, strides", [(4, 1), (2, 2)])
def test_group_conv_onnx_single_grouped_conv(groups, strides):
    import onnxruntime
    import tf2onnx

    rng = np.random.default_rng(4)
    model = _tiny_group_conv_model(groups, strides, 1, rng)
    proto, _ = tf2onnx.convert.from_function(
        tf.function(lambda x: model(x, training=False)),
        input_signature=[tf.TensorSpec((1, 8, 8, 8), tf.float32)],
        opset=13,
    )
    ops = [node.op_type for node in proto.graph.node]
    convs = [node for node in proto.graph.node if node.op_type == "Conv"]
    assert len(convs) == 1, ops
    group = {a.name: a.i for a in convs[0].attribute}.get("group")
    assert group == groups
    assert set(ops) <= {"Conv", "Transpose"}, ops  # no PartitionedCall left behind
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = rng.normal(size=(1, 8, 8, 8)).astype("float32")
    (y,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(y, np.asarray(model(x)), rtol=1e-5, atol=EXPORT_ATOL)


# --- ChannelShuffle ------------------------------------------------------------


def _np_shuffle(x, groups):
    n, h, w, c = x.shape
    return x.reshape(n, h, w, groups, c // groups).transpose(0, 1, 2, 4, 3).reshape(n, h, w, c)


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 6, 12])
def test_channel_shuffle_matches_numpy(groups):
    x = np.random.default_rng(5).normal(size=(2, 3, 2, 12)).astype("float32")
    y = np.asarray(ChannelShuffle(groups)(x))
    np.testing.assert_array_equal(y, _np_shuffle(x, groups))
    if 1 < groups < 12:
        assert not np.array_equal(y, x)


def test_channel_shuffle_golden():
    x = np.arange(6, dtype="float32").reshape(1, 1, 1, 6)
    np.testing.assert_array_equal(np.asarray(ChannelShuffle(2)(x))[0, 0, 0], [0, 3, 1, 4, 2, 5])
    np.testing.assert_array_equal(np.asarray(ChannelShuffle(3)(x))[0, 0, 0], [0, 2, 4, 1, 3, 5])


def test_channel_shuffle_unknown_spatial_dims():
    inputs = keras.Input((None, None, 12))
    outputs = ChannelShuffle(3)(inputs)
    assert tuple(outputs.shape) == (None, None, None, 12)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(6)
    for shape in [(1, 5, 4, 12), (3, 2, 7, 12)]:
        x = rng.normal(size=shape).astype("float32")
        np.testing.assert_array_equal(np.asarray(model(x)), _np_shuffle(x, 3))


@pytest.mark.parametrize("spatial", [(4, 4), (None, None)])
def test_channel_shuffle_tflite_stays_4d(spatial):
    inputs = keras.Input((*spatial, 12), batch_size=1)
    model = keras.Model(inputs, ChannelShuffle(3)(inputs))
    interpreter = _tflite(model)
    x = np.random.default_rng(7).normal(size=(1, 4, 5, 12) if spatial[0] is None else (1, 4, 4, 12))
    x = x.astype("float32")
    np.testing.assert_array_equal(_run_tflite(interpreter, x), _np_shuffle(x, 3))
    ranks = {d["name"]: len(d["shape"]) for d in interpreter.get_tensor_details()}
    assert max(ranks.values()) == 4
    assert all(r < 5 for r in ranks.values()), ranks
    ops = _op_names(interpreter)
    assert "TRANSPOSE" in ops and "RESHAPE" in ops


def test_channel_shuffle_bad_arguments():
    with pytest.raises(ValueError, match=re.escape("groups=0")):
        ChannelShuffle(0)
    with pytest.raises(ValueError, match=re.escape("groups=2.0")):
        ChannelShuffle(2.0)
    with pytest.raises(ValueError, match=re.escape("groups=5")):
        ChannelShuffle(5)(np.ones((1, 2, 2, 12), "float32"))
    with pytest.raises(ValueError, match=re.escape("input_shape=(1, 2, 12)")):
        ChannelShuffle(3)(np.ones((1, 2, 12), "float32"))


def test_channel_shuffle_config_and_save_load(tmp_path):
    layer = ChannelShuffle(4, name="shuffle")
    config = layer.get_config()
    assert set(config) == {"groups", "name", "trainable", "dtype"}
    assert config["groups"] == 4
    assert ChannelShuffle.from_config(config).get_config() == config
    inputs = keras.Input((3, 3, 8))
    model = keras.Model(inputs, layer(inputs))
    loaded = _save_load(model, tmp_path)
    assert type(loaded.get_layer("shuffle")) is ChannelShuffle
    assert loaded.get_layer("shuffle").groups == 4
    x = np.random.default_rng(8).normal(size=(2, 3, 3, 8)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(x)), _np_shuffle(x, 4))


# --- ChannelSlice ----------------------------------------------------------------


@pytest.mark.parametrize("num_slices", [1, 2, 3, 4])
def test_channel_slice_matches_torch_split_layout(num_slices):
    x = np.random.default_rng(9).normal(size=(2, 3, 2, 12)).astype("float32")
    expected = np.split(x, num_slices, axis=-1)  # torch.split(x, C // M, dim=1) in NHWC
    for index in range(num_slices):
        np.testing.assert_array_equal(np.asarray(ChannelSlice(index, num_slices)(x)), expected[index])


def test_channel_slice_tflite_is_one_4d_slice():
    inputs = keras.Input((4, 4, 12), batch_size=1)
    model = keras.Model(inputs, ChannelSlice(2, 3)(inputs))
    interpreter = _tflite(model)
    x = np.random.default_rng(10).normal(size=(1, 4, 4, 12)).astype("float32")
    np.testing.assert_array_equal(_run_tflite(interpreter, x), x[..., 8:])
    assert _op_names(interpreter) in (["STRIDED_SLICE"], ["SLICE"])


def test_channel_slice_bad_arguments():
    with pytest.raises(ValueError, match=re.escape("index=3")):
        ChannelSlice(3, 3)
    with pytest.raises(ValueError, match=re.escape("index=-1")):
        ChannelSlice(-1, 2)
    with pytest.raises(ValueError, match=re.escape("num_slices=0")):
        ChannelSlice(0, 0)
    with pytest.raises(ValueError, match=re.escape("num_slices=5")):
        ChannelSlice(0, 5)(np.ones((1, 2, 2, 12), "float32"))


def test_channel_slice_config_and_save_load(tmp_path):
    layer = ChannelSlice(1, 2, name="slice")
    config = layer.get_config()
    assert {config["index"], config["num_slices"]} == {1, 2}
    assert ChannelSlice.from_config(config).get_config() == config
    inputs = keras.Input((3, 3, 8))
    model = keras.Model(inputs, layer(inputs))
    loaded = _save_load(model, tmp_path)
    assert type(loaded.get_layer("slice")) is ChannelSlice
    x = np.random.default_rng(11).normal(size=(2, 3, 3, 8)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(x)), x[..., 4:])


# --- KernelSelect ----------------------------------------------------------------


def _np_select(paths, logits):
    n, channels = paths[0].shape[0], paths[0].shape[-1]
    a = logits.reshape(n, len(paths), channels).astype(np.float64)  # path-major
    a = np.exp(a - a.max(axis=1, keepdims=True))
    a /= a.sum(axis=1, keepdims=True)
    return sum(a[:, m, None, None, :] * p for m, p in enumerate(paths))


@pytest.mark.parametrize("num_paths", [2, 3, 4])
def test_kernel_select_matches_numpy(num_paths):
    rng = np.random.default_rng(9)
    paths = [rng.normal(size=(2, 3, 4, 5)).astype("float32") for _ in range(num_paths)]
    logits = rng.normal(0, 2, size=(2, 1, 1, num_paths * 5)).astype("float32")
    y = np.asarray(KernelSelect()(paths + [logits]))
    np.testing.assert_allclose(y, _np_select(paths, logits), rtol=1e-5, atol=1e-6)


def test_kernel_select_golden_layout():
    # Path-major logits: index m * C + c. A large logit on path 1 channel 0
    # (index 1 * 2 + 0 = 2) selects path 1 for channel 0 only.
    paths = [np.full((1, 1, 1, 2), 10.0, "float32"), np.full((1, 1, 1, 2), 20.0, "float32")]
    logits = np.array([0.0, 0.0, 50.0, 0.0], "float32").reshape(1, 1, 1, 4)
    np.testing.assert_allclose(np.asarray(KernelSelect()(paths + [logits]))[0, 0, 0], [20.0, 15.0], rtol=1e-6)
    paths = [np.ones((1, 4, 4, 8), "float32"), np.zeros((1, 4, 4, 8), "float32")]
    y = KernelSelect()(paths + [np.zeros((1, 1, 1, 16), "float32")])
    np.testing.assert_allclose(np.asarray(y), 0.5)


@pytest.mark.parametrize(
    "shapes, fragment",
    [
        ([(1, 4, 4, 8), (1, 1, 1, 8)], "M >= 2"),
        ([(1, 4, 4, 8), (1, 4, 4, 4), (1, 1, 1, 16)], "same shape"),
        ([(1, 4, 4, 8), (1, 4, 3, 8), (1, 1, 1, 16)], "same shape"),
        ([(1, 4, 4, 8), (1, 4, 4, 8), (1, 1, 1, 8)], "(1, 1, 1, 8)"),
        ([(1, 4, 4, 8), (1, 4, 4, 8), (1, 2, 1, 16)], "(1, 2, 1, 16)"),
        ([(1, 4, 8), (1, 4, 8), (1, 1, 16)], "(1, 4, 8)"),
    ],
)
def test_kernel_select_bad_shapes(shapes, fragment):
    inputs = [np.ones(s, "float32") for s in shapes]
    with pytest.raises(ValueError, match=re.escape(fragment)):
        KernelSelect()(inputs)


def test_kernel_select_config_and_save_load(tmp_path):
    layer = KernelSelect(name="select")
    config = layer.get_config()
    assert set(config) == set(keras.layers.Layer(name="base").get_config())  # no arguments of its own
    assert KernelSelect.from_config(config).get_config() == config
    inputs = [keras.Input((3, 3, 4)), keras.Input((3, 3, 4)), keras.Input((3, 3, 4)), keras.Input((1, 1, 12))]
    model = keras.Model(inputs, layer(inputs))
    loaded = _save_load(model, tmp_path)
    assert type(loaded.get_layer("select")) is KernelSelect
    rng = np.random.default_rng(10)
    x = [rng.normal(size=(2, *i.shape[1:])).astype("float32") for i in inputs]
    np.testing.assert_allclose(np.asarray(loaded(x)), _np_select(x[:-1], x[-1]), rtol=1e-5, atol=1e-6)
