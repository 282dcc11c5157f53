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

# MACs by hand, from the architectures as published (independent of
# keras_se's counting): multiply-adds of convolutions (H' W' k^2 Cin Cout /
# groups) and fully connected layers, 224x224 input, 1000 classes.


def resnet_macs(blocks, groups=1, width_per_group=64, stride_in_3x3=False, se_reduction=None):
    """ResNet (He et al. 2016, Table 1: a 7x7 stem, bottlenecks of widths
    64-512 expanding 4x, a projection in each stage's first block) with the
    stride of a stage's first block on its first 1x1 convolution, as in the
    original Caffe models and SENet's prototxts; ResNeXt (Xie et al. 2017)
    has grouped 3x3s of `groups x width_per_group` and the stride on the 3x3.
    Returns (convs and FC, SE's two FCs per block: 2 C^2 / r, SE's scale:
    H W C per block)."""
    size = 56
    macs, se_fcs, scale = 112 * 112 * 7 * 7 * 3 * 64, 0, 0
    inputs = 64
    for stage, repeats in enumerate(blocks):
        middle, outputs = groups * width_per_group * 2**stage, 256 * 2**stage
        for block in range(repeats):
            out_size = size // 2 if block == 0 and stage > 0 else size
            first = size if stride_in_3x3 else out_size
            macs += first**2 * inputs * middle + out_size**2 * 9 * middle * middle // groups + out_size**2 * middle * outputs
            macs += out_size**2 * inputs * outputs if block == 0 else 0
            if se_reduction:
                se_fcs += 2 * outputs * (outputs // se_reduction)
                scale += out_size**2 * outputs
            inputs, size = outputs, out_size
    return macs + inputs * 1000, se_fcs, scale


def mobilenet_macs():
    """MobileNet (Howard et al. 2017, Table 1): a 3x3 stem of 32, 13
    depthwise-separable layers, 1000-way FC."""
    layers = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    size, channels, macs = 112, 32, 112 * 112 * 9 * 3 * 32
    for outputs, stride in layers:
        size //= stride
        macs += size * size * 9 * channels + size * size * channels * outputs
        channels = outputs
    return macs + channels * 1000


def vgg16_macs(se_reduction=None):
    """VGG-16 (Simonyan and Zisserman 2015, configuration D): 13 3x3
    convolutions, three FCs. With SE after each convolution (Table 2's
    SE-VGG-16): (convs and FCs, SE's FCs, SE's scale)."""
    macs, se_fcs, scale, size, channels = 0, 0, 0, 224, 3
    for outputs, count in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(count):
            macs += size * size * 9 * channels * outputs
            if se_reduction:
                se_fcs += 2 * outputs * (outputs // se_reduction)
                scale += size * size * outputs
            channels = outputs
        size //= 2
    return macs + 512 * 7 * 7 * 4096 + 4096 * 4096 + 4096 * 1000, se_fcs, scale


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
    macs, se_fcs, scale = resnet_macs([3, 4, 6, 3], se_reduction=16)
    assert resnet.macs == macs == 3_857_973_248
    assert se.macs - resnet.macs == se_fcs == 2_514_944
    assert se.weighting_macs == scale == 3 * 56 * 56 * 256 + 4 * 28 * 28 * 512 + 6 * 14 * 14 * 1024 + 3 * 7 * 7 * 2048
    assert _report("mobilenet").macs == mobilenet_macs() == 568_740_352


def test_se_resnext50_differs_by_its_baseline_and_says_why():
    row = _row("se_resnext50_32x4d")
    assert row.macs_agree is False and row.macs_with_weighting == sum(resnet_macs([3, 4, 6, 3], 32, 4, True, 16))  # 4.2385 G
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
    assert rows["se_resnet101"].macs_with_weighting == sum(resnet_macs([3, 4, 23, 3], se_reduction=16))  # 7.584 G
    assert rows["se_resnet152"].macs_with_weighting == sum(resnet_macs([3, 8, 36, 3], se_reduction=16))  # 11.302 G
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
    # Exact counts: VGG-16's by hand; the BN-Inception ones are our models'
    # (test_table2_rows_from_the_models builds them).
    vgg_macs, se_fcs, scale = vgg16_macs(se_reduction=16)
    vgg = compare("vgg16_bn", _fake("vgg16_bn", vgg_macs, params=138_365_992))
    assert vgg.macs_agree and vgg.params_agree
    se_vgg = compare("se_vgg16", _fake("se_vgg16", vgg_macs + se_fcs, weighting=scale), _fake("vgg16_bn", vgg_macs))
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
    vgg_macs, se_fcs, scale = vgg16_macs(se_reduction=16)
    assert (rows["vgg16_bn"].macs, rows["se_vgg16"].macs, rows["se_vgg16"].weighting_macs) == (vgg_macs, vgg_macs + se_fcs, scale)
