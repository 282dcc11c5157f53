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

The tables are the families' presets (`TIMM_PRESETS` in each module of
`keras_se.models`). Input conventions are timm's `pretrained_cfg` of each release (timm 1.0,
`senet.py`, `resnet.py`, `sknet.py`, `mobilenetv3.py`, `vgg.py`,
`inception_resnet_v2.py`): RGB, scaled to [0, 1], normalised with
the release's mean and std (ImageNet's; 0.5 and 0.5 for
Inception-ResNet-v2, TensorFlow's release); evaluated at `input_size` after resizing the
shorter side to `input_size / crop_pct` with `interpolation` and a centre
crop.
"""

from keras_se.models import get_entry, list_models, presets

# timm model -> its default release (tag and input convention), from the
# families' presets tables; models without published weights are left out.
TIMM_PRETRAINED = {name: preset.release for name, preset in presets("timm").items() if preset.release is not None}

# Model name -> the timm model whose release weights="imagenet" loads: the
# registered models that name one, and each `timm:NAME` alias with a release.
IMAGENET = {
    entry.name: entry.imagenet.split(":", 1)[1]
    for entry in map(get_entry, [*list_models(), *list_models("timm:*")])
    if entry.imagenet is not None
}

HF_PREFIX = "hf://"


def repo_id(timm_name, tag=None):
    """The Hugging Face repository of a timm release: `timm/<name>.<tag>`."""
    return f"timm/{timm_name}.{tag or TIMM_PRETRAINED[timm_name].tag}"


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
        return name, TIMM_PRETRAINED[name].tag
    if isinstance(weights, str) and weights.startswith(HF_PREFIX):
        _, name, tag = parse_hf(weights)
        if name is not None:
            return name, tag or (TIMM_PRETRAINED[name].tag if name in TIMM_PRETRAINED else None)
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
    preset = presets("timm").get(release[0]) if release is not None else None
    if preset is not None and model_name == preset.model:
        # Dropout holds no weights: the user's (or the builder's) rate stands.
        return {key: value for key, value in preset.options.items() if key != "dropout"}
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
    if release is None or release[0] not in TIMM_PRETRAINED or release[1] != TIMM_PRETRAINED[release[0]].tag:
        raise ValueError(
            f"weights has no input convention in keras_se's table (only the default releases of "
            f"pretrained_weights()). Received: weights={weights!r} for {model_name!r}"
        )
    return {"repo": repo_id(*release), **TIMM_PRETRAINED[release[0]].input_convention()}
