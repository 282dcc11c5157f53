"""The timm models keras_se reproduces exactly, as data.

The registry reads this table to register the `timm:NAME` aliases; the timm
loader reads it for naming schemes. Neither asks the other.

timm's senet.py `legacy_*` models, ported from the Caffe releases, are the
keras_se defaults: ceil-mode stem pool, stride on the first 1x1 of SE-ResNet
bottlenecks (on the grouped 3x3 of SE-ResNeXt and SENet-154), SE width
C // 16; only senet.py's basic block adds a ReLU before SE. timm's resnet.py
and sknet.py pad the stem pool, put the stride on the 3x3 ("v1.5") and round
the SE width to make_divisible(C / 16, 8).
"""

_RESNET_PY = dict(stride_on="3x3", stem_pool="pad", se_divisor=8)
# timm's resnet.py -D / -T / "aa" variants: deep (tiered) stems of width 32,
# average-pool shortcuts, and for "aa" average-pool anti-aliasing.
_AVG_DOWN = dict(_RESNET_PY, stem_width=32, avg_down=True)
_D = dict(_AVG_DOWN, stem="deep")
_T = dict(_AVG_DOWN, stem="deep_tiered")
_AA = dict(_D, aa=True, stem_pool="avg")
_ECA = dict(attention="eca")

# timm name -> (keras_se model, builder options, timm naming scheme)
TIMM_VARIANTS = {
    **{f"legacy_seresnet{d}": (f"se_resnet{d}", {}, "legacy") for d in (50, 101, 152)},
    **{f"legacy_seresnet{d}": (f"se_resnet{d}", dict(basic_last_relu=True), "legacy") for d in (18, 34)},
    "legacy_seresnext26_32x4d": ("se_resnext50_32x4d", dict(depth=26), "legacy"),
    "legacy_seresnext50_32x4d": ("se_resnext50_32x4d", {}, "legacy"),
    "legacy_seresnext101_32x4d": ("se_resnext101_32x4d", {}, "legacy"),
    "legacy_senet154": ("senet154", {}, "legacy"),
    **{f"seresnet{d}": (f"se_resnet{d}", _RESNET_PY, "resnet") for d in (18, 34, 50, 101, 152)},
    "seresnext50_32x4d": ("se_resnext50_32x4d", _RESNET_PY, "resnet"),
    "seresnext101_32x4d": ("se_resnext101_32x4d", _RESNET_PY, "resnet"),
    "senet154": ("senet154", dict(_RESNET_PY, dropout=0.0), "resnet"),
    # -D / -T / "aa" SE and ECA ResNets and their plain twins (timm resnet.py).
    "seresnext26d_32x4d": ("se_resnext50_32x4d", dict(_D, depth=26), "resnet_d"),
    "seresnext26t_32x4d": ("se_resnext50_32x4d", dict(_T, depth=26), "resnet_d"),
    "seresnet50t": ("se_resnet50", _T, "resnet_d"),
    "seresnetaa50d": ("se_resnet50", _AA, "resnet_d"),
    "seresnet152d": ("se_resnet152", _D, "resnet_d"),
    "seresnext101d_32x8d": ("se_resnext101_32x4d", dict(_D, base_width=8), "resnet_d"),
    "seresnextaa101d_32x8d": ("se_resnext101_32x4d", dict(_AA, base_width=8), "resnet_d"),
    "ecaresnet26t": ("se_resnet50", dict(_T, depth=26, **_ECA), "resnet_d"),
    "ecaresnet50d": ("se_resnet50", dict(_D, **_ECA), "resnet_d"),
    "ecaresnet50t": ("se_resnet50", dict(_T, **_ECA), "resnet_d"),
    "ecaresnet101d": ("se_resnet101", dict(_D, **_ECA), "resnet_d"),
    "ecaresnetlight": ("se_resnet50", dict(_AVG_DOWN, blocks=(1, 1, 11, 3), **_ECA), "resnet_d"),  # a 7x7 stem
    "resnet26d": ("resnet50", dict(_D, depth=26), "resnet_d"),
    "resnet26t": ("resnet50", dict(_T, depth=26), "resnet_d"),
    "resnet50d": ("resnet50", _D, "resnet_d"),
    "resnet50t": ("resnet50", _T, "resnet_d"),
    "resnet101d": ("resnet101", _D, "resnet_d"),
    "resnet152d": ("resnet152", _D, "resnet_d"),
    "resnetaa50d": ("resnet50", _AA, "resnet_d"),
    "resnext50d_32x4d": ("resnext50_32x4d", _D, "resnet_d"),
    "skresnext50_32x4d": ("sknet50", {}, "sknet"),
    # timm's skresnet*: SK paths on channel halves of the input (split_input),
    # groups 1, attention width make_divisible(C / 8, 16) = max(C / 8, 16)
    # (basic) or make_divisible(C / 16, 8) = max(C / 16, 8) (bottleneck).
    **{
        f"skresnet{d}": (
            "sknet50",
            dict(depth=d, groups=1, base_width=64, reduction=8, sk_min_channels=16, sk_split_input=True),
            "sknet_basic",
        )
        for d in (18, 34)
    },
    "skresnet50": ("sknet50", dict(groups=1, base_width=64, sk_min_channels=8, sk_split_input=True), "sknet"),
    # The plain twins of SE-VGG-16 and SE-Inception-ResNet-v2 (timm has no SE variants).
    "vgg16_bn": ("vgg16_bn", {}, "vgg"),
    "inception_resnet_v2": ("inception_resnet_v2", {}, "inception_resnet_v2"),
    # timm's mobilenetv3.py at width 1.0: keras_se's defaults, without dropout.
    "mobilenetv3_large_100": ("mobilenetv3_large", dict(dropout=0.0), "mobilenetv3_large"),
    "mobilenetv3_small_100": ("mobilenetv3_small", dict(dropout=0.0), "mobilenetv3_small"),
}

# timm's MobileNetV3 names its blocks `blocks.{row}.{index}` by the rows of
# its architecture table (timm/models/mobilenetv3.py, `_gen_mobilenet_v3`);
# keras_se numbers them by stage (stride 2**s). For keras_se's stages 1-5:
# the number of blocks of each timm row the stage holds, in order. Row 0 is
# a depthwise-separable block, the last row the 1x1 conv block, the others
# inverted residuals.
MOBILENETV3_ROWS = {
    "mobilenetv3_large": ((1,), (2,), (3,), (4, 2), (3, 1)),
    "mobilenetv3_small": ((), (1,), (2,), (3, 2), (3, 1)),
}
_SCHEME_OF_CLASS = {"keras_se>VGGModel": "vgg", "keras_se>InceptionResNetModel": "inception_resnet_v2"}


def timm_models():
    """Names of the timm models keras_se reproduces (`create_model("timm:NAME")`)."""
    return sorted(TIMM_VARIANTS)


def timm_scheme(timm_name):
    """The naming scheme of a timm model keras_se reproduces.

    Example:

    >>> timm_scheme("legacy_seresnet50")
    'legacy'
    """
    if timm_name not in TIMM_VARIANTS:
        raise ValueError(f"timm_name must be one of timm_models(). Received: timm_name={timm_name!r}")
    return TIMM_VARIANTS[timm_name][2]


def scheme_of_config(registered_name, config):
    """The timm naming scheme a keras_se model's architecture follows, or None.

    Residual models: SK models follow timm's sknet.py (basic blocks at
    depth 18 and 34); the others follow senet.py with Caffe's ceil-mode stem
    pool and resnet.py with a padded one. VGG, Inception-ResNet and
    MobileNetV3 models follow timm's vgg.py, inception_resnet_v2.py and
    mobilenetv3.py.

    Args:
        registered_name: the model class's Keras registered name
            (`keras.saving.get_registered_name(type(model))`).
        config: `model.get_config()`.
    """
    if registered_name in _SCHEME_OF_CLASS:
        return _SCHEME_OF_CLASS[registered_name]
    if registered_name == "keras_se>MobileNetV3Model":
        return f"mobilenetv3_{config['variant']}"
    if registered_name != "keras_se>ResNetModel":
        return None
    if config["attention"] == "sk":
        return "sknet_basic" if config["depth"] in (18, 34) else "sknet"
    if config.get("avg_down"):
        return "resnet_d"
    return "legacy" if config["stem_pool"] == "ceil" else "resnet"
