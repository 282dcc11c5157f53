"""Tests for keras_se.weights.timm: timm checkpoints in keras_se models.

Three independent references:
- the shared fixtures: real timm legacy_seresnet18 and mobilenetv3_small_100
  checkpoints (float16, randomised BN statistics), an input and the logits
  timm computed;
- `timm_reference`: every timm model's state dict (names, shapes) written
  down from timm's source, with no keras_se code; its parameter counts equal
  the published ones;
- data/timm_logits.npz: the logits timm 1.0 computed for every model with
  `timm_reference.synthetic_state_dict` loaded (data/make_timm_logits.py
  made it, and checked timm's state dicts against `timm_reference`).

Tolerance: 1e-4 absolute on logits of magnitude <= 3.4 (the issue's bar);
float32 TensorFlow and PyTorch differ only in summation order, and the
measured differences are <= 2.1e-6.
"""

import re
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from safetensors.numpy import save_file

import keras_se
from keras_se.weights import detect_scheme, load_timm, model_scheme, timm_models, timm_name, timm_scheme, to_timm_state_dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timm_reference  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "timm"
CHECKPOINT = FIXTURES / "legacy_seresnet18.safetensors"
LOGITS = Path(__file__).resolve().parent / "data" / "timm_logits.npz"
ATOL = 1e-4

# Each scheme and block in the default run; the rest (deep stems, 3x3
# projections, depth >= 101: 10 to 60 s each on two cores) are large.
QUICK = (
    "legacy_seresnet18",
    "legacy_seresnet50",
    "legacy_seresnext26_32x4d",
    "seresnet18",
    "seresnet50",
    "skresnext50_32x4d",
    "skresnet18",
)
# timm's logits for MobileNetV3 come from the real checkpoint (small) only;
# data/timm_logits.npz predates them.
MOBILENETV3 = ("mobilenetv3_large_100", "mobilenetv3_small_100")
MNV3_CHECKPOINT = FIXTURES / "mobilenetv3_small_100.safetensors"
# MobileNetV3's fixture logits are at most 0.087 (random weights); measured
# differences are <= 6.6e-8 (Keras 3 and tf_keras): 1e-6 is 15 times that.
MNV3_ATOL = 1e-6
# timm's -D / -T / "aa" variants: data/timm_logits.npz predates them; their
# logits are checked on the shared fixtures (real timm models) below.
RESNET_D = [name for name, (_, args) in timm_reference.ARCHS.items() if args.get("avg_down")]
RESNET_D_FIXTURES = ("seresnext26t_32x4d", "ecaresnet26t")
ALL = [
    name if name in QUICK else pytest.param(name, marks=pytest.mark.large)
    for name in timm_reference.ARCHS
    if name not in MOBILENETV3 and name not in RESNET_D
]


def _needs_fixture(not_run):
    if not CHECKPOINT.is_file():
        not_run(f"timm fixture not present at {FIXTURES}")


def _fixture_io(not_run):
    _needs_fixture(not_run)
    data = np.load(FIXTURES / "legacy_seresnet18_io.npz")
    return data["input_nchw"].transpose(0, 2, 3, 1), data["logits"]


def _predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


_MODELS = {}


def _model(name, **kwargs):
    """A 72 x 72 logits model, built once per configuration: tests load all
    of its weights or check that a refused load changed none."""
    kwargs.setdefault("input_shape", (72, 72, 3))
    kwargs.setdefault("classifier_activation", None)
    key = (name, tuple(sorted((k, str(v)) for k, v in kwargs.items())))
    if key not in _MODELS:
        _MODELS[key] = keras_se.create_model(name, **kwargs)
    return _MODELS[key]


def _shapes(state):
    return {key: tuple(np.shape(value)) for key, value in state.items()}


def _synthetic(name):
    return timm_reference.synthetic_state_dict(timm_reference.state_shapes(name))


# --- The real timm checkpoint ---------------------------------------------------


@pytest.mark.parametrize("flavour", ["keras", "tf_keras"])
def test_fixture_reproduces_timm_logits(flavour, not_run):
    x, logits = _fixture_io(not_run)
    # timm returns logits, so no softmax; the fixture's input is 224 x 224.
    model = keras_se.create_model("timm:legacy_seresnet18", classifier_activation=None, weights=CHECKPOINT, flavour=flavour)
    y = model(x, training=False)
    y = y.numpy() if hasattr(y, "numpy") else keras.ops.convert_to_numpy(y)
    assert np.abs(y - logits).max() <= ATOL


def test_fixture_through_load_timm_with_softmax_head(not_run):
    x, logits = _fixture_io(not_run)
    model = keras_se.create_model("timm:legacy_seresnet18")
    assert load_timm(model, str(CHECKPOINT)) is model
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(_predict(model, x), expected / expected.sum(axis=1, keepdims=True), atol=1e-6)


def test_fixture_has_timm_reference_names_and_keras_se_exports_them(not_run):
    _needs_fixture(not_run)
    from keras_se.weights import read_state_dict

    state = read_state_dict(CHECKPOINT)
    reference = timm_reference.state_shapes("legacy_seresnet18")
    assert _shapes(state) == reference
    assert _shapes(to_timm_state_dict(_model("timm:legacy_seresnet18"))) == reference


def test_fixture_into_include_top_false_backbone(not_run):
    x, _ = _fixture_io(not_run)
    full = keras_se.create_model("timm:legacy_seresnet18", weights=CHECKPOINT)
    backbone = keras_se.create_model("timm:legacy_seresnet18", include_top=False, pooling="avg", weights=CHECKPOINT)
    features = keras.Model(full.input, full.get_layer("avg_pool").output)
    np.testing.assert_allclose(_predict(backbone, x), _predict(features, x), atol=1e-6)


@pytest.mark.parametrize(
    "name, size",
    [
        pytest.param("vgg16_bn", 64, marks=pytest.mark.large),
        pytest.param("inception_resnet_v2", 96, marks=pytest.mark.large),
        ("mobilenetv3_large", 64),
    ],
)
def test_timm_state_into_include_top_false_backbone(name, size):
    """keras.applications' top (VGG's fc1 / fc2, MobileNetV3's head conv, the classifier) is left out, the rest loaded."""
    full = keras_se.create_model(name, input_shape=(size, size, 3))
    rng = np.random.default_rng(0)
    # BN statistics too (their initial values are the same in every model);
    # the largest kernels keep their random initial values, already unlike the backbone's.
    full.set_weights([w if w.size > 2**20 else rng.normal(0, 0.1, w.shape).astype("float32") for w in full.get_weights()])
    backbone = keras_se.create_model(name, include_top=False, input_shape=(size, size, 3))
    load_timm(backbone, to_timm_state_dict(full))
    for layer in backbone.layers:
        for actual, expected in zip(layer.get_weights(), full.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(actual, expected)


def test_loaded_model_converts_to_tflite_and_still_matches_timm(tmp_path, not_run):
    from keras_se.export import to_tflite
    from keras_se.export.verify import run_tflite

    x, logits = _fixture_io(not_run)
    model = keras_se.create_model("timm:legacy_seresnet18", classifier_activation=None, weights=CHECKPOINT)
    path = tmp_path / "legacy_seresnet18.tflite"
    to_tflite(model, path, verify=False)
    # float32 TFLite: the same arithmetic in another order; measured 2.6e-6.
    assert np.abs(run_tflite(str(path), x) - logits).max() <= ATOL


# --- Every timm model ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(timm_reference.PUBLISHED_PARAMS))
def test_reference_state_dicts_have_the_published_parameter_counts(name):
    assert timm_reference.count_params(timm_reference.state_shapes(name)) == timm_reference.PUBLISHED_PARAMS[name]


def test_every_timm_model_has_a_reference():
    # vgg16_bn and inception_resnet_v2: tests/weights/timm_numpy_reference.py.
    names = sorted([*timm_reference.ARCHS, "vgg16_bn", "inception_resnet_v2"])
    assert timm_models() == names
    assert keras_se.list_models("timm:*") == [f"timm:{n}" for n in names]


@pytest.mark.parametrize(
    "name",
    # One per stem and block kind by default (the fixtures' two, a plain -D, the 7x7-stem light one);
    # the deeper ones are the same layers (xlarge).
    [
        name
        if name in (*RESNET_D_FIXTURES, "resnet26d", "ecaresnetlight")
        else pytest.param(name, marks=[pytest.mark.large, pytest.mark.xlarge])
        for name in RESNET_D
    ],
)
def test_resnet_d_names_shapes_and_round_trip(name):
    model = _model(f"timm:{name}")
    reference = timm_reference.state_shapes(name)
    assert _shapes(to_timm_state_dict(model)) == reference
    state = _synthetic(name)
    load_timm(model, state)
    exported = to_timm_state_dict(model)
    for key, value in state.items():
        np.testing.assert_array_equal(exported[key], value, err_msg=key)


@pytest.mark.parametrize("name", RESNET_D_FIXTURES)
def test_resnet_d_fixtures_reproduce_timm_logits(name, not_run):
    checkpoint = FIXTURES / f"{name}.safetensors"
    if not checkpoint.is_file():
        not_run(f"timm fixture not present at {checkpoint}")
    from safetensors.numpy import load_file

    # The reference (written from timm's source) names the real model's tensors.
    assert _shapes(load_file(checkpoint)) == timm_reference.state_shapes(name)
    data = np.load(FIXTURES / f"{name}_io.npz")
    model = keras_se.create_model(f"timm:{name}", classifier_activation=None, weights=checkpoint)
    y = _predict(model, data["input_nchw"].transpose(0, 2, 3, 1))
    logits = data["logits"]
    # Measured 4.9e-7 (seresnext26t_32x4d) and 9.3e-7 (ecaresnet26t): float32 summation order.
    bound = 1e-4
    assert np.linalg.norm(y - logits) / np.linalg.norm(logits) <= bound
    # The bound is not vacuous: one block's attention left out moves the logits past it.
    perturbed = keras_se.create_model(f"timm:{name}", classifier_activation=None, weights=checkpoint)
    layer = next(
        layer
        for layer in perturbed.layers
        if layer.name.startswith("stage3_block1_") and layer.weights and ("_se_" in layer.name or layer.name.endswith("_eca"))
    )
    layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    z = _predict(perturbed, data["input_nchw"].transpose(0, 2, 3, 1))
    assert np.linalg.norm(z - logits) / np.linalg.norm(logits) > bound


@pytest.mark.parametrize("name", ALL)
def test_timm_model_names_shapes_logits_and_round_trip(name):
    model = _model(f"timm:{name}")
    reference = timm_reference.state_shapes(name)
    assert _shapes(to_timm_state_dict(model)) == reference
    state = _synthetic(name)
    load_timm(model, state)
    data = np.load(LOGITS)
    y = _predict(model, data["input"].transpose(0, 2, 3, 1))
    assert np.abs(y - data[name]).max() <= ATOL
    exported = to_timm_state_dict(model)
    assert exported.keys() == state.keys()
    for key, value in state.items():
        np.testing.assert_array_equal(exported[key], value, err_msg=key)


# Real names and shapes, read off timm's constructors by hand.
SPOT = {
    "legacy_seresnet18": {
        "layer0.conv1.weight": (64, 3, 7, 7),
        "layer1.0.se_module.fc1.weight": (4, 64, 1, 1),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "last_linear.weight": (1000, 512),
    },
    "legacy_seresnet50": {
        "layer1.0.conv1.weight": (64, 64, 1, 1),
        "layer1.0.se_module.fc1.bias": (16,),
        "layer1.0.downsample.1.running_var": (256,),
        "layer4.2.se_module.fc2.weight": (2048, 128, 1, 1),
    },
    "legacy_seresnext26_32x4d": {"layer1.0.conv2.weight": (128, 4, 3, 3), "layer4.1.conv3.weight": (2048, 1024, 1, 1)},
    "legacy_senet154": {
        "layer0.conv3.weight": (128, 64, 3, 3),
        "layer1.0.conv1.weight": (128, 128, 1, 1),
        "layer1.0.conv2.weight": (256, 2, 3, 3),
        "layer1.0.downsample.0.weight": (256, 128, 1, 1),
        "layer2.0.downsample.0.weight": (512, 256, 3, 3),
    },
    "seresnet18": {"conv1.weight": (64, 3, 7, 7), "layer1.0.se.fc1.weight": (8, 64, 1, 1), "fc.weight": (1000, 512)},
    "seresnet50": {"bn1.running_mean": (64,), "layer1.0.se.fc1.weight": (16, 256, 1, 1), "fc.bias": (1000,)},
    "senet154": {"conv1.0.weight": (64, 3, 3, 3), "conv1.4.weight": (64,), "conv1.6.weight": (128, 64, 3, 3), "bn1.weight": (128,)},
    "skresnext50_32x4d": {
        "layer1.0.conv1.conv.weight": (128, 64, 1, 1),
        "layer1.0.conv2.paths.1.conv.weight": (128, 4, 3, 3),
        "layer1.0.conv2.attn.fc_reduce.weight": (32, 128, 1, 1),
        "layer1.0.conv2.attn.bn.running_var": (32,),
        "layer1.0.conv2.attn.fc_select.weight": (256, 32, 1, 1),
        "layer4.0.conv2.attn.fc_reduce.weight": (64, 1024, 1, 1),
        "layer1.0.conv3.bn.weight": (256,),
    },
    # split_input: each path sees half the input channels.
    "skresnet18": {
        "layer1.0.conv1.paths.0.conv.weight": (64, 32, 3, 3),
        "layer1.0.conv1.attn.fc_reduce.weight": (16, 64, 1, 1),
        "layer2.0.conv1.paths.1.conv.weight": (128, 32, 3, 3),
        "layer4.1.conv1.attn.fc_select.weight": (1024, 64, 1, 1),
        "layer4.1.conv2.conv.weight": (512, 512, 3, 3),
        "layer4.1.conv2.bn.running_mean": (512,),
    },
    "skresnet50": {
        "layer1.0.conv2.paths.1.conv.weight": (64, 32, 3, 3),
        "layer1.0.conv2.attn.fc_reduce.weight": (8, 64, 1, 1),
        "layer4.0.conv2.attn.fc_reduce.weight": (32, 512, 1, 1),
    },
}


@pytest.mark.parametrize("name", sorted(SPOT))
def test_hand_written_timm_names(name):
    # keras_se exports exactly `state_shapes` (test above), so these pin both.
    reference = timm_reference.state_shapes(name)
    for key, shape in SPOT[name].items():
        assert reference[key] == shape, key
    if name == "legacy_seresnext26_32x4d":
        assert "layer4.1.conv1.weight" in reference and "layer4.2.conv1.weight" not in reference


def test_round_trip_through_a_safetensors_file(tmp_path):
    source = _model("timm:skresnext50_32x4d")
    load_timm(source, _synthetic("skresnext50_32x4d"))
    path = tmp_path / "skresnext50_32x4d.safetensors"
    save_file(to_timm_state_dict(source), str(path))
    loaded = _model("timm:skresnext50_32x4d", weights=path)
    x = np.random.default_rng(0).normal(size=(2, 72, 72, 3)).astype("float32")
    np.testing.assert_array_equal(_predict(loaded, x), _predict(source, x))


def test_tf_keras_model_with_grouped_and_sk_convolutions():
    # The tf_keras twin (for quantisation-aware training) loads the same file.
    model = _model("timm:skresnext50_32x4d", flavour="tf_keras")
    load_timm(model, _synthetic("skresnext50_32x4d"))
    data = np.load(LOGITS)
    y = model(data["input"].transpose(0, 2, 3, 1), training=False).numpy()
    assert np.abs(y - data["skresnext50_32x4d"]).max() <= ATOL


# --- Checkpoints that do not fit -------------------------------------------------


def _weights(model):
    return [w.copy() for w in model.get_weights()]


def _assert_refused(model, checkpoint, pattern):
    before = _weights(model)
    with pytest.raises(ValueError, match=pattern) as info:
        load_timm(model, checkpoint)
    assert "Nothing was loaded" in str(info.value) or "does not match" not in str(info.value)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    return str(info.value)


def test_file_of_another_timm_model(not_run):
    _needs_fixture(not_run)
    message = _assert_refused(
        _model("timm:seresnet18"),
        CHECKPOINT,
        r"does not match model 'seresnet18' \(timm senet.py names\).*first offending tensor 'layer0.conv1.weight': "
        r"timm's stem max pool is 'ceil', the model's is 'pad' \(stem_pool\)",
    )
    assert "6 mis-shaped: layer1.0.se_module.fc1.weight" in message
    assert "The checkpoint has timm senet.py names; the model's architecture is that of timm resnet.py" in message


def test_file_of_a_deeper_and_a_bottleneck_model(not_run):
    _needs_fixture(not_run)
    _assert_refused(_model("timm:legacy_seresnet34"), CHECKPOINT, r"first offending tensor 'layer1.2.conv1.weight': missing")
    _assert_refused(
        _model("timm:legacy_seresnet50"),
        CHECKPOINT,
        r"first offending tensor 'layer1.0.conv1.weight': shape \(64, 64, 3, 3\) in the checkpoint, the model needs \(64, 64, 1, 1\)",
    )


def test_one_mis_shaped_and_one_extra_tensor():
    state = _synthetic("legacy_seresnet18")
    state["layer3.1.se_module.fc2.weight"] = np.zeros((256, 8, 1, 1), np.float32)
    message = _assert_refused(_model("timm:legacy_seresnet18"), state, r"first offending tensor 'layer3.1.se_module.fc2.weight': shape")
    assert "1 mis-shaped" in message
    state = _synthetic("legacy_seresnet18")
    state["layer5.0.conv1.weight"] = np.zeros((1,), np.float32)
    _assert_refused(_model("timm:legacy_seresnet18"), state, r"first offending tensor 'layer5.0.conv1.weight': in the checkpoint but not")


def test_a_missing_tensor():
    state = _synthetic("seresnet50")
    del state["layer2.3.bn2.running_var"]
    _assert_refused(_model("timm:seresnet50"), state, r"first offending tensor 'layer2.3.bn2.running_var': missing")


def test_classifier_of_another_size(not_run):
    _needs_fixture(not_run)
    _assert_refused(
        _model("timm:legacy_seresnet18", classes=10), CHECKPOINT, r"'last_linear.weight': shape \(1000, 512\).*include_top=False"
    )


def test_same_tensors_other_architecture(not_run):
    # Identical names and shapes; only what weights cannot show differs.
    state = _synthetic("seresnet50")
    _assert_refused(_model("se_resnet50"), state, r"first offending tensor 'conv1.weight': timm's stem max pool is 'pad'")
    _assert_refused(
        _model("se_resnet50", stem_pool="pad"), state, r"'layer2.0.conv2.weight': timm strides on the 3x3 conv, the model on the 1x1"
    )
    _assert_refused(_model("timm:seresnet50", se_position="post"), state, r"'layer1.0.se.fc1.weight': timm's SE takes stage2_block1_bn3")
    _assert_refused(_model("timm:seresnet50", se_gate="hard_sigmoid"), state, r"'layer1.0.se.fc1.weight': timm's SE gate is a sigmoid")
    _needs_fixture(not_run)
    _assert_refused(_model("se_resnet18"), CHECKPOINT, r"'layer1.0.conv2.weight': timm's basic block has a ReLU after bn2")


def test_same_tensors_other_sk_architecture():
    state = _synthetic("skresnext50_32x4d")
    _assert_refused(_model("sknet50", stride_on="1x1"), state, r"'layer2.0.conv2.paths.0.conv.weight': timm strides on the 3x3")


def test_split_input_sk_checkpoint_into_other_models():
    state = _synthetic("skresnet18")
    # A ResNet-18 has a plain conv where timm's block has the SK unit.
    _assert_refused(_model("resnet18"), state, r"no counterpart in timm sknet.py \(basic blocks\), first 'stage2_block1_conv1'")
    # The same SK units without the input split: every path conv is twice as wide.
    _assert_refused(_model("timm:skresnet18", sk_split_input=False), state, r"'layer1.0.conv1.paths.0.conv.weight': shape \(64, 32, 3, 3\)")


def test_unsupported_and_foreign_checkpoints():
    _assert_refused(_model("se_resnet18"), {"blocks.0.weight": np.zeros(3)}, r"not a timm .* checkpoint.*'blocks.0.weight'")
    _assert_refused(_model("se_mobilenet"), _synthetic("seresnet18"), r"'se_mobilenet' has layers with no counterpart.*residual")


def test_bad_files_through_create_model(tmp_path, monkeypatch, not_run):
    with pytest.raises(ValueError, match="weights file not found"):
        keras_se.create_model("timm:seresnet18", input_shape=(64, 64, 3), weights=tmp_path / "missing.safetensors")
    _needs_fixture(not_run)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(CHECKPOINT.read_bytes()[:100_000])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        keras_se.create_model("timm:legacy_seresnet18", input_shape=(64, 64, 3), weights=truncated)
    monkeypatch.setitem(sys.modules, "torch", None)
    pth = tmp_path / "legacy_seresnet18.pth"
    pth.write_bytes(b"torch pickle")
    with pytest.raises(ImportError, match="needs PyTorch"):
        keras_se.create_model("timm:legacy_seresnet18", input_shape=(64, 64, 3), weights=pth)


# --- Helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer, scheme, expected",
    [
        ("stem_conv", "legacy", "layer0.conv1"),
        ("stem_bn3", "resnet", "bn1"),
        ("stem_conv2", "resnet", "conv1.3"),
        ("stage2_block1_se_reduce", "legacy", "layer1.0.se_module.fc1"),
        ("stage5_block3_se_expand", "resnet", "layer4.2.se.fc2"),
        ("stage3_block1_proj_conv", "resnet", "layer2.0.downsample.0"),
        ("stage3_block1_sk_path1_bn", "sknet", "layer2.0.conv2.paths.1.bn"),
        ("stage3_block1_sk_fc2", "sknet", "layer2.0.conv2.attn.fc_select"),
        ("stage3_block1_bn3", "sknet", "layer2.0.conv3.bn"),
        ("stage3_block1_sk_path1_conv", "sknet_basic", "layer2.0.conv1.paths.1.conv"),
        ("stage3_block1_sk_fc1_bn", "sknet_basic", "layer2.0.conv1.attn.bn"),
        ("stage3_block1_bn2", "sknet_basic", "layer2.0.conv2.bn"),
        ("predictions", "legacy", "last_linear"),
        ("stage2_block1_sk_fc1", "legacy", None),
        ("avg_pool", "resnet", None),
        ("stem_bn", "mobilenetv3_large", "bn1"),
        ("stage1_block1_dw_bn", "mobilenetv3_large", "blocks.0.0.bn1"),
        ("stage1_block1_pw", "mobilenetv3_large", "blocks.0.0.conv_pw"),
        ("stage2_block1_pw_bn", "mobilenetv3_large", "blocks.1.0.bn1"),
        ("stage4_block5_se_reduce", "mobilenetv3_large", "blocks.4.0.se.conv_reduce"),
        ("stage5_block3_pwl_bn", "mobilenetv3_large", "blocks.5.2.bn3"),
        ("stage5_block4_conv_bn", "mobilenetv3_large", "blocks.6.0.bn1"),
        ("stage2_block1_se_expand", "mobilenetv3_small", "blocks.0.0.se.conv_expand"),
        ("stage4_block4_pwl", "mobilenetv3_small", "blocks.3.0.conv_pwl"),
        ("head_conv", "mobilenetv3_small", "conv_head"),
        ("predictions", "mobilenetv3_small", "classifier"),
        ("stage1_block1_dw", "mobilenetv3_small", None),
        ("stage5_block5_conv", "mobilenetv3_small", None),
    ],
)
def test_timm_name(layer, scheme, expected):
    assert timm_name(layer, scheme) == expected


def test_schemes():
    names = ("legacy_senet154", "senet154", "skresnext50_32x4d", "skresnet50", "skresnet34")
    assert [timm_scheme(n) for n in names] == ["legacy", "resnet", "sknet", "sknet", "sknet_basic"]
    assert detect_scheme({"layer0.conv1.weight": 0}) == "legacy"
    assert detect_scheme({"conv1.0.weight": 0}) == "resnet"
    assert detect_scheme({"conv1.weight": 0, "layer1.0.conv2.paths.0.conv.weight": 0}) == "sknet"
    assert detect_scheme({"conv1.weight": 0, "layer1.0.conv1.paths.0.conv.weight": 0}) == "sknet_basic"
    assert detect_scheme({"features.0.weight": 0}) is None
    assert detect_scheme(timm_reference.state_shapes("mobilenetv3_large_100")) == "mobilenetv3_large"
    assert detect_scheme(timm_reference.state_shapes("mobilenetv3_small_100")) == "mobilenetv3_small"
    assert detect_scheme({"conv_stem.weight": 0, "blocks.0.0.conv_dw.weight": 0}) is None
    with pytest.raises(ValueError, match="scheme="):
        timm_name("stem_conv", "torchvision")
    with pytest.raises(ValueError, match="timm_name="):
        timm_scheme(None)


def test_to_timm_state_dict_scheme_follows_the_architecture():
    # Read from the model's config: Caffe's ceil-mode stem pool is senet.py's.
    model = _model("se_resnet18")
    assert model_scheme(model) == "legacy"
    assert model_scheme(_model("timm:seresnet18")) == "resnet"
    # Each timm model's scheme is the one its timm module names tensors by.
    schemes = {name: timm_scheme(name) for name in timm_models()}
    assert {n for n, s in schemes.items() if s == "legacy"} == {n for n in schemes if n.startswith("legacy_")}
    assert {n for n, s in schemes.items() if s.startswith("sknet")} == {n for n in schemes if n.startswith("sk")}
    assert schemes["skresnet18"] == schemes["skresnet34"] == "sknet_basic"
    assert {n for n, s in schemes.items() if s == "resnet_d"} == {
        n for n in schemes if re.fullmatch(r".*res(net|next)(aa)?\d+[dt](_.*)?|ecaresnetlight", n)
    }
    assert {n: s for n, s in schemes.items() if s.startswith(("vgg", "inception", "mobilenet"))} == {
        "vgg16_bn": "vgg",
        "inception_resnet_v2": "inception_resnet_v2",
        "mobilenetv3_large_100": "mobilenetv3_large",
        "mobilenetv3_small_100": "mobilenetv3_small",
    }
    with pytest.raises(ValueError, match="scheme is needed.*'se_mobilenet'"):
        to_timm_state_dict(keras_se.create_model("se_mobilenet", input_shape=(32, 32, 3), alpha=0.25))
    state = to_timm_state_dict(model)
    assert state["layer0.bn1.num_batches_tracked"].dtype == np.int64
    assert state["layer0.conv1.weight"].dtype == np.float32


# --- MobileNetV3 (timm's mobilenetv3.py) -------------------------------------------


def _mnv3_fixture_io(not_run):
    if not MNV3_CHECKPOINT.is_file():
        not_run(f"timm fixture not present at {FIXTURES}")
    data = np.load(FIXTURES / "mobilenetv3_small_100_io.npz")
    return data["input_nchw"].transpose(0, 2, 3, 1), data["logits"]


@pytest.mark.parametrize("flavour", ["keras", "tf_keras"])
def test_mobilenetv3_fixture_reproduces_timm_logits(flavour, not_run):
    # tf_keras spells hard-swish as (x / 6) * relu6(x + 3): the same function.
    x, logits = _mnv3_fixture_io(not_run)
    model = keras_se.create_model("timm:mobilenetv3_small_100", classifier_activation=None, weights=MNV3_CHECKPOINT, flavour=flavour)
    y = model(x, training=False)
    y = y.numpy() if hasattr(y, "numpy") else keras.ops.convert_to_numpy(y)
    assert np.abs(y - logits).max() <= MNV3_ATOL
    assert np.abs(logits).max() > 50 * MNV3_ATOL  # the bound is not vacuous


def test_mobilenetv3_fixture_has_timm_reference_names(not_run):
    _mnv3_fixture_io(not_run)
    from keras_se.weights import read_state_dict

    assert _shapes(read_state_dict(MNV3_CHECKPOINT)) == timm_reference.state_shapes("mobilenetv3_small_100")


@pytest.mark.parametrize("name", MOBILENETV3)
def test_mobilenetv3_names_shapes_and_round_trip(name):
    model = _model(f"timm:{name}")
    assert _shapes(to_timm_state_dict(model)) == timm_reference.state_shapes(name)
    state = _synthetic(name)
    load_timm(model, state)
    exported = to_timm_state_dict(model)
    assert exported.keys() == state.keys()
    for key, value in state.items():
        np.testing.assert_array_equal(exported[key], value, err_msg=key)


def test_mobilenetv3_checkpoints_that_do_not_fit(not_run):
    _mnv3_fixture_io(not_run)
    _assert_refused(
        _model("timm:mobilenetv3_large_100"),
        MNV3_CHECKPOINT,
        r"first 'stage1_block1_dw': the checkpoint has timm mobilenetv3.py \(small\) names; the model's architecture is that of timm mobilenetv3.py \(large\)",
    )
    _assert_refused(
        _model("mobilenetv3_small_plain"),
        MNV3_CHECKPOINT,
        r"in the checkpoint but not in the model. 36 unexpected: blocks.0.0.se.conv_expand.bias",
    )
    _assert_refused(
        _model("timm:mobilenetv3_small_100", se_gate="sigmoid"),
        MNV3_CHECKPOINT,
        r"'blocks.0.0.se.conv_reduce.weight': timm's MobileNetV3 SE gate is a hard sigmoid",
    )


def test_mobilenetv3_fixture_into_features_only_backbones(not_run):
    """timm's features_only: each feature is the full model's stage output, and the last one leads to timm's logits.

    The backbone leaves out the head (conv_head, classifier) and every block
    after its last feature; the rest of the checkpoint loads, all or nothing.
    """
    x, logits = _mnv3_fixture_io(not_run)
    x = x[:1]
    full = keras_se.create_model("timm:mobilenetv3_small_100", classifier_activation=None, weights=MNV3_CHECKPOINT)
    backbone = keras_se.create_model("timm:mobilenetv3_small_100", features_only=True, out_indices=(0, 1, 2, 3, 4), weights=MNV3_CHECKPOINT)
    stages = keras.Model(full.input, [full.get_layer(i["layer"]).output for i in backbone.feature_info])
    features = [keras.ops.convert_to_numpy(f) for f in backbone(x)]
    for actual, expected in zip(features, stages(x)):
        np.testing.assert_allclose(actual, keras.ops.convert_to_numpy(expected), atol=1e-6)
    top = keras.Model(full.get_layer("avg_pool").input, full.output)
    assert np.abs(_predict(top, features[-1]) - logits[:1]).max() <= MNV3_ATOL

    partial = keras_se.create_model("timm:mobilenetv3_small_100", features_only=True, out_indices=(1,), weights=MNV3_CHECKPOINT)
    assert not any(layer.name.startswith(("stage3", "stage4", "stage5")) for layer in partial.layers)
    np.testing.assert_allclose(_predict(partial, x), features[1], atol=1e-6)
    # include_top=False leaves out the same head.
    pooled = keras_se.create_model("timm:mobilenetv3_small_100", include_top=False, pooling="avg", weights=MNV3_CHECKPOINT)
    np.testing.assert_allclose(_predict(pooled, x), features[-1].mean(axis=(1, 2)), atol=1e-6)


def test_mobilenetv3_backbone_still_refuses_a_checkpoint_without_a_tensor_it_needs(not_run):
    _mnv3_fixture_io(not_run)
    from keras_se.weights import read_state_dict

    state = read_state_dict(MNV3_CHECKPOINT)
    del state["blocks.1.0.conv_pw.weight"]  # stage 3, feature 2
    backbone = keras_se.create_model("timm:mobilenetv3_small_100", features_only=True, out_indices=(2,), input_shape=(64, 64, 3))
    _assert_refused(backbone, state, r"first offending tensor 'blocks.1.0.conv_pw.weight': missing from the checkpoint")
    # The same checkpoint has every tensor of a backbone that stops before it.
    load_timm(keras_se.create_model("timm:mobilenetv3_small_100", features_only=True, out_indices=(1,), input_shape=(64, 64, 3)), state)
