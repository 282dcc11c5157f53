"""Tests for keras_se.analysis.cli: `keras-se report`."""

import contextlib
import io
import json

import keras
import pytest
import tensorflow as tf

from keras_se.analysis import paper
from keras_se.cli import main


def _run(capsys, *argv):
    code = main(["report", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("keras-se: error: ")
    return lines[0]


def test_json_report(capsys):
    code, out, _ = _run(capsys, "se_resnet18", "--input-size", "32", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["params"] == 11_778_592 and data["twin"] == "resnet18"
    assert data["attention"]["twin_params_delta"] == 89_080 == data["attention"]["expected_params"]


def test_table_report_with_plot(capsys, tmp_path):
    png = tmp_path / "se.png"
    code, out, err = _run(capsys, "se_resnet18", "--input-size", "32", "--plot", str(png), "--reduction", "8", "--no-se-bias")
    assert code == 0, err
    assert "Per stage" in out and "SE overhead, three ways" in out and "(r=8)" in out
    assert "174,080" in out  # 2/8 * (2*64^2 + 2*128^2 + 2*256^2 + 2*512^2), no bias
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_output_file_needs_force_to_overwrite(capsys, tmp_path):
    out_file = tmp_path / "report.md"
    code, out, _ = _run(capsys, "mobilenet", "--input-size", "32", "--format", "markdown", "--output", str(out_file))
    assert code == 0 and out == "" and out_file.read_text().startswith("# Complexity of mobilenet")
    code, _, err = _run(capsys, "mobilenet", "--format", "csv", "--output", str(out_file))
    assert code == 2 and "exists; pass --force" in _error_line(err)
    code, _, _ = _run(capsys, "mobilenet", "--input-size", "32", "--format", "csv", "--output", str(out_file), "--force")
    assert code == 0 and out_file.read_text().startswith("name,type,stage")


def test_tflite_file(capsys, tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="conv")])
    with contextlib.redirect_stdout(io.StringIO()):
        (tmp_path / "tiny.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    code, out, _ = _run(capsys, str(tmp_path / "tiny.tflite"), "--format", "json")
    assert code == 0 and json.loads(out)["macs"] == 6 * 6 * 4 * 27


@pytest.mark.parametrize(
    "argv, message",
    [
        (["se_resnet5O"], "Unknown model name"),
        ([], "give a MODEL"),
        (["resnet18", "--paper"], "not both"),
        (["resnet18", "--output", "x.json"], "--output needs --format"),
        (["resnet18", "--plot", "x.jpg"], "--plot writes a PNG"),
        (["resnet18", "--input-size", "0"], "--input-size must be a positive int"),
        (["--paper", "--input-size", "160"], "--paper compares at the papers' 224x224"),
        (["missing.keras"], "model file not found"),
    ],
)
def test_user_errors_are_one_line(capsys, argv, message):
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert message in _error_line(err)


def test_non_model_file(capsys, tmp_path):
    bad = tmp_path / "notes.keras"
    bad.write_text("not a model")
    code, _, err = _run(capsys, str(bad))
    assert code == 2 and "is not a Keras" in _error_line(err)


def test_paper_table(capsys, monkeypatch):
    monkeypatch.setattr(paper, "PAPER_MODELS", ("mobilenet", "se_mobilenet"))
    code, out, _ = _run(capsys, "--paper")
    assert code == 0
    assert "SE-MobileNet" in out and "572 M" in out and "571.9 M" in out
    code, out, _ = _run(capsys, "--paper", "--format", "json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["mobilenet", "se_mobilenet"] and all(r["macs_agree"] for r in rows)
