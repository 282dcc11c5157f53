"""Complexity of a converted `.tflite` file: what will actually ship.

Reads the flatbuffer with `keras_se.tflite_file.read_tflite` (the one
TFLite reader of keras_se; no interpreter, no TensorFlow) and counts each
operator with the conventions of `keras_se.analysis.complexity`, so the MACs of a `.tflite` file equal those
of the Keras model it came from, and its parameters equal the Keras model's
`params_folded` (BN folded into the convolutions).

Only the main subgraph is counted. Two converter habits are undone so the
counts stay comparable:

- A dilated convolution is lowered to SPACE_TO_BATCH_ND -> CONV_2D ->
  BATCH_TO_SPACE_ND, and with a dynamic batch the stored shapes of the inner
  convolution are those of one of the d*d sub-images. The convolution is
  counted on the BATCH_TO_SPACE_ND output, the dilated convolution's real
  output.
- Constants that are shapes, axes or paddings are not parameters: only the
  constant inputs of arithmetic operators (convolution filters and biases,
  FC weights, the scale and shift of an unfolded BN) count, and not the
  all-zero bias the converter gives a convolution that had none.
"""

import os
import warnings

from keras_se import naming
from keras_se.analysis.records import ComplexityWarning, LayerRow, SEUnit, is_channel_weighting, uncounted_detail
from keras_se.analysis.stages import report_from_rows

# Operators by how they are counted.
_CONV = {"CONV_2D", "CONV_3D"}
_DEPTHWISE = {"DEPTHWISE_CONV_2D"}
_FC = {"FULLY_CONNECTED", "BATCH_MATMUL"}
_TRANSPOSE_CONV = {"TRANSPOSE_CONV"}
_PER_OUTPUT = {
    "ADD",
    "SUB",
    "MUL",
    "DIV",
    "MAXIMUM",
    "MINIMUM",
    "SQUARED_DIFFERENCE",
    "POW",
    "LOGISTIC",
    "RELU",
    "RELU6",
    "RELU_N1_TO_1",
    "RELU_0_TO_1",
    "TANH",
    "HARD_SWISH",
    "LEAKY_RELU",
    "PRELU",
    "ELU",
    "GELU",
    "EXP",
    "SQRT",
    "RSQRT",
    "SOFTMAX",
    "LOG_SOFTMAX",
    "ABS",
    "NEG",
}
_REDUCE = {"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"}
_POOL = {"MAX_POOL_2D", "AVERAGE_POOL_2D", "L2_POOL_2D"}
_FREE = {
    "PAD",
    "PADV2",
    "MIRROR_PAD",
    "RESHAPE",
    "TRANSPOSE",
    "CONCATENATION",
    "SPLIT",
    "SPLIT_V",
    "STRIDED_SLICE",
    "SLICE",
    "SQUEEZE",
    "EXPAND_DIMS",
    "GATHER",
    "GATHER_ND",
    "SPACE_TO_BATCH_ND",
    "BATCH_TO_SPACE_ND",
    "PACK",
    "UNPACK",
    "SHAPE",
    "DEPTH_TO_SPACE",
    "SPACE_TO_DEPTH",
    "DEQUANTIZE",
    "QUANTIZE",
    "CAST",
    "TILE",
    "BROADCAST_TO",
    "RESIZE_NEAREST_NEIGHBOR",
    "ZEROS_LIKE",
    "FILL",
}
# Operators whose constant inputs are parameters (index 0 of TRANSPOSE_CONV
# is the output shape).
_WEIGHTED = (
    _CONV
    | _DEPTHWISE
    | _FC
    | _TRANSPOSE_CONV
    | {
        "ADD",
        "SUB",
        "MUL",
        "DIV",
        "MAXIMUM",
        "MINIMUM",
        "PRELU",
        "SQUARED_DIFFERENCE",
    }
)


class _Graph:
    """`read_tflite`'s graph with the links the counts need: who produces
    and who consumes each tensor, and which constants are all zeros."""

    def __init__(self, path):
        from keras_se.tflite_file import read_tflite

        self.graph = read_tflite(path)
        self.ops = self.graph.ops
        self.producer = {t.index: op for op in self.ops for t in op.outputs}
        self.consumers = {}
        for op in self.ops:
            for t in op.inputs:
                if t is not None:
                    self.consumers.setdefault(t.index, []).append(op)

    def is_constant(self, tensor):
        if tensor is None:
            return False
        op = self.producer.get(tensor.index)
        if op is not None:
            # Weights stored compressed reach their op through DEQUANTIZE.
            return op.name == "DEQUANTIZE" and all(self.is_constant(t) for t in op.inputs)
        return tensor.is_const

    def is_zero(self, tensor):
        """A constant stored as all zeros (the bias the converter gives a
        bias-free convolution)."""
        op = self.producer.get(tensor.index)
        if op is not None:
            return op.name == "DEQUANTIZE" and self.is_constant(op.inputs[0]) and self.is_zero(op.inputs[0])
        data = self.graph.buffer_data(tensor)
        return len(data) > 0 and not any(data)


def _elements(shape):
    n = 1
    for d in shape[1:] if len(shape) > 1 else shape:
        n *= max(int(d), 0)
    return n


def _row_name(op):
    """The Keras layer scope of an operator's output tensor.

    Fused operators are named `a/Relu;a/conv/convolution`: the last part is
    the main operation. The leading model scope is dropped.
    """
    name = op.outputs[0].name.split(";")[-1]
    parts = name.split("/")
    return "/".join(parts[1:]) if len(parts) > 2 else name


def _fused(op):
    return 0 if op.option("fusedActivationFunction", 0) in (0, None) else 1


def _count_op(g, op):
    """(macs, elementwise, note, output shape) of one operator; macs None if not counted."""
    name, ins = op.name, op.inputs
    out = op.outputs[0].shape
    fused = _fused(op) * _elements(out)
    has_bias = len(ins) > 2 and ins[2] is not None
    bias = _elements(out) if has_bias and name in _CONV | _DEPTHWISE | _FC else 0
    note = ""
    if name in _CONV | _DEPTHWISE:
        filt = ins[1].shape
        # Dilated convs arrive as SPACE_TO_BATCH_ND -> conv -> BATCH_TO_SPACE_ND.
        producer = g.producer.get(ins[0].index)
        consumers = g.consumers.get(op.outputs[0].index, [])
        if producer is not None and producer.name == "SPACE_TO_BATCH_ND" and len(consumers) == 1:
            if consumers[0].name == "BATCH_TO_SPACE_ND":
                out = consumers[0].outputs[0].shape
                fused, bias = fused and _elements(out), bias and _elements(out)
                note = "dilated (space-to-batch)"
        if name == "CONV_2D":
            per_output = filt[1] * filt[2] * filt[3]
            groups = ins[0].shape[-1] // filt[3] if filt[3] else 1
            if groups > 1:
                note = ", ".join(filter(None, [f"groups={groups}", note]))
        elif name == "CONV_3D":
            per_output = filt[0] * filt[1] * filt[2] * filt[3]
        else:
            per_output = filt[1] * filt[2]
            note = ", ".join(filter(None, ["depthwise", note]))
        return _elements(out) * per_output, bias + fused, note, out
    if name in _FC:
        return _elements(out) * ins[0].shape[-1], bias + fused, "", out
    if name in _TRANSPOSE_CONV:
        filt = ins[1].shape
        return _elements(ins[2].shape) * filt[0] * filt[1] * filt[2], fused, "transposed", out
    if name in _PER_OUTPUT:
        return 0, _elements(out) + fused, "", out
    if name in _REDUCE:
        return 0, _elements(ins[0].shape), "", out
    if name in _POOL:
        window = (op.option("filterHeight", 1) or 1) * (op.option("filterWidth", 1) or 1)
        return 0, _elements(out) * window + fused, "", out
    if name in _FREE:
        return 0, 0, "", out
    return None, None, "not counted", out


def _is_channel_weighting(g, op):
    """A computed feature map times a computed (N, 1, 1, C) weight: SE's
    scale, one path of SK's selection."""
    ins = op.inputs
    if len(ins) != 2 or any(t is None or g.is_constant(t) for t in ins):
        return False
    return is_channel_weighting([t.shape for t in ins])


def _params(g, op, seen):
    if op.name not in _WEIGHTED:
        return 0
    total = 0
    for position, t in enumerate(op.inputs):
        if t is None or t.index in seen or (op.name in _TRANSPOSE_CONV and position == 0) or not g.is_constant(t):
            continue
        if position == 2 and op.name in _CONV | _DEPTHWISE | _FC and g.is_zero(t):
            continue  # the converter's zero bias for a conv that had none
        seen.add(t.index)
        total += _elements((1,) + t.shape)
    return total


def tflite_report(path, reduction=None):
    """The `ComplexityReport` of a `.tflite` file.

    Args:
        path: str. A `.tflite` file.
        reduction: number or None. r of the SE formula (default: read from
            the widths of the `..._se_reduce` / `..._se_expand` operators).

    Returns:
        A `ComplexityReport` with `source="tflite"`; its `params` (and
        `params_folded`) are the parameters stored in the file. All-zero
        biases are not counted, so an untrained model (BN beta and moving
        mean still zero) shows fewer than its Keras `params_folded`.
    """
    g = _Graph(path)
    try:
        return _report(g, path, reduction)
    except ValueError:
        raise
    except Exception as error:  # offsets of a damaged file point anywhere
        raise ValueError(f"cannot read {path!r} as a TFLite model: {type(error).__name__}: {error}") from None


def _report(g, path, reduction):
    rows, warnings_, seen = [], [], set()
    reduce_rows, expand_widths = {}, {}
    for op in g.ops:
        row_name = _row_name(op)
        macs, elementwise, note, out = _count_op(g, op)
        full = op.outputs[0].name
        attention = "se" if naming.SE_TENSOR.search(full) else "sk" if naming.SK_TENSOR.search(full) else None
        params = _params(g, op, seen)
        if macs is None:
            message = f"operator {op.name} ({row_name}) is not counted: {uncounted_detail(params)}"
            warnings_.append(message)
            warnings.warn(message, ComplexityWarning, stacklevel=2)
        row = LayerRow(row_name, op.name, out, params, macs, elementwise, attention=attention, note=note)
        if op.name == "MUL" and _is_channel_weighting(g, op):
            row.weighting_macs = _elements(out)
        rows.append(row)
        if op.name in _CONV | _FC:
            if m := naming.SE_REDUCE_TENSOR.search(full):
                has_bias = len(op.inputs) > 2 and op.inputs[2] is not None and not g.is_zero(op.inputs[2])
                reduce_rows[m.group(1)] = (row, has_bias)
            elif m := naming.SE_EXPAND_TENSOR.search(full):
                expand_widths[m.group(1)] = out[-1]
    units = [
        SEUnit(prefix, row.name, expand_widths[prefix], row.output_shape[-1], bias, None)
        for prefix, (row, bias) in reduce_rows.items()
        if prefix in expand_widths
    ]
    input_shape = g.graph.inputs[0].shape[1:] if g.graph.inputs else ()
    report = report_from_rows(os.path.basename(path), "tflite", input_shape, rows, warnings_, units, reduction)
    # The file stores folded weights: there is nothing left to fold.
    report.params_folded = report.params
    return report
