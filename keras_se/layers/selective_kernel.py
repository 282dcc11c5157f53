"""Selective Kernel convolution: SKNet's split -> fuse -> select."""

import keras

from keras_se.layers import _utils
from keras_se.layers._utils import (
    BN_EPSILON,
    BN_MOMENTUM,
    check_positive_int,
    check_positive_number,
    check_rank4,
)
from keras_se.layers._utils import (
    join_name as _join,
)
from keras_se.layers.namespace import as_flavour, flavour


def sk_path_geometry(num_paths, kernel_size, dilation):
    """Per-path (kernel_size, dilation) lists.

    Defaults follow the SKNet paper and timm: 3x3 kernels with dilation
    1, 2, ..., M (receptive fields 3, 5, 7, ...).
    """
    num_paths = check_positive_int("num_paths", num_paths)
    if num_paths < 2:
        raise ValueError(f"num_paths must be at least 2. Received: num_paths={num_paths}")
    kernels = _per_path("kernel_size", kernel_size, num_paths)
    if dilation is None:
        dilations = list(range(1, num_paths + 1)) if isinstance(kernel_size, int) else [1] * num_paths
    else:
        dilations = _per_path("dilation", dilation, num_paths)
    for k in kernels:
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd for symmetric padding. Received: kernel_size={kernel_size!r}")
    return kernels, dilations


def _per_path(name, value, num_paths):
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value] * num_paths
    value = list(value) if isinstance(value, (list, tuple)) else value
    if (
        not isinstance(value, list)
        or len(value) != num_paths
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ValueError(f"{name} must be a positive int or a list of num_paths ({num_paths}) positive ints. Received: {name}={value!r}")
    return value


def sk_attention_channels(filters, reduction=16, reduced_channels=None, min_channels=32):
    """d = max(C / r, L) of the SKNet paper (eq. 4), or `reduced_channels`."""
    if reduced_channels is not None:
        return check_positive_int("reduced_channels", reduced_channels)
    return max(int(filters / reduction), min_channels)


def check_sk_options(filters, groups, strides, reduction, reduced_channels, min_channels):
    check_positive_int("filters", filters)
    check_positive_int("groups", groups)
    if filters % groups:
        raise ValueError(f"groups must divide filters ({filters}). Received: groups={groups}")
    check_positive_int("strides", strides)
    check_positive_number("reduction", reduction)
    if reduced_channels is None and reduction > filters:
        raise ValueError(f"reduction must not exceed filters ({filters}). Received: reduction={reduction}")
    check_positive_int("reduced_channels", reduced_channels, allow_none=True)
    check_positive_int("min_channels", min_channels)


def make_sk_layers(
    layers,
    filters,
    name,
    num_paths=2,
    kernel_size=3,
    dilation=None,
    groups=1,
    strides=1,
    reduction=16,
    reduced_channels=None,
    min_channels=32,
    split_input=False,
    dtype=None,
):
    """Creates the layers of one SK convolution (not yet connected).

    The one definition of SK in keras_se, used by `SelectiveKernel` and the
    SKNet builders. Per path: [pad, subsample,] conv (grouped) -> BN -> ReLU.
    Fuse: sum -> global average pool -> fc1 (1x1 conv, no bias) -> BN -> ReLU
    -> fc2 (1x1 conv to M*C, no bias). Select: softmax across paths,
    weighted sum (`KernelSelect`).

    A strided path with dilation d is computed as subsample-by-stride then a
    stride-1 conv with dilation d / stride: the same function and weights
    (TensorFlow has no strided dilated convolution). So `dilation` must be a
    multiple of `strides` on such paths.

    With `split_input`, path m convolves only the m-th of M equal channel
    slices of the input (timm's `split_input=True`, skresnet18/34/50).

    `dtype` is a dtype policy (or its name) for every layer, or None (default)
    for the global policy; `SelectiveKernel` passes its own.

    Returns:
        dict from role to layer (per path `path{m}_{split,pad,subsample,conv,bn,relu}`).
    """
    check_sk_options(filters, groups, strides, reduction, reduced_channels, min_channels)
    if not isinstance(split_input, bool):
        raise ValueError(f"split_input must be a bool. Received: split_input={split_input!r}")
    kernels, dilations = sk_path_geometry(num_paths, kernel_size, dilation)
    dt = _utils.dtype_kwarg(dtype)
    parts = {}
    for m, (k, d) in enumerate(zip(kernels, dilations)):
        prefix = _join(name, f"path{m}")
        if split_input:
            parts[f"path{m}_split"] = layers.ChannelSlice(m, num_paths, name=f"{prefix}_split", **dt)
        conv_dilation = d
        padding = "same"
        if strides > 1:
            if d > 1 and d % strides:
                raise ValueError(
                    f"dilation must be 1 or a multiple of strides ({strides}) on strided paths. Received: dilation={dilations}"
                )
            parts[f"path{m}_pad"] = layers.ZeroPadding2D(d * (k - 1) // 2, name=f"{prefix}_pad", **dt)
            padding = "valid"
            if d > 1:
                parts[f"path{m}_subsample"] = layers.AveragePooling2D(pool_size=1, strides=strides, name=f"{prefix}_subsample", **dt)
                conv_dilation = d // strides
        conv_strides = 1 if f"path{m}_subsample" in parts else strides
        conv_cls = layers.GroupConv2D if groups > 1 else layers.Conv2D
        conv_kwargs = {"groups": groups} if groups > 1 else {}
        parts[f"path{m}_conv"] = conv_cls(
            filters,
            k,
            strides=conv_strides,
            padding=padding,
            dilation_rate=conv_dilation,
            use_bias=False,
            name=f"{prefix}_conv",
            **dt,
            **conv_kwargs,
        )
        parts[f"path{m}_bn"] = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{prefix}_bn", **dt)
        parts[f"path{m}_relu"] = layers.ReLU(name=f"{prefix}_relu", **dt)
    width = sk_attention_channels(filters, reduction, reduced_channels, min_channels)
    parts["fuse"] = layers.Add(name=_join(name, "fuse"), **dt)
    parts["pool"] = layers.GlobalAveragePooling2D(keepdims=True, name=_join(name, "pool"), **dt)
    parts["fc1"] = layers.Conv2D(width, 1, use_bias=False, name=_join(name, "fc1"), **dt)
    parts["fc1_bn"] = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=_join(name, "fc1_bn"), **dt)
    parts["fc1_relu"] = layers.ReLU(name=_join(name, "fc1_relu"), **dt)
    parts["fc2"] = layers.Conv2D(num_paths * filters, 1, use_bias=False, name=_join(name, "fc2"), **dt)
    parts["select"] = layers.KernelSelect(name=_join(name, "select"), **dt)
    return parts


_PATH_ROLES = ("split", "pad", "subsample", "conv", "bn", "relu")


def sk_num_paths(parts):
    return sum(1 for role in parts if role.endswith("_conv") and role.startswith("path"))


def sk_path_layers(parts, m):
    return [parts[f"path{m}_{r}"] for r in _PATH_ROLES if f"path{m}_{r}" in parts]


def apply_sk(parts, x):
    """Connects the layers of `make_sk_layers`."""
    paths = []
    for m in range(sk_num_paths(parts)):
        y = x
        for layer in sk_path_layers(parts, m):
            y = layer(y)
        paths.append(y)
    s = parts["pool"](parts["fuse"](paths))
    s = parts["fc2"](parts["fc1_relu"](parts["fc1_bn"](parts["fc1"](s))))
    return parts["select"](paths + [s])


def selective_kernel(x, filters, name, flavour="keras", **options):
    """Functional SK convolution, layers named `{name}_...`."""
    parts = make_sk_layers(as_flavour(flavour).layers, filters, name, **options)
    check_sk_input(x.shape[-1], options.get("groups", 1), options.get("num_paths", 2), options.get("split_input", False))
    return apply_sk(parts, x)


def check_sk_input(channels, groups, num_paths, split_input):
    """The input channels fit the paths: M slices with `split_input`, G groups each."""
    if split_input and channels % num_paths:
        raise ValueError(f"split_input needs input channels ({channels}) divisible by num_paths. Received: num_paths={num_paths}")
    per_path = channels // num_paths if split_input else channels
    if per_path % groups:
        raise ValueError(f"groups must divide the input channels of each path ({per_path}). Received: groups={groups}")


@keras.saving.register_keras_serializable(package="keras_se")
class SelectiveKernel(keras.layers.Layer):
    """Selective Kernel convolution SK[M, G, r] (SKNet).

    Split: M convolution paths over the same input (3x3 kernels with dilation
    1, 2, ... by default), each grouped conv -> BN -> ReLU. Fuse: U = sum of
    paths, s = global average pool of U, z = ReLU(BN(fc1(s))) with
    d = max(filters / reduction, min_channels) units. Select: per path logits
    fc2_m(z), softmax across paths per channel, output sum_m a_m * U_m.

    Args:
        filters: int. Output channels C of every path.
        num_paths: int, defaults to 2. M >= 2.
        kernel_size: int or list of M ints, defaults to 3. Odd sizes.
        dilation: int, list of M ints, or None (default). None gives
            dilation 1, 2, ..., M for an int `kernel_size`, else 1.
        groups: int, defaults to 1. G; divides `filters` and the input channels.
        strides: int, defaults to 1. A strided path with dilation d > 1 is
            computed as subsample-then-conv with dilation d / strides, so d
            must be a multiple of `strides` (3 paths with strides 2 need
            e.g. `dilation=[1, 2, 4]` or `kernel_size=[3, 5, 7]`).
        reduction: float, defaults to 16. r.
        reduced_channels: int or None. Explicit d; overrides the formula.
        min_channels: int, defaults to 32. L.
        split_input: bool, defaults to False. Feed path m only the m-th of M
            equal channel slices of the input (timm's skresnet18/34/50),
            instead of the whole input to every path (the SKNet paper).
        **kwargs: standard layer arguments.

    Example:

    >>> sk = SelectiveKernel(64, groups=32)
    >>> sk(keras.ops.ones((1, 16, 16, 64))).shape
    TensorShape([1, 16, 16, 64])

    Reference:
        - [Li et al., Selective Kernel Networks](https://arxiv.org/abs/1903.06586)
    """

    def __init__(
        self,
        filters,
        num_paths=2,
        kernel_size=3,
        dilation=None,
        groups=1,
        strides=1,
        reduction=16,
        reduced_channels=None,
        min_channels=32,
        split_input=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.num_paths = num_paths
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.groups = groups
        self.strides = strides
        self.reduction = reduction
        self.reduced_channels = reduced_channels
        self.min_channels = min_channels
        self.split_input = split_input
        self.parts = make_sk_layers(
            flavour("keras").layers,
            filters,
            "",
            num_paths=num_paths,
            kernel_size=kernel_size,
            dilation=dilation,
            groups=groups,
            strides=strides,
            reduction=reduction,
            reduced_channels=reduced_channels,
            min_channels=min_channels,
            split_input=split_input,
            # Sublayers follow this layer's policy (Keras' convention), so
            # mixed_float16 computes in float16 and dtype="float64" holds
            # float64 weights.
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        shape = check_rank4("SelectiveKernel", input_shape)
        check_sk_input(shape[-1], self.groups, self.num_paths, self.split_input)
        paths = [_utils.build_chain(sk_path_layers(self.parts, m), shape) for m in range(self.num_paths)]
        pooled = (shape[0], 1, 1, self.filters)
        logits = _utils.build_chain([self.parts[r] for r in ("fc1", "fc1_bn", "fc1_relu", "fc2")], pooled)
        self.parts["select"].build(paths + [logits])

    def call(self, inputs):
        return apply_sk(self.parts, inputs)

    def compute_output_shape(self, input_shape):
        return _utils.chain_output_shape(sk_path_layers(self.parts, 0), input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "num_paths": self.num_paths,
                "kernel_size": self.kernel_size,
                "dilation": self.dilation,
                "groups": self.groups,
                "strides": self.strides,
                "reduction": self.reduction,
                "reduced_channels": self.reduced_channels,
                "min_channels": self.min_channels,
                "split_input": self.split_input,
            }
        )
        return config
