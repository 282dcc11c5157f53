"""Tests for keras_se.analysis.paper: our MACs at 224x224 beside the papers'.

The papers print MACs to 2 decimals of G (Table 2) or whole M (Table 3); a
count agrees when it rounds to the printed digits. Convs and FCs give
ResNet-50 3.86 G, MobileNet 569 M, SKNet-50 4.46 G; the papers' attention
models also count attention's weighting of the feature map (SE scale
H*W*C, SK selection M*H*W*C) as multiply-adds, which gives SE-ResNet-50
3.87 G, SE-MobileNet 572 M and SKNet-50 4.47 G. The rest of Table 2 differs
by its baselines, and the SE deltas agree.
"""

import functools
from types import SimpleNamespace

import pytest

from keras_se.analysis import complexity_report
from keras_se.analysis.paper import PAPER_MODELS, REFERENCES, compare, paper_comparison, reference
from keras_se.models.registry import get_entry, list_models


@functools.cache
def _report(name):
    return complexity_report(name, (224, 224, 3), twin=False)


def _row(name):
    twin = get_entry(name).twin
    return compare(name, _report(name), _report(twin) if reference(twin or "") else None)


@pytest.mark.parametrize(
    "name, convs_fcs, with_weighting",
    [
        ("resnet50", "3.86", "3.86"),
        ("se_resnet50", "3.86", "3.87"),
        ("mobilenet", "569", "569"),
        ("se_mobilenet", "569", "572"),
        ("sknet50", "4.46", "4.47"),
    ],
)
def test_macs_agree_with_the_paper(name, convs_fcs, with_weighting):
    report = _report(name)
    digits = 0 if name.endswith("mobilenet") else 2
    scale = 1e6 if digits == 0 else 1e9
    assert f"{report.macs / scale:.{digits}f}" == convs_fcs
    assert f"{report.macs_with_weighting / scale:.{digits}f}" == with_weighting
    row = _row(name)
    assert row.macs_agree is True and row.params_agree is True


def test_exact_counts_at_224():
    # Hand-checkable pieces: ResNet-50's FC is 2048*1000 and SE adds exactly
    # the formula's 2,514,944 MACs plus sum H*W*C of the scale multiplies.
    resnet, se = _report("resnet50"), _report("se_resnet50")
    assert resnet.macs == 3_857_973_248
    assert se.macs - resnet.macs == 2_514_944
    assert se.weighting_macs == 3 * 56 * 56 * 256 + 4 * 28 * 28 * 512 + 6 * 14 * 14 * 1024 + 3 * 7 * 7 * 2048
    assert _report("mobilenet").macs == 568_740_352


def test_se_resnext50_differs_by_its_baseline_and_says_why():
    row = _row("se_resnext50_32x4d")
    assert row.macs_agree is False and f"{row.macs_with_weighting / 1e9:.4f}" == "4.2385"
    assert "ResNeXt-50 (32x4d) baseline" in row.note and "delta agrees" in row.note
    plain = _row("resnext50_32x4d")
    assert plain.macs_agree is False and "does not say how it counted" in plain.note


@pytest.mark.large
def test_every_reference_model():
    rows = {row.name: row for row in paper_comparison()}
    assert list(rows) == list(PAPER_MODELS)
    agree = {name for name, row in rows.items() if row.macs_agree}
    assert agree == {"resnet50", "se_resnet50", "senet154", "mobilenet", "se_mobilenet", "sknet50"}
    for name in ("se_resnet101", "se_resnet152", "se_resnext50_32x4d", "se_resnext101_32x4d", "se_shufflenet_g3"):
        assert "delta agrees" in rows[name].note, name  # only the baseline differs
    assert f"{rows['se_resnet101'].macs_with_weighting / 1e9:.3f}" == "7.584"
    assert f"{rows['se_resnet152'].macs_with_weighting / 1e9:.3f}" == "11.302"
    assert f"{rows['senet154'].macs / 1e9:.2f}" == "20.69"
    assert rows["sknet101"].params_agree is False and "48,686,760" in rows["sknet101"].note
    assert all(row.params_agree for name, row in rows.items() if name != "sknet101")


def test_references_are_registered():
    assert set(PAPER_MODELS) <= set(list_models())
    assert len({ref.name for ref in REFERENCES}) == len(REFERENCES)


def _fake(model, macs, weighting=0, params=0):
    return SimpleNamespace(model=model, macs=macs, macs_with_weighting=macs + weighting, params=params)


def test_compare_rules_without_models():
    # Truncated parameter counts in millions agree either way of rounding.
    row = compare("shufflenet_g3", _fake("shufflenet_g3", 137_461_000, params=1_865_728))
    assert row.params_agree is True and row.macs_agree is False
    # An SE model whose delta disagrees with the paper's says so.
    row = compare("se_mobilenet", _fake("se_mobilenet", 580_000_000), _fake("mobilenet", 568_740_352))
    assert row.macs_agree is False and "attention delta differs" in row.note
    # Exact counts (official prototxt) compare without the weighting.
    row = compare("senet154", _fake("senet154", 20_688_400_000, weighting=13_000_000, params=115_088_984))
    assert row.compared_macs == 20_688_400_000 and row.macs_agree is True
    with pytest.raises(ValueError, match="no paper reference"):
        compare("resnet18", _fake("resnet18", 1))
