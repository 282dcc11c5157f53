"""tools/build_zoo.py: the converted model zoo, run as a user runs it, on one small model."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.large
def test_build_zoo_writes_every_file_its_manifest_and_table(tmp_path, gpu_adapter, qnn_htp):
    out = tmp_path / "zoo"
    argv = [sys.executable, os.path.join(ROOT, "tools", "build_zoo.py"), "--out", str(out), "--models", "se_shufflenet_g3"]
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([*argv, "--input-size", "64", "--runs", "2"], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "models.json").read_text())
    modes = [row["mode"] for row in manifest["models"]]
    assert modes == ["float32", "float16_gpu", "int8"] and manifest["input_size"] == 64
    for row in manifest["models"]:
        assert (out / row["path"]).stat().st_size == row["size_bytes"] > 0
        assert row["latency_ms"] > 0 and row["parity"]["max_abs_error"] < 0.1
        # Both GPU verdicts for every file; the accelerator ran each one.
        assert row["gpu_rules"] and row["gpu_accelerator"]["status"] == "ran", row["gpu_accelerator"]
    # BN statistics from data: the float16 GPU preset within its bound, and
    # the float32 file's grouped convolutions shown wrong on the accelerator
    # (the preset re-spells them: tests/export/test_gpu_run.py).
    preset = manifest["models"][1]["gpu_accelerator"]
    assert preset["kernel_relative_l2"] < 1e-3 and preset["parity"]["relative_l2"] < 0.05, preset
    # The NPU preset: every node on the HTP, its logits against Keras and the CPU EP, a context binary.
    (npu,) = manifest["npu"]
    assert npu["verdict"] == "pass" and npu["npu"]["fallback"] == [], npu
    assert npu["parity"]["logits_relative_l2"] < 0.5 and npu["npu"]["cpu_relative_l2"] < 1.0
    assert (out / npu["path"]).stat().st_size == npu["size_bytes"]
    context = npu["npu"]["contexts"]["sm8650"]
    assert context["path"] == "se_shufflenet_g3_w8a8_npu_sm8650_ctx.onnx" and (out / context["path"]).stat().st_size == context["bytes"]
    table = (out / "README.md").read_text()
    assert all(f"| {row['path']} |" in table for row in [*manifest["models"], npu]) and manifest["machine"] in table
    assert "se_shufflenet_g3_w8a8_npu.onnx: pass" in done.stderr
    # The float32 file's grouped convolutions are wrong on the accelerator and
    # the table says so; the int8 file's difference is its rounding, not a verdict.
    lines = {line.split(" | ")[0][2:]: line for line in table.splitlines() if line.startswith("| se_")}
    assert manifest["models"][0]["gpu_accelerator"]["kernel_relative_l2"] > 1e-3
    assert "kernels wrong" in lines["se_shufflenet_g3_float32.tflite"] and "kernels wrong" not in lines["se_shufflenet_g3_int8.tflite"]
    # Existing outputs are kept without --force; an unknown model is one line.
    again = subprocess.run([*argv, "--input-size", "64"], capture_output=True, text=True, env=env, timeout=900)
    assert again.returncode == 2 and "exists" in again.stderr, again.stderr[-3000:]
    bad = subprocess.run([*argv[:-1], "se_resnet18"], capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "build_zoo: error: --models 'se_resnet18' is not in the set ['se_mobilenet', 'se_resnet50', 'se_shufflenet_g3']"
    ]
