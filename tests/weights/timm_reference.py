"""timm's state dicts, written down from timm's source, independently of keras_se.

For each timm model keras_se reproduces: the name and shape of every tensor
of its state dict, derived by following the constructors in timm's
`models/senet.py` (`SENet`, `_make_layer`, `SEResNetBlock`,
`SEResNetBottleneck`, `SEResNeXtBottleneck`, `SEBottleneck`, `SEModule`),
`models/resnet.py` (`ResNet`, `make_blocks`, `downsample_conv`,
`BasicBlock`, `Bottleneck`), `models/sknet.py` (`SelectiveKernelBasic`, `SelectiveKernelBottleneck`),
`layers/selective_kernel.py` (`SelectiveKernel`, `SelectiveKernelAttn`),
`layers/squeeze_excite.py` (`SEModule`), `models/mobilenetv3.py`
(`MobileNetV3`, `_gen_mobilenet_v3`), `models/_efficientnet_builder.py`
(`round_channels`, `_decode_block_str`), `models/_efficientnet_blocks.py`
(`DepthwiseSeparableConv`, `InvertedResidual`, `ConvBnAct`, `SqueezeExcite`)
and `layers/helpers.py` (`make_divisible`), timm 1.0. Nothing here calls keras_se, so comparing
keras_se's names with these is not circular.

`synthetic_state_dict` fills such a state dict with deterministic values
(numpy only) for numerical comparisons with timm.
"""

import math

import numpy as np

STAGE_PLANES = (64, 128, 256, 512)

# timm model -> (timm source file, constructor arguments of its @register_model function).
ARCHS = {
    "legacy_seresnet18": ("senet", dict(block="SEResNetBlock", layers=(2, 2, 2, 2))),
    "legacy_seresnet34": ("senet", dict(block="SEResNetBlock", layers=(3, 4, 6, 3))),
    "legacy_seresnet50": ("senet", dict(block="SEResNetBottleneck", layers=(3, 4, 6, 3))),
    "legacy_seresnet101": ("senet", dict(block="SEResNetBottleneck", layers=(3, 4, 23, 3))),
    "legacy_seresnet152": ("senet", dict(block="SEResNetBottleneck", layers=(3, 8, 36, 3))),
    "legacy_seresnext26_32x4d": ("senet", dict(block="SEResNeXtBottleneck", layers=(2, 2, 2, 2), groups=32)),
    "legacy_seresnext50_32x4d": ("senet", dict(block="SEResNeXtBottleneck", layers=(3, 4, 6, 3), groups=32)),
    "legacy_seresnext101_32x4d": ("senet", dict(block="SEResNeXtBottleneck", layers=(3, 4, 23, 3), groups=32)),
    "legacy_senet154": (
        "senet",
        dict(block="SEBottleneck", layers=(3, 8, 36, 3), groups=64, downsample_kernel_size=3, inplanes=128, input_3x3=True),
    ),
    "seresnet18": ("resnet", dict(block="BasicBlock", layers=(2, 2, 2, 2), attn="se")),
    "seresnet34": ("resnet", dict(block="BasicBlock", layers=(3, 4, 6, 3), attn="se")),
    "seresnet50": ("resnet", dict(block="Bottleneck", layers=(3, 4, 6, 3), attn="se")),
    "seresnet101": ("resnet", dict(block="Bottleneck", layers=(3, 4, 23, 3), attn="se")),
    "seresnet152": ("resnet", dict(block="Bottleneck", layers=(3, 8, 36, 3), attn="se")),
    "seresnext50_32x4d": ("resnet", dict(block="Bottleneck", layers=(3, 4, 6, 3), cardinality=32, base_width=4, attn="se")),
    "seresnext101_32x4d": ("resnet", dict(block="Bottleneck", layers=(3, 4, 23, 3), cardinality=32, base_width=4, attn="se")),
    "senet154": (
        "resnet",
        dict(
            block="Bottleneck",
            layers=(3, 8, 36, 3),
            cardinality=64,
            base_width=4,
            stem_type="deep",
            down_kernel_size=3,
            block_reduce_first=2,
            attn="se",
        ),
    ),
    "skresnext50_32x4d": (
        "resnet",
        dict(
            block="SelectiveKernelBottleneck",
            layers=(3, 4, 6, 3),
            cardinality=32,
            base_width=4,
            sk_kwargs=dict(rd_ratio=1 / 16, rd_divisor=32, split_input=False),
        ),
    ),
    "skresnet18": (
        "resnet",
        dict(block="SelectiveKernelBasic", layers=(2, 2, 2, 2), sk_kwargs=dict(rd_ratio=1 / 8, rd_divisor=16, split_input=True)),
    ),
    "skresnet34": (
        "resnet",
        dict(block="SelectiveKernelBasic", layers=(3, 4, 6, 3), sk_kwargs=dict(rd_ratio=1 / 8, rd_divisor=16, split_input=True)),
    ),
    "skresnet50": (
        "resnet",
        dict(block="SelectiveKernelBottleneck", layers=(3, 4, 6, 3), sk_kwargs=dict(split_input=True)),
    ),
    "mobilenetv3_large_100": ("mobilenetv3", dict(variant="large")),
    "mobilenetv3_small_100": ("mobilenetv3", dict(variant="small")),
    # resnet.py's -D / -T / "aa" variants (aa_layer=nn.AvgPool2d has no weights).
    **{
        name: ("resnet", dict(block="Bottleneck", layers=layers, stem_width=32, stem_type=stem, avg_down=True, **extra))
        for name, layers, stem, extra in (
            ("resnet26d", (2, 2, 2, 2), "deep", {}),
            ("resnet26t", (2, 2, 2, 2), "deep_tiered", {}),
            ("resnet50d", (3, 4, 6, 3), "deep", {}),
            ("resnet50t", (3, 4, 6, 3), "deep_tiered", {}),
            ("resnet101d", (3, 4, 23, 3), "deep", {}),
            ("resnet152d", (3, 8, 36, 3), "deep", {}),
            ("resnetaa50d", (3, 4, 6, 3), "deep", {}),
            ("resnext50d_32x4d", (3, 4, 6, 3), "deep", dict(cardinality=32, base_width=4)),
            ("seresnext26d_32x4d", (2, 2, 2, 2), "deep", dict(cardinality=32, base_width=4, attn="se")),
            ("seresnext26t_32x4d", (2, 2, 2, 2), "deep_tiered", dict(cardinality=32, base_width=4, attn="se")),
            ("seresnet50t", (3, 4, 6, 3), "deep_tiered", dict(attn="se")),
            ("seresnetaa50d", (3, 4, 6, 3), "deep", dict(attn="se")),
            ("seresnet152d", (3, 8, 36, 3), "deep", dict(attn="se")),
            ("seresnext101d_32x8d", (3, 4, 23, 3), "deep", dict(cardinality=32, base_width=8, attn="se")),
            ("seresnextaa101d_32x8d", (3, 4, 23, 3), "deep", dict(cardinality=32, base_width=8, attn="se")),
            ("ecaresnet26t", (2, 2, 2, 2), "deep_tiered", dict(attn="eca")),
            ("ecaresnet50d", (3, 4, 6, 3), "deep", dict(attn="eca")),
            ("ecaresnet50t", (3, 4, 6, 3), "deep_tiered", dict(attn="eca")),
            ("ecaresnet101d", (3, 4, 23, 3), "deep", dict(attn="eca")),
            ("ecaresnetlight", (1, 1, 11, 3), "", dict(attn="eca")),
        )
    },
}

# timm's `_gen_mobilenet_v3` arch_def strings, verbatim (non-minimal variants).
MOBILENETV3_ARCH_DEF = {
    "large": [
        ["ds_r1_k3_s1_e1_c16_nre"],
        ["ir_r1_k3_s2_e4_c24_nre", "ir_r1_k3_s1_e3_c24_nre"],
        ["ir_r3_k5_s2_e3_c40_se0.25_nre"],
        ["ir_r1_k3_s2_e6_c80", "ir_r1_k3_s1_e2.5_c80", "ir_r2_k3_s1_e2.3_c80"],
        ["ir_r2_k3_s1_e6_c112_se0.25"],
        ["ir_r3_k5_s2_e6_c160_se0.25"],
        ["cn_r1_k1_s1_c960"],
    ],
    "small": [
        ["ds_r1_k3_s2_e1_c16_se0.25_nre"],
        ["ir_r1_k3_s2_e4.5_c24_nre", "ir_r1_k3_s1_e3.67_c24_nre"],
        ["ir_r1_k5_s2_e4_c40_se0.25", "ir_r2_k5_s1_e6_c40_se0.25"],
        ["ir_r2_k5_s1_e3_c48_se0.25"],
        ["ir_r3_k5_s2_e6_c96_se0.25"],
        ["cn_r1_k1_s1_c576"],
    ],
}

# Parameter counts (BN statistics excluded) of the official models
# (shared/reference/paper_numbers.md); timm's resnet.py twins have the same
# SE widths at depth >= 50, where every C / 16 is a multiple of 8.
PUBLISHED_PARAMS = {
    "legacy_seresnet18": 11_778_592,
    "legacy_seresnet34": 21_958_868,
    "legacy_seresnet50": 28_088_024,
    "legacy_seresnet101": 49_326_872,
    "legacy_seresnet152": 66_821_848,
    "legacy_seresnext50_32x4d": 27_559_896,
    "legacy_seresnext101_32x4d": 48_955_416,
    "legacy_senet154": 115_088_984,
    "seresnet50": 28_088_024,
    "seresnet101": 49_326_872,
    "seresnet152": 66_821_848,
    "seresnext50_32x4d": 27_559_896,
    "seresnext101_32x4d": 48_955_416,
    "senet154": 115_088_984,
    "skresnext50_32x4d": 27_479_784,
    # timm's own counts (timm.create_model(name).parameters(), timm 1.0.31).
    "skresnet18": 11_958_056,
    "skresnet34": 22_282_376,
    "skresnet50": 25_803_160,
    # timm's model cards; keras.applications' MobileNetV3Large / Small agree.
    "mobilenetv3_large_100": 5_483_032,
    "mobilenetv3_small_100": 2_542_856,
    # resnet.py's -D / -T / "aa" variants: timm.create_model(name).parameters(), timm 1.0.31
    # (BENCHMARKS.md, "timm's ResNet-D / -T families"); the shared fixtures' JSON agree.
    "seresnext26d_32x4d": 16_809_512,
    "seresnext26t_32x4d": 16_806_976,
    "seresnet50t": 28_104_720,
    "seresnetaa50d": 28_107_256,
    "seresnet152d": 66_841_080,
    "seresnext101d_32x8d": 93_588_280,
    "seresnextaa101d_32x8d": 93_588_280,
    "ecaresnet26t": 16_011_916,
    "ecaresnet50d": 25_576_350,
    "ecaresnet50t": 25_573_814,
    "ecaresnet101d": 44_568_563,
    "ecaresnetlight": 30_162_046,
    "resnet26d": 16_014_408,
    "resnet26t": 16_011_872,
    "resnet50d": 25_576_264,
    "resnet50t": 25_573_728,
    "resnet101d": 44_568_392,
    "resnet152d": 60_212_040,
    "resnetaa50d": 25_576_264,
    "resnext50d_32x4d": 25_048_136,
}


def make_divisible(v, divisor=8, min_value=None, round_limit=0.9):
    """timm.layers.helpers.make_divisible."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


def _bn(prefix, channels):
    return {f"{prefix}.{r}": (channels,) for r in ("weight", "bias", "running_mean", "running_var")} | {f"{prefix}.num_batches_tracked": ()}


def _senet(block, layers, groups=1, inplanes=64, input_3x3=False, downsample_kernel_size=1, reduction=16):
    s = {}
    if input_3x3:
        s["layer0.conv1.weight"] = (64, 3, 3, 3)
        s |= _bn("layer0.bn1", 64)
        s["layer0.conv2.weight"] = (64, 64, 3, 3)
        s |= _bn("layer0.bn2", 64)
        s["layer0.conv3.weight"] = (inplanes, 64, 3, 3)
        s |= _bn("layer0.bn3", inplanes)
    else:
        s["layer0.conv1.weight"] = (inplanes, 3, 7, 7)
        s |= _bn("layer0.bn1", inplanes)
    expansion = 1 if block == "SEResNetBlock" else 4
    for i, (planes, blocks) in enumerate(zip(STAGE_PLANES, layers)):
        stride = 1 if i == 0 else 2
        kernel = 1 if i == 0 else downsample_kernel_size  # layer1 always gets 1x1
        for b in range(blocks):
            p = f"layer{i + 1}.{b}"
            if b == 0 and (stride != 1 or inplanes != planes * expansion):
                s[f"{p}.downsample.0.weight"] = (planes * expansion, inplanes, kernel, kernel)
                s |= _bn(f"{p}.downsample.1", planes * expansion)
            if block == "SEResNetBlock":
                convs = [(planes, inplanes, 3), (planes, planes // groups, 3)]
            elif block == "SEResNetBottleneck":
                convs = [(planes, inplanes, 1), (planes, planes // groups, 3), (planes * 4, planes, 1)]
            elif block == "SEResNeXtBottleneck":
                width = math.floor(planes * (4 / 64)) * groups
                convs = [(width, inplanes, 1), (width, width // groups, 3), (planes * 4, width, 1)]
            else:  # SEBottleneck
                convs = [(planes * 2, inplanes, 1), (planes * 4, planes * 2 // groups, 3), (planes * 4, planes * 4, 1)]
            for k, (cout, cin, ksize) in enumerate(convs, start=1):
                s[f"{p}.conv{k}.weight"] = (cout, cin, ksize, ksize)
                s |= _bn(f"{p}.bn{k}", cout)
            out = planes * expansion
            rd = out // reduction
            s |= {
                f"{p}.se_module.fc1.weight": (rd, out, 1, 1),
                f"{p}.se_module.fc1.bias": (rd,),
                f"{p}.se_module.fc2.weight": (out, rd, 1, 1),
                f"{p}.se_module.fc2.bias": (out,),
            }
            inplanes = out
    s |= {"last_linear.weight": (1000, 512 * expansion), "last_linear.bias": (1000,)}
    return s


def _resnet(
    block,
    layers,
    cardinality=1,
    base_width=64,
    stem_width=64,
    stem_type="",
    down_kernel_size=1,
    block_reduce_first=1,
    attn=None,
    sk_kwargs=None,
    avg_down=False,
):
    s = {}
    deep = "deep" in stem_type
    inplanes = stem_width * 2 if deep else 64
    if deep:
        stem_chs = (3 * (stem_width // 4), stem_width) if "tiered" in stem_type else (stem_width, stem_width)
        s["conv1.0.weight"] = (stem_chs[0], 3, 3, 3)
        s |= _bn("conv1.1", stem_chs[0])
        s["conv1.3.weight"] = (stem_chs[1], stem_chs[0], 3, 3)
        s |= _bn("conv1.4", stem_chs[1])
        s["conv1.6.weight"] = (inplanes, stem_chs[1], 3, 3)
    else:
        s["conv1.weight"] = (inplanes, 3, 7, 7)
    s |= _bn("bn1", inplanes)
    expansion = 1 if block in ("BasicBlock", "SelectiveKernelBasic") else 4
    for i, (planes, blocks) in enumerate(zip(STAGE_PLANES, layers)):
        stride = 1 if i == 0 else 2
        for b in range(blocks):
            p = f"layer{i + 1}.{b}"
            if b == 0 and (stride != 1 or inplanes != planes * expansion) and avg_down:
                # downsample_avg: Sequential(pool or Identity, conv 1x1, norm).
                s[f"{p}.downsample.1.weight"] = (planes * expansion, inplanes, 1, 1)
                s |= _bn(f"{p}.downsample.2", planes * expansion)
            elif b == 0 and (stride != 1 or inplanes != planes * expansion):
                kernel = 1 if stride == 1 else down_kernel_size  # downsample_conv
                s[f"{p}.downsample.0.weight"] = (planes * expansion, inplanes, kernel, kernel)
                s |= _bn(f"{p}.downsample.1", planes * expansion)
            width = int(math.floor(planes * (base_width / 64)) * cardinality)
            first = width // block_reduce_first
            if block == "BasicBlock":
                first = planes // block_reduce_first
                s[f"{p}.conv1.weight"] = (first, inplanes, 3, 3)
                s |= _bn(f"{p}.bn1", first)
                s[f"{p}.conv2.weight"] = (planes, first, 3, 3)
                s |= _bn(f"{p}.bn2", planes)
            elif block == "Bottleneck":
                s[f"{p}.conv1.weight"] = (first, inplanes, 1, 1)
                s |= _bn(f"{p}.bn1", first)
                s[f"{p}.conv2.weight"] = (width, first // cardinality, 3, 3)
                s |= _bn(f"{p}.bn2", width)
                s[f"{p}.conv3.weight"] = (planes * 4, width, 1, 1)
                s |= _bn(f"{p}.bn3", planes * 4)
            elif block == "SelectiveKernelBasic":  # SelectiveKernel (conv1) + ConvNormAct (conv2)
                s |= _selective_kernel(f"{p}.conv1", inplanes, planes, 1, sk_kwargs)
                s[f"{p}.conv2.conv.weight"] = (planes, planes, 3, 3)
                s |= _bn(f"{p}.conv2.bn", planes)
            else:  # SelectiveKernelBottleneck
                s[f"{p}.conv1.conv.weight"] = (first, inplanes, 1, 1)
                s |= _bn(f"{p}.conv1.bn", first)
                s |= _selective_kernel(f"{p}.conv2", first, width, cardinality, sk_kwargs)
                s[f"{p}.conv3.conv.weight"] = (planes * 4, width, 1, 1)
                s |= _bn(f"{p}.conv3.bn", planes * 4)
            out = planes * expansion
            if attn == "se":
                rd = make_divisible(out * (1 / 16), 8, round_limit=0.0)
                s |= {
                    f"{p}.se.fc1.weight": (rd, out, 1, 1),
                    f"{p}.se.fc1.bias": (rd,),
                    f"{p}.se.fc2.weight": (out, rd, 1, 1),
                    f"{p}.se.fc2.bias": (out,),
                }
            elif attn == "eca":  # timm.layers.EcaModule(channels): Conv1d(1, 1, k, bias=False)
                t = int(abs(math.log(out, 2) + 1) / 2)
                s[f"{p}.se.conv.weight"] = (1, 1, max(t if t % 2 else t + 1, 3))
            inplanes = out
    s |= {"fc.weight": (1000, 512 * expansion), "fc.bias": (1000,)}
    return s


def _selective_kernel(p, in_channels, out_channels, groups, sk_kwargs):
    """timm.layers.SelectiveKernel: kernels [3, 5] as 3x3 with dilation 1, 2."""
    s = {}
    rd_ratio, rd_divisor = sk_kwargs.get("rd_ratio", 1 / 16), sk_kwargs.get("rd_divisor", 8)
    path_in = in_channels // 2 if sk_kwargs.get("split_input", True) else in_channels
    groups = min(out_channels, groups)
    for m in range(2):
        s[f"{p}.paths.{m}.conv.weight"] = (out_channels, path_in // groups, 3, 3)
        s |= _bn(f"{p}.paths.{m}.bn", out_channels)
    attn_channels = make_divisible(out_channels * rd_ratio, divisor=rd_divisor)
    s[f"{p}.attn.fc_reduce.weight"] = (attn_channels, out_channels, 1, 1)
    s |= _bn(f"{p}.attn.bn", attn_channels)
    s[f"{p}.attn.fc_select.weight"] = (out_channels * 2, attn_channels, 1, 1)
    return s


def _mobilenetv3(variant):
    """timm.models.mobilenetv3.MobileNetV3 at channel multiplier 1.0 (round_channels = make_divisible)."""
    s = {"conv_stem.weight": (16, 3, 3, 3)} | _bn("bn1", 16)
    in_chs = 16
    for i, row in enumerate(MOBILENETV3_ARCH_DEF[variant]):
        j = 0
        for block in row:
            kind, *options = block.split("_")
            opts = {o[:2] if o.startswith("se") else o[0]: o[2:] if o.startswith("se") else o[1:] for o in options if o != "nre"}
            for _ in range(int(opts["r"])):
                p, k, out = f"blocks.{i}.{j}", int(opts["k"]), make_divisible(int(opts["c"]))
                se = float(opts.get("se", 0))
                if kind == "cn":
                    s[f"{p}.conv.weight"] = (out, in_chs, k, k)
                    s |= _bn(f"{p}.bn1", out)
                else:
                    mid = in_chs if kind == "ds" else make_divisible(in_chs * float(opts["e"]))
                    dw_bn, pw, pw_bn = ("bn1", "conv_pw", "bn2") if kind == "ds" else ("bn2", "conv_pwl", "bn3")
                    if kind == "ir":
                        s[f"{p}.conv_pw.weight"] = (mid, in_chs, 1, 1)
                        s |= _bn(f"{p}.bn1", mid)
                    s[f"{p}.conv_dw.weight"] = (mid, 1, k, k)
                    s |= _bn(f"{p}.{dw_bn}", mid)
                    if se:
                        rd = make_divisible(mid * se)  # SqueezeExcite(rd_round_fn=round_channels)
                        s |= {
                            f"{p}.se.conv_reduce.weight": (rd, mid, 1, 1),
                            f"{p}.se.conv_reduce.bias": (rd,),
                            f"{p}.se.conv_expand.weight": (mid, rd, 1, 1),
                            f"{p}.se.conv_expand.bias": (mid,),
                        }
                    s[f"{p}.{pw}.weight"] = (out, mid, 1, 1)
                    s |= _bn(f"{p}.{pw_bn}", out)
                in_chs, j = out, j + 1
    features = 1280 if variant == "large" else 1024
    s |= {"conv_head.weight": (features, in_chs, 1, 1), "conv_head.bias": (features,)}
    s |= {"classifier.weight": (1000, features), "classifier.bias": (1000,)}
    return s


def state_shapes(timm_name):
    """{tensor name: shape} of timm's `timm_name` state dict."""
    source, kwargs = ARCHS[timm_name]
    return {"senet": _senet, "resnet": _resnet, "mobilenetv3": _mobilenetv3}[source](**kwargs)


def count_params(shapes):
    """Parameters (weights, biases, BN affine), without BN statistics."""
    return sum(
        math.prod(shape) for name, shape in shapes.items() if not name.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )


def synthetic_state_dict(shapes, seed=0):
    """Deterministic float32 values of a plausible scale for every tensor.

    Uniform draws only (numpy's most stable stream), in sorted name order:
    conv / linear weights U(-a, a) with a = sqrt(3 / fan_in) (unit gain),
    BN weight U(0.5, 1), bias and running mean U(-0.1, 0.1), running var
    U(0.5, 1.5), linear / SE biases U(-0.1, 0.1).
    """
    rng = np.random.default_rng(seed)
    state = {}
    for name in sorted(shapes):
        shape = shapes[name]
        if name.endswith("num_batches_tracked"):
            state[name] = np.zeros((), np.int64)
            continue
        u = rng.random(shape)
        if len(shape) >= 2:
            bound = math.sqrt(3.0 / math.prod(shape[1:]))
            value = (2 * u - 1) * bound
        elif name.endswith("running_var"):
            value = 0.5 + u
        elif name.endswith("weight"):
            value = 0.5 + 0.5 * u
        else:
            value = 0.2 * u - 0.1
        state[name] = value.astype(np.float32)
    return state


def synthetic_input(seed=1, shape=(2, 3, 72, 72)):
    """A deterministic NCHW input, U(-2, 2); 72 px gives odd feature maps (9 at stride 8)."""
    return (4 * np.random.default_rng(seed).random(shape) - 2).astype(np.float32)
