"""Complexity reports: parameters and multiply-adds per layer and per stage,
and the SE overhead measured three ways.

Everything is computed from layer configurations and tensor shapes: no
profiler, no tracing. A 500-layer model is counted in milliseconds; building
it is what costs time.

Counting conventions (also in `CONVENTIONS`, which every report carries):

- MACs are the multiply-adds of convolutions and fully connected layers, the
  SENet and SKNet papers' "GFLOPs". A convolution costs
  `H_out * W_out * C_out * k_h * k_w * C_in / groups`; depthwise and grouped
  convolutions are the special cases, and dilation does not change the count.
  SE's FCs are 1x1 convolutions on a 1x1 map: `C * C/r` each.
- Element-wise work is counted separately (one operation per output element):
  bias adds and fused activations, BN (one multiply-add per element), merges
  (`n - 1` per element for `n` inputs, so the SE scale multiply is
  `H * W * C`), activations, pooling (`k * k` per output element; global
  pooling one per input element) and the SK path selection.
- Data movement (padding, reshapes, concatenation, channel shuffle, dropout)
  costs nothing.
- Parameters exclude BN moving statistics (`keras_se.analysis.count_params`).
  At inference BN folds into the preceding convolution: `params_folded` is
  the count after folding (a folded BN leaves one bias vector), the number a
  converted `.tflite` file stores.
- A layer type the report does not know is a row marked "not counted" with a
  warning, never a silent zero.

Reference:
    - [Hu et al., Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507)
    - [Li et al., Selective Kernel Networks](https://arxiv.org/abs/1903.06586)
"""

import collections
import dataclasses
import math
import os
import warnings
from fractions import Fraction

from keras_se import naming
from keras_se.analysis.params import _is_statistic
from keras_se.keras_graph import consumer_count, is_functional, model_nodes, producer_layer

CONVENTIONS = (
    "MACs: multiply-adds of convolutions and fully connected layers (the papers' 'GFLOPs'); "
    "conv = H_out*W_out*C_out*k_h*k_w*C_in/groups, dilation does not change it; SE FCs are 1x1 convs on a 1x1 map.",
    "Element-wise ops, counted apart from MACs, one per output element: bias adds and fused activations, "
    "BN (one multiply-add), merges (n-1 per element: the SE scale multiply is H*W*C), activations, "
    "pooling (k*k per output; global pooling one per input element), SK path selection.",
    "Padding, reshapes, concatenation, channel shuffle and dropout move data and cost nothing.",
    "Parameters exclude BN moving statistics. BN folds into the preceding conv at inference: "
    "'params (BN folded)' keeps one bias vector per folded BN, as a converted .tflite file stores it.",
    "Unknown layer types are rows marked 'not counted', with a warning.",
)



_SEUnit = collections.namedtuple("_SEUnit", "name reduce_row channels reduced bias reduction")


class ComplexityWarning(UserWarning):
    """A layer the complexity report cannot count."""


@dataclasses.dataclass
class LayerRow:
    """One layer (or one call of a shared layer).

    `macs` and `elementwise` are None when the layer type is not counted.
    """

    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int | None
    elementwise: int | None
    stage: str = ""
    block: int | None = None
    attention: str | None = None  # "se", "sk" or None
    note: str = ""
    folded_params: int = 0  # parameters removed by folding this BN into its conv
    weighting_macs: int = 0  # attention weighting multiplies (SE scale, SK selection), part of `elementwise`

    @property
    def counted(self):
        return self.macs is not None


@dataclasses.dataclass
class StageRow:
    """Totals of one stage: the blocks working at one spatial size.

    `blocks` (N_s) and `channels` (C_s, the stage's output width) are read
    from the model: the `stage{s}_block{b}_` layer names and the output shape.
    """

    name: str
    resolution: str
    blocks: int
    channels: int | None
    params: int
    macs: int
    elementwise: int
    attention_params: int = 0
    attention_macs: int = 0


@dataclasses.dataclass
class SEStage:
    """The SE units of one stage: N_s units on C_s channels reduced to C_s/r."""

    stage: str
    units: int
    channels: int
    reduced: int


@dataclasses.dataclass
class AttentionOverhead:
    """What attention costs, three ways.

    measured: `twin_params_delta` / `twin_macs_delta` against the plain twin
    (None when there is no twin), and `layer_params` / `layer_macs`, the rows
    of the attention layers themselves. Formula (SE only):
    `formula = 2/r * sum_s N_s * C_s**2` and `bias_term = sum_s N_s * (C_s + C_s/r)`;
    with bias off the parameter delta equals `formula`, with bias on
    `formula + bias_term`. `formula_exact` uses the integer widths the model
    has (`2 * C_s * floor(C_s/r)`), equal to `formula` when r divides every C_s.
    """

    kind: str
    units: int
    reduction: float | None = None
    bias: bool | None = None
    stages: list = dataclasses.field(default_factory=list)
    formula: float | int | None = None
    formula_exact: int | None = None
    bias_term: int | None = None
    expected_params: float | int | None = None
    layer_params: int = 0
    layer_macs: int = 0
    layer_elementwise: int = 0
    layer_weighting_macs: int = 0
    twin: str | None = None
    twin_params_delta: int | None = None
    twin_macs_delta: int | None = None
    notes: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ComplexityReport:
    """Parameters and MACs of a model per layer, per stage and in total.

    Build one with `complexity_report`; the CLI only formats it.
    """

    model: str
    source: str
    input_shape: tuple
    rows: list
    stages: list
    params: int
    params_folded: int
    macs: int
    elementwise: int
    weighting_macs: int = 0
    attention: AttentionOverhead | None = None
    twin: str | None = None
    twin_stages: list | None = None
    twin_params: int | None = None
    twin_macs: int | None = None
    twin_weighting_macs: int | None = None
    warnings: list = dataclasses.field(default_factory=list)
    conventions: tuple = CONVENTIONS

    @property
    def uncounted(self):
        return [row for row in self.rows if not row.counted]

    @property
    def gmacs(self):
        return self.macs / 1e9

    @property
    def macs_with_weighting(self):
        """MACs plus attention's weighting multiplies: the SENet / SKNet papers' count."""
        return self.macs + self.weighting_macs

    def stage(self, name):
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage named {name!r}; stages: {[s.name for s in self.stages]}")

    def row(self, name):
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no row named {name!r}")

    def to_dict(self, rows=True):
        data = dataclasses.asdict(self)
        if not rows:
            data.pop("rows")
        for row in data.get("rows", []):
            row["output_shape"] = list(row["output_shape"])
        data["input_shape"] = list(self.input_shape)
        data["conventions"] = list(self.conventions)
        return data


# --------------------------------------------------------------------------
# Per-layer counting from configurations and shapes.


def _elements(shape):
    """Elements of one sample of `shape` (batch dimension dropped)."""
    dims = tuple(shape)[1:]
    if any(d is None for d in dims):
        raise ValueError(
            f"cannot count a tensor of undefined size {tuple(shape)}: pass input_shape "
            "(height, width, channels) to fix the spatial size"
        )
    return math.prod(dims)


def _pair(value, n):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * n


def _conv(layer, ins, out):
    cin = ins[0][-1]
    groups = getattr(layer, "groups", 1) or 1
    kernel = math.prod(_pair(layer.kernel_size, len(out) - 2))
    macs = _elements(out) * kernel * cin // groups
    note = f"groups={groups}" if groups > 1 else ""
    dilation = _pair(getattr(layer, "dilation_rate", 1), len(out) - 2)
    if any(d > 1 for d in dilation):
        note = ", ".join(filter(None, [note, f"dilation={dilation[0] if len(set(dilation)) == 1 else dilation}"]))
    return macs, _bias_and_activation(layer, out), note


def _conv_transpose(layer, ins, out):
    kernel = math.prod(_pair(layer.kernel_size, len(out) - 2))
    return _elements(ins[0]) * kernel * layer.filters, _bias_and_activation(layer, out), ""


def _depthwise(layer, ins, out):
    kernel = math.prod(_pair(layer.kernel_size, len(out) - 2))
    return _elements(out) * kernel, _bias_and_activation(layer, out), "depthwise"


def _separable(layer, ins, out):
    kernel = math.prod(_pair(layer.kernel_size, len(out) - 2))
    spatial = _elements(out) // out[-1]
    depthwise = spatial * ins[0][-1] * layer.depth_multiplier
    return depthwise * kernel + _elements(out) * ins[0][-1] * layer.depth_multiplier, _bias_and_activation(layer, out), "separable"


def _dense(layer, ins, out):
    return _elements(out) * ins[0][-1], _bias_and_activation(layer, out), ""


def _bias_and_activation(layer, out):
    ops = _elements(out) if getattr(layer, "use_bias", False) else 0
    activation = getattr(layer, "activation", None)
    if activation is not None and getattr(activation, "__name__", "linear") != "linear":
        ops += _elements(out)
    return ops


def _per_output(layer, ins, out):
    return 0, _elements(out), ""


def _merge(layer, ins, out):
    return 0, max(len(ins) - 1, 1) * _elements(out), ""


def _pool(layer, ins, out):
    return 0, _elements(out) * math.prod(_pair(layer.pool_size, len(out) - 2)), ""


def _global_pool(layer, ins, out):
    return 0, _elements(ins[0]), ""


def _free(layer, ins, out):
    return 0, 0, ""


def _kernel_select(layer, ins, out):
    paths = len(ins) - 1
    return 0, (2 * paths - 1) * _elements(out) + _elements(ins[-1]), f"softmax over {paths} paths, weighted sum"


def _batch_norm(layer, ins, out):
    return 0, _elements(out), ""


# Looked up along the class's MRO, most specific first, so subclasses
# (GroupConv2D -> Conv2D, tf_keras' DepthwiseConv2D -> Conv2D) are right.
_HANDLERS = {
    "DepthwiseConv1D": _depthwise,
    "DepthwiseConv2D": _depthwise,
    "SeparableConv1D": _separable,
    "SeparableConv2D": _separable,
    "Conv1DTranspose": _conv_transpose,
    "Conv2DTranspose": _conv_transpose,
    "Conv3DTranspose": _conv_transpose,
    "Conv1D": _conv,
    "Conv2D": _conv,
    "Conv3D": _conv,
    "Dense": _dense,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _per_output,
    "GroupNormalization": _per_output,
    "UnitNormalization": _per_output,
    "Rescaling": _per_output,
    "Normalization": _per_output,
    "ReLU": _per_output,
    "LeakyReLU": _per_output,
    "PReLU": _per_output,
    "ELU": _per_output,
    "Softmax": _per_output,
    "Activation": _per_output,
    "Add": _merge,
    "Subtract": _merge,
    "Multiply": _merge,
    "Average": _merge,
    "Maximum": _merge,
    "Minimum": _merge,
    "MaxPooling1D": _pool,
    "MaxPooling2D": _pool,
    "MaxPooling3D": _pool,
    "AveragePooling1D": _pool,
    "AveragePooling2D": _pool,
    "AveragePooling3D": _pool,
    "GlobalAveragePooling1D": _global_pool,
    "GlobalAveragePooling2D": _global_pool,
    "GlobalAveragePooling3D": _global_pool,
    "GlobalMaxPooling1D": _global_pool,
    "GlobalMaxPooling2D": _global_pool,
    "GlobalMaxPooling3D": _global_pool,
    "KernelSelect": _kernel_select,
    "InputLayer": _free,
    "ZeroPadding1D": _free,
    "ZeroPadding2D": _free,
    "ZeroPadding3D": _free,
    "Cropping1D": _free,
    "Cropping2D": _free,
    "Cropping3D": _free,
    "Reshape": _free,
    "Flatten": _free,
    "Permute": _free,
    "RepeatVector": _free,
    "Concatenate": _free,
    "ChannelShuffle": _free,
    "ChannelSlice": _free,
    "Identity": _free,
    "Dropout": _free,
    "SpatialDropout1D": _free,
    "SpatialDropout2D": _free,
    "SpatialDropout3D": _free,
    "GaussianNoise": _free,
    "GaussianDropout": _free,
    "AlphaDropout": _free,
    "ActivityRegularization": _free,
}
_CONVS = {"Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "Dense", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"}


def _kind(layer):
    for cls in type(layer).__mro__:
        if cls.__name__ in _HANDLERS or cls.__name__ in ("SqueezeExcite", "SelectiveKernel", "Sequential", "Functional"):
            return cls.__name__
    return None


def _uncounted_detail(params):
    if params:
        return f"its multiply-adds and element-wise work are unknown (its {params:,} parameters are in the totals)"
    return "its multiply-adds and element-wise work are unknown"


def _is_channel_weighting(shapes):
    """A feature map times a per-channel (N, 1, 1, C) weight: SE's scale."""
    if len(shapes) != 2 or any(len(s) != 4 for s in shapes):
        return False
    maps = [s for s in shapes if s[1:3] != (1, 1)]
    return len(maps) == 1 and maps[0][-1] == [s for s in shapes if s is not maps[0]][0][-1]


def _layer_params(layer):
    return sum(math.prod(w.shape) for w in getattr(layer, "weights", []) if not _is_statistic(w))


def _shape(tensor):
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _flatten(value):
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flatten(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten(v)]
    return [] if value is None else [value]


class _Counter:
    """Walks a model (and nested keras_se / Keras composites) into rows."""

    def __init__(self):
        self.rows = []
        self.warnings = []
        self.se_units = []  # _SEUnit per SE block found
        self.se_prefixes = set()
        self.sk_prefixes = set()
        self._seen_params = set()

    def warn(self, message):
        self.warnings.append(message)
        warnings.warn(message, ComplexityWarning, stacklevel=4)

    def add(self, layer, name, ins, out, attention=None, folded_params=0):
        kind = _kind(layer)
        type_name = type(layer).__name__
        params = 0
        if id(layer) not in self._seen_params:  # a shared layer's weights count once
            self._seen_params.add(id(layer))
            params = _layer_params(layer)
        if kind is None or kind not in _HANDLERS:
            self.rows.append(LayerRow(name, type_name, out, params, None, None, attention=attention, note="not counted"))
            self.warn(f"layer {name!r} of type {type_name} is not counted: {_uncounted_detail(params)}")
            return
        macs, elementwise, note = _HANDLERS[kind](layer, ins, out)
        if folded_params:
            note = ", ".join(filter(None, [note, "folds into the preceding conv"]))
        row = LayerRow(name, type_name, out, params, int(macs), int(elementwise), attention=attention, note=note, folded_params=folded_params)
        # The papers count attention's weighting of the feature map as
        # multiply-adds: SE's scale (H*W*C) and SK's selection (M*H*W*C).
        if kind == "Multiply" and _is_channel_weighting(ins):
            row.weighting_macs = _elements(out)
        elif kind == "KernelSelect":
            row.weighting_macs = (len(ins) - 1) * _elements(out)
        self.rows.append(row)

    # -- functional graphs ------------------------------------------------

    def walk_model(self, model, prefix=""):
        pairs = model_nodes(model)
        by_name = {layer.name: layer for layer, _ in pairs}
        self.se_prefixes |= {f"{prefix}{m.group(1)}" for n in by_name if (m := naming.SE_UNIT.match(n))}
        self.sk_prefixes |= {f"{prefix}{m.group(1)}" for n in by_name if (m := naming.SK_UNIT.match(n))}
        for layer, node in pairs:
            ins = [_shape(t) for t in _flatten(node.input_tensors)]
            outs = [_shape(t) for t in _flatten(node.outputs)]
            out = outs[0] if len(outs) == 1 else tuple(outs)
            name = f"{prefix}{layer.name}"
            kind = _kind(layer)
            if kind in ("Functional", "Sequential"):
                self.walk_model(layer, prefix=f"{name}/")
            elif kind == "SqueezeExcite":
                self.walk_se(layer, name, ins[0])
            elif kind == "SelectiveKernel":
                self.walk_sk(layer, name, ins[0])
            elif kind == "InputLayer" and prefix:
                continue  # the outer model's row already shows the input
            else:
                attention = self._attention_of(name)
                folded = _folded_params(layer, node, out) if kind == "BatchNormalization" else 0
                self.add(layer, name, ins, out, attention, folded)
                unit = name[: -len("_reduce")]
                if attention == "se" and name.endswith("_reduce") and kind in _CONVS:
                    expand = by_name.get(layer.name[: -len("_reduce")] + "_expand")
                    if expand is not None:
                        self.se_units.append(_SEUnit(unit, name, expand.filters, layer.filters, bool(layer.use_bias), None))

    def _attention_of(self, name):
        for role in naming.SE_ROLES:
            if name.endswith("_" + role) and name[: -len(role) - 1] in self.se_prefixes:
                return "se"
        at = name.find("sk_")
        while at >= 0:
            if name[: at + 2] in self.sk_prefixes:
                return "sk"
            at = name.find("sk_", at + 1)
        return None

    # -- keras_se composites ------------------------------------------------

    def walk_se(self, layer, name, shape):
        parts = getattr(layer, "parts", None)
        if parts is None:
            self.add(layer, name, [shape], shape)
            return
        pooled = tuple(parts["squeeze"].compute_output_shape(shape)) if "squeeze_avg" not in parts else shape[:1] + (1, 1, shape[-1])
        for role in ("squeeze_avg", "squeeze_max"):
            if role in parts:
                self.add(parts[role], f"{name}/{parts[role].name}", [shape], pooled, "se")
        squeeze_in = [pooled, pooled] if "squeeze_avg" in parts else [shape]
        self.add(parts["squeeze"], f"{name}/{parts['squeeze'].name}", squeeze_in, pooled, "se")
        x = pooled
        for role in ("reduce", "act", "expand", "gate_shift", "gate_relu6", "gate"):
            if role in parts:
                y = tuple(parts[role].compute_output_shape(x))
                self.add(parts[role], f"{name}/{parts[role].name}", [x], y, "se")
                x = y
        self.add(parts["scale"], f"{name}/{parts['scale'].name}", [shape, x], shape, "se")
        # SE's own parameters live in its sublayers; mark the layer itself seen.
        self._seen_params.add(id(layer))
        reduce_row = f"{name}/{parts['reduce'].name}"
        self.se_units.append(_SEUnit(name, reduce_row, shape[-1], parts["reduce"].filters, bool(layer.use_bias), layer.reduction))

    def walk_sk(self, layer, name, shape):
        from keras_se.layers.selective_kernel import sk_num_paths, sk_path_layers

        parts = layer.parts
        paths = []
        for m in range(sk_num_paths(parts)):
            x = shape
            chain = sk_path_layers(parts, m)
            for i, sub in enumerate(chain):
                y = tuple(sub.compute_output_shape(x))
                folded = 0
                if _kind(sub) == "BatchNormalization" and i:
                    folded = _fold_amount(sub, chain[i - 1], y[-1])
                self.add(sub, f"{name}/{sub.name}", [x], y, "sk", folded)
                x = y
            paths.append(x)
        self.add(parts["fuse"], f"{name}/{parts['fuse'].name}", paths, paths[0], "sk")
        x = tuple(parts["pool"].compute_output_shape(paths[0]))
        self.add(parts["pool"], f"{name}/{parts['pool'].name}", [paths[0]], x, "sk")
        previous = None
        for role in ("fc1", "fc1_bn", "fc1_relu", "fc2"):
            sub = parts[role]
            y = tuple(sub.compute_output_shape(x))
            folded = _fold_amount(sub, previous, y[-1]) if role == "fc1_bn" else 0
            self.add(sub, f"{name}/{sub.name}", [x], y, "sk", folded)
            previous, x = sub, y
        self.add(parts["select"], f"{name}/{parts['select'].name}", paths + [x], paths[0], "sk")
        self._seen_params.add(id(layer))


def _fold_amount(bn, conv, channels):
    """Parameters that disappear when `bn` folds into `conv`: gamma and beta,
    less the bias vector the conv gains when it had none.

    TensorFlow lowers a dilated convolution to space-to-batch -> conv ->
    batch-to-space, and the converter does not fold a BN across that: it
    stays a multiply and an add (2C parameters), so nothing disappears.
    """
    if conv is None or _kind(conv) not in _CONVS:
        return 0
    if any(d > 1 for d in _pair(getattr(conv, "dilation_rate", 1), 2)):
        return 0
    scale_shift = sum(math.prod(w.shape) for w in bn.weights if not _is_statistic(w))
    return scale_shift - (0 if getattr(conv, "use_bias", False) else channels)


def _folded_params(bn, node, out):
    inputs = _flatten(node.input_tensors)
    if len(inputs) != 1:
        return 0
    producer = producer_layer(inputs[0])
    if producer is None or _kind(producer) not in _CONVS:
        return 0
    if consumer_count(producer) != 1:
        return 0  # the conv output is used elsewhere too: it cannot absorb the BN
    return _fold_amount(bn, producer, out[-1])


# --------------------------------------------------------------------------
# Stages.


def _first_shape(shape):
    return shape[0] if shape and isinstance(shape[0], tuple) else shape


def assign_stages(rows):
    """Sets `row.stage` and `row.block`.

    With `stage{s}_block{b}` in the layer names (keras_se's builders, and the
    tensor names of their `.tflite` files): rows before the first block are
    "stem", rows after the last are "head". Without such names a stage is a
    run of layers at one spatial size, named `HxW` (1x1 maps such as SE's stay
    in the stage they serve), and rank-2 outputs after them are "head".
    """
    matches = [naming.STAGE_BLOCK.search(row.name) for row in rows]
    if any(matches):
        first = next(i for i, m in enumerate(matches) if m)
        last = max(i for i, m in enumerate(matches) if m)
        current, block = "stem", None
        for i, (row, m) in enumerate(zip(rows, matches)):
            if m:
                current, block = f"stage{m.group(1)}", int(m.group(2))
            elif i < first:
                current, block = "stem", None
            elif i > last:
                current, block = "head", None
            row.stage, row.block = current, block
        return
    current, pending = None, []
    for row in rows:
        shape = _first_shape(row.output_shape)
        if len(shape) != 4:
            current = "head" if current is not None else "input"
        elif row.counted and row.macs and shape[1] != 1 or current is None and row.counted and row.macs:
            # Convolutions open stages; padding, pooling and 1x1 maps (SE)
            # belong to the stage they serve.
            current = f"{shape[1]}x{shape[2]}"
        elif current is None:
            pending.append(row)
            continue
        for waiting in pending:
            waiting.stage = current
        pending = []
        row.stage, row.block = current, None
    for waiting in pending:
        waiting.stage = "input"


def _stage_geometry(rows):
    """(resolution, channels) of a stage: the output of its last computing
    layer (padding ahead of a later stage's strided conv does not count)."""
    for row in reversed(rows):
        shape = _first_shape(row.output_shape)
        if len(shape) == 4 and (not row.counted or row.macs or row.elementwise):
            return f"{shape[1]}x{shape[2]}", shape[-1]
    return "-", None


def stage_totals(rows):
    """Per-stage totals of rows that carry `stage` (see `assign_stages`)."""
    groups = collections.OrderedDict()
    for row in rows:
        groups.setdefault(row.stage, []).append(row)
    stages = []
    for name, members in groups.items():
        resolution, channels = _stage_geometry(members)
        counted = [row for row in members if row.counted]
        stages.append(
            StageRow(
                name=name,
                resolution=resolution,
                blocks=len({row.block for row in members if row.block is not None}),
                channels=channels,
                params=sum(row.params for row in members),
                macs=sum(row.macs for row in counted),
                elementwise=sum(row.elementwise for row in counted),
                attention_params=sum(row.params for row in members if row.attention),
                attention_macs=sum(row.macs for row in counted if row.attention),
            )
        )
    return stages


# --------------------------------------------------------------------------
# SE formula.


def _as_number(value):
    value = Fraction(value)
    return int(value) if value.denominator == 1 else float(value)


def se_overhead(units, rows, reduction=None):
    """The SE formula for `units` (one `_SEUnit` per SE block).

    N_s and C_s come from the units themselves: units are grouped by the
    stage of their reduce FC and by their channels. `reduction` (r) defaults
    to the SqueezeExcite layers' own, else to the most common exact ratio
    C / C_r among the units.
    """
    stage_of = {row.name: row.stage for row in rows}
    if reduction is None:
        declared = {u.reduction for u in units if u.reduction is not None}
        if len(declared) == 1:
            reduction = declared.pop()
        else:
            reduction = collections.Counter(Fraction(u.channels, u.reduced) for u in units).most_common(1)[0][0]
    r = Fraction(reduction).limit_denominator(1000)
    grouped = collections.OrderedDict()
    for u in units:
        key = (stage_of.get(u.reduce_row, ""), u.channels, u.reduced)
        grouped[key] = grouped.get(key, 0) + 1
    stages = [SEStage(stage, n, c, cr) for (stage, c, cr), n in grouped.items()]
    bias = all(u.bias for u in units)
    formula = sum(Fraction(2) / r * s.units * s.channels**2 for s in stages)
    exact = sum(2 * s.units * s.channels * s.reduced for s in stages)
    bias_term = sum(s.units * (s.channels + s.reduced) for s in stages)
    notes = []
    inexact = [s for s in stages if Fraction(s.channels) / r != s.reduced]
    if inexact:
        notes.append(
            "C_s/r is not the width the model uses in "
            + ", ".join(f"{s.stage or '?'} (C_s={s.channels}: {s.reduced})" for s in inexact)
            + f"; with those widths the formula is 2*sum N_s*C_s*(C_s reduced) = {exact:,}"
        )
    if not bias and any(u.bias for u in units):
        notes.append("some SE units have FC bias and some do not; the bias term is not added")
    return AttentionOverhead(
        kind="se",
        units=len(units),
        reduction=int(r) if r.denominator == 1 else float(r),
        bias=bias,
        stages=stages,
        formula=_as_number(formula),
        formula_exact=exact,
        bias_term=bias_term,
        expected_params=(exact + bias_term) if bias else exact,
        notes=notes,
    )


@dataclasses.dataclass
class SEStageOverhead:
    """The SE parameters of one stage: measured, and by the formula with each block's own widths.

    `widths` are the (C_b, C'_b) of the stage's SE units: C_b the width SE
    recalibrates in block b, C'_b its reduced width. `formula` is
    `sum_b 2 * C_b * C'_b` and `bias_term` `sum_b (C_b + C'_b)` (0 without
    FC bias). Measured: `layer_params`, the stage's SE rows, and
    `twin_delta`, the stage minus the plain twin's (None without a twin).
    """

    stage: str
    units: int
    widths: list
    formula: int
    bias_term: int
    expected: int
    layer_params: int
    twin_delta: int | None = None


# How `se_overhead_per_stage` generalises the paper's formula; reports print it.
SE_STAGE_FORMULA = (
    "per stage, sum over its SE blocks of 2*C_b*C'_b (+ C_b + C'_b with FC bias): C_b is the width SE "
    "recalibrates in block b (the block output in SE-ResNet; the expanded width inside an inverted "
    "residual, MobileNetV3; the module output in Inception; each conv's output in VGG) and C'_b its "
    "reduced width. With one SE per block on C_s channels and C' = C_s/r it is the paper's 2/r*N_s*C_s^2."
)


def se_overhead_per_stage(report):
    """The SE overhead of each stage of `report`, measured and by the generalised formula.

    The paper's `2/r * sum_s N_s * C_s**2` assumes one SE per block on the
    block's output width C_s. MobileNetV3 puts SE inside the inverted
    residual, on the expanded width, which differs block by block (and its
    reduced width rounds up to a multiple of 8), as Inception modules and
    VGG convolutions have widths of their own. So the formula is summed
    block by block with each SE's own widths (`SE_STAGE_FORMULA`).

    Args:
        report: a `ComplexityReport` with SE (`report.attention.stages`).

    Returns:
        list of `SEStageOverhead`, in stage order; [] without SE.
    """
    attention = report.attention
    if attention is None or not attention.stages:
        return []
    twin = {s.name: s.params for s in report.twin_stages or []}
    layers = {s.name: s.attention_params for s in report.stages}
    grouped = collections.OrderedDict()
    for unit in attention.stages:
        grouped.setdefault(unit.stage, []).extend([(unit.channels, unit.reduced)] * unit.units)
    out = []
    for stage, widths in grouped.items():
        formula = sum(2 * c * cr for c, cr in widths)
        bias = sum(c + cr for c, cr in widths) if attention.bias else 0
        params = next((s.params for s in report.stages if s.name == stage), None)
        delta = params - twin[stage] if report.twin_stages is not None and stage in twin and params is not None else None
        out.append(SEStageOverhead(stage, len(widths), widths, formula, bias, formula + bias, layers.get(stage, 0), delta))
    return out


# --------------------------------------------------------------------------
# Entry points.


def report_from_rows(name, source, input_shape, rows, warnings_=(), se_units=(), reduction=None):
    """Stages, totals and attention overhead from counted rows."""
    assign_stages(rows)
    counted = [row for row in rows if row.counted]
    params = sum(row.params for row in rows)
    report = ComplexityReport(
        model=name,
        source=source,
        input_shape=tuple(input_shape),
        rows=rows,
        stages=stage_totals(rows),
        params=params,
        params_folded=params - sum(row.folded_params for row in rows),
        macs=sum(row.macs for row in counted),
        elementwise=sum(row.elementwise for row in counted),
        weighting_macs=sum(row.weighting_macs for row in counted),
        warnings=list(warnings_),
    )
    se_rows = [row for row in rows if row.attention == "se"]
    sk_rows = [row for row in rows if row.attention == "sk"]
    if se_units:
        overhead = se_overhead(list(se_units), rows, reduction)
        if sk_rows:
            overhead.kind = "se+sk"
    elif sk_rows:
        overhead = AttentionOverhead(kind="sk", units=sum(1 for row in sk_rows if row.type == "KernelSelect"))
    else:
        return report
    attention_rows = se_rows + sk_rows
    overhead.layer_params = sum(row.params for row in attention_rows)
    overhead.layer_macs = sum(row.macs for row in attention_rows if row.counted)
    overhead.layer_elementwise = sum(row.elementwise for row in attention_rows if row.counted)
    overhead.layer_weighting_macs = sum(row.weighting_macs for row in attention_rows if row.counted)
    report.attention = overhead
    return report


def report_keras_model(model, name=None, reduction=None):
    """The report of a built Keras model (no twin)."""
    counter = _Counter()
    counter.walk_model(model)
    input_shape = tuple(_shape(model.inputs[0])[1:]) if getattr(model, "inputs", None) else ()
    report = report_from_rows(
        name or model.name, "keras", input_shape, counter.rows, counter.warnings, counter.se_units, reduction
    )
    total = _model_params(model)
    if total != report.params:
        report.warnings.append(
            f"the rows hold {report.params:,} parameters but the model has {total:,}: "
            "some weights belong to no counted layer"
        )
    return report


def _model_params(model):
    seen, total = set(), 0
    for w in model.weights:
        key = id(w)
        if key in seen or _is_statistic(w):
            continue
        seen.add(key)
        total += math.prod(w.shape)
    return total


def attach_twin(report, twin_report, twin_name):
    """Adds the plain twin's totals and the measured deltas to `report`."""
    report.twin = twin_name
    report.twin_stages = twin_report.stages
    report.twin_params = twin_report.params
    report.twin_macs = twin_report.macs
    report.twin_weighting_macs = twin_report.weighting_macs
    if report.attention is not None:
        report.attention.twin = twin_name
        report.attention.twin_params_delta = report.params - twin_report.params
        report.attention.twin_macs_delta = report.macs - twin_report.macs
    return report


def _file_kind(path):
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as error:
        raise ValueError(f"cannot read {path!r}: {error.strerror or error}") from None
    if head[4:8] == b"TFL3":
        return "tflite"
    if head[:4] == b"PK\x03\x04":
        return "keras"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "h5"
    return None


def _looks_like_path(value):
    return os.sep in value or value.endswith((".keras", ".tflite", ".h5", ".hdf5")) or os.path.exists(value)


def load_keras_file(path):
    """Loads a `.keras` file for counting, with one-line errors."""
    import keras

    import keras_se.layers  # noqa: F401  (registers the keras_se classes)

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad archive
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot read {path!r} as a Keras model: {reason}") from None


def _with_input_shape(model, input_shape):
    import keras

    current = tuple(_shape(model.inputs[0])[1:])
    if tuple(input_shape) == current:
        return model
    config = _keras_se_config(model)
    if config:
        return type(model).from_config({**config, "input_shape": tuple(input_shape)})
    if len(model.inputs) != 1:
        raise ValueError(f"input_shape applies to single-input models; this one has {len(model.inputs)} inputs")
    try:
        return keras.models.clone_model(model, input_tensors=keras.Input(shape=tuple(input_shape)))
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot rebuild {model.name!r} at input_shape={tuple(input_shape)}: {reason}") from None


def _check_input_shape(input_shape):
    if input_shape is None:
        return None
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(f"input_shape must be (height, width, channels) with positive ints. Received: input_shape={input_shape!r}")
    return shape


def complexity_report(model, input_shape=None, *, twin=None, reduction=None, **build_kwargs):
    """Parameters and MACs per layer, per stage and in total, and the SE overhead.

    Args:
        model: a registry name (`"se_resnet50"`), a path to a `.keras` or
            `.tflite` file, a functional or Sequential Keras model (Keras 3 or
            tf_keras), or a single Keras layer (then `input_shape` is needed).
        input_shape: tuple `(height, width, channels)` or None. For a registry
            name, the size to build at (default: the builder's 224x224); for a
            model, rebuilds it at that size; a `.tflite` file has its own.
        twin: the plain model to measure the attention overhead against: a
            registry name, a model, False for none, or None (default): the
            registry's plain twin for a registry name, else, for a keras_se
            model (built or loaded), the same configuration without attention.
        reduction: number or None. r of the SE formula; None reads it from
            the model (the SqueezeExcite layers, the builder's `reduction`,
            else the units' most common C / C_r). For a registry name it is
            also the model's r: the model is built with it.
        **build_kwargs: builder arguments for a registry name (`reduction`,
            `se_bias`, `se_stages`, ...); also used for its twin.

    Returns:
        A `ComplexityReport`.

    Example:

    >>> report = complexity_report("se_resnet50")
    >>> round(report.gmacs, 2), report.attention.twin_macs_delta
    (3.86, 2514944)
    """
    input_shape = _check_input_shape(input_shape)
    twin_model = None
    name = None
    if isinstance(model, (str, os.PathLike)):
        value = os.fspath(model)
        if _looks_like_path(value):
            if build_kwargs:
                raise ValueError(f"builder arguments apply to registry names only. Received: {sorted(build_kwargs)} for {value!r}")
            if not os.path.exists(value):
                raise ValueError(f"model file not found: {value!r}")
            if os.path.isdir(value):
                raise ValueError(f"expected a model file, got a directory: {value!r}")
            kind = _file_kind(value)
            if kind == "tflite":
                from keras_se.analysis.tflite import tflite_report

                if input_shape is not None:
                    raise ValueError(f"a .tflite file has a fixed input shape; input_shape cannot change it. Received: input_shape={input_shape}")
                report = tflite_report(value, reduction=reduction)
                if twin not in (None, False):
                    attach_twin(report, complexity_report(twin, report.input_shape, twin=False), _twin_name(twin))
                return report
            if kind is None:
                raise ValueError(f"{value!r} is not a Keras (.keras, .h5) or TFLite (.tflite) model file")
            model = load_keras_file(value)
            name = os.path.basename(value)
        else:
            from keras_se.models.registry import create_model, get_entry

            kwargs = dict(build_kwargs)
            if input_shape is not None:
                kwargs["input_shape"] = input_shape
            if reduction is not None and get_entry(value).kwargs.get("attention") in ("se", "sk"):
                kwargs["reduction"] = reduction  # the model's r is the formula's r
            model, input_shape, name = create_model(value, **kwargs), None, value
            if twin is None and get_entry(value).twin:
                twin_model = create_model(get_entry(value).twin, **kwargs)
    elif build_kwargs:
        raise ValueError(f"builder arguments apply to registry names only. Received: {sorted(build_kwargs)}")
    if not is_functional(model) and hasattr(model, "compute_output_shape") and not hasattr(model, "layers"):
        model = _wrap_layer(model, input_shape)
        input_shape = None
    if input_shape is not None:
        model = _with_input_shape(model, input_shape)
    config = _keras_se_config(model)
    if reduction is None and config.get("attention") == "se":
        reduction = config["reduction"]
    if twin is None and twin_model is None and config.get("attention"):
        twin_model = model.plain_twin()  # the same architecture without attention
    report = report_keras_model(model, name, reduction)
    if twin_model is not None:
        attach_twin(report, report_keras_model(twin_model, twin_model.name), twin_model.name)
    elif twin not in (None, False):
        twin_input = report.input_shape if input_shape is None else input_shape
        attach_twin(report, complexity_report(twin, twin_input, twin=False), _twin_name(twin))
    return report


def _keras_se_config(model):
    """A keras_se model's architecture (`get_config()`), or {} for any other model."""
    from keras_se.models.base import SEModel

    return model.get_config() if isinstance(model, SEModel) else {}


def _twin_name(twin):
    return twin if isinstance(twin, str) else getattr(twin, "name", str(twin))


def _wrap_layer(layer, input_shape):
    import keras

    if input_shape is None:
        raise ValueError(f"a single layer needs input_shape to be counted. Received: layer {layer.name!r}, input_shape=None")
    inputs = keras.Input(shape=input_shape, name="input")
    return keras.Model(inputs, layer(inputs), name=layer.name)
