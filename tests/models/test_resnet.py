import keras
import numpy as np
import pytest

import keras_se
from keras_se.analysis import count_params
from keras_se.models.resnet import DEPTHS

# 2/r * sum_s N_s * C_s^2 at r=16 (SENet paper; official counts without SE bias).
SE_FORMULA = {18: 87_040, 34: 157_184, 50: 2_514_944, 101: 4_743_168, 152: 6_578_176}
STAGE_WIDTHS = (64, 128, 256, 512)


def _build(name, **kwargs):
    kwargs.setdefault("input_shape", (64, 64, 3))
    return keras_se.create_model(name, **kwargs)


def _stage_channels(depth):
    block, blocks = DEPTHS[depth]
    expansion = 1 if block == "basic" else 4
    return [(n, w * expansion) for n, w in zip(blocks, STAGE_WIDTHS)]


@pytest.mark.parametrize("depth", sorted(DEPTHS))
def test_se_without_bias_adds_exactly_the_paper_formula(depth):
    plain = count_params(_build(f"resnet{depth}"))
    se = count_params(_build(f"se_resnet{depth}", se_bias=False))
    assert se - plain == SE_FORMULA[depth]
    assert SE_FORMULA[depth] == sum(2 * n * c * c // 16 for n, c in _stage_channels(depth))


def test_se_resnet50_without_bias():
    assert count_params(_build("se_resnet50", se_bias=False)) == 28_071_976


@pytest.mark.parametrize("reduction, millions", [(2, 45.7), (4, 35.7), (8, 30.7), (16, 28.1), (32, 26.9)])
def test_reduction_ratio_matches_paper_table_10(reduction, millions):
    plain = count_params(_build("resnet50"))
    count = count_params(_build("se_resnet50", reduction=reduction))
    bias = sum(n * (c + c // reduction) for n, c in _stage_channels(50))
    assert count - plain == SE_FORMULA[50] * 16 // reduction + bias
    # Table 10 prints 35.7 / 30.7 / 26.9 M where the exact counts are
    # 35.64 / 30.60 / 26.83 M: within its last digit.
    assert abs(count / 1e6 - millions) <= 0.1 + 1e-9


@pytest.mark.parametrize("stage, millions", [(2, 25.6), (3, 25.7), (4, 26.4)])
def test_se_on_one_stage_matches_paper_table_13(stage, millions):
    model = _build("se_resnet50", se_stages=[stage])
    n, c = _stage_channels(50)[stage - 2]
    assert count_params(model) - count_params(_build("resnet50")) == n * (2 * c * (c // 16) + c // 16 + c)
    assert abs(count_params(model) / 1e6 - millions) <= 0.1  # the paper rounds 26.35 M up to 26.4
    se_layers = {layer.name.split("_")[0] for layer in model.layers if layer.name.endswith("_se_reduce")}
    assert se_layers == {f"stage{stage}"}


def test_se_after_3x3_counts_the_bottleneck_width():
    # SE on the 3x3 output (C/4 channels): 2/r * sum N (C/4)^2 + bias terms.
    plain = count_params(_build("resnet50"))
    expected = sum(n * (2 * (c // 4) * (c // 64) + c // 64 + c // 4) for n, c in _stage_channels(50))
    model = _build("se_resnet50", se_position="after_3x3")
    assert count_params(model) - plain == expected
    assert round(count_params(model) / 1e6, 1) == 25.7  # the paper's Table 15 prints 25.8


def _inbound(model, name):
    node = model.get_layer(name)._inbound_nodes[0]
    return [t._keras_history.operation.name for t in node.input_tensors]


@pytest.mark.parametrize(
    "position, layer, expected_inputs",
    [
        ("standard", "stage3_block2_se_scale", ["stage3_block2_bn3", "stage3_block2_se_gate"]),
        ("standard", "stage3_block2_add", ["stage3_block2_se_scale", "stage3_block1_out"]),
        ("pre", "stage3_block2_conv1", ["stage3_block2_se_scale"]),
        ("pre", "stage3_block2_add", ["stage3_block2_bn3", "stage3_block1_out"]),
        ("post", "stage3_block2_se_scale", ["stage3_block2_out", "stage3_block2_se_gate"]),
        ("identity", "stage3_block2_add", ["stage3_block2_bn3", "stage3_block2_se_scale"]),
        ("identity", "stage3_block1_se_scale", ["stage3_block1_proj_bn", "stage3_block1_se_gate"]),
        ("after_3x3", "stage3_block2_conv3", ["stage3_block2_se_scale"]),
    ],
)
def test_se_position_wires_se_where_the_paper_puts_it(position, layer, expected_inputs):
    model = _build("se_resnet50", se_position=position)
    assert _inbound(model, layer) == expected_inputs


def test_stride_placement():
    caffe = _build("se_resnet50")
    assert caffe.get_layer("stage3_block1_conv1").strides == (2, 2)
    assert caffe.get_layer("stage3_block1_conv2").strides == (1, 1)
    v15 = _build("se_resnet50", stride_on="3x3")
    assert v15.get_layer("stage3_block1_conv1").strides == (1, 1)
    assert v15.get_layer("stage3_block1_conv2").strides == (2, 2)
    resnext = _build("se_resnext50_32x4d")
    assert resnext.get_layer("stage3_block1_conv2").strides == (2, 2)
    assert resnext.get_layer("stage3_block1_conv2").groups == 32


def test_senet154_architecture_details():
    model = _build("senet154")
    convs = [layer.name for layer in model.layers if layer.name.startswith("stem_conv") and not layer.name.endswith("_pad")]
    assert convs == ["stem_conv1", "stem_conv2", "stem_conv3"]
    assert model.get_layer("stage2_block1_proj_conv").kernel_size == (1, 1)
    assert model.get_layer("stage3_block1_proj_conv").kernel_size == (3, 3)
    assert model.get_layer("stage2_block1_conv1").filters == 128  # half the 3x3 width
    assert model.get_layer("stage2_block1_conv2").groups == 64
    assert model.get_layer("dropout").rate == 0.2


def test_sknet_uses_selective_kernel_units():
    model = _build("sknet50")
    assert model.get_layer("stage2_block1_sk_fc1").filters == 32  # d = max(128/16, 32)
    assert model.get_layer("stage5_block1_sk_fc1").filters == 64  # d = max(1024/16, 32)
    assert model.get_layer("stage3_block1_sk_path1_subsample").strides == (2, 2)
    assert "stage2_block1_conv2" not in [layer.name for layer in model.layers]


def test_feature_map_sizes_at_224():
    model = keras_se.create_model("se_resnet50", include_top=False)
    assert model.output_shape == (None, 7, 7, 2048)
    assert model.get_layer("stem_pool").output.shape[1:3] == (56, 56)


@pytest.mark.parametrize("pooling, shape", [(None, (None, 2, 2, 512)), ("avg", (None, 512)), ("max", (None, 512))])
def test_include_top_false_pooling(pooling, shape):
    assert _build("se_resnet18", include_top=False, pooling=pooling).output_shape == shape


def test_input_tensor():
    inputs = keras.Input((96, 96, 3))
    model = keras_se.SEResNet18(input_tensor=inputs, include_top=False)
    assert model.inputs[0] is inputs
    assert model.output_shape == (None, 3, 3, 512)


def test_weights_path_round_trip(tmp_path):
    model = _build("se_resnet18", classes=10)
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    loaded = _build("se_resnet18", classes=10, weights=str(path))
    x = np.random.default_rng(1).uniform(size=(1, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_weights_with_other_classes_is_a_clear_error(tmp_path):
    path = tmp_path / "imagenet.weights.h5"
    _build("se_resnet18").save_weights(path)
    with pytest.raises(ValueError, match="classes=10"):
        _build("se_resnet18", classes=10, weights=str(path))


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(input_shape=(16, 16, 3)), "input_shape=.*16, 16, 3"),
        (dict(input_shape=(64, 64)), "input_shape=.*64, 64"),
        (dict(include_top=False, pooling="mean"), "pooling='mean'"),
        (dict(se_position="inside"), "se_position='inside'"),
        (dict(se_stages=[1, 2]), r"se_stages=\[1, 2\]"),
        (dict(reduction=0), "reduction=0"),
        (dict(se_gate="relu"), "gate='relu'"),
        (dict(classes=0), "classes=0"),
        (dict(weights="/nonexistent/file.weights.h5"), "weights=.*nonexistent"),
        (dict(weights=3), "weights=3"),
    ],
)
def test_bad_arguments_name_argument_and_value(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        keras_se.create_model("se_resnet18", **kwargs)


def test_sk_basic_block_replaces_the_first_3x3():
    # timm's SelectiveKernelBasic: SK unit (stride on its paths) -> 3x3 conv -> BN, add, ReLU.
    model = keras_se.create_model("timm:skresnet18", input_shape=(64, 64, 3))
    names = {layer.name for layer in model.layers}
    assert {"stage3_block1_sk_path0_split", "stage3_block1_sk_path1_subsample", "stage3_block1_conv2", "stage3_block1_bn2"} <= names
    assert "stage3_block1_conv1" not in names and "stage3_block1_relu2" not in names
    assert model.get_layer("stage3_block1_sk_path0_conv").strides == (2, 2)
    assert model.get_layer("stage3_block1_sk_path0_conv").kernel.shape == (3, 3, 32, 128)  # half of 64 inputs
    assert model.get_layer("stage3_block1_sk_fc1").kernel.shape == (1, 1, 128, 16)  # max(128 / 8, 16)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("se_resnet18", dict(se_gate="hard_sigmoid")),
        ("se_resnext50_32x4d", dict(se_position="identity")),
        ("sknet50", {}),
        pytest.param("senet154", dict(se_stages=[5]), marks=pytest.mark.large),
    ],
)
def test_tf_keras_twin_has_same_layers_weights_and_outputs(name, kwargs):
    model = keras_se.create_model(name, input_shape=(64, 64, 3), **kwargs)
    twin = keras_se.create_model(name, input_shape=(64, 64, 3), flavour="tf_keras", **kwargs)
    assert type(twin).__module__.startswith("tf_keras")

    # The same weighted layers (the tf_keras flavour spells SK's select as
    # several weightless layers, see keras_se.layers.namespace).
    def weighted(m):
        return sorted((layer.name, [tuple(w.shape) for w in layer.weights]) for layer in m.layers if layer.weights)

    assert weighted(twin) == weighted(model)
    rng = np.random.default_rng(2)
    # Non-trivial BN statistics so a mis-matched copy would show.
    weights = [
        rng.uniform(0.5, 1.5, w.shape).astype("float32") if "variance" in w.path else rng.normal(0, 0.05, w.shape).astype("float32")
        for w in model.weights
    ]
    model.set_weights(weights)
    for layer in model.layers:
        if layer.weights:
            twin.get_layer(layer.name).set_weights(layer.get_weights())
    x = rng.uniform(size=(2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(twin(x, training=False).numpy(), keras.ops.convert_to_numpy(model(x, training=False)), atol=1e-5)


@pytest.mark.large
@pytest.mark.parametrize("name", keras_se.list_models())
def test_full_size_forward(name):
    model = keras_se.create_model(name)  # its default size: 224x224, Inception-ResNet-v2 299x299
    size = model.input_shape[1]
    x = np.random.default_rng(0).uniform(size=(1, size, size, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert y.shape == (1, 1000) and np.isfinite(y).all()


def test_timm_configurations():
    legacy = _build("timm:legacy_seresnet50")
    assert legacy.get_layer("stage3_block1_conv1").strides == (2, 2)
    assert legacy.get_layer("stem_pool_pad").padding == ((0, 1), (0, 1))  # ceil mode at 32 -> 16
    v15 = _build("timm:seresnet50")
    assert v15.get_layer("stage3_block1_conv2").strides == (2, 2)
    assert v15.get_layer("stem_pool_pad").padding == ((1, 1), (1, 1))
    # make_divisible(64 / 16, 8) = 8 in timm's resnet.py; 64 // 16 = 4 in senet.py.
    assert _build("timm:seresnet18").get_layer("stage2_block1_se_reduce").filters == 8
    assert _build("timm:legacy_seresnet18").get_layer("stage2_block1_se_reduce").filters == 4
    assert "dropout" not in [layer.name for layer in _build("timm:senet154").layers]


def test_depth_26_for_timm_legacy_seresnext26():
    model = _build("timm:legacy_seresnext26_32x4d")
    assert count_params(model) == 16_790_280  # timm's legacy_seresnext26_32x4d, counted from its source
    assert "stage5_block2_conv1" in [layer.name for layer in model.layers]
    assert "stage5_block3_conv1" not in [layer.name for layer in model.layers]
    assert not keras_se.list_models("*26*")


def test_basic_last_relu():
    model = _build("se_resnet18", basic_last_relu=True)
    assert _inbound(model, "stage2_block1_se_squeeze") == ["stage2_block1_relu2"]
    assert count_params(model) == count_params(_build("se_resnet18"))
    assert "stage2_block1_relu2" not in [layer.name for layer in _build("se_resnet18").layers]
    with pytest.raises(ValueError, match="basic_last_relu=1"):
        _build("se_resnet18", basic_last_relu=1)
    with pytest.raises(ValueError, match="depth=50"):
        _build("se_resnet50", basic_last_relu=True)
