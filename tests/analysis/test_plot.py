"""Tests for keras_se.analysis.plot."""

import os

import pytest

from keras_se.analysis import complexity_report
from keras_se.analysis.plot import plot_report


@pytest.fixture(scope="module")
def report():
    return complexity_report("se_mobilenet", (64, 64, 3))


def test_plot_writes_a_png(tmp_path, report):
    path = tmp_path / "stages.png"
    assert plot_report(report, str(path)) == str(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert os.listdir(tmp_path) == ["stages.png"]


def test_plot_refuses_to_overwrite(tmp_path, report):
    path = tmp_path / "stages.png"
    path.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="exists"):
        plot_report(report, str(path))
    assert path.read_bytes() == b"keep"
    plot_report(report, str(path), force=True)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_plot_without_twin_or_attention(tmp_path):
    report = complexity_report("mobilenet", (64, 64, 3))
    assert report.twin is None and report.attention is None
    plot_report(report, str(tmp_path / "plain.png"))
    assert (tmp_path / "plain.png").stat().st_size > 10_000
