"""Counting a Keras model: parameters, multiply-adds and element-wise work per
layer, from layer configurations and tensor shapes (no profiler, no tracing).

The graph is read through `keras_se.keras_graph`; keras_se's composite
layers (`SqueezeExcite`, `SelectiveKernel`) are walked through the same
`make_se_layers` / `make_sk_layers` parts they are built from.
"""

import math
import warnings

from keras_se import naming
from keras_se.analysis.params import _is_statistic
from keras_se.analysis.records import ComplexityWarning, LayerRow, SEUnit, is_channel_weighting, uncounted_detail
from keras_se.analysis.stages import report_from_rows
from keras_se.keras_graph import consumer_count, model_nodes, producer_layer
from keras_se.layers.attention import attention_kind_of

# Per-layer counting from configurations and shapes.


def _elements(shape):
    """Elements of one sample of `shape` (batch dimension dropped)."""
    dims = tuple(shape)[1:]
    if any(d is None for d in dims):
        raise ValueError(
            f"cannot count a tensor of undefined size {tuple(shape)}: pass input_shape (height, width, channels) to fix the spatial size"
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


def _eca(layer, ins, out):
    h, w, c = out[1:]
    k = layer.conv.kernel.shape[1]
    # Pool (H*W*C adds), the 1-D convolution (k MACs per channel), the gate.
    return c * k, h * w * c + c, f"1-D conv, k={k}"


def _cbam(layer, ins, out):
    h, w, c = out[1:]
    width = layer.fc1.filters
    k = layer.spatial_kernel_size
    mlp = 2 * (c * width + width * c)  # the shared MLP on both descriptors
    bias = 2 * (width + c) if layer.use_bias else 0
    channel = 2 * h * w * c + bias + 2 * width + 2 * c  # avg and max pools, bias, act, add, gate
    spatial = 2 * h * w * c + 3 * h * w  # mean and max over channels, BN, gate
    return mlp + 2 * k * k * h * w, channel + spatial, f"channel MLP {c}-{width}-{c}, spatial {k}x{k}"


_WEIGHTINGS = {"EfficientChannelAttention": 1, "CBAM": 2}

# Looked up along the class's MRO, most specific first, so subclasses
# (GroupConv2D -> Conv2D, tf_keras' DepthwiseConv2D -> Conv2D) are right.
_HANDLERS = {
    "EfficientChannelAttention": _eca,
    "CBAM": _cbam,
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
_CONVS = {
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "Dense",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
}


def _kind(layer):
    for cls in type(layer).__mro__:
        if cls.__name__ in _HANDLERS or cls.__name__ in ("SqueezeExcite", "SelectiveKernel", "Sequential", "Functional"):
            return cls.__name__
    return None


def _layer_params(layer):
    return sum(math.prod(w.shape) for w in getattr(layer, "weights", []) if not _is_statistic(w))


def tensor_shape(tensor):
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
            self.warn(f"layer {name!r} of type {type_name} is not counted: {uncounted_detail(params)}")
            return
        macs, elementwise, note = _HANDLERS[kind](layer, ins, out)
        if folded_params:
            note = ", ".join(filter(None, [note, "folds into the preceding conv"]))
        row = LayerRow(
            name, type_name, out, params, int(macs), int(elementwise), attention=attention, note=note, folded_params=folded_params
        )
        # The papers count attention's weighting of the feature map as
        # multiply-adds: SE's scale (H*W*C) and SK's selection (M*H*W*C);
        # ECA's one, CBAM's two (channel, then spatial).
        if kind in _WEIGHTINGS:
            row.weighting_macs = _WEIGHTINGS[kind] * _elements(out)
        elif kind == "Multiply" and is_channel_weighting(ins):
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
            ins = [tensor_shape(t) for t in _flatten(node.input_tensors)]
            outs = [tensor_shape(t) for t in _flatten(node.outputs)]
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
            elif attention_kind_of(layer) is not None:  # an attention kind's own layer (ECA, CBAM, a user's)
                self.add(layer, name, ins, out, attention_kind_of(layer))
            else:
                attention = self._attention_of(name)
                folded = _folded_params(layer, node, out) if kind == "BatchNormalization" else 0
                self.add(layer, name, ins, out, attention, folded)
                unit = name[: -len("_reduce")]
                if attention == "se" and name.endswith("_reduce") and kind in _CONVS:
                    expand = by_name.get(layer.name[: -len("_reduce")] + "_expand")
                    if expand is not None:
                        self.se_units.append(SEUnit(unit, name, expand.filters, layer.filters, bool(layer.use_bias), None))

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
        self.se_units.append(SEUnit(name, reduce_row, shape[-1], parts["reduce"].filters, bool(layer.use_bias), layer.reduction))

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


def report_keras_model(model, name=None, reduction=None):
    """The report of a built Keras model (no twin)."""
    counter = _Counter()
    counter.walk_model(model)
    input_shape = tuple(tensor_shape(model.inputs[0])[1:]) if getattr(model, "inputs", None) else ()
    report = report_from_rows(name or model.name, "keras", input_shape, counter.rows, counter.warnings, counter.se_units, reduction)
    total = _model_params(model)
    if total != report.params:
        report.warnings.append(
            f"the rows hold {report.params:,} parameters but the model has {total:,}: some weights belong to no counted layer"
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
