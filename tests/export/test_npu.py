"""The NPU preset: QDQ ONNX for Qualcomm's HTP, run through onnxruntime-qnn (its HTP simulator on x86-64)."""

import os

import numpy as np
import pytest

import keras_se
from keras_se.export import calibration
from keras_se.export.errors import VerificationError
from keras_se.export.npu import NpuRun, parse_npu, run_on_npu, target_options
from keras_se.export.onnx import NPU_CPU_RELATIVE_L2, to_onnx


def _mod_model():
    """A QDQ ONNX file: Relu, Mod(fmod=1), Relu. The HTP has no float Mod (QNN: "only support fmod == 0")."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from keras_se.export.npu import quantize_qdq

    divisor = numpy_helper.from_array(np.full((1, 4, 4, 8), 3.0, "float32"), "divisor")
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("Mod", ["a", "divisor"], ["b"], name="the_mod", fmod=1),
        helper.make_node("Relu", ["b"], ["y"], name="relu_out"),
    ]
    graph = helper.make_graph(
        nodes,
        "mod",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 8])],
        initializer=[divisor],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 9
    onnx.checker.check_model(proto)
    qdq, _ = quantize_qdq(proto, np.random.default_rng(0).uniform(0, 6, (4, 4, 4, 8)).astype("float32"))
    return qdq


@pytest.mark.parametrize(
    "npu, message",
    [
        ("apple", "npu must be 'qualcomm'"),
        (1, "npu must be 'qualcomm'"),
        ("qualcomm:sm9999", "unknown Qualcomm NPU target 'sm9999'"),
        ("qualcomm:v60", "unknown Qualcomm NPU target 'v60'"),
    ],
)
def test_npu_argument_is_checked_before_any_work(npu, message, tmp_path):
    model = keras_se.create_model("se_resnet18", input_shape=(32, 32, 3), classes=4)
    with pytest.raises(ValueError, match=message):
        to_onnx(model, tmp_path / "m.onnx", npu=npu)
    with pytest.raises(ValueError, match="npu_quantize must be one of"):
        to_onnx(model, tmp_path / "m.onnx", npu="qualcomm", npu_quantize="w4a8")
    assert os.listdir(tmp_path) == []


def test_targets_name_socs_and_hexagon_generations():
    assert parse_npu("qualcomm") == ("qualcomm", ())
    assert parse_npu("Qualcomm:SM8650, v73,sm8650") == ("qualcomm", ("sm8650", "v73"))
    # QNN's numbering (LiteRT's soc_table.h): Snapdragon 8 Gen 3 is a v75 HTP.
    assert target_options("sm8650") == {"htp_arch": "75", "soc_model": "57"}
    assert target_options("v81") == {"htp_arch": "81"}


def _trained_like(name, size, **kwargs):
    model = keras_se.models.build_model(name, input_shape=(size, size, 3), classes=10, **kwargs)
    rng = np.random.default_rng(1)
    data = rng.uniform(0, 1, (16, size, size, 3)).astype("float32")
    return calibration.trained_like_copy(model, data), rng.uniform(0, 1, (12, size, size, 3)).astype("float32")


def test_npu_preset_runs_every_node_on_the_htp_and_writes_a_context_per_target(qnn_htp, tmp_path):
    import onnx

    model, data = _trained_like("se_resnet18", 32)
    path = tmp_path / "se_resnet18_w8a8_npu.onnx"
    result = to_onnx(model, path, npu="qualcomm:sm8650,v73", representative_data=data)
    run = result.npu
    assert run.passed and run.verdict() == "fully on the HTP", run.verdict()
    assert run.fallback == [] and run.nodes["QNNExecutionProvider"] > 300
    # Against Keras (int8 bounds) and against the CPU EP on the same file.
    assert result.npu_parity.compared == "logits" and result.npu_parity.logits_relative_l2 < 0.3
    assert 0 < run.cpu_relative_l2 <= NPU_CPU_RELATIVE_L2["w8a8"]
    proto = onnx.load(str(path))
    # What ships: batch 1, one output (the verification's logits output gone), quantised.
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [1, 32, 32, 3]
    assert len(proto.graph.output) == 1
    # 20 convolutions and two 1x1 convolutions in each of the 8 SE blocks, quantised.
    assert result.ops["QuantizeLinear"] > 50 and result.ops["Conv"] == 36
    assert result.quantize == "w8a8" and result.size_bytes == os.path.getsize(path)
    for target in ("sm8650", "v73"):
        context = tmp_path / f"se_resnet18_w8a8_npu_{target}_ctx.onnx"
        assert run.contexts[target]["path"] == str(context)
        assert run.contexts[target]["bytes"] == os.path.getsize(context) > 100_000
        # The reloaded context against the HTP run on the same input: the graph finalised again, not another function.
        assert 0 <= run.contexts[target]["relative_l2"] <= 0.5 and run.contexts[target]["max_abs_error"] < 1, run.contexts[target]
        assert [n.op_type for n in onnx.load(str(context)).graph.node] == ["EPContext"]
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["se_resnet18_w8a8_npu.onnx", "se_resnet18_w8a8_npu_sm8650_ctx.onnx", "se_resnet18_w8a8_npu_v73_ctx.onnx"]
    )
    # Existing outputs are kept without overwrite, the context files too.
    with pytest.raises(FileExistsError):
        to_onnx(model, path, npu="qualcomm:sm8650", representative_data=data)


def test_a_node_the_htp_refuses_is_named_with_qnns_reason(qnn_htp):
    qdq = _mod_model()
    run = run_on_npu(qdq.SerializeToString(), np.ones((1, 4, 4, 8), "float32"))
    assert run.status == "ran" and not run.passed
    # The Mod, and the Quantize of its output that ONNX Runtime keeps beside it.
    assert sorted(n["op_type"] for n in run.fallback) == ["Mod", "QuantizeLinear"]
    assert "Mod (QNN Mod Op only support fmod == 0" in run.verdict()


def test_the_htp_computes_a_strided_1x1_average_pool_wrong_and_the_preset_re_spells_it(qnn_htp, tmp_path):
    """SKNet's strided dilated paths pad by 2, then subsample with a 1x1 average pool of stride 2: the HTP gets
    that pool wrong (bare file); the preset's depthwise convolution is right."""
    import keras
    import onnxruntime

    from keras_se.export.npu import quantize_qdq

    inputs = keras.Input((8, 8, 16))
    x = keras.layers.ZeroPadding2D(2)(keras.layers.Conv2D(16, 1)(inputs))
    outputs = keras.layers.AveragePooling2D(1, strides=2, padding="valid")(x)
    model = keras.Model(inputs, outputs)
    data = np.random.default_rng(0).uniform(0, 1, (8, 8, 8, 16)).astype("float32")
    import tensorflow as tf
    import tf2onnx

    spec = [tf.TensorSpec((1, 8, 8, 16), tf.float32, name="input")]
    proto, _ = tf2onnx.convert.from_function(tf.function(lambda v: model(v, training=False)), input_signature=spec, opset=17)
    assert "AveragePool" in {n.op_type for n in proto.graph.node}
    qdq, _ = quantize_qdq(proto, data)
    bare = qdq.SerializeToString()
    cpu = onnxruntime.InferenceSession(bare, providers=["CPUExecutionProvider"]).run(None, {"input": data[:1]})[0]
    htp = run_on_npu(bare, data[:1])
    assert htp.passed
    error = np.linalg.norm(htp.outputs - cpu) / np.linalg.norm(cpu)
    assert error > 0.5, f"the HTP now computes the strided 1x1 AveragePool right ({error:.3g}): the re-spelling may go"
    result = to_onnx(model, tmp_path / "pool.onnx", npu="qualcomm", representative_data=data)
    assert "AveragePool" not in result.ops and result.npu.passed
    assert result.npu.cpu_relative_l2 < 0.05


def test_a_wrong_htp_result_fails_the_preset(qnn_htp, tiny_se_model, tmp_path, monkeypatch):
    from keras_se.export import onnx as onnx_export

    model, data = tiny_se_model, np.random.default_rng(2).uniform(0, 1, (8, 16, 16, 3)).astype("float32")
    real = onnx_export.run_on_npu

    def shifted(*args, **kwargs):
        run = real(*args, **kwargs)
        run.outputs = [np.roll(o, 1, axis=-1) for o in run.outputs]  # every class score moved to the next class
        return run

    monkeypatch.setattr(onnx_export, "run_on_npu", shifted)
    with pytest.raises(VerificationError, match="QNN HTP|CPU EP"):
        to_onnx(model, tmp_path / "m.onnx", npu="qualcomm", representative_data=data)
    assert os.listdir(tmp_path) == []


def test_without_onnxruntime_qnn_the_npu_is_not_run_never_passed(tiny_se_model, tmp_path, monkeypatch):
    from keras_se.export import onnx as onnx_export
    from keras_se.export.errors import NpuNotRunWarning

    monkeypatch.setattr(onnx_export, "run_on_npu", lambda *a, **k: NpuRun("not run", "onnxruntime-qnn is not installed"))
    model, data = tiny_se_model, np.random.default_rng(2).uniform(0, 1, (8, 16, 16, 3)).astype("float32")
    with pytest.warns(NpuNotRunWarning, match="not installed"):
        result = to_onnx(model, tmp_path / "m.onnx", npu="qualcomm", representative_data=data)
    assert not result.npu.passed and result.npu.verdict().startswith("not run")


def test_console_script_names_an_unknown_npu_target_in_one_line(tmp_path):
    import subprocess

    process = subprocess.run(
        ["keras-se", "convert", "se_resnet18", "--npu", "qualcomm:sm1", "--out", str(tmp_path / "out")], capture_output=True, text=True
    )
    assert process.returncode == 2
    assert process.stderr.strip().splitlines() == [
        "keras-se: error: --npu: unknown Qualcomm NPU target 'sm1': give a Snapdragon SoC (sm8350, sm8450, sm8550, sm8650, sm8750) "
        "or a Hexagon architecture (v68, v69, v73, v75, v79, v81)"
    ]
    assert not (tmp_path / "out").exists()
