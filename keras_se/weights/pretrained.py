"""Which ImageNet weights each keras_se model loads, as data.

`weights="imagenet"` downloads timm's release of the model from the Hugging
Face Hub (`timm/<timm name>.<tag>`, file `model.safetensors`) and ports it
with the timm loader. The SENet paper's models load timm's `legacy_*`
releases, the official Caffe weights ported by Cadene and Wightman; SKNet-50
loads timm's `skresnext50_32x4d`, MobileNetV3 timm's `mobilenetv3_*_100`,
and the plain VGG-16-BN and Inception-ResNet-v2 timm's releases of those
(timm has no SE variant of them). A `timm:NAME` alias loads timm's default
pretrained tag for NAME (the first tag with weights in timm's
`default_cfgs`). Every other registered model has no published ImageNet
weights.

Input conventions are timm's `pretrained_cfg` of each release (timm 1.0,
`senet.py`, `resnet.py`, `sknet.py`, `mobilenetv3.py`, `vgg.py`,
`inception_resnet_v2.py`): RGB, scaled to [0, 1], normalised with
the release's mean and std (ImageNet's; 0.5 and 0.5 for
Inception-ResNet-v2, TensorFlow's release); evaluated at `input_size` after resizing the
shorter side to `input_size / crop_pct` with `interpolation` and a centre
crop.
"""

from keras_se.weights.timm_variants import TIMM_VARIANTS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)  # timm's IMAGENET_INCEPTION_MEAN / _STD: inputs on [-1, 1]
INCEPTION_STD = (0.5, 0.5, 0.5)


def _cfg(tag, interpolation="bicubic", crop_pct=0.875, size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    return dict(
        tag=tag,
        input_size=(size, size, 3),
        interpolation=interpolation,
        crop_pct=crop_pct,
        mean=mean,
        std=std,
        classes=1000,
    )


# timm model -> its default pretrained tag and input convention. Models of
# TIMM_VARIANTS missing here have no published weights in timm
# (seresnet18/34/101/152, skresnet50, seresnet50t, seresnetaa50d,
# resnet50t: "untrained").
TIMM_PRETRAINED = {
    "legacy_seresnet18": _cfg("in1k"),
    "legacy_seresnet34": _cfg("in1k", "bilinear"),
    "legacy_seresnet50": _cfg("in1k", "bilinear"),
    "legacy_seresnet101": _cfg("in1k", "bilinear"),
    "legacy_seresnet152": _cfg("in1k", "bilinear"),
    "legacy_seresnext26_32x4d": _cfg("in1k"),
    "legacy_seresnext50_32x4d": _cfg("in1k", "bilinear"),
    "legacy_seresnext101_32x4d": _cfg("in1k", "bilinear"),
    "legacy_senet154": _cfg("in1k", "bilinear"),
    "seresnet50": _cfg("a1_in1k", crop_pct=0.95),
    "seresnext50_32x4d": _cfg("racm_in1k"),
    "seresnext101_32x4d": _cfg("gluon_in1k"),
    "senet154": _cfg("gluon_in1k"),
    "seresnext26d_32x4d": _cfg("bt_in1k"),
    "seresnext26t_32x4d": _cfg("bt_in1k"),
    "seresnet152d": _cfg("ra2_in1k", crop_pct=0.95, size=256),
    "seresnext101d_32x8d": _cfg("ah_in1k", crop_pct=0.95),
    "seresnextaa101d_32x8d": _cfg("sw_in12k_ft_in1k_288", crop_pct=0.95, size=288),
    "ecaresnet26t": _cfg("ra2_in1k", size=256),
    "ecaresnet50d": _cfg("miil_in1k"),
    "ecaresnet50t": _cfg("ra2_in1k", size=256),
    "ecaresnet101d": _cfg("miil_in1k"),
    "ecaresnetlight": _cfg("miil_in1k"),
    "resnet26d": _cfg("bt_in1k"),
    "resnet26t": _cfg("ra2_in1k", crop_pct=0.94, size=256),
    "resnet50d": _cfg("ra2_in1k"),
    "resnet101d": _cfg("ra2_in1k", crop_pct=0.95, size=256),
    "resnet152d": _cfg("ra2_in1k", crop_pct=0.95, size=256),
    "resnetaa50d": _cfg("sw_in12k_ft_in1k", crop_pct=0.95),
    "resnext50d_32x4d": _cfg("bt_in1k"),
    "skresnet18": _cfg("ra_in1k"),
    "skresnet34": _cfg("ra_in1k"),
    "skresnext50_32x4d": _cfg("ra_in1k"),
    "mobilenetv3_large_100": _cfg("ra_in1k"),
    "mobilenetv3_small_100": _cfg("lamb_in1k"),
    "vgg16_bn": _cfg("tv_in1k", "bilinear"),
    "inception_resnet_v2": _cfg("tf_in1k", crop_pct=0.8975, size=299, mean=INCEPTION_MEAN, std=INCEPTION_STD),
}

# Registered keras_se model -> the timm model whose release weights="imagenet" loads.
IMAGENET = {
    **{f"se_resnet{d}": f"legacy_seresnet{d}" for d in (18, 34, 50, 101, 152)},
    "se_resnext50_32x4d": "legacy_seresnext50_32x4d",
    "se_resnext101_32x4d": "legacy_seresnext101_32x4d",
    "senet154": "legacy_senet154",
    "sknet50": "skresnext50_32x4d",
    "mobilenetv3_large": "mobilenetv3_large_100",
    "mobilenetv3_small": "mobilenetv3_small_100",
    # timm has no SE variant of these two: the plain twins have weights.
    "vgg16_bn": "vgg16_bn",
    "inception_resnet_v2": "inception_resnet_v2",
    # `timm:NAME` aliases load NAME's default release.
    **{f"timm:{name}": name for name in TIMM_PRETRAINED},
}

HF_PREFIX = "hf://"


def repo_id(timm_name, tag=None):
    """The Hugging Face repository of a timm release: `timm/<name>.<tag>`."""
    return f"timm/{timm_name}.{tag or TIMM_PRETRAINED[timm_name]['tag']}"


def pretrained_weights():
    """Every model with ImageNet weights and the repository `weights="imagenet"` loads.

    Returns:
        dict from model name (`list_models()` names and `timm:` aliases) to
        the Hugging Face repository id (`"timm/legacy_seresnet50.in1k"`).

    Example:

    >>> keras_se.weights.pretrained_weights()["se_resnet50"]
    'timm/legacy_seresnet50.in1k'
    """
    return {name: repo_id(timm_name) for name, timm_name in sorted(IMAGENET.items())}


def imagenet_source(model_name):
    """The timm model `weights="imagenet"` loads into `model_name`; a `ValueError` listing the models that have weights.

    A bare timm name (`"legacy_seresnet18"`, the name of a model built as
    `timm:legacy_seresnet18`) stands for its alias.
    """
    if model_name not in IMAGENET and f"timm:{model_name}" in IMAGENET:
        model_name = f"timm:{model_name}"
    if model_name not in IMAGENET:
        raise ValueError(
            f"model {model_name!r} has no published ImageNet weights. Models with weights='imagenet': "
            f"{', '.join(sorted(IMAGENET))} (keras_se.weights.pretrained_weights() gives each repository). "
            f"Received: weights='imagenet' for {model_name!r}"
        )
    return IMAGENET[model_name]


def parse_hf(weights):
    """`"hf://timm/<name>.<tag>"` -> `("timm/<name>.<tag>", "<name>", "<tag>")`; name and tag None for another owner."""
    repo = weights[len(HF_PREFIX) :]
    owner, _, rest = repo.partition("/")
    if not owner or not rest or "/" in rest:
        raise ValueError(
            f"weights must be 'hf://<owner>/<repository>', e.g. 'hf://timm/legacy_seresnet50.in1k'. Received: weights={weights!r}"
        )
    name, _, tag = rest.partition(".")
    if owner != "timm":
        return repo, None, None
    return repo, name, tag or None


def timm_release(model_name, weights):
    """The timm model and tag `weights` ("imagenet" or "hf://timm/...") names for `model_name`: `(name, tag)`, or None."""
    if weights == "imagenet":
        name = imagenet_source(model_name)
        return name, TIMM_PRETRAINED[name]["tag"]
    if isinstance(weights, str) and weights.startswith(HF_PREFIX):
        _, name, tag = parse_hf(weights)
        if name is not None:
            return name, tag or (TIMM_PRETRAINED[name]["tag"] if name in TIMM_PRETRAINED else None)
    return None


def weights_options(model_name, weights):
    """Builder options the weights need beyond `model_name`'s registered defaults.

    `se_resnet18` with `weights="imagenet"` is timm's `legacy_seresnet18`,
    whose basic block has a ReLU before SE (`basic_last_relu=True`): the
    registry builds the model with these options. Empty for every other
    source, and for a timm release of another architecture (the loader then
    names what differs).
    """
    release = timm_release(model_name, weights)
    if release is None or release[0] not in TIMM_VARIANTS:
        return {}
    target, options, _ = TIMM_VARIANTS[release[0]]
    if model_name == target:
        # Dropout holds no weights: the user's (or the builder's) rate stands.
        return {key: value for key, value in options.items() if key != "dropout"}
    return {}


def pretrained_config(model_name, weights="imagenet"):
    """The input convention of a model's ImageNet weights (timm's `pretrained_cfg`).

    Args:
        model_name: a model name with ImageNet weights (`pretrained_weights()`).
        weights: `"imagenet"` (default) or `"hf://timm/<name>.<tag>"` of a
            default release.

    Returns:
        dict with `repo`, `input_size` (H, W, C), `interpolation`,
        `crop_pct`, `mean`, `std` (RGB, on [0, 1] inputs), `classes`.

    Example:

    >>> keras_se.weights.pretrained_config("se_resnet50")["mean"]
    (0.485, 0.456, 0.406)
    """
    release = timm_release(model_name, weights)
    if release is None or release[0] not in TIMM_PRETRAINED or release[1] != TIMM_PRETRAINED[release[0]]["tag"]:
        raise ValueError(
            f"weights has no input convention in keras_se's table (only the default releases of "
            f"pretrained_weights()). Received: weights={weights!r} for {model_name!r}"
        )
    return {"repo": repo_id(*release), **{k: v for k, v in TIMM_PRETRAINED[release[0]].items() if k != "tag"}}
