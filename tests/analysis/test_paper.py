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
    assert agree == {"resnet50", "se_resnet50", "senet154", "mobilenet", "se_mobilenet", "sknet50", "vgg16_bn", "se_vgg16", "bn_inception"}
    for name in ("se_resnet101", "se_resnet152", "se_resnext50_32x4d", "se_resnext101_32x4d", "se_shufflenet_g3"):
        assert "delta agrees" in rows[name].note, name  # only the baseline differs
    assert f"{rows['se_resnet101'].macs_with_weighting / 1e9:.3f}" == "7.584"
    assert f"{rows['se_resnet152'].macs_with_weighting / 1e9:.3f}" == "11.302"
    assert f"{rows['senet154'].macs / 1e9:.2f}" == "20.69"
    assert rows["sknet101"].params_agree is False and "48,686,760" in rows["sknet101"].note
    # SE-VGG-16 and SE-Inception-ResNet-v2 have no published parameter count.
    assert all(row.params_agree for name, row in rows.items() if name not in ("sknet101", "se_vgg16", "se_inception_resnet_v2"))


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


def test_table2_non_residual_and_inception_resnet_rows():
    # Exact counts of our models (test_table2_rows_from_the_models builds them).
    vgg = compare("vgg16_bn", _fake("vgg16_bn", 15_470_264_320, params=138_365_992))
    assert vgg.macs_agree and vgg.params_agree
    se_vgg = compare("se_vgg16", _fake("se_vgg16", 15_470_490_624, weighting=13_547_520), _fake("vgg16_bn", 15_470_264_320))
    assert se_vgg.macs_agree and se_vgg.note == "agrees counting the attention weighting as MACs (15.47 G without)"
    se_bni = compare(
        "se_bn_inception",
        _fake("se_bn_inception", 2_033_239_424, weighting=1_180_704, params=11_931_622),
        _fake("bn_inception", 2_032_600_064),
    )
    assert (
        se_bni.macs_agree is False and "2.0344 G, rounds to 2.03" in se_bni.note and "delta agrees" in se_bni.note and se_bni.params_agree
    )
    irv2 = compare("inception_resnet_v2", _fake("inception_resnet_v2", 13_155_794_016, params=55_843_464))
    assert irv2.macs_agree is False and "299x299" in irv2.note and "matches neither size" in irv2.note
    assert reference("se_inception_resnet_v2").input_size == 299


@pytest.mark.large
def test_table2_rows_from_the_models():
    from keras_se.analysis.complexity import complexity_report

    rows = {}
    for name in ("vgg16_bn", "se_vgg16", "bn_inception", "se_bn_inception", "inception_resnet_v2", "se_inception_resnet_v2"):
        size = reference(name).input_size or 224
        rows[name] = complexity_report(name, (size, size, 3), twin=False)
    assert f"{rows['vgg16_bn'].macs / 1e9:.2f}" == "15.47" and f"{rows['se_vgg16'].macs_with_weighting / 1e9:.2f}" == "15.48"
    assert f"{rows['bn_inception'].macs / 1e9:.3f}" == "2.033" and f"{rows['se_bn_inception'].macs_with_weighting / 1e9:.4f}" == "2.0344"
    assert f"{rows['inception_resnet_v2'].macs / 1e9:.2f}" == "13.16"
    assert (rows["vgg16_bn"].macs, rows["se_vgg16"].weighting_macs) == (15_470_264_320, 13_547_520)
