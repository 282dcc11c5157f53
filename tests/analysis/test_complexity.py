"""Tests for keras_se.analysis.complexity.

Golden counts are worked out by hand in the comments; MACs at 224x224 of the
registered models are in test_paper.py.
"""

import functools
import os
import warnings
import zipfile

import keras
import pytest

import keras_se
from keras_se.analysis import ComplexityWarning, complexity_report, count_params
from keras_se.analysis.complexity import CONVENTIONS, LayerRow, assign_stages
from keras_se.layers import GroupConv2D, SelectiveKernel, SqueezeExcite

SMALL = (32, 32, 3)
REDUCTIONS = (4, 8, 16, 32)
SE_MODELS = [n for n in keras_se.list_models("se_*")] + ["senet154"]
FAST_SE_MODELS = ("se_resnet18", "se_mobilenet", "se_shufflenet_g3")


def _single(layer, input_shape):
    """The report of one layer applied to `input_shape`."""
    return complexity_report(layer, input_shape)


def _row(report, suffix):
    return next(row for row in report.rows if row.name.endswith(suffix))


@functools.cache
def _plain(name, input_shape=SMALL):
    return complexity_report(name, input_shape, twin=False)


# -- golden counts of single layers ---------------------------------------------


def test_conv_golden():
    report = _single(keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv"), (10, 10, 4))
    row = report.row("conv")
    # 10*10 outputs x 8 filters x (3*3*4) taps.
    assert (row.macs, row.params, row.elementwise) == (10 * 10 * 8 * 36, 288, 0)
    assert report.macs == 28_800


def test_strided_valid_conv_with_bias_golden():
    report = _single(keras.layers.Conv2D(8, 3, strides=2, name="conv"), (11, 11, 4))
    row = report.row("conv")
    # (11 - 3) / 2 + 1 = 5: 5*5*8 outputs x 36 taps; the bias adds are element-wise.
    assert (row.macs, row.params, row.elementwise) == (7_200, 296, 200)


def test_grouped_conv_golden():
    report = _single(GroupConv2D(8, 3, groups=2, padding="same", use_bias=False, name="gconv"), (6, 6, 4))
    row = report.row("gconv")
    # Each output sees 3*3 taps of 4/2 = 2 channels: 6*6*8 * 18.
    assert (row.macs, row.params) == (5_184, 144)
    assert "groups=2" in row.note


def test_keras_grouped_conv_counts_like_group_conv2d():
    report = _single(keras.layers.Conv2D(8, 3, groups=2, padding="same", use_bias=False, name="conv"), (6, 6, 4))
    assert report.row("conv").macs == 5_184


@pytest.mark.parametrize("padding, size, macs", [("same", 9, 9 * 9 * 4 * 18), ("valid", 5, 5 * 5 * 4 * 18)])
def test_dilated_conv_golden(padding, size, macs):
    # Dilation 2 spreads the 3x3 taps over a 5x5 window: the output of a valid
    # conv shrinks by 4, but each output still costs 3*3*2 multiply-adds.
    report = _single(keras.layers.Conv2D(4, 3, dilation_rate=2, padding=padding, use_bias=False, name="conv"), (9, 9, 2))
    row = report.row("conv")
    assert row.output_shape == (None, size, size, 4)
    assert row.macs == macs
    assert "dilation=2" in row.note


def test_depthwise_and_dense_golden():
    inputs = keras.Input((5, 5, 6))
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(10, name="fc")(x)
    report = complexity_report(keras.Model(inputs, x))
    assert report.row("dw").macs == 5 * 5 * 6 * 9
    assert (report.row("fc").macs, report.row("fc").elementwise, report.row("fc").params) == (60, 10, 70)
    assert report.row("gap").elementwise == 150  # one add per input element


def test_elementwise_conventions():
    inputs = keras.Input((4, 4, 3))
    a = keras.layers.BatchNormalization(name="bn")(inputs)
    b = keras.layers.ReLU(name="relu")(a)
    c = keras.layers.Add(name="add")([a, b, inputs])
    d = keras.layers.MaxPooling2D(2, name="pool")(c)
    e = keras.layers.ZeroPadding2D(1, name="pad")(d)
    report = complexity_report(keras.Model(inputs, e))
    assert report.macs == 0
    assert report.row("bn").elementwise == 48 and report.row("bn").params == 6  # gamma, beta; no statistics
    assert report.row("relu").elementwise == 48
    assert report.row("add").elementwise == 2 * 48  # three inputs: two adds per element
    assert report.row("pool").elementwise == 2 * 2 * 3 * 4  # 2x2 window per output
    assert report.row("pad").elementwise == 0
    assert report.elementwise == 48 + 48 + 96 + 48


def test_se_block_golden():
    report = _single(SqueezeExcite(reduction=4, name="se"), (4, 4, 16))
    # C=16, C/r=4: reduce 16*4 + 4 bias, expand 4*16 + 16 bias.
    assert report.params == 148
    assert report.row("se/reduce").macs == 64 and report.row("se/expand").macs == 64
    assert report.macs == 128
    assert report.row("se/scale").elementwise == 4 * 4 * 16
    assert report.weighting_macs == 4 * 4 * 16
    assert report.macs_with_weighting == 128 + 256
    # squeeze 256 + reduce bias 4 + act 4 + expand bias 16 + gate 16 + scale 256
    assert report.elementwise == 552
    se = report.attention
    assert (se.kind, se.units, se.reduction, se.bias) == ("se", 1, 4, True)
    assert (se.formula, se.bias_term, se.expected_params) == (128, 20, 148)
    assert (se.layer_params, se.layer_macs) == (148, 128)
    assert all(row.attention == "se" for row in report.rows if row.name.startswith("se/"))


def test_functional_se_block_matches_the_layer():
    inputs = keras.Input((4, 4, 16))
    x = keras_se.layers.squeeze_excite(inputs, "block_se", reduction=4)
    functional = complexity_report(keras.Model(inputs, x))
    layer = _single(SqueezeExcite(reduction=4), (4, 4, 16))
    assert (functional.params, functional.macs, functional.elementwise) == (layer.params, layer.macs, layer.elementwise)
    assert functional.attention.formula == 128 and functional.attention.units == 1
    assert functional.row("block_se_scale").attention == "se"


def test_sk_block_golden():
    layer = SelectiveKernel(8, groups=2, reduction=4, min_channels=4, name="sk")
    report = _single(layer, (6, 6, 8))
    # Two 3x3 paths (dilation 1 and 2), groups 2: 6*6*8 * 9*4 = 10,368 each;
    # d = max(8/4, 4) = 4: fc1 8*4 = 32, fc2 4*16 = 64.
    assert report.row("sk/path0_conv").macs == 10_368
    assert report.row("sk/path1_conv").macs == 10_368
    assert report.macs == 2 * 10_368 + 32 + 64
    # convs 2*288, path BNs 2*16, fc1 32, fc1_bn 8, fc2 64
    assert report.params == 712 == count_params(layer)
    # Path 0's BN folds (16 - 8 new bias); path 1 is dilated and keeps its BN;
    # fc1_bn folds (8 - 4).
    assert report.params_folded == 712 - 8 - 4
    assert report.weighting_macs == 2 * 6 * 6 * 8  # M * H * W * C
    assert report.row("sk/select").elementwise == 3 * 288 + 16  # M products, M-1 sums, softmax
    assert report.attention.kind == "sk" and report.attention.units == 1
    assert report.attention.formula is None


def test_bn_folding():
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(5, 1, use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    y = keras.layers.Conv2D(5, 1, name="conv_bias")(inputs)
    y = keras.layers.BatchNormalization(name="bn_bias")(y)
    z = keras.layers.Add(name="add")([x, y])
    z = keras.layers.BatchNormalization(name="bn_free")(z)
    report = complexity_report(keras.Model(inputs, z))
    assert report.row("bn").folded_params == 10 - 5  # gamma, beta gone; a bias appears
    assert report.row("bn_bias").folded_params == 10  # the conv had a bias already
    assert report.row("bn_free").folded_params == 0  # nothing to fold into
    assert report.params_folded == report.params - 15
    assert "folds into the preceding conv" in report.row("bn").note


# -- models --------------------------------------------------------------------


def test_rows_hold_every_parameter_and_stages_add_up():
    report = _plain("se_resnet50")
    assert report.params == 28_088_024  # count_params of the model (tests/models)
    assert report.warnings == []
    assert sum(s.params for s in report.stages) == report.params
    assert sum(s.macs for s in report.stages) == report.macs
    assert sum(s.elementwise for s in report.stages) == report.elementwise


@pytest.mark.parametrize(
    "name, stages",
    [
        ("se_resnet50", [("stem", 0, 64), ("stage2", 3, 256), ("stage3", 4, 512), ("stage4", 6, 1024), ("stage5", 3, 2048)]),
        (
            "se_mobilenet",
            [("stem", 0, 32), ("stage1", 1, 64), ("stage2", 2, 128), ("stage3", 2, 256), ("stage4", 6, 512), ("stage5", 2, 1024)],
        ),
        ("se_shufflenet_g3", [("stem", 0, 24), ("stage2", 4, 240), ("stage3", 8, 480), ("stage4", 4, 960)]),
    ],
)
def test_stages_are_read_from_the_model(name, stages):
    report = _plain(name)
    got = [(s.name, s.blocks, s.channels) for s in report.stages if s.name != "head"]
    assert got == stages
    assert report.stages[-1].name == "head"
    sizes = [s.resolution for s in report.stages[1:-1]]
    assert len(set(sizes)) == len(sizes)  # one spatial size per stage


def test_se_stages_n_and_c_come_from_the_model():
    se = _plain("se_resnet50").attention
    assert [(s.stage, s.units, s.channels, s.reduced) for s in se.stages] == [
        ("stage2", 3, 256, 16),
        ("stage3", 4, 512, 32),
        ("stage4", 6, 1024, 64),
        ("stage5", 3, 2048, 128),
    ]


def test_registry_report_measures_against_the_twin():
    report = complexity_report("se_resnet50", SMALL)
    se = report.attention
    assert report.twin == "resnet50"
    assert se.twin_params_delta == 2_514_944 + 16_048 == se.expected_params
    assert se.twin_macs_delta == 2_514_944  # 1x1 maps: one MAC per FC weight
    assert se.layer_params == se.twin_params_delta
    assert se.formula == 2_514_944 and se.bias_term == 16_048
    assert [s.name for s in report.twin_stages] == [s.name for s in report.stages]


def test_se_resnet50_without_bias_is_the_formula_exactly():
    report = complexity_report("se_resnet50", SMALL, twin=False, se_bias=False)
    assert report.params - _plain("resnet50").params == 2_514_944 == report.attention.formula
    assert report.attention.bias is False and report.attention.expected_params == 2_514_944


def _check_formula(name, reduction, se_bias):
    from keras_se.models.registry import get_entry

    size = (75, 75, 3) if "inception_resnet" in name else SMALL  # its valid convolutions need 75x75
    report = complexity_report(name, size, twin=False, reduction=reduction, se_bias=se_bias)
    twin = _plain(get_entry(name).twin, size)
    se = report.attention
    delta = report.params - twin.params
    assert se.reduction == reduction and se.bias is se_bias
    assert delta == (se.formula_exact + se.bias_term if se_bias else se.formula_exact)
    assert report.macs - twin.macs == se.formula_exact
    if all(s.channels % reduction == 0 for s in se.stages):
        # 2/r * sum N_s * C_s^2, exactly as the paper writes it.
        assert se.formula == sum(2 * s.units * s.channels**2 // reduction for s in se.stages) == se.formula_exact
        assert se.bias_term == sum(s.units * (s.channels + s.channels // reduction) for s in se.stages)
        assert not se.notes
    else:
        # ShuffleNet's first units: C_s/r is not an integer; the note says so.
        assert se.formula != se.formula_exact and "C_s/r" in se.notes[0]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", FAST_SE_MODELS)
def test_formula_identity_without_bias(name, reduction):
    _check_formula(name, reduction, se_bias=False)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_formula_identity_with_bias(reduction):
    _check_formula("se_resnet18", reduction, se_bias=True)


@pytest.mark.large
@pytest.mark.parametrize("se_bias", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", SE_MODELS)
def test_formula_identity_every_se_model(name, reduction, se_bias):
    _check_formula(name, reduction, se_bias)


def test_sknet_overhead_against_resnext():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ComplexityWarning)  # every SK layer is known
        report = complexity_report("sknet50", SMALL)
    sk = report.attention
    assert report.twin == "resnext50_32x4d" and sk.kind == "sk" and sk.units == 16
    assert (report.params, report.twin_params) == (27_479_784, 25_028_904)
    assert sk.twin_params_delta == 27_479_784 - 25_028_904
    assert sk.twin_macs_delta == report.macs - report.twin_macs > 0
    # Two paths on every SK unit's W channels: 2 * (3*128*8*8 + 4*256*4*4 + 6*512*2*2 + 3*1024*1*1).
    assert report.weighting_macs == sk.layer_weighting_macs == 2 * (24_576 + 16_384 + 12_288 + 3_072)


def test_tf_keras_model_counts_like_keras():
    keras3 = _plain("se_resnet18")
    tfk = complexity_report(keras_se.create_model("se_resnet18", input_shape=SMALL, flavour="tf_keras"))
    assert (tfk.params, tfk.params_folded, tfk.macs, tfk.elementwise) == (
        keras3.params,
        keras3.params_folded,
        keras3.macs,
        keras3.elementwise,
    )
    assert tfk.attention.formula == keras3.attention.formula == 87_040
    assert [s.name for s in tfk.stages] == [s.name for s in keras3.stages]


def test_nested_keras_se_layers_and_models_are_walked():
    inner = keras.Sequential([keras.Input((8, 8, 4)), keras.layers.Conv2D(16, 3, padding="same", name="c1")], name="inner")
    inputs = keras.Input((8, 8, 4))
    x = inner(inputs)
    x = SqueezeExcite(reduction=4, name="se")(x)
    x = SelectiveKernel(16, groups=4, reduction=4, min_channels=4, name="sk")(x)
    model = keras.Model(inputs, x)
    report = complexity_report(model)
    names = [row.name for row in report.rows]
    assert "inner/c1" in names and "se/reduce" in names and "sk/path1_conv" in names
    assert report.params == count_params(model)
    assert report.row("inner/c1").macs == 8 * 8 * 16 * 9 * 4
    assert report.attention.kind == "se+sk"
    assert report.attention.formula == 2 * 16 * 16 // 4


def test_resolution_stages_without_names():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="a")(inputs)
    x = keras.layers.ZeroPadding2D(1, name="pad")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, name="b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(2, name="fc")(x)
    report = complexity_report(keras.Model(inputs, x))
    assert [(s.name, s.resolution) for s in report.stages] == [("16x16", "16x16"), ("8x8", "8x8"), ("head", "-")]
    assert report.row("pad").stage == "16x16"  # padding does not open a stage


def test_assign_stages_names_stem_and_head():
    rows = [
        LayerRow(n, "Conv2D", (None, 8, 8, 4), 0, 1, 0)
        for n in ("stem_conv", "stage2_block1_conv", "stage2_block2_conv", "stage3_block1_conv", "fc")
    ]
    assign_stages(rows)
    assert [(r.stage, r.block) for r in rows] == [("stem", None), ("stage2", 1), ("stage2", 2), ("stage3", 1), ("head", None)]


def test_input_shape_rebuilds_a_model():
    model = keras_se.create_model("mobilenet", input_shape=SMALL)
    report = complexity_report(model, (64, 64, 3))
    assert report.input_shape == (64, 64, 3)
    assert report.macs == complexity_report("mobilenet", (64, 64, 3), twin=False).macs


def test_keras_file(tmp_path):
    path = str(tmp_path / "model.keras")
    keras_se.create_model("se_mobilenet", input_shape=SMALL).save(path)
    report = complexity_report(path)
    expected = _plain("se_mobilenet")
    assert (report.model, report.params, report.macs) == ("model.keras", expected.params, expected.macs)
    assert report.attention.formula == expected.attention.formula


def test_model_twin_argument():
    model = keras_se.create_model("se_resnet18", input_shape=SMALL)
    report = complexity_report(model, twin="resnet18")
    assert report.attention.twin_params_delta == 89_080 and report.attention.twin_macs_delta == 87_040


# -- bad input -----------------------------------------------------------------


class Mystery(keras.layers.Layer):
    """A layer the report does not know."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), name="scale")

    def call(self, x):
        return x * self.scale


def test_unknown_layer_is_a_not_counted_row_and_a_warning():
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(2, 1, name="conv")(inputs)
    x = Mystery(name="mystery")(x)
    with pytest.warns(ComplexityWarning, match="'mystery' of type Mystery is not counted"):
        report = complexity_report(keras.Model(inputs, x))
    row = report.row("mystery")
    assert not row.counted and row.macs is None and row.note == "not counted"
    assert row.params == 2  # its weights are still in the totals
    assert report.uncounted == [row]
    assert report.macs == report.row("conv").macs and len(report.warnings) == 1


def test_unknown_model_name():
    with pytest.raises(ValueError, match=r"Unknown model name.*se_resnet50"):
        complexity_report("se_resnet5O")


@pytest.mark.parametrize(
    "content, match",
    [
        (b"plain text, not a model\n", "is not a Keras .* or TFLite .* model file"),
        (None, r"bad.keras: it is not a readable .keras file \(the archive has no config.json"),
    ],
)
def test_non_model_files(tmp_path, content, match):
    path = tmp_path / "bad.keras"
    if content is None:  # a zip that is not a Keras archive
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "hi")
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        complexity_report(str(path))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ValueError, match="model file not found"):
        complexity_report(str(tmp_path / "nothing.keras"))
    with pytest.raises(ValueError, match="directory"):
        complexity_report(str(tmp_path) + os.sep)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"input_shape=\(32, 32\)"):
        complexity_report("se_resnet18", (32, 32))
    with pytest.raises(ValueError, match="single layer needs input_shape"):
        complexity_report(keras.layers.Conv2D(2, 1))
    inputs = keras.Input((None, None, 3))
    unsized = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(ValueError, match="undefined size"):
        complexity_report(unsized)
    with pytest.raises(ValueError, match="builder arguments apply to registry names"):
        complexity_report(unsized, se_bias=False)


def test_subclassed_model_is_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 1)

        def call(self, x):
            return self.conv(x)

    net = Net()
    net(keras.ops.ones((1, 4, 4, 3)))
    with pytest.raises(ValueError, match="subclassed"):
        complexity_report(net)


def test_report_carries_its_conventions():
    report = _single(keras.layers.Conv2D(2, 1, name="c"), (4, 4, 3))
    assert report.conventions == CONVENTIONS
    data = report.to_dict()
    assert data["rows"][1]["name"] == "c" and data["conventions"][0].startswith("MACs")
    assert "rows" not in report.to_dict(rows=False)


def test_se_overhead_per_stage_for_inception_modules():
    from keras_se.analysis.complexity import se_overhead_per_stage

    report = complexity_report("se_bn_inception", SMALL)
    rows = se_overhead_per_stage(report)
    assert [r.stage for r in rows] == ["stage3", "stage4", "stage5"]
    # Module outputs 256 and 320 (stage 3), 576 x3 and 608 x2 (stage 4), 1056 and 1024 x2 (stage 5).
    assert rows[0].widths == [(256, 16), (320, 20)]
    assert rows[1].formula == 2 * (3 * 576 * 36 + 2 * 608 * 38) and rows[1].bias_term == 3 * (576 + 36) + 2 * (608 + 38)
    for row in rows:
        assert row.layer_params == row.expected == row.twin_delta, row
    assert sum(r.expected for r in rows) == report.attention.twin_params_delta == 11_931_622 - 11_285_224
    no_bias = se_overhead_per_stage(complexity_report("se_bn_inception", SMALL, se_bias=False))
    assert all(r.bias_term == 0 and r.layer_params == r.formula == r.twin_delta for r in no_bias)
    assert se_overhead_per_stage(complexity_report("bn_inception", SMALL)) == []


def test_se_overhead_per_stage_uses_each_blocks_se_width():
    from keras_se.analysis.complexity import se_overhead_per_stage
    from keras_se.analysis.formats import se_stage_rows, to_json, to_markdown
    from keras_se.layers import make_divisible
    from keras_se.models.mobilenet_v3 import block_specs

    report = complexity_report("mobilenetv3_small", input_shape=(32, 32, 3), alpha=0.25)
    stages = se_overhead_per_stage(report)
    assert [s.stage for s in stages] == ["stage2", "stage4", "stage5"]  # MobileNetV3-Small: no SE in stage 3
    # The width SE recalibrates is the inverted residual's expanded width, block by block.
    mids = [s["mid_channels"] for s in block_specs("small", 0.25) if s["se"] and s["stage"] == 4]
    assert stages[1].widths == [(c, make_divisible(c / 4, 8)) for c in mids]
    for s in stages:
        # SE FCs have bias: measured twice (SE layers, twin delta), equal to the formula exactly.
        assert s.expected == s.formula + s.bias_term == s.layer_params == s.twin_delta
    assert sum(s.expected for s in stages) == report.attention.twin_params_delta
    header, rows = se_stage_rows(report)
    assert header[2] == "C_b -> C'_b" and rows[0][0] == "stage2"
    assert "## SE overhead per stage" in to_markdown(report, layers=False)
    assert "expanded width inside an inverted residual" in to_json(report, rows=False)


def test_se_overhead_per_stage_reduces_to_the_papers_formula_for_se_resnet():
    from keras_se.analysis.complexity import se_overhead_per_stage

    report = complexity_report("se_resnet18", input_shape=(32, 32, 3), se_bias=False)
    for s, c in zip(se_overhead_per_stage(report), (64, 128, 256, 512)):
        assert s.formula == 2 / 16 * 2 * c**2 == s.twin_delta and s.bias_term == 0
    assert se_overhead_per_stage(complexity_report("resnet18", input_shape=(32, 32, 3))) == []


def test_eca_and_cbam_are_counted_beside_the_plain_twin():
    # ResNet-50's bottleneck outputs: (blocks, channels, feature map side) per stage.
    stages = [(3, 256, 56), (4, 512, 28), (6, 1024, 14), (3, 2048, 7)]
    k = {256: 5, 512: 5, 1024: 5, 2048: 7}  # ECA's adaptive size, by hand
    with warnings.catch_warnings():
        warnings.simplefilter("error", ComplexityWarning)  # every layer counted
        eca = complexity_report(keras_se.create_model("se_resnet50", attention="eca"))
        cbam = complexity_report(keras_se.create_model("se_resnet50", attention="cbam"))
    assert (eca.attention.kind, eca.attention.units, eca.attention.formula) == ("eca", 16, None)
    # ECA: k weights and C * k MACs per block.
    assert eca.attention.twin_params_delta == eca.attention.layer_params == sum(n * k[c] for n, c, _ in stages)
    assert eca.attention.twin_macs_delta == eca.attention.layer_macs == sum(n * c * k[c] for n, c, _ in stages)
    assert eca.attention.layer_weighting_macs == sum(n * c * s * s for n, c, s in stages)
    # CBAM: the shared MLP (C -> C/16 -> C, with bias) on two descriptors, a
    # 7x7 conv over 2 maps (no bias) and its BN (2 learned).
    assert cbam.attention.twin_params_delta == sum(n * (2 * c * c // 16 + c // 16 + c + 98 + 2) for n, c, _ in stages)
    assert cbam.attention.twin_macs_delta == sum(n * (2 * 2 * c * c // 16 + 98 * s * s) for n, c, s in stages)
    assert cbam.attention.layer_weighting_macs == 2 * sum(n * c * s * s for n, c, s in stages)
