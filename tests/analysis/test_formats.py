"""Tests for keras_se.analysis.formats: JSON, Markdown, CSV and rich tables."""

import csv
import io
import json

import pytest
from rich.console import Console

from keras_se.analysis import complexity_report, formats


@pytest.fixture(scope="module")
def report():
    return complexity_report("se_resnet18", (32, 32, 3))


def test_json_round_trip(report):
    data = json.loads(formats.render(report, "json"))
    assert data["model"] == "se_resnet18" and data["params"] == report.params == 11_778_592
    assert data["attention"]["formula"] == 87_040 and data["attention"]["twin_params_delta"] == 89_080
    assert [s["name"] for s in data["stages"]] == ["stem", "stage2", "stage3", "stage4", "stage5", "head"]
    assert len(data["rows"]) == len(report.rows) and data["conventions"]
    assert "rows" not in json.loads(formats.render(report, "json", layers=False))


def test_csv_has_one_line_per_layer(report):
    rows = list(csv.DictReader(io.StringIO(formats.render(report, "csv"))))
    assert len(rows) == len(report.rows)
    assert tuple(rows[0]) == formats.LAYER_COLUMNS
    conv = next(r for r in rows if r["name"] == "stage2_block1_conv1")
    assert (conv["stage"], conv["block"], conv["output_shape"]) == ("stage2", "1", "Nx8x8x64")
    assert int(conv["macs"]) == 8 * 8 * 64 * 9 * 64
    assert sum(int(r["params"]) for r in rows) == report.params


def test_markdown_sections(report):
    text = formats.render(report, "markdown")
    for heading in ("# Complexity of se_resnet18", "## Stages", "## Attention overhead", "## Layers", "## Conventions"):
        assert heading in text
    assert "| formula 2/r * sum N_s*C_s^2 (r=16) | 87,040 |" in text
    assert "| stage5 | 1x1 | 2 | 512 |" in text


def test_rich_table(report):
    console = Console(file=io.StringIO(), width=100)
    formats.print_report(report, console)
    text = console.file.getvalue()
    assert "Per stage" in text and "SE overhead, three ways" in text and "89,080" in text
    assert "stage2_block1_conv1" not in text  # layers only with layers=True
    console = Console(file=io.StringIO(), width=200)
    formats.print_report(report, console, layers=True)
    assert "stage2_block1_conv1" in console.file.getvalue()


def test_unknown_format(report):
    with pytest.raises(ValueError, match="format=.*yaml"):
        formats.render(report, "yaml")
