"""Pieces every builder shares: one spec of the shared arguments, inputs, conv-BN-act, attention and the head."""

import contextlib
import functools
import inspect
import numbers

from keras_se.layers import _utils
from keras_se.layers._utils import BN_EPSILON, BN_MOMENTUM, check_choice, check_positive_number  # noqa: F401
from keras_se.layers.attention import check_attention, create_attention
from keras_se.layers.namespace import as_flavour
from keras_se.layers.squeeze_excite import GATES, apply_se, make_se_layers

POOLINGS = (None, "avg", "max")


class SEOptions:
    """SE settings shared by every block of a model (validated once)."""

    def __init__(self, reduction=16, se_bias=True, se_gate="sigmoid", se_divisor=1):
        self.kwargs = dict(reduction=reduction, use_bias=se_bias, gate=se_gate, divisor=se_divisor)
        # Fail on a bad option, named as the builder names it, before any layer is built.
        check_positive_number("reduction", reduction)
        _utils.check_positive_int("se_divisor", se_divisor)
        if not isinstance(se_bias, bool):
            raise ValueError(f"se_bias must be a bool. Received: se_bias={se_bias!r}")
        check_choice("se_gate", se_gate, GATES)


class Attention:
    """The attention of a model's blocks: a registered kind and its options, validated once.

    Builders place it (`attention(layers, x, prefix)`); what it computes is
    the kind's (`keras_se.layers.register_attention`). SE is built as flat
    layers (`{prefix}_se_reduce`, ...), the graph the timm loader, QAT and
    the int8 forms read; any other kind is its registered layer, named
    `{prefix}_{kind}`.

    Args:
        kind: a registered attention kind, or None for none.
        options: dict or None. Options for the kind's factory (SE: those of
            `SqueezeExcite`, over the builder's `se_*` arguments).
        reduction, se_bias, se_gate, se_divisor: the builders' SE arguments.
        flavour: the graph's flavour. tf_keras (QAT) has SE, ECA and CBAM.
    """

    def __init__(self, kind, options=None, reduction=16, se_bias=True, se_gate="sigmoid", se_divisor=1, flavour="keras"):
        self.kind = check_attention(kind)
        if options is not None and (not isinstance(options, dict) or not all(isinstance(k, str) for k in options)):
            raise ValueError(
                f"attention_options must be a dict of option names to values, or None. Received: attention_options={options!r}"
            )
        self.options = dict(options or {})
        self.flavour = flavour
        if kind == "se":
            self.se = SEOptions(reduction, se_bias, se_gate, se_divisor)

    @classmethod
    def of(cls, kind, options=None, reduction=16, se_bias=True, se_gate="sigmoid", se_divisor=1, flavour="keras"):
        """An `Attention`, or None when `kind` is None (the plain twin)."""
        attention = cls(kind, options, reduction, se_bias, se_gate, se_divisor, flavour)
        return attention if kind is not None else None

    def __call__(self, layers, x, prefix, **se_overrides):
        """`x` through this attention, its layers named `{prefix}_{kind}`.

        `se_overrides`: SE options a block fixes itself (MobileNetV3's
        `reduced_channels`); other kinds ignore them.
        """
        if self.kind == "se":
            kwargs = {**self.se.kwargs, **se_overrides, **self.options}
            return apply_se(make_se_layers(layers, x.shape[-1], f"{prefix}_se", **kwargs), x)
        fl = as_flavour(self.flavour)
        if fl.name != "keras":
            if self.kind in fl.attention:
                return fl.attention[self.kind](layers, x, f"{prefix}_{self.kind}", **self.options)
            raise ValueError(
                "quantisation-aware training (the tf_keras flavour) supports attention='se', 'eca', 'cbam' or None. "
                f"Received: attention={self.kind!r}"
            )
        layer = create_attention(self.kind, x.shape[-1], name=f"{prefix}_{self.kind}", **self.options)
        y = layer(x)
        if tuple(y.shape[1:]) != tuple(x.shape[1:]):
            raise ValueError(
                f"attention {self.kind!r} must map a (B, H, W, C) tensor to the same shape. "
                f"Received: {tuple(x.shape)} -> {tuple(y.shape)} at {prefix}"
            )
        return y


def check_stages(se_stages, valid):
    """Normalises `se_stages` (None = all) to a frozenset of stage numbers."""
    if se_stages is None:
        return frozenset(valid)
    try:
        stages = frozenset(se_stages)
    except TypeError:
        stages = None
    if stages is None or not stages <= set(valid):
        raise ValueError(f"se_stages must be a collection of stage numbers from {sorted(valid)}. Received: se_stages={se_stages!r}")
    return stages


def model_inputs(fl, input_shape, input_tensor, min_size, default_size=224):
    """The model input, with keras.applications' argument rules: `(input, shape)`."""
    if input_shape is None:
        if input_tensor is not None:
            input_shape = tuple(input_tensor.shape[1:])
        else:
            input_shape = (default_size, default_size, 3)
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[-1] is None or any(d is not None and (not isinstance(d, int) or d <= 0) for d in shape):
        raise ValueError(
            "input_shape must be (height, width, channels) with positive ints "
            f"(height/width may be None). Received: input_shape={input_shape!r}"
        )
    if any(d is not None and d < min_size for d in shape[:2]):
        raise ValueError(
            f"input_shape is too small for this network's stride: height and "
            f"width must be at least {min_size}. Received: input_shape={input_shape!r}"
        )
    if input_tensor is None:
        return fl.Input(shape=shape, name="input"), shape
    return input_tensor, shape


def conv_bn(layers, x, filters, kernel_size, name, strides=1, groups=1, act="relu", bn_name=None, act_name=None, depthwise=False):
    """Conv (no bias) -> BN [-> activation] with PyTorch's symmetric padding.

    Strided convolutions get an explicit ZeroPadding2D (TF's "same" pads
    asymmetrically), so ported PyTorch weights give identical outputs.
    """
    pad = (kernel_size - 1) // 2
    padding = "same"
    if strides > 1 and pad:
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
        padding = "valid"
    if depthwise:
        x = layers.DepthwiseConv2D(kernel_size, strides=strides, padding=padding, use_bias=False, name=name)(x)
    elif groups > 1:
        x = layers.GroupConv2D(filters, kernel_size, strides=strides, padding=padding, groups=groups, use_bias=False, name=name)(x)
    else:
        x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=bn_name or f"{name}_bn")(x)
    if act:
        x = _utils.make_activation(layers, act, act_name or f"{name}_{act}")(x)
    return x


def max_pool(layers, x, name, mode="pad"):
    """3x3 stride-2 max pooling of a non-negative (post-ReLU) tensor.

    `"pad"`: PyTorch `MaxPool2d(3, 2, padding=1)`. `"ceil"`: Caffe's (and timm
    legacy's) `MaxPool2d(3, 2, ceil_mode=True)`, no padding. Zero padding
    equals -inf padding here because the input is non-negative.
    """
    check_choice("stem_pool", mode, ("pad", "ceil"))
    if mode == "pad":
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    else:
        extra = [0 if d is None or (d - 3) % 2 == 0 else 1 for d in x.shape[1:3]]
        if any(extra):
            x = layers.ZeroPadding2D(((0, extra[0]), (0, extra[1])), name=f"{name}_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name=name)(x)


def head(fl, x, inputs, include_top, pooling, classes, classifier_activation, dropout=0.0):
    """keras.applications' top: pooling, optional dropout, classifier.

    Returns `(inputs, outputs)`. Under a mixed precision policy the
    classifier computes in float32, so the model's output is float32 (Keras'
    mixed precision guidance: a softmax in float16 loses precision).
    """
    layers = fl.layers
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = layers.Dropout(dropout, name="dropout")(x)
        x = classifier(fl, x, classes, classifier_activation)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return inputs, x


def classifier(fl, x, classes, classifier_activation):
    """The `predictions` Dense layer; float32 under a mixed precision policy (see `head`)."""
    mixed = fl.module.mixed_precision.global_policy().name.startswith("mixed")
    dense = dict(dtype="float32") if mixed else {}
    return fl.layers.Dense(classes, activation=classifier_activation, name="predictions", **dense)(x)


def check_top(include_top, pooling, classes):
    if not isinstance(include_top, bool):
        raise ValueError(f"include_top must be a bool. Received: include_top={include_top!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of None, 'avg', 'max'. Received: pooling={pooling!r}")
    _utils.check_positive_int("classes", classes)


# features_only: feature i is at stride 2 ** (i + 1) (timm's feature_info
# order: index 0 the stride-2 stem, 4 the stride-32 last stage); keras-hub
# names the level of stride 2 ** n "Pn".
FEATURE_INDICES = (0, 1, 2, 3, 4)
DEFAULT_OUT_INDICES = (1, 2, 3, 4)


def check_features(features_only, out_indices):
    """Validates `features_only` / `out_indices`; returns the indices as a sorted tuple."""
    if not isinstance(features_only, bool):
        raise ValueError(f"features_only must be a bool. Received: features_only={features_only!r}")
    try:
        # numpy integers too, as `classes` takes them.
        indices = tuple(sorted({int(i) if isinstance(i, numbers.Integral) and not isinstance(i, bool) else i for i in out_indices}))
    except TypeError:
        indices = ()
    if not indices or any(not isinstance(i, int) or isinstance(i, bool) or i not in FEATURE_INDICES for i in indices):
        raise ValueError(
            f"out_indices must be a non-empty collection of feature indices from {FEATURE_INDICES} "
            f"(index i is the output at stride 2**(i + 1)). Received: out_indices={out_indices!r}"
        )
    if not features_only and indices != DEFAULT_OUT_INDICES:
        raise ValueError(
            "out_indices chooses the outputs of a features_only=True backbone; this model is built with "
            f"features_only=False, so it would be ignored. Received: out_indices={out_indices!r}"
        )
    return indices


# The widest width multiplier a builder takes: 4x MobileNet already has 16x
# its parameters (67 M); beyond, a typo (alpha=1e6) would allocate tens of GB
# before anything could say so.
MAX_WIDTH_MULTIPLIER = 4.0


def check_width_multiplier(name, value):
    check_positive_number(name, value)
    if value > MAX_WIDTH_MULTIPLIER:
        raise ValueError(
            f"{name} must be at most {MAX_WIDTH_MULTIPLIER:g} (wider than any published model; each doubling "
            f"quadruples the parameters). Received: {name}={value!r}"
        )
    return value


def level_name(index):
    """keras-hub's pyramid level of feature `index`: `"P{n}"` for stride 2**n."""
    return f"P{index + 1}"


class Features:
    """A graph's features as it builds them, feature i at stride 2**(i + 1); validates the options.

    Example, in a graph function:

    >>> features = Features(features_only, out_indices)  # before building: bad options raise here
    >>> ...
    >>> if features.done(x):  # x is the next feature
    ...     return features.head(fl, inputs)
    """

    def __init__(self, features_only, out_indices):
        self.out_indices = check_features(features_only, out_indices)
        self.features_only = features_only
        self.tensors = []

    def done(self, x):
        """Records feature `x`; True once a features_only graph has every feature it returns (later stages are not built, as timm's)."""
        self.tensors.append(x)
        return self.features_only and len(self.tensors) > max(self.out_indices)

    def head(self, fl, inputs):
        """timm's `features_only` outputs: the features at `out_indices`, in index order.

        Returns:
            `(inputs, outputs)`: a list of tensors, each through an identity
            layer named by its pyramid level (`"P2"` .. `"P5"`), so the model's
            `output_names`, its `pyramid_outputs` and a converted file's
            outputs say which level each is.
        """
        return inputs, [fl.layers.Identity(name=level_name(i))(self.tensors[i]) for i in self.out_indices]


# The arguments every family shares (keras.applications' and keras-hub's,
# attention, features), with their defaults; a family may change a default
# (`builder(..., reduction=4)`), never the meaning.
SHARED = dict(
    attention="se",
    attention_options=None,
    include_top=True,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    reduction=16,
    se_bias=True,
    se_gate="sigmoid",
    se_divisor=1,
    se_stages=None,
    dropout=0.0,
    features_only=False,
    out_indices=DEFAULT_OUT_INDICES,
    dtype=None,
)


class Spec:
    """The shared arguments of one graph, validated once: what a family's graph function builds from.

    Attributes: `fl` (the flavour), `inputs` (the model input), `attention`
    (an `Attention` or None), `features` (`Features`), and the arguments as
    given (`include_top`, `classes`, `dropout`, ...). `attention_at(stage)`
    is the attention of a stage's blocks, `head(x)` keras.applications' top.
    """

    def __init__(self, flavour, stages, min_size, default_size, arguments):
        self.fl = as_flavour(flavour)
        self.__dict__.update(arguments)
        check_top(self.include_top, self.pooling, self.classes)
        self.stages = check_stages(self.se_stages, stages)
        self.attention = Attention.of(
            self.attention, self.attention_options, self.reduction, self.se_bias, self.se_gate, self.se_divisor, self.fl.name
        )
        dropout = self.dropout
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1). Received: dropout={dropout!r}")
        self.features = Features(self.features_only, self.out_indices)
        self.inputs, self.input_shape = model_inputs(self.fl, self.input_shape, self.input_tensor, min_size, default_size)

    def attention_at(self, stage):
        return self.attention if stage in self.stages else None

    def classifier(self, x):
        return classifier(self.fl, x, self.classes, self.classifier_activation)

    def head(self, x):
        """keras.applications' top: `(inputs, outputs)`."""
        return head(self.fl, x, self.inputs, self.include_top, self.pooling, self.classes, self.classifier_activation, self.dropout)


@contextlib.contextmanager
def _dtype_policy(fl, dtype):
    """Builds under `dtype` (a dtype policy name, keras-hub's `dtype=`), restoring the global policy after."""
    if dtype is None:
        yield
        return
    mixed_precision = fl.module.mixed_precision
    previous = mixed_precision.global_policy()
    try:
        policy = mixed_precision.Policy(dtype) if fl.name == "tf_keras" else fl.module.dtype_policies.get(dtype)
    except (ValueError, TypeError):
        policy = None
    if policy is None or not isinstance(dtype, str):
        raise ValueError(
            "dtype must be a dtype policy name ('float32', 'bfloat16', 'mixed_float16', 'mixed_bfloat16', 'float64', ...) "
            f"or None for the global policy. Received: dtype={dtype!r}"
        )
    mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        mixed_precision.set_global_policy(previous)


def builder(stages, min_size=32, default_size=224, **defaults):
    """Declares a family's graph function: `graph(spec, *, family arguments)` becomes
    `graph(flavour="keras", **arguments)` taking the shared arguments too.

    The returned function's signature lists every argument with its default
    (the shared ones, then the family's), which is what `SEModel` stores as
    the model's config.

    Args:
        stages: the stage numbers `se_stages` may name.
        min_size, default_size: the input's smallest and default height and width.
        **defaults: the family's defaults for shared arguments.
    """
    unknown = sorted(set(defaults) - set(SHARED))
    if unknown:
        raise ValueError(f"defaults must name shared arguments ({', '.join(SHARED)}). Received: {unknown}")
    shared = {**SHARED, **defaults}

    def wrap(graph):
        own = [p for name, p in inspect.signature(graph).parameters.items() if name != "spec"]

        @functools.wraps(graph)
        def full(flavour="keras", **arguments):
            common = {name: arguments.pop(name, default) for name, default in shared.items()}
            fl = as_flavour(flavour)
            with _dtype_policy(fl, common["dtype"]):
                spec = Spec(fl, stages, min_size, default_size, common)
                return graph(spec, **arguments)

        parameters = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d) for n, d in shared.items()]
        parameters += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        parameters.append(inspect.Parameter("flavour", inspect.Parameter.KEYWORD_ONLY, default="keras"))
        full.__signature__ = inspect.Signature(parameters)
        return full

    return wrap
