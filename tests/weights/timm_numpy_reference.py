"""timm's `vgg16_bn` and `inception_resnet_v2`, written down from timm's source and run in NumPy.

No keras_se code and no torch: the state dict names and shapes follow the
constructors of timm's `models/vgg.py` (`VGG`, `ConvMlp`, `ClassifierHead`,
cfg "D") and `models/inception_resnet_v2.py` (`BasicConv2d`, `Mixed_5b`,
`Block35`, `Mixed_6a`, `Block17`, `Mixed_7a`, `Block8`,
`InceptionResnetV2`), and the forward passes follow their `forward`
methods with PyTorch's semantics (NCHW, symmetric zero padding,
`AvgPool2d(count_include_pad=False)`, floor-mode max pools,
`adaptive_avg_pool2d`). They run in float64, so a float32 Keras model can
be checked against them.
"""

import math

import numpy as np

# --- timm's state dicts -----------------------------------------------------------

VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def _bn(prefix, channels):
    return {f"{prefix}.{r}": (channels,) for r in ("weight", "bias", "running_mean", "running_var")} | {f"{prefix}.num_batches_tracked": ()}


def vgg16_bn_shapes(num_classes=1000):
    s, prev, i = {}, 3, 0
    for v in VGG16_CFG:
        if v == "M":
            i += 1
            continue
        s[f"features.{i}.weight"] = (v, prev, 3, 3)
        s[f"features.{i}.bias"] = (v,)
        s |= _bn(f"features.{i + 1}", v)
        prev, i = v, i + 3
    s |= {
        "pre_logits.fc1.weight": (4096, 512, 7, 7),
        "pre_logits.fc1.bias": (4096,),
        "pre_logits.fc2.weight": (4096, 4096, 1, 1),
        "pre_logits.fc2.bias": (4096,),
        "head.fc.weight": (num_classes, 4096),
        "head.fc.bias": (num_classes,),
    }
    return s


def _basic(prefix, cin, cout, kernel):
    kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    return {f"{prefix}.conv.weight": (cout, cin, kh, kw)} | _bn(f"{prefix}.bn", cout)


# Module definitions shared by the shapes and the forward pass: branch ->
# [(kind, cin, cout, kernel, stride, padding)]; kind "conv" (BasicConv2d),
# "avg" (AvgPool2d 3/1/1) or "max" (MaxPool2d 3/2). A branch of one
# BasicConv2d is the module itself (`branch0.conv`), a longer one a Sequential.
MIXED_5B = [
    [("conv", 192, 96, 1, 1, 0)],
    [("conv", 192, 48, 1, 1, 0), ("conv", 48, 64, 5, 1, 2)],
    [("conv", 192, 64, 1, 1, 0), ("conv", 64, 96, 3, 1, 1), ("conv", 96, 96, 3, 1, 1)],
    [("avg",), ("conv", 192, 64, 1, 1, 0)],
]
BLOCK35 = [
    [("conv", 320, 32, 1, 1, 0)],
    [("conv", 320, 32, 1, 1, 0), ("conv", 32, 32, 3, 1, 1)],
    [("conv", 320, 32, 1, 1, 0), ("conv", 32, 48, 3, 1, 1), ("conv", 48, 64, 3, 1, 1)],
]
MIXED_6A = [
    [("conv", 320, 384, 3, 2, 0)],
    [("conv", 320, 256, 1, 1, 0), ("conv", 256, 256, 3, 1, 1), ("conv", 256, 384, 3, 2, 0)],
    [("max",)],
]
BLOCK17 = [
    [("conv", 1088, 192, 1, 1, 0)],
    [("conv", 1088, 128, 1, 1, 0), ("conv", 128, 160, (1, 7), 1, (0, 3)), ("conv", 160, 192, (7, 1), 1, (3, 0))],
]
MIXED_7A = [
    [("conv", 1088, 256, 1, 1, 0), ("conv", 256, 384, 3, 2, 0)],
    [("conv", 1088, 256, 1, 1, 0), ("conv", 256, 288, 3, 2, 0)],
    [("conv", 1088, 256, 1, 1, 0), ("conv", 256, 288, 3, 1, 1), ("conv", 288, 320, 3, 2, 0)],
    [("max",)],
]
BLOCK8 = [
    [("conv", 2080, 192, 1, 1, 0)],
    [("conv", 2080, 192, 1, 1, 0), ("conv", 192, 224, (1, 3), 1, (0, 1)), ("conv", 224, 256, (3, 1), 1, (1, 0))],
]
RESIDUAL = {"block35": (BLOCK35, 128, 320), "block17": (BLOCK17, 384, 1088), "block8": (BLOCK8, 448, 2080)}
STEM = [
    ("conv2d_1a", 3, 32, 3, 2, 0),
    ("conv2d_2a", 32, 32, 3, 1, 0),
    ("conv2d_2b", 32, 64, 3, 1, 1),
    "maxpool_3a",
    ("conv2d_3b", 64, 80, 1, 1, 0),
    ("conv2d_4a", 80, 192, 3, 1, 0),
    "maxpool_5a",
]


def _module_shapes(prefix, branches):
    s = {}
    for i, ops in enumerate(branches):
        for j, op in enumerate(ops):
            if op[0] == "conv":
                name = f"{prefix}.branch{i}" if len(ops) == 1 else f"{prefix}.branch{i}.{j}"
                s |= _basic(name, op[1], op[2], op[3])
    return s


def _irv2_modules():
    """(timm module name, kind, scale, relu) in forward order."""
    modules = [("mixed_5b", "mixed_5b", None, None)]
    modules += [(f"repeat.{k}", "block35", 0.17, True) for k in range(10)]
    modules += [("mixed_6a", "mixed_6a", None, None)]
    modules += [(f"repeat_1.{k}", "block17", 0.10, True) for k in range(20)]
    modules += [("mixed_7a", "mixed_7a", None, None)]
    modules += [(f"repeat_2.{k}", "block8", 0.20, True) for k in range(9)]
    modules += [("block8", "block8", 1.0, False)]
    return modules


_MIXED = {"mixed_5b": MIXED_5B, "mixed_6a": MIXED_6A, "mixed_7a": MIXED_7A}


def inception_resnet_v2_shapes(num_classes=1000):
    s = {}
    for op in STEM:
        if isinstance(op, tuple):
            s |= _basic(op[0], op[1], op[2], op[3])
    for name, kind, _, _ in _irv2_modules():
        if kind in _MIXED:
            s |= _module_shapes(name, _MIXED[kind])
        else:
            branches, width, out = RESIDUAL[kind]
            s |= _module_shapes(name, branches)
            s |= {f"{name}.conv2d.weight": (out, width, 1, 1), f"{name}.conv2d.bias": (out,)}
    s |= _basic("conv2d_7b", 2080, 1536, 1)
    s |= {"classif.weight": (num_classes, 1536), "classif.bias": (num_classes,)}
    return s


def count_params(shapes):
    return sum(math.prod(v) for k, v in shapes.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))


# --- PyTorch operations in NumPy (NCHW, float64) -------------------------------------


def conv2d(x, w, b=None, stride=1, padding=0):
    ph, pw = padding if isinstance(padding, tuple) else (padding, padding)
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    y = np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    return y if b is None else y + b[None, :, None, None]


def batch_norm(x, state, prefix, eps):
    mean, var = state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"]
    scale = state[f"{prefix}.weight"] / np.sqrt(var + eps)
    return (x - mean[None, :, None, None]) * scale[None, :, None, None] + state[f"{prefix}.bias"][None, :, None, None]


def relu(x):
    return np.maximum(x, 0)


def max_pool(x, kernel, stride):
    return np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride].max(axis=(4, 5))


def avg_pool_exclude_pad(x, kernel=3, padding=1):
    """`AvgPool2d(kernel, 1, padding, count_include_pad=False)`."""
    pad = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    total = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad), (kernel, kernel), axis=(2, 3)).sum(axis=(4, 5))
    ones = np.pad(np.ones(x.shape[2:]), pad[2:])
    count = np.lib.stride_tricks.sliding_window_view(ones, (kernel, kernel)).sum(axis=(2, 3))
    return total / count


def adaptive_avg_pool(x, out):
    """`F.adaptive_avg_pool2d(x, (out_h, out_w))`: bin i covers [floor(i*H/o), ceil((i+1)*H/o))."""
    rows = []
    h, w = x.shape[2:]
    for i in range(out[0]):
        r0, r1 = (i * h) // out[0], math.ceil((i + 1) * h / out[0])
        cols = []
        for j in range(out[1]):
            c0, c1 = (j * w) // out[1], math.ceil((j + 1) * w / out[1])
            cols.append(x[:, :, r0:r1, c0:c1].mean(axis=(2, 3)))
        rows.append(np.stack(cols, axis=-1))
    return np.stack(rows, axis=-2)


def _float64(state):
    return {k: np.asarray(v, np.float64) for k, v in state.items()}


# --- Forward passes ----------------------------------------------------------------


def vgg16_bn_forward(state, x, features=None):
    """timm `VGG.forward` (eval mode): logits for an NCHW input.

    With `features=n`: the first n of timm's `feature_info` outputs instead
    (timm's `features_only` model: the ReLU before each max pool, strides 1
    to 16, then the last max pool, stride 32), computing no further.
    """
    s = _float64(state)
    x = np.asarray(x, np.float64)
    i = 0
    found = []
    for v in VGG16_CFG:
        if v == "M":
            found.append(x)
            if features is not None and len(found) >= features:
                return found
            x = max_pool(x, 2, 2)
            i += 1
            continue
        x = conv2d(x, s[f"features.{i}.weight"], s[f"features.{i}.bias"], padding=1)
        x = relu(batch_norm(x, s, f"features.{i + 1}", 1e-5))
        i += 3
    if features is not None:
        return found + [x]
    if x.shape[2] < 7 or x.shape[3] < 7:
        x = adaptive_avg_pool(x, (max(7, x.shape[2]), max(7, x.shape[3])))
    x = relu(conv2d(x, s["pre_logits.fc1.weight"], s["pre_logits.fc1.bias"]))
    x = relu(conv2d(x, s["pre_logits.fc2.weight"], s["pre_logits.fc2.bias"]))
    x = x.mean(axis=(2, 3))
    return x @ s["head.fc.weight"].T + s["head.fc.bias"]


def _basic_forward(s, prefix, x, stride, padding):
    x = conv2d(x, s[f"{prefix}.conv.weight"], stride=stride, padding=padding)
    return relu(batch_norm(x, s, f"{prefix}.bn", 1e-3))


def _module_forward(s, prefix, branches, x):
    outs = []
    for i, ops in enumerate(branches):
        y = x
        for j, op in enumerate(ops):
            if op[0] == "avg":
                y = avg_pool_exclude_pad(y)
            elif op[0] == "max":
                y = max_pool(y, 3, 2)
            else:
                name = f"{prefix}.branch{i}" if len(ops) == 1 else f"{prefix}.branch{i}.{j}"
                y = _basic_forward(s, name, y, op[4], op[5])
        outs.append(y)
    return np.concatenate(outs, axis=1)


# timm's InceptionResnetV2.feature_info: the modules whose outputs features_only returns.
IRV2_FEATURE_MODULES = ("conv2d_2b", "conv2d_4a", "repeat.9", "repeat_1.19", "conv2d_7b")


def inception_resnet_v2_forward(state, x, features=None):
    """timm `InceptionResnetV2.forward` (eval mode): logits for an NCHW input.

    With `features=n`: the outputs of the first n `IRV2_FEATURE_MODULES`
    instead (timm's `features_only` model), computing no further.
    """
    s = _float64(state)
    x = np.asarray(x, np.float64)
    found = []

    def done(name, x):
        if name in IRV2_FEATURE_MODULES:
            found.append(x)
        return features is not None and len(found) >= features

    for op in STEM:
        x = max_pool(x, 3, 2) if isinstance(op, str) else _basic_forward(s, op[0], x, op[4], op[5])
        if done(op if isinstance(op, str) else op[0], x):
            return found
    for name, kind, scale, use_relu in _irv2_modules():
        if kind in _MIXED:
            x = _module_forward(s, name, _MIXED[kind], x)
            continue
        y = _module_forward(s, name, RESIDUAL[kind][0], x)
        y = conv2d(y, s[f"{name}.conv2d.weight"], s[f"{name}.conv2d.bias"])
        x = y * scale + x
        if use_relu:
            x = relu(x)
        if done(name, x):
            return found
    x = _basic_forward(s, "conv2d_7b", x, 1, 0)
    if done("conv2d_7b", x):
        return found
    x = x.mean(axis=(2, 3))
    return x @ s["classif.weight"].T + s["classif.bias"]
