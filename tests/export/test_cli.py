import json
import os

import numpy as np
import pytest

from keras_se.cli import main


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory, tiny_se_model):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    tiny_se_model.save(path)
    return str(path)


def test_convert_keras_file_fp32_and_int8(keras_file, tmp_path, capsys, not_run):
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).uniform(0, 1, (8, 16, 16, 3)).astype("float32"))
    out = tmp_path / "out"
    argv = [
        "convert",
        keras_file,
        "--quantize",
        "none",
        "int8",
        "--gpu",
        "--calib-npy",
        str(tmp_path / "calib.npy"),
        "--out",
        str(out),
        "--format",
        "json",
    ]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(os.listdir(out)) == ["tiny_float32_gpu.tflite", "tiny_int8_gpu.tflite"]
    assert [r["quantize"] for r in report] == ["float32", "int8"]
    assert report[0]["parity"]["max_abs_error"] < 5e-5
    # Both GPU verdicts for each file: the classic rules and LiteRT's accelerator.
    for r in report:
        assert r["gpu_rules"] == "pass"
        assert r["gpu_accelerator"]["passed"] == (r["gpu_accelerator"]["status"] == "ran")
    # Existing outputs are kept without --force: one line, exit 2.
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    # Last, so that the rest is checked where no GPU adapter exists: a GPU run
    # that did not happen is "not run" (a failure under CI=true), never a pass.
    for r in report:
        if r["gpu_accelerator"]["status"] == "not run":
            not_run(f"LiteRT GPU accelerator: {r['gpu_accelerator']['reason']}")
        assert r["gpu_accelerator"]["passed"], r["gpu_accelerator"]


def test_convert_reports_a_float32_kernel_run_that_did_not_happen(keras_file, tmp_path, capsys, float32_gpu_run_fails):
    float32_gpu_run_fails("crashed", "the accelerator's process died (SIGSEGV (signal 11))")
    # A float file: the conversion fails, one line, nothing written.
    out = tmp_path / "f16"
    assert main(["convert", keras_file, "--quantize", "float16", "--gpu", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "float32 kernel run did not happen (crashed: the accelerator's process died" in err
    assert not out.exists() or os.listdir(out) == []
    # An int8 file (no kernel bound for it): converted, and the table says the kernels were not checked.
    out = tmp_path / "int8"
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).uniform(0, 1, (8, 16, 16, 3)).astype("float32"))
    argv = ["convert", keras_file, "--quantize", "int8", "--gpu", "--calib-npy", str(tmp_path / "calib.npy"), "--out", str(out)]
    assert main(argv) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "GPU kernels not checked for tiny_int8_gpu.tflite: not run: crashed: the accelerator's process died" in printed
    assert main([*argv, "--format", "json", "--force"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["gpu_accelerator"]["kernel_relative_l2"] is None
    assert record["gpu_accelerator"]["kernel_check"].startswith("not run: crashed")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["convert", "se_resnet5", "--out", "{out}"], "Unknown model name"),
        (["convert", "{bogus}", "--out", "{out}"], "cannot load a Keras model"),
        (["convert", "se_resnet18", "--input-size", "0", "--out", "{out}"], "--input-size"),
        (["convert", "se_resnet18", "--input-size", "32", "--quantize", "int8", "--calib-dir", "{empty}", "--out", "{out}"], "no images"),
    ],
)
def test_user_mistakes_are_one_line_and_leave_nothing(argv, message, tmp_path, capsys):
    (tmp_path / "bogus.keras").write_text("not a model")
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    argv = [a.format(out=out, bogus=tmp_path / "bogus.keras", empty=tmp_path / "empty") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-se: error:") and message in err and "\n" not in err
    assert not out.exists() or os.listdir(out) == []


def test_convert_timm_alias_names_files_after_the_timm_model(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["convert", "timm:seresnet18", "--input-size", "32", "--out", str(out), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert os.listdir(out) == ["seresnet18_float32.tflite"]
    assert report[0]["parity"]["max_abs_error"] < 5e-5


def _result(quantize, relative_l2):
    parity = dict(max_abs_error=1e-3, mean_abs_error=1e-4, top1_agreement=None, decisive=0, relative_l2=relative_l2, top5_agreement=0.95)
    run = dict(
        passed=True, status="ran", parity=parity, kernel_relative_l2=2e-7, adapter="llvmpipe", software=True, reason="", kernel_check=""
    )
    return dict(
        path=f"out/se_shufflenet_g3_{quantize or 'float32'}_gpu.tflite",
        quantize=quantize,
        gpu=True,
        size_bytes=2**20,
        ops={"CONV_2D": 3},
        parity=parity,
        gpu_findings=[],
        gpu_rules="pass",
        gpu_accelerator=run,
        seconds=8.0,
    )


def test_both_tables_tell_rows_apart_at_80_columns(monkeypatch, capsys):
    from keras_se.export.cli import _print

    monkeypatch.setenv("COLUMNS", "80")
    _print([_result(None, 5.5e-4), _result("float16", 5.6e-4), _result("int8", 1.0)], "table")
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    rows = [line for line in out.splitlines() if line.startswith("│")]
    # Each table's rows are labelled by what differs (mode and preset), whole.
    for label in ("float32 gpu", "float16 gpu", "int8 gpu"):
        assert sum(line.startswith(f"│ {label} ") for line in rows) == 2, out
    # The int8 row does not show a float16 error against Keras as if it were a verdict; the note says what is compared.
    int8_gpu = [line for line in rows if line.startswith("│ int8 gpu") and "pass" in line][0]
    assert "1.0e+00" not in int8_gpu and "int8 / dynamic rows: kernels compares" in out.replace("\n", " ")
    assert "se_shufflenet_g3_int8_gpu.tflite" in out.replace("\n", "")
