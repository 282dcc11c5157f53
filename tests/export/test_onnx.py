import keras
import numpy as np
import onnx
import pytest

import keras_se
from keras_se.export import to_onnx
from keras_se.export.calibration import trained_like_copy
from keras_se.export.errors import VerificationError
from keras_se.export.verify import FLOAT32_MAX_ABS, LOGITS_RELATIVE_L2, keras_outputs, parity_of


def _realistic(name, size, **options):
    """A registered model's logits model with BN statistics from data: logits of order 1, not an untrained model's ~1e-20."""
    model = keras_se.create_model(name, input_shape=(size, size, 3), classifier_activation=None, **options)
    return trained_like_copy(model, np.random.default_rng(1).uniform(0, 1, (8, size, size, 3)).astype("float32"))


def _check_logits(model, path):
    """onnxruntime's logits within the float32 relative bound of Keras', and the bound is not vacuous."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(2).uniform(0, 1, (4, *model.input_shape[1:])).astype("float32")
    actual = session.run(None, {session.get_inputs()[0].name: x})[0]
    reference = keras_outputs(model, x)
    assert reference.std() > 0.01  # realistic logits
    parity = parity_of(reference, actual, "onnxruntime")
    assert parity.relative_l2 <= LOGITS_RELATIVE_L2["float32"], parity
    parity.check(None)
    with pytest.raises(VerificationError, match="differ"):  # the same logits 1 % off fail
        parity_of(reference, actual * 1.01, "onnxruntime").check(None)


def _conv_groups(path):
    model = onnx.load(str(path))
    return sorted(next((a.i for a in node.attribute if a.name == "group"), 1) for node in model.graph.node if node.op_type == "Conv")


@pytest.mark.large  # default-run budget: the other ONNX export cases run by default
def test_grouped_sk_and_shuffle_layers_export_and_match(tiny_se_model, tmp_path):
    from keras_se.layers import ChannelShuffle, GroupConv2D

    inputs = keras.Input((8, 8, 16))
    x = GroupConv2D(16, 3, groups=4, padding="same")(inputs)
    x = ChannelShuffle(4)(x)
    model = keras.Model(inputs, x)
    result = to_onnx(model, tmp_path / "g.onnx")
    assert _conv_groups(result.path) == [4]
    assert result.parity.max_abs_error <= FLOAT32_MAX_ABS
    sk = to_onnx(tiny_se_model, tmp_path / "sk.onnx")
    assert 4 in _conv_groups(sk.path)  # SK paths are grouped (G=4)
    assert sk.parity.max_abs_error <= FLOAT32_MAX_ABS and sk.parity.top1_agreement == 1.0


@pytest.mark.large  # grouped layers and SK: the test above, by default
def test_registered_grouped_model_exports(tmp_path):
    model = _realistic("se_shufflenet_g3", 32)
    result = to_onnx(model, tmp_path / "s.onnx")
    assert 3 in _conv_groups(result.path)
    assert "StatefulPartitionedCall" not in result.ops and "PartitionedCall" not in result.ops
    _check_logits(model, result.path)


def test_existing_onnx_is_kept(tiny_se_model, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_text("keep")
    with pytest.raises(FileExistsError):
        to_onnx(tiny_se_model, path)
    assert path.read_text() == "keep"


# The NPU preset test (tests/export/test_npu.py) exports through the same path in the default run.
@pytest.mark.large
@pytest.mark.parametrize("name", ["mobilenetv3_small", "mobilenetv3_large_plain"])
def test_mobilenetv3_exports_with_standard_ops_and_matches(name, tmp_path):
    # Hard-swish, the hard-sigmoid gate and the SE scale: ONNX standard ops
    # only, logits equal to Keras'.
    model = _realistic(name, 64, alpha=0.5)
    result = to_onnx(model, tmp_path / f"{name}.onnx")
    graph = onnx.load(str(result.path))
    onnx.checker.check_model(graph)
    assert all(node.domain in ("", "ai.onnx") and onnx.defs.has(node.op_type) for node in graph.graph.node)
    assert "StatefulPartitionedCall" not in result.ops and "PartitionedCall" not in result.ops
    _check_logits(model, result.path)


@pytest.mark.parametrize("verify", [pytest.param(True, marks=pytest.mark.large), False])
def test_op_tf2onnx_leaves_unconverted_is_refused_and_nothing_written(verify, tmp_path):
    # tf2onnx keeps TensorFlow's Lgamma as an op named "Lgamma" in the default
    # ONNX domain, which no ONNX runtime has.
    import tensorflow as tf

    from keras_se.export.errors import ConversionError

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: tf.math.lgamma(tf.abs(t) + 1.0))(inputs))
    with pytest.raises(ConversionError, match="outside the ONNX standard.*Lgamma"):
        to_onnx(model, tmp_path / "lgamma.onnx", verify=verify)
    assert list(tmp_path.iterdir()) == []


def test_nonstandard_ops_in_subgraphs_and_other_domains_are_named():
    from onnx import TensorProto, helper

    from keras_se.export.errors import ConversionError
    from keras_se.export.onnx import check_standard

    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    body = helper.make_graph(
        [helper.make_node("StatefulPartitionedCall", ["x"], ["y"])],
        "body",
        [value],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    nodes = [
        helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=body),
        helper.make_node("Gelu", ["x"], ["z"], domain="com.microsoft"),
    ]
    graph = helper.make_graph(nodes, "g", [value, cond], [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])])
    with pytest.raises(ConversionError, match=r"StatefulPartitionedCall, com\.microsoft::Gelu"):
        check_standard(helper.make_model(graph))


def test_tf2onnx_optimizers_collect_garbage_during_a_conversion_only(monkeypatch):
    # keras_se/tf2onnx_workaround.py: without the collections, SE-VGG-16's
    # ONNX export held dead copies of its weights past 24 GB.
    import gc

    from tf2onnx import optimizer

    from keras_se.tf2onnx_workaround import tf2onnx_garbage_collected

    before = dict(optimizer._optimizers)
    collections = []
    monkeypatch.setattr(gc, "collect", lambda *args: collections.append(args) or 0)
    with tf2onnx_garbage_collected():
        assert set(optimizer._optimizers) == set(before)
        for factory in optimizer._optimizers.values():
            factory()
    assert len(collections) == len(before)
    assert optimizer._optimizers == before
