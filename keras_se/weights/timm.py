"""timm (PyTorch) checkpoints for the keras_se residual networks and MobileNetV3.

Six timm naming schemes cover the SE / SK models timm publishes:

- `"legacy"`: timm's `senet.py` (`legacy_seresnet*`, `legacy_seresnext*`,
  `legacy_senet154`, the ported Caffe models): `layer0.conv1`,
  `layer1.0.se_module.fc1`, `last_linear`.
- `"resnet"`: timm's `resnet.py` (`seresnet*`, `seresnext*`, `senet154`):
  `conv1`, `layer1.0.se.fc1`, `fc`; a deep stem is `conv1.0/1/3/4/6` + `bn1`.
- `"resnet_d"`: timm's `resnet.py` with `avg_down` (the -D / -T and "aa"
  variants: `seresnext26t_32x4d`, `ecaresnet50d`, ...): the shortcut is
  `downsample.1` (conv) / `downsample.2` (BN) after its average pool; ECA
  is `layer1.0.se.conv`.
- `"sknet"`: timm's `sknet.py` bottlenecks (`skresnext50_32x4d`,
  `skresnet50`): the resnet.py stem and head, `ConvNormAct` blocks
  (`layer1.0.conv1.conv`, `layer1.0.conv1.bn`) and `SelectiveKernel`
  (`layer1.0.conv2.paths.{m}.conv/bn`, `conv2.attn.fc_reduce`,
  `conv2.attn.bn`, `conv2.attn.fc_select`).
- `"sknet_basic"`: timm's `sknet.py` basic blocks (`skresnet18`,
  `skresnet34`): the `SelectiveKernel` is `conv1`, the second 3x3 is
  `conv2.conv` / `conv2.bn`.
- `"mobilenetv3_large"`, `"mobilenetv3_small"`: timm's `mobilenetv3.py`
  (`mobilenetv3_large_100`, `mobilenetv3_small_100`): `conv_stem`, `bn1`,
  `blocks.{row}.{index}.conv_pw / conv_dw / se.conv_reduce / conv_pwl`,
  `conv_head`, `classifier`.

Two more cover the plain twins of the SENet paper's other Table 2 models:

- `"vgg"`: timm's `vgg.py` (`vgg16_bn`): `features.{i}` (conv, BN, ReLU and
  max pools numbered in one Sequential), `pre_logits.fc1` / `fc2` (timm's
  `ConvMlp`), `head.fc`.
- `"inception_resnet_v2"`: timm's `inception_resnet_v2.py`: `conv2d_1a.conv`
  / `.bn` ..., `mixed_5b.branch{i}`, `repeat.{k}`, `mixed_6a`, `repeat_1.{k}`,
  `mixed_7a`, `repeat_2.{k}`, `block8`, `conv2d_7b`, `classif`.

Names map layer by layer: `stage{s}_block{b}_...` is `layer{s-1}.{b-1}...`
in the residual schemes (MobileNetV3: `blocks.{row}.{index}`, the rows of
timm's architecture table, which `keras_se.models.mobilenet_v3.block_specs`
gives each block). The layouts of VGG-16 and Inception-ResNet-v2 are read
from their model modules, not declared again here.
Checkpoints must match exactly: missing, unexpected and mis-shaped tensors,
and architecture options that weights cannot show (stride placement, stem
pooling, SE position, SK dilations), stop the load before any weight is set.
"""

import re

import numpy as np

from keras_se.keras_graph import producer_layer
from keras_se.models import inception_resnet, mobilenet_v3, vgg
from keras_se.naming import parse_layer_name
from keras_se.weights import layouts
from keras_se.weights.io import check_tensor_values, read_state_dict
from keras_se.weights.timm_variants import scheme_of_model


def _mobilenetv3_rows(variant):
    """For keras_se's stages 1-5 of a MobileNetV3 variant: the number of blocks of each timm row the stage holds, in order."""
    stages = [{} for _ in mobilenet_v3.STAGES]
    for spec in mobilenet_v3.block_specs(variant):
        rows = stages[spec["stage"] - 1]
        rows[spec["row"]] = rows.get(spec["row"], 0) + 1
    return tuple(tuple(rows.values()) for rows in stages)


# Row 0 is a depthwise-separable block, the last row the 1x1 conv block, the others inverted residuals.
MOBILENETV3_ROWS = {f"mobilenetv3_{variant}": _mobilenetv3_rows(variant) for variant in mobilenet_v3.VARIANTS}
SCHEMES = ("legacy", "resnet", "resnet_d", "sknet", "sknet_basic", "vgg", "inception_resnet_v2", *MOBILENETV3_ROWS)
_SCHEME_NAMES = {
    "legacy": "timm senet.py",
    "resnet": "timm resnet.py",
    "resnet_d": "timm resnet.py (avg_down)",
    "sknet": "timm sknet.py",
    "sknet_basic": "timm sknet.py (basic blocks)",
    "vgg": "timm vgg.py",
    "inception_resnet_v2": "timm inception_resnet_v2.py",
    "mobilenetv3_large": "timm mobilenetv3.py (large)",
    "mobilenetv3_small": "timm mobilenetv3.py (small)",
}
# timm's BatchNorm epsilon where it is not PyTorch's default 1e-5 (the same network's).
_BN_EPSILON = {"inception_resnet_v2": inception_resnet.BN_EPSILON}

_STEM = {
    "legacy": {
        "stem_conv": "layer0.conv1",
        "stem_bn": "layer0.bn1",
        "stem_conv1": "layer0.conv1",
        "stem_bn1": "layer0.bn1",
        "stem_conv2": "layer0.conv2",
        "stem_bn2": "layer0.bn2",
        "stem_conv3": "layer0.conv3",
        "stem_bn3": "layer0.bn3",
        "predictions": "last_linear",
    },
    "resnet": {
        "stem_conv": "conv1",
        "stem_bn": "bn1",
        # timm's deep stem: Sequential(conv, bn, act, conv, bn, act, conv) + bn1.
        "stem_conv1": "conv1.0",
        "stem_bn1": "conv1.1",
        "stem_conv2": "conv1.3",
        "stem_bn2": "conv1.4",
        "stem_conv3": "conv1.6",
        "stem_bn3": "bn1",
        "predictions": "fc",
    },
}
_STEM["sknet"] = _STEM["sknet_basic"] = _STEM["resnet_d"] = _STEM["resnet"]
_STEM["vgg"] = {"pre_logits_fc1": "pre_logits.fc1", "pre_logits_fc2": "pre_logits.fc2", "predictions": "head.fc"}
_STEM["inception_resnet_v2"] = {"predictions": "classif"}

# timm's vgg16 ("D"), as keras_se's: 3x3 convolutions per stage; `features`
# holds conv, BN, ReLU per convolution and one max pool per stage.
_VGG16_CONVS = tuple(len(widths) for widths in vgg.VGG16)
_VGG_NAME = re.compile(r"stage(\d)_block(\d)_(conv|bn)")


def _vgg_name(layer_name):
    match = _VGG_NAME.fullmatch(layer_name)
    if not match or int(match[1]) >= len(_VGG16_CONVS) or not 1 <= int(match[2]) <= _VGG16_CONVS[int(match[1])]:
        return None
    stage, block = int(match[1]), int(match[2])
    index = sum(3 * n + 1 for n in _VGG16_CONVS[:stage]) + 3 * (block - 1) + (match[3] == "bn")
    return f"features.{index}"


# timm's Inception-ResNet-v2: stage -> (reduction module, residual Sequential,
# its length). keras_se's stage 5 ends with the last Block8 (timm's `block8`).
_IRV2_REPEATS = inception_resnet.REPEATS
_IRV2_STAGES = {
    3: ("mixed_5b", "repeat", _IRV2_REPEATS[3]),
    4: ("mixed_6a", "repeat_1", _IRV2_REPEATS[4]),
    5: ("mixed_7a", "repeat_2", _IRV2_REPEATS[5] - 1),
}
_IRV2_ROLES = [
    (r"b(\d)_conv(\d)", "branch{0}.{1}.conv"),
    (r"b(\d)_bn(\d)", "branch{0}.{1}.bn"),
    (r"b(\d)_conv", "branch{0}.conv"),
    (r"b(\d)_bn", "branch{0}.bn"),
    (r"conv", "conv2d"),
]


def _inception_resnet_v2_name(layer_name):
    match = re.fullmatch(r"stem_(conv|bn)(\d[ab])", layer_name)
    if match:
        return f"conv2d_{match[2]}.{'conv' if match[1] == 'conv' else 'bn'}"
    parsed = parse_layer_name(layer_name)
    if parsed.stage not in _IRV2_STAGES:
        return None
    stage, block, role = parsed.stage, parsed.block, parsed.role
    reduction, repeat, length = _IRV2_STAGES[stage]
    if stage == 5 and block == length + 3:
        return {"conv": "conv2d_7b.conv", "bn": "conv2d_7b.bn"}.get(role)
    if block == 1:
        module = reduction
    elif block <= length + 1:
        module = f"{repeat}.{block - 2}"
    elif stage == 5 and block == length + 2:
        module = "block8"  # the last Block8: scale 1.0, no ReLU
    else:
        return None
    for pattern, template in _IRV2_ROLES:
        role_match = re.fullmatch(pattern, role)
        if role_match:
            groups = [int(g) for g in role_match.groups()]
            if len(groups) == 2:
                groups[1] -= 1  # b{i}_conv{j} is module j - 1 of the branch's Sequential
            return f"{module}." + template.format(*groups)
    return None


# Schemes whose names are not `layer{i}.{j}`: a function from layer name to timm name.
_FLAT_NAMES = {"vgg": _vgg_name, "inception_resnet_v2": _inception_resnet_v2_name}
for _scheme in MOBILENETV3_ROWS:
    _STEM[_scheme] = {"stem_conv": "conv_stem", "stem_bn": "bn1", "head_conv": "conv_head", "predictions": "classifier"}


def _sk_rules(conv):
    """keras_se's SK layers -> timm's `SelectiveKernel` module `conv`."""
    return [
        (r"sk_path(\d+)_conv", rf"{conv}.paths.\1.conv"),
        (r"sk_path(\d+)_bn", rf"{conv}.paths.\1.bn"),
        (r"sk_fc1", f"{conv}.attn.fc_reduce"),
        (r"sk_fc1_bn", f"{conv}.attn.bn"),
        (r"sk_fc2", f"{conv}.attn.fc_select"),
    ]


# keras_se block layer (after `stage{s}_block{b}_`) -> timm name (after `layer{i}.{j}.`).
_PROJ = [(r"proj_conv", "downsample.0"), (r"proj_bn", "downsample.1")]
_PROJ_AVG = [(r"proj_conv", "downsample.1"), (r"proj_bn", "downsample.2")]  # downsample.0 is the pool
# resnet.py's Bottleneck / BasicBlock; its attention module is `se` whatever the kind (create_attn).
_RESNET_PY_BLOCK = [(r"conv(\d)", r"conv\1"), (r"bn(\d)", r"bn\1"), (r"se_reduce", "se.fc1"), (r"se_expand", "se.fc2"), (r"eca", "se.conv")]
_BLOCK = {
    "legacy": [(r"conv(\d)", r"conv\1"), (r"bn(\d)", r"bn\1"), *_PROJ, (r"se_reduce", "se_module.fc1"), (r"se_expand", "se_module.fc2")],
    "resnet": [*_PROJ, *_RESNET_PY_BLOCK],
    "resnet_d": [*_PROJ_AVG, *_RESNET_PY_BLOCK],
    "sknet": [
        (r"conv([13])", r"conv\1.conv"),
        (r"bn([13])", r"conv\1.bn"),
        *_PROJ,
        *_sk_rules("conv2"),
        (r"se_reduce", "se.fc1"),
        (r"se_expand", "se.fc2"),
    ],
    "sknet_basic": [(r"conv2", "conv2.conv"), (r"bn2", "conv2.bn"), *_PROJ, *_sk_rules("conv1")],
}
_BN_ROLES = ("weight", "bias", "running_mean", "running_var")
# MobileNetV3's blocks by kind: keras_se role -> timm name.
_SE = {"se_reduce": "se.conv_reduce", "se_expand": "se.conv_expand"}
_MOBILENETV3_BLOCK = {
    "ds": {"dw": "conv_dw", "dw_bn": "bn1", "pw": "conv_pw", "pw_bn": "bn2", **_SE},
    "ir": {"pw": "conv_pw", "pw_bn": "bn1", "dw": "conv_dw", "dw_bn": "bn2", "pwl": "conv_pwl", "pwl_bn": "bn3", **_SE},
    "cn": {"conv": "conv", "conv_bn": "bn1"},
}


def _mobilenetv3_block(scheme, stage, block):
    """(timm row, index in the row, block kind) of keras_se's `stage{stage}_block{block}`, or None."""
    stages = MOBILENETV3_ROWS[scheme]
    if not 1 <= stage <= len(stages):
        return None
    row = sum(len(rows) for rows in stages[: stage - 1])
    rows_total = sum(len(rows) for rows in stages)
    for length in stages[stage - 1]:
        if block <= length:
            kind = "ds" if row == 0 else "cn" if row == rows_total - 1 else "ir"
            return row, block - 1, kind
        block -= length
        row += 1
    return None


def model_scheme(model):
    """The timm naming scheme of a keras_se model's architecture, or None.

    Read from the model's class and `get_config()` (see
    `timm_variants.scheme_of_config`); None for a model that is not a
    keras_se model (a tf_keras rebuild, say), whose checkpoint then names
    its scheme.
    """
    return scheme_of_model(model)


def timm_name(layer_name, scheme):
    """The timm module name of a keras_se layer, or None if it has none.

    Example:

    >>> timm_name("stage2_block1_se_reduce", "resnet")
    'layer1.0.se.fc1'
    """
    _check_scheme(scheme)
    if layer_name in _STEM[scheme]:
        return _STEM[scheme][layer_name]
    if scheme in _FLAT_NAMES:
        return _FLAT_NAMES[scheme](layer_name)
    parsed = parse_layer_name(layer_name)
    if parsed.stage is None:
        return None
    stage, block, role = parsed.stage, parsed.block, parsed.role
    if scheme in MOBILENETV3_ROWS:
        where = _mobilenetv3_block(scheme, stage, block)
        if where is None or role not in _MOBILENETV3_BLOCK[where[2]]:
            return None
        return f"blocks.{where[0]}.{where[1]}.{_MOBILENETV3_BLOCK[where[2]][role]}"
    for pattern, replacement in _BLOCK[scheme]:
        if re.fullmatch(pattern, role):
            return f"layer{stage - 1}.{block - 1}." + re.sub(pattern, replacement, role)
    return None


def _check_scheme(scheme):
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}. Received: scheme={scheme!r}")


def _class_names(layer):
    return {cls.__name__ for cls in type(layer).__mro__}


def _weight_roles(layer):
    """[(timm suffix, layout kind)] in `layer.get_weights()` order."""
    classes = _class_names(layer)
    if "BatchNormalization" in classes:
        if not (layer.center and layer.scale):
            raise ValueError(f"BatchNormalization without center or scale has no timm counterpart. Received: layer={layer.name!r}")
        roles = [(role, "vector") for role in _BN_ROLES]
    elif "DepthwiseConv2D" in classes:
        roles = [("weight", "depthwise")] + ([("bias", "vector")] if layer.use_bias else [])
    elif "Conv2D" in classes:
        roles = [("weight", "conv")] + ([("bias", "vector")] if layer.use_bias else [])
    elif "Dense" in classes:
        roles = [("weight", "dense")] + ([("bias", "vector")] if layer.use_bias else [])
    elif "EfficientChannelAttention" in classes:
        roles = [("weight", "conv1d")]  # timm's EcaModule.conv
    else:
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) has weights with no timm layout.")
    if len(roles) != len(layer.weights):
        raise ValueError(f"layer {layer.name!r} has {len(layer.weights)} weights where timm has {len(roles)}.")
    return roles


class _Slot:
    """One timm tensor and the Keras weight it fills."""

    def __init__(self, key, layer, index, kind, shape):
        self.key = key
        self.layer = layer
        self.index = index
        self.kind = kind
        self.shape = shape


def _slots(model, scheme):
    """The timm tensors `model` has, in model order; layers without a timm
    name are returned separately."""
    slots, unnamed = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        prefix = timm_name(layer.name, scheme)
        if prefix is None:
            unnamed.append(layer.name)
            continue
        for index, ((role, kind), weight) in enumerate(zip(_weight_roles(layer), layer.weights)):
            slots.append(_Slot(f"{prefix}.{role}", layer, index, kind, tuple(int(d) for d in weight.shape)))
    return slots, unnamed


def to_timm_state_dict(model, scheme=None):
    """The weights of `model` as a timm state dict (numpy, PyTorch layout).

    The inverse of `load_timm`: save it with `safetensors.numpy.save_file`
    and timm's model of the same configuration loads it with
    `load_state_dict(strict=True)` (as torch tensors).

    Args:
        model: a keras_se residual model (SE-ResNet, SE-ResNeXt, SENet-154,
            SKNet or a plain twin), Keras 3 or tf_keras.
        scheme: one of `SCHEMES` or None (default). None takes the
            scheme the model's architecture follows (`model_scheme`).

    Returns:
        dict from timm tensor name to float32 array (int64 zeros for
        BatchNorm's `num_batches_tracked`).

    Example:

    >>> model = keras_se.create_model("timm:seresnet50")
    >>> state = to_timm_state_dict(model)
    >>> state["layer1.0.se.fc1.weight"].shape
    (16, 256, 1, 1)
    """
    if scheme is None:
        scheme = model_scheme(model)
    if scheme is None:
        raise ValueError(
            "scheme is needed for a model that is not a keras_se residual model "
            f"(one of {SCHEMES}). Received: scheme=None for model {model.name!r}"
        )
    _check_scheme(scheme)
    slots, unnamed = _slots(model, scheme)
    if unnamed:
        raise ValueError(f"layer {unnamed[0]!r} has no counterpart in {_SCHEME_NAMES[scheme]}. Received: scheme={scheme!r}")
    values = {}
    state = {}
    for slot in slots:
        if slot.layer.name not in values:
            values[slot.layer.name] = slot.layer.get_weights()
        state[slot.key] = layouts.to_torch(slot.kind, values[slot.layer.name][slot.index]).astype(np.float32)
        if slot.key.endswith(".running_var"):
            state[slot.key[: -len("running_var")] + "num_batches_tracked"] = np.zeros((), np.int64)
    return state


def detect_scheme(state):
    """The timm naming scheme of a state dict, or None if it has none.

    Example:

    >>> detect_scheme({"layer0.conv1.weight": ...})
    'legacy'
    """
    keys = list(state)
    if "pre_logits.fc1.weight" in state:
        return "vgg"
    if "conv2d_1a.conv.weight" in state:
        return "inception_resnet_v2"
    if "conv_stem.weight" in state:
        rows = {int(m[1]) for key in keys if (m := re.match(r"blocks\.(\d+)\.", key))}
        for scheme, stages in MOBILENETV3_ROWS.items():
            if rows == set(range(sum(len(r) for r in stages))):
                return scheme
        return None
    if any(re.fullmatch(r"layer\d+\.\d+\.conv1\.paths\..*", key) for key in keys):
        return "sknet_basic"
    if any(".paths." in key for key in keys):
        return "sknet"
    if "layer0.conv1.weight" in state or "last_linear.weight" in state:
        return "legacy"
    if "conv1.weight" in state or "conv1.0.weight" in state:
        # avg_down shortcuts put their BN at downsample.2 (downsample.0 is the pool).
        return "resnet_d" if any(re.fullmatch(r"layer\d+\.\d+\.downsample\.2\.weight", key) for key in keys) else "resnet"
    return None


def load_timm(model, checkpoint):
    """Loads a timm checkpoint into a keras_se residual model or MobileNetV3.

    All or nothing: every tensor of the model must be in the checkpoint with
    its shape, every tensor of the checkpoint must have a place in the model
    (BatchNorm's `num_batches_tracked` aside, and the top of a model built
    with `include_top=False`: the classifier, MobileNetV3's head conv, VGG's
    fc1 / fc2), and the model must compute what timm's
    does with them (stride placement, stem pooling, SE position and gate, SK
    dilations). Otherwise a `ValueError` names the first offending tensor and
    lists every problem, and no weight is set.

    Layouts: conv kernels OIHW -> HWIO (grouped ones too), depthwise
    kernels, linear (out, in) -> Dense (in, out) or 1x1 conv, BatchNorm
    weight / bias / running_mean / running_var -> gamma / beta /
    moving_mean / moving_variance. float16 and bfloat16 tensors are widened.

    The naming scheme is the checkpoint's; the model's architecture (read
    from `model.get_config()`, `model_scheme`) is then checked against what
    that timm code computes, and every difference is named.
    The model expects timm's input: RGB, normalised with the ImageNet mean
    and std, NHWC. timm returns logits: build with
    `classifier_activation=None` to compare them.

    Args:
        model: a keras_se SE-ResNet, SE-ResNeXt, SENet-154, SKNet or
            MobileNetV3 (or plain twin) model, Keras 3 or tf_keras.
        checkpoint: path to a `.safetensors` file (no torch needed), a
            `.pth` / `.pt` / `.bin` file (needs torch), or a dict from tensor
            name to array.

    Returns:
        The model, with the weights set.

    Raises:
        ValueError: the file is missing, unreadable or truncated, or it does
            not match the model.
        ImportError: a torch file and torch is not installed.

    Example:

    >>> model = keras_se.create_model("timm:legacy_seresnet18", classifier_activation=None)
    >>> load_timm(model, "legacy_seresnet18.safetensors")

    Reference:
        - [Hu et al., Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507)
        - [Li et al., Selective Kernel Networks](https://arxiv.org/abs/1903.06586)
        - [timm](https://github.com/huggingface/pytorch-image-models)
    """
    if isinstance(checkpoint, dict):
        state, source = dict(checkpoint), "checkpoint"
    else:
        state = read_state_dict(checkpoint)
        source = repr(str(checkpoint))
    del checkpoint  # `state` alone holds the tensors: each is dropped once set (below)
    model_timm = model_scheme(model)
    scheme = detect_scheme(state)
    if scheme is None:
        first = next(iter(state))
        raise ValueError(
            f"{source} is not a timm SE-ResNet / SE-ResNeXt / SENet / SKNet, MobileNetV3, VGG or Inception-ResNet-v2 "
            f"checkpoint: it has none of timm's stem tensors (conv1.weight, layer0.conv1.weight, conv_stem.weight with "
            f"MobileNetV3-Large or -Small blocks, pre_logits.fc1.weight, conv2d_1a.conv.weight). First tensor: {first!r}."
        )
    slots, unnamed = _slots(model, scheme)
    if unnamed:
        if model_timm and model_timm != scheme:
            why = f"the checkpoint has {_SCHEME_NAMES[scheme]} names; the model's architecture is that of {_SCHEME_NAMES[model_timm]}."
        else:
            why = (
                "only the residual SE / SK networks, MobileNetV3, and the plain VGG-16 and Inception-ResNet-v2 "
                "load timm checkpoints (timm has no SE variant of the latter two)."
            )
        raise ValueError(f"model {model.name!r} has layers with no counterpart in {_SCHEME_NAMES[scheme]}, first {unnamed[0]!r}: {why}")
    problems = []  # (order, key, kind, message)
    order = {slot.key: i for i, slot in enumerate(slots)}
    for slot in slots:
        if slot.key not in state:
            problems.append((order[slot.key], slot.key, "missing", "missing from the checkpoint"))
            continue
        shape = tuple(np.shape(state[slot.key]))
        if not layouts.shapes_match(slot.kind, slot.shape, shape):
            message = f"shape {shape} in the checkpoint, the model needs {layouts.torch_shape(slot.kind, slot.shape)}"
            if slot.layer.name == "predictions":
                message += " (build the model with the checkpoint's classes, or include_top=False)"
            problems.append((order[slot.key], slot.key, "mis-shaped", message))
    ignored = _ignored_keys(model, scheme, state)
    for i, key in enumerate(state):
        if key not in order and key not in ignored:
            problems.append((len(order) + i, key, "unexpected", "in the checkpoint but not in the model"))
    for key, message in _architecture_problems(model, scheme):
        problems.append((order.get(key, -1), key, "architecture", message))
    if problems:
        raise ValueError(_report(problems, source, model, scheme, model_timm))
    for slot in slots:
        try:
            check_tensor_values(slot.key, state[slot.key])
        except ValueError as error:
            raise ValueError(f"{source}: {error} Nothing was loaded.") from None

    # Layer by layer, each checkpoint tensor dropped once set: the peak
    # memory is the checkpoint and one layer, not the checkpoint and the
    # whole model twice (BENCHMARKS.md, "Loading ImageNet weights").
    by_layer = {}
    for slot in slots:
        by_layer.setdefault(slot.layer.name, []).append(slot)
    for layer_name, layer_slots in by_layer.items():
        layer = model.get_layer(layer_name)
        weights = layer.get_weights()
        for slot in layer_slots:
            array = layouts.to_keras(slot.kind, state.pop(slot.key), slot.shape)
            weights[slot.index] = np.asarray(array, dtype=weights[slot.index].dtype)
        layer.set_weights(weights)
    return model


# The layers of each scheme's top (include_top): absent from a model built
# without it, and then their tensors have no place.
_TOP = {"vgg": ("pre_logits_fc1", "pre_logits_fc2", "predictions"), **{s: ("head_conv", "predictions") for s in MOBILENETV3_ROWS}}
# Inception-ResNet-v2's modules by the feature (timm's feature_info) that first needs them.
_IRV2_FEATURE = {
    **dict.fromkeys(("conv2d_1a", "conv2d_2a", "conv2d_2b"), 0),
    **dict.fromkeys(("conv2d_3b", "conv2d_4a"), 1),
    **dict.fromkeys(("mixed_5b", "repeat"), 2),
    **dict.fromkeys(("mixed_6a", "repeat_1"), 3),
    **dict.fromkeys(("mixed_7a", "repeat_2", "block8", "conv2d_7b"), 4),
}


def _feature_index(scheme, key):
    """The first feature (`out_indices` entry, stride 2**(i + 1)) whose computation needs timm tensor `key`."""
    if scheme in MOBILENETV3_ROWS:
        match = re.match(r"blocks\.(\d+)\.", key)
        if not match:
            return 0  # the stem
        rows = [stage for stage, lengths in enumerate(MOBILENETV3_ROWS[scheme], start=1) for _ in lengths]
        return rows[int(match[1])] - 1 if int(match[1]) < len(rows) else 0
    if scheme == "vgg":
        match = re.match(r"features\.(\d+)\.", key)
        starts = np.cumsum([0] + [3 * n + 1 for n in _VGG16_CONVS])
        # Stage s (stride 2**s) ends at feature s - 1; stage 0 is at stride 1.
        return max(int(np.searchsorted(starts, int(match[1]), side="right")) - 2, 0) if match else 0
    if scheme == "inception_resnet_v2":
        return _IRV2_FEATURE.get(key.split(".")[0], 0)
    # Residual schemes: layer{i} is stage i + 1, feature i (senet.py's layer0 is the stem).
    match = re.match(r"layer(\d+)\.", key)
    return int(match[1]) if match else 0


def _ignored_keys(model, scheme, state):
    ignored = {key for key in state if key.endswith(".num_batches_tracked")}
    names = {layer.name for layer in model.layers}
    if "predictions" not in names:
        heads = tuple(_STEM[scheme][layer] + "." for layer in _TOP.get(scheme, ("predictions",)) if layer not in names)
        ignored |= {key for key in state if key.startswith(heads)}
    config = model.get_config() if model_scheme(model) else {}
    if config.get("features_only"):
        # A backbone stops after its last returned feature, as timm's
        # features_only model does: the tensors of later stages have no place.
        last = max(config["out_indices"])
        ignored |= {key for key in state if _feature_index(scheme, key) > last}
    return ignored


def _report(problems, source, model, scheme, model_timm):
    problems.sort(key=lambda p: p[0])
    _, first_key, _, first_message = problems[0]
    lines = [
        f"{source} does not match model {model.name!r} ({_SCHEME_NAMES[scheme]} names): "
        f"first offending tensor {first_key!r}: {first_message}."
    ]
    groups = {}
    for _, key, kind, message in problems:
        groups.setdefault(kind, []).append(key if kind in ("missing", "unexpected") else f"{key} ({message})")
    for kind in ("missing", "unexpected", "mis-shaped", "architecture"):
        if kind in groups:
            names = groups[kind]
            more = f", ... ({len(names) - 5} more)" if len(names) > 5 else ""
            lines.append(f"{len(names)} {kind}: " + ", ".join(names[:5]) + more + ".")
    if model_timm and model_timm != scheme:
        lines.append(f"The checkpoint has {_SCHEME_NAMES[scheme]} names; the model's architecture is that of {_SCHEME_NAMES[model_timm]}.")
    if model_timm != scheme:
        lines.append("keras_se.list_models('timm:*') lists the configurations that reproduce timm models.")
    lines.append("Nothing was loaded.")
    return " ".join(lines)


def _layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _input_layer_name(layer):
    producer = producer_layer(layer.input)
    return producer.name if producer is not None else None


def _architecture_problems(model, scheme):
    """What timm computes differently with the same tensors: [(key, message)]."""
    problems = []
    names = {layer.name for layer in model.layers}

    def key(layer_name):
        return f"{timm_name(layer_name, scheme)}.weight"

    stem = "stem_conv" if "stem_conv" in names else "stem_conv1"
    pad = _layer(model, "stem_pool_pad")
    pool = "pad" if pad is not None and tuple(map(tuple, pad.padding)) == ((1, 1), (1, 1)) else "ceil"
    if "AveragePooling2D" in _class_names(_layer(model, "stem_pool")):
        pool = "avg"
    want_pool = "ceil" if scheme == "legacy" else "pad"
    # timm's "aa" variants pool the stem with nn.AvgPool2d(2): weights cannot tell.
    if scheme == "resnet_d" and pool == "avg":
        want_pool = "avg"
    if stem in names and "stem_pool" in names and pool != want_pool:
        problems.append((key(stem), f"timm's stem max pool is {want_pool!r}, the model's is {pool!r} (stem_pool)"))

    for layer in model.layers:
        epsilon = _BN_EPSILON.get(scheme, 1e-5)
        if layer.weights and "BatchNormalization" in _class_names(layer) and abs(layer.epsilon - epsilon) > 1e-9:
            problems.append((key(layer.name), f"BatchNorm epsilon {layer.epsilon}, timm's is {epsilon:g}"))

    if scheme in MOBILENETV3_ROWS:
        return problems + _mobilenetv3_se_problems(model, scheme, names)
    blocks = sorted({m[1] for m in (re.fullmatch(r"(stage\d+_block\d+)_(conv1|sk_path0_conv)", n) for n in names) if m})
    for block in blocks:
        bottleneck = f"{block}_conv3" in names
        conv1 = _layer(model, f"{block}_conv1")  # None where SK replaces it (basic SK blocks)
        conv3x3 = _layer(model, f"{block}_conv2") if f"{block}_conv2" in names else _layer(model, f"{block}_sk_path0_conv")
        if bottleneck and conv3x3 is not None and (_strided(conv1) or _strided(conv3x3)):
            # senet.py's SEResNetBottleneck (groups 1) strides on conv1, Caffe style.
            legacy_1x1 = scheme == "legacy" and getattr(conv3x3, "groups", 1) == 1
            want, have = ("1x1" if legacy_1x1 else "3x3"), ("1x1" if _strided(conv1) else "3x3")
            if have != want:
                where = conv1 if want == "1x1" else conv3x3
                problems.append((key(where.name), f"timm strides on the {want} conv, the model on the {have} (stride_on)"))
        se_input = f"{block}_bn3" if bottleneck else f"{block}_bn2"
        if not bottleneck:
            # senet.py's SEResNetBlock has a ReLU after bn2, before SE.
            want_relu = scheme == "legacy"
            if (f"{block}_relu2" in names) != want_relu:
                problems.append(
                    (key(f"{block}_conv2"), f"timm's basic block has {'a' if want_relu else 'no'} ReLU after bn2 (basic_last_relu)")
                )
            if want_relu:
                se_input = f"{block}_relu2"
        if f"{block}_se_reduce" in names:
            problems.extend((key(f"{block}_se_reduce"), m) for m in _se_problems(model, f"{block}_se", se_input))
        for m in range(8):
            conv = _layer(model, f"{block}_sk_path{m}_conv")
            if conv is None:
                break
            subsample = _layer(model, f"{block}_sk_path{m}_subsample")
            dilation = conv.dilation_rate[0] * (subsample.strides[0] if subsample is not None else 1)
            if dilation != m + 1:
                problems.append((key(f"{block}_sk_path{m}_conv"), f"timm's SK path {m} has dilation {m + 1}, the model's {dilation}"))
    return problems


def _mobilenetv3_se_problems(model, scheme, names):
    """timm's MobileNetV3 SE: ReLU, then a hard-sigmoid gate (relu6(x + 3) / 6)."""
    problems = []
    for name in sorted(n for n in names if n.endswith("_se_reduce")):
        prefix = name[: -len("_reduce")]
        act = _layer(model, f"{prefix}_act")
        if act is None or "ReLU" not in _class_names(act) or getattr(act, "max_value", None) is not None:
            problems.append((f"{timm_name(name, scheme)}.weight", "timm's SE activation is ReLU, the model's is not"))
        if f"{prefix}_gate_relu6" not in names:
            problems.append(
                (f"{timm_name(name, scheme)}.weight", "timm's MobileNetV3 SE gate is a hard sigmoid, the model's is not (se_gate)")
            )
    return problems


def _strided(layer):
    return tuple(layer.strides) != (1, 1)


def _se_problems(model, prefix, se_input):
    problems = []
    squeeze = _layer(model, f"{prefix}_squeeze")
    if squeeze is None or "GlobalAveragePooling2D" not in _class_names(squeeze):
        problems.append("timm's SE squeezes with a mean, the model does not (se_squeeze)")
    elif _input_layer_name(squeeze) != se_input:
        problems.append(f"timm's SE takes {se_input}, the model's takes {_input_layer_name(squeeze)} (se_position)")
    act = _layer(model, f"{prefix}_act")
    if act is None or "ReLU" not in _class_names(act) or getattr(act, "max_value", None) is not None:
        problems.append("timm's SE activation is ReLU, the model's is not")
    gate = _layer(model, f"{prefix}_gate")
    if gate is None or getattr(getattr(gate, "activation", None), "__name__", None) != "sigmoid":
        problems.append("timm's SE gate is a sigmoid, the model's is not (se_gate)")
    return problems
