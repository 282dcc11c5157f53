"""LiteRT's GPU accelerator, run for real in a child process.

Without a GPU these run on Mesa's software Vulkan driver (lavapipe), which
`.ci/run` installs; where no adapter exists they are "not run" (skipped,
and failures under CI=true), never passed.
"""

import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_se
from keras_se.cli import main
from keras_se.export import check_gpu, to_tflite
from keras_se.export.bench import measure_latency
from keras_se.export.errors import GpuNotRunWarning, VerificationError
from keras_se.export.forms import gpu_accelerator_fault
from keras_se.export.gpu_run import GpuAccelerator, GpuRun, adapter_of, run_on_gpu_accelerator
from keras_se.export.verify import GPU_RELATIVE_L2, parity_of
from keras_se.layers import GroupConv2D

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "timm"
SPEC = tf.TensorSpec([1, 4, 4, 8], tf.float32)
NO_DRIVER = {"VK_ICD_FILENAMES": "/nonexistent/icd.json", "VK_DRIVER_FILES": "/nonexistent/icd.json"}


def _x(shape, n=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *shape[1:])).astype("float32")


def test_outputs_are_the_models_outputs(gpu_adapter, convert_function):
    data = convert_function(lambda x: tf.nn.relu(x) * 2.0 + 1.0, SPEC)
    x = _x(SPEC.shape)
    run = run_on_gpu_accelerator(data, x, runs=3)
    assert run.passed and run.runs == 3 and run.latency_ms > 0
    # float16 arithmetic: 2x + 1 on [-1, 1] is exact to 2**-10.
    np.testing.assert_allclose(run.outputs, np.maximum(x, 0) * 2 + 1, atol=2e-3)
    assert run.adapter and run.software == ("software" in run.adapter.lower())


def test_wrongly_shaped_samples_are_a_value_error_naming_both_shapes(gpu_adapter, convert_function):
    # They used to reach the child process, which died: "crashed", with no reason.
    data = convert_function(lambda x: tf.nn.relu(x), SPEC)
    with pytest.raises(ValueError, match=r"samples must be \(N, 4, 4, 8\).*Received: samples.shape=\(2, 4, 4, 3\)"):
        run_on_gpu_accelerator(data, _x((1, 4, 4, 3)))


def test_the_adapter_is_read_from_the_accelerators_log():
    line = "I0000 environment.cc:532] Selected adapter: llvmpipe (LLVM 15.0.6, 256 bits), arch=software, vendor=mesa"
    assert adapter_of(line) == ("llvmpipe (LLVM 15.0.6, 256 bits), arch=software, vendor=mesa", True)
    assert adapter_of("Selected adapter: Mali-G710, arch=valhall, vendor=arm")[1] is False
    assert adapter_of("no adapter line") == (None, None)


def test_no_gpu_adapter_is_not_run_with_the_fix_and_never_passed(monkeypatch, convert_function):
    for key, value in NO_DRIVER.items():
        monkeypatch.setenv(key, value)
    run = run_on_gpu_accelerator(convert_function(lambda x: tf.nn.relu(x), SPEC), _x(SPEC.shape))
    assert run.status == "not run" and not run.passed
    assert "no GPU adapter" in run.reason and "mesa-vulkan-drivers" in run.reason
    assert run.outputs is None


def test_to_tflite_without_adapter_warns_and_records_not_run(monkeypatch, tmp_path, tiny_se_model):
    for key, value in NO_DRIVER.items():
        monkeypatch.setenv(key, value)
    with pytest.warns(GpuNotRunWarning, match="no GPU adapter"):
        result = to_tflite(tiny_se_model, tmp_path / "m.tflite", quantize="float16", gpu=True)
    assert result.gpu_run.status == "not run" and not result.gpu_run.passed
    assert result.to_dict()["gpu_accelerator"]["passed"] is False
    assert result.to_dict()["gpu_rules"] == "pass"


def test_a_file_that_does_not_answer_in_time_is_a_timeout(gpu_adapter, convert_function, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(convert_function(lambda x: tf.nn.relu(x), SPEC))
    with GpuAccelerator(path, timeout=0.01) as accelerator:
        assert accelerator.status == "timeout" and "0.01 s" in accelerator.reason


def test_rank_5_is_refused_by_the_accelerator_and_by_the_rules(gpu_adapter, convert_function):
    data = convert_function(lambda x: tf.reshape(tf.reshape(x, [1, 4, 4, 2, 4]) * 2.0, [1, 4, 4, 8]), SPEC)
    run = run_on_gpu_accelerator(data, _x(SPEC.shape))
    assert run.status == "refused" and "not accelerated" in run.reason and not run.passed
    assert any("rank 5" in f.reason for f in check_gpu(data) if f.severity == "error")


# Where the two GPU paths disagree (ai-edge-litert 2.3). A LiteRT upgrade
# that changes one of these fails here, so the README and the GPU preset
# can be brought up to date.


def test_known_disagreement_cumsum_refused_by_the_rules_runs_on_ml_drift(gpu_adapter, convert_function):
    data = convert_function(lambda x: tf.cumsum(x, axis=3), SPEC)
    assert "not supported op CUMSUM" in [f.reason for f in check_gpu(data)]
    x = _x(SPEC.shape)
    run = run_on_gpu_accelerator(data, x)
    assert run.passed
    np.testing.assert_allclose(run.outputs, np.cumsum(x, axis=3), atol=1e-2)


def test_known_disagreement_zero_pad_then_average_pool(gpu_adapter, tmp_path):
    """ML Drift folds the PAD into the pool and leaves the zeros out of the average; the GPU preset avoids it."""
    inputs = keras.Input(batch_shape=(1, 8, 8, 8))
    model = keras.Model(inputs, keras.layers.AveragePooling2D(3, strides=2)(keras.layers.ZeroPadding2D(1)(inputs)))
    data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    assert check_gpu(data) == []  # the classic rules see nothing wrong
    x = np.random.default_rng(0).uniform(0, 1, (1, 8, 8, 8)).astype("float32")
    reference = np.asarray(model(x))
    run = run_on_gpu_accelerator(data, x)
    assert run.passed and np.linalg.norm(run.outputs - reference) / np.linalg.norm(reference) > 0.1
    preset = to_tflite(model, tmp_path / "pool.tflite", gpu=True, verify=False)
    assert "AVERAGE_POOL_2D" not in preset.ops and preset.ops["DEPTHWISE_CONV_2D"] == 1
    run = run_on_gpu_accelerator(preset.path, x)
    assert np.linalg.norm(run.outputs - reference) / np.linalg.norm(reference) < 1e-2


def _grouped_conv(in_per_group, out_per_group, groups):
    inputs = keras.Input(batch_shape=(1, 6, 6, in_per_group * groups))
    model = keras.Model(inputs, GroupConv2D(out_per_group * groups, 3, groups=groups, padding="same")(inputs))
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    return model, tf.lite.TFLiteConverter.from_keras_model(model).convert()


GROUP_SHAPES = [
    (1, 1),
    (1, 2),
    (2, 2),
    (2, 4),
    (3, 3),
    (4, 2),
    (4, 3),
    (4, 4),
    (4, 6),
    (4, 8),
    (8, 4),
    (12, 12),
    (2, 8),
    (16, 4),
    (5, 8),
    (6, 4),
    (8, 2),
    (8, 6),
]


@pytest.mark.parametrize("in_per_group, out_per_group", GROUP_SHAPES)
def test_known_disagreement_grouped_convolutions(in_per_group, out_per_group, gpu_adapter):
    """The rules warn on groups that are not multiples of 4; ML Drift crashes on some, computes others wrong."""
    model, data = _grouped_conv(in_per_group, out_per_group, groups=2)
    warns = bool(in_per_group % 4 or out_per_group % 4)
    assert [f.severity for f in check_gpu(data)] == (["warning"] if warns else [])
    x = np.random.default_rng(1).normal(size=(1, 6, 6, 2 * in_per_group)).astype("float32")
    run = run_on_gpu_accelerator(data, x, timeout=120)
    fault = gpu_accelerator_fault(in_per_group, out_per_group)
    if fault == "crash":
        # A crash is a reported result: the caller lives on.
        assert run.status == "crashed" and "SIGILL" in run.reason and not run.passed
        return
    assert run.passed, run.verdict()  # "fully accelerated", whatever it computes
    reference = np.asarray(model(x))
    error = np.linalg.norm(run.outputs - reference) / np.linalg.norm(reference)
    assert (error > 0.3) if fault == "wrong" else (error < 1e-2)


# shufflenet_g2 and SENet-154 split and merge groups; SKNet-50 (tests/export/test_gpu.py) and the
# shufflenet_g3 preset of the default run re-spell them too.
@pytest.mark.parametrize(
    "name",
    [pytest.param("shufflenet_g2", marks=pytest.mark.large), pytest.param("senet154", marks=[pytest.mark.large, pytest.mark.xlarge])],
)
def test_gpu_preset_re_spells_the_grouped_convolutions_the_accelerator_gets_wrong(name, gpu_adapter, tmp_path):
    model = keras_se.create_model(name, input_shape=(32, 32, 3), include_top=False)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (1, 32, 32, 3)).astype("float32")
    reference = np.asarray(model(x))
    plain = to_tflite(model, tmp_path / "plain.tflite", quantize="float16", verify=False)
    run = run_on_gpu_accelerator(plain.path, x)
    # As converted for the CPU: ShuffleNet g = 2 crashes the accelerator,
    # SENet-154 runs "fully accelerated" with wrong features.
    if name == "shufflenet_g2":
        assert run.status == "crashed"
    else:
        assert run.passed and np.linalg.norm(run.outputs - reference) / np.linalg.norm(reference) > 0.3
    preset = to_tflite(model, tmp_path / "gpu.tflite", quantize="float16", gpu=True, verify=False)
    run = run_on_gpu_accelerator(preset.path, x)
    assert run.passed and np.linalg.norm(run.outputs - reference) / np.linalg.norm(reference) < GPU_RELATIVE_L2


def test_a_kernel_the_gpu_computes_wrong_fails_the_conversion(gpu_adapter, tmp_path, monkeypatch):
    import keras_se.export.tflite as tflite

    inputs = keras.Input((6, 6, 32))
    model = keras.Model(inputs, GroupConv2D(64, 3, groups=16, padding="same")(inputs))  # 2 in / 4 out per group
    monkeypatch.setattr(tflite, "grouped_convolutions_for_gpu", lambda m: m)  # without the GPU form
    with pytest.raises(VerificationError, match="computes this file wrong"):
        to_tflite(model, tmp_path / "m.tflite", quantize="float16", gpu=True)
    monkeypatch.undo()
    result = to_tflite(model, tmp_path / "m.tflite", quantize="float16", gpu=True)
    assert result.gpu_run.kernel_relative_l2 < 1e-5


@pytest.mark.parametrize(
    "status, reason, fully_accelerated, expected",
    [
        ("crashed", "the accelerator's process died (SIGSEGV (signal 11))", None, "crashed: the accelerator's process died"),
        ("timeout", "no answer from the GPU accelerator within 600 s", None, "timeout: no answer"),
        ("refused", "some ops are not accelerated", None, "refused: some ops are not accelerated"),
        ("not run", "no GPU adapter", None, "not run: no GPU adapter"),
        ("ran", "", False, "partly accelerated with float32 kernels"),
    ],
)
def test_a_float32_kernel_run_that_did_not_happen_fails_the_conversion(
    status, reason, fully_accelerated, expected, float32_gpu_run_fails, tiny_se_model, tmp_path
):
    # The float16 run passes (it gives the CPU runtime's own outputs): only the
    # missing kernel check can fail it, and it must.
    float32_gpu_run_fails(status, reason, fully_accelerated)
    with pytest.raises(VerificationError, match=rf"float32 kernel run did not happen \({re.escape(expected)}"):
        to_tflite(tiny_se_model, tmp_path / "m.tflite", quantize="float16", gpu=True)
    assert not (tmp_path / "m.tflite").exists()


def test_a_missing_kernel_run_is_never_a_pass_in_the_result(float32_gpu_run_fails, tiny_se_model, tmp_path):
    from keras_se.export.tflite import gpu_verdicts
    from keras_se.export.verify import check_gpu_run, keras_outputs

    float32_gpu_run_fails("crashed", "the accelerator's process died (exit status 1)")
    result = to_tflite(tiny_se_model, tmp_path / "m.tflite", quantize="float16", verify=False)
    x = _x((1, 16, 16, 3), n=2)
    checks = gpu_verdicts(result.path, "float16", x, keras_outputs(tiny_se_model, x))
    run = checks["gpu_run"]
    assert run.kernel_relative_l2 is None
    assert run.kernel_verdict() == "not run: crashed: the accelerator's process died (exit status 1)"
    assert run.to_dict(checks["gpu_parity"])["kernel_check"].startswith("not run: crashed")
    for quantize in (None, "float16"):
        with pytest.raises(VerificationError, match="float32 kernel run did not happen"):
            check_gpu_run(run, checks["gpu_parity"], quantize)
    ran = GpuRun("ran", fully_accelerated=True, kernel_relative_l2=2e-6)
    assert ran.kernel_verdict() == "within bound" and ran.to_dict()["kernel_check"] == "within bound"
    assert GpuRun("ran", fully_accelerated=True, kernel_relative_l2=0.3).kernel_verdict().startswith("wrong: relative L2 0.3")


def test_gpu_parity_beyond_the_bound_fails_the_conversion(gpu_adapter, tiny_se_model, tmp_path, monkeypatch):
    import keras_se.export.verify as verify

    monkeypatch.setattr(verify, "GPU_RELATIVE_L2", 1e-9)  # float16 cannot meet this
    with pytest.raises(VerificationError, match="relative L2"):
        to_tflite(tiny_se_model, tmp_path / "m.tflite", quantize="float16", gpu=True)
    assert not (tmp_path / "m.tflite").exists()


def test_gpu_parity_statistics():
    reference = np.array([[0.7, 0.2, 0.1], [0.34, 0.33, 0.33]], "float32")
    parity = parity_of(reference, reference[:, [1, 0, 2]], "gpu", relative_l2_bound=0.05)
    assert parity.decisive == 1 and parity.top1_agreement == 0.0  # the near-tie is not decisive
    assert parity.relative_l2 == pytest.approx(np.linalg.norm([0.5, 0.5, 0]) / np.linalg.norm(reference[0]), rel=1e-5)
    with pytest.raises(VerificationError, match="relative L2"):
        parity.check_gpu("float16")
    nan = parity_of(reference, np.full_like(reference, np.nan), "gpu", relative_l2_bound=0.05)
    with pytest.raises(VerificationError):
        nan.check_gpu(None)


@pytest.mark.large  # 36 s; the default run keeps the accelerator checks of random-weight models
def test_timm_legacy_seresnet18_real_weights_on_the_gpu(gpu_adapter, not_run, tmp_path):
    if not (FIXTURES / "legacy_seresnet18.safetensors").is_file():
        not_run(f"timm fixture not present at {FIXTURES}")
    io = np.load(FIXTURES / "legacy_seresnet18_io.npz")
    x, logits = io["input_nchw"].transpose(0, 2, 3, 1), io["logits"]
    model = keras_se.create_model("timm:legacy_seresnet18", classifier_activation=None, weights=FIXTURES / "legacy_seresnet18.safetensors")
    result = to_tflite(model, tmp_path / "seresnet18.tflite", quantize="float16", gpu=True, verify_samples=2)
    assert result.gpu_run.passed
    # Against timm's own logits, not only Keras: within the float16 bound
    # (2e-3 measured), same top-1 and the same top-5 classes.
    run = run_on_gpu_accelerator(result.path, x)
    parity = parity_of(logits, run.outputs, "gpu", relative_l2_bound=GPU_RELATIVE_L2)
    assert parity.relative_l2 <= GPU_RELATIVE_L2
    assert parity.top5_agreement == 1.0
    assert (run.outputs.argmax(1) == logits.argmax(1)).all()


def test_bench_times_cpu_and_gpu_side_by_side(gpu_adapter, tiny_se_model, tmp_path, capsys):
    path = to_tflite(tiny_se_model, tmp_path / "tiny.tflite", verify=False).path
    cpu, gpu = measure_latency(path, runs=3, warmup=1, accelerators=["cpu", "gpu"])
    assert (cpu.accelerator, gpu.accelerator) == ("cpu", "gpu")
    assert cpu.median_ms > 0 and gpu.median_ms > 0 and gpu.kernels == gpu_adapter.adapter
    assert main(["bench", path, "--accelerator", "both", "--runs", "3", "--warmup", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps lines
    assert "ratio GPU / CPU (tiny.tflite)" in out
    assert ("not phone times" in out) == bool(gpu_adapter.software)


def test_bench_on_a_file_the_gpu_refuses_is_one_line(gpu_adapter, convert_function, tmp_path, capsys):
    path = tmp_path / "rank5.tflite"
    path.write_bytes(convert_function(lambda x: tf.reshape(tf.reshape(x, [1, 4, 4, 2, 4]) * 2.0, [1, 4, 4, 8]), SPEC))
    assert main(["bench", str(path), "--accelerator", "gpu", "--runs", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-se: error: cannot time") and "refused" in err and "\n" not in err
