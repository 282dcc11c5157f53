"""A GPU-delegate compatibility check that actually checks.

`tf.lite.experimental.Analyzer.analyze(..., gpu_compatibility=True)` reports
every model as compatible since its checks were removed
(https://github.com/tensorflow/tensorflow/issues/77042). This module applies
the LiteRT GPU delegate's rules to the flatbuffer itself. The rules follow
LiteRT's tflite/tools/versioning/gpu_compatibility.cc
(`CheckGpuDelegateCompatibility`, default broadcast flags, as the on-device
delegate uses) and delegates/gpu/common/model_builder.cc (tensor rank,
transpose rank, grouped convolution, batch and static shapes).
"""

import dataclasses

from keras_se.tflite_file import read_tflite

FLOAT_TYPES = ("FLOAT32", "FLOAT16")
QUANTIZED_TYPES = ("INT8", "UINT8")
SUPPORTED_ACTIVATIONS = (0, 1, 2, 3, 4)  # NONE, RELU, RELU_N1_TO_1, RELU6, TANH

_UNARY = {
    "ABS",
    "CEIL",
    "COS",
    "ELU",
    "EXP",
    "FLOOR",
    "GELU",
    "LOG",
    "LOGICAL_NOT",
    "LOGISTIC",
    "NEG",
    "ROUND",
    "RSQRT",
    "SIGN",
    "SIN",
    "SQRT",
    "SQUARE",
    "TANH",
}
_BINARY = {
    "ATAN2",
    "DIV",
    "EQUAL",
    "FLOOR_DIV",
    "FLOOR_MOD",
    "GREATER",
    "GREATER_EQUAL",
    "LOGICAL_AND",
    "LOGICAL_OR",
    "LESS",
    "LESS_EQUAL",
    "MAXIMUM",
    "MINIMUM",
    "NOT_EQUAL",
    "POW",
    "SQUARED_DIFFERENCE",
    "SUB",
}
_ALWAYS_OK = {
    "RELU",
    "RELU6",
    "LEAKY_RELU",
    "RELU_N1_TO_1",
    "PRELU",
    "PACK",
    "SPLIT",
    "SPLIT_V",
    "HARD_SWISH",
    "CONCATENATION",
    "BATCH_MATMUL",
    "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR",
    "TILE",
    "QUANTIZE",
    "DEPTH_TO_SPACE",
    "SPACE_TO_DEPTH",
}
_REDUCE = {"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY"}


@dataclasses.dataclass(frozen=True)
class GpuFinding:
    """One op the GPU delegate will not run (`"error"`) or runs slowly (`"warning"`)."""

    index: int
    op: str
    reason: str
    severity: str = "error"

    def __str__(self):
        return f"op {self.index} {self.op}: {self.reason}" + (" (warning)" if self.severity == "warning" else "")


def check_gpu(tflite, allow_quantized=False, enhanced_broadcast=False):
    """Checks a TFLite model against the LiteRT GPU delegate's rules.

    Args:
        tflite: path to a `.tflite` file, or its bytes.
        allow_quantized: bool, defaults to False. Accept int8/uint8 tensors
            (the delegate's quantized-models option).
        enhanced_broadcast: bool, defaults to False. Accept any numpy-style
            broadcast in ADD/MUL (newer delegate builds); the default is the
            delegate's standard rule.

    Returns:
        list of `GpuFinding`, empty when every op runs on the delegate.
        Findings with severity "warning" run on the GPU but slowly (a grouped
        convolution split into one convolution per group).

    Example:

    >>> findings = check_gpu("se_mobilenet.tflite")
    >>> [str(f) for f in findings]
    []
    """
    graph = read_tflite(tflite)
    # The delegate folds DEQUANTIZE of constant fp16 weights (its FP16 graph
    # partition helper) and treats their outputs as constants.
    folded = {
        op.outputs[0].index for op in graph.ops if op.name == "DEQUANTIZE" and op.inputs[0].is_const and op.inputs[0].dtype == "FLOAT16"
    }
    if folded:
        graph = _with_constants(graph, folded)
    findings = []
    for tensor in graph.inputs:
        if tensor.shape and tensor.shape[0] != 1:
            findings.append(GpuFinding(-1, "INPUT", f"batch size {tensor.shape[0]} (the GPU delegate runs batch 1)"))
    for op in graph.ops:
        for reason, severity in _check_op(op, allow_quantized, enhanced_broadcast):
            findings.append(GpuFinding(op.index, op.name, reason, severity))
    return findings


def _with_constants(graph, indices):
    def fix(t):
        return dataclasses.replace(t, is_const=True) if t is not None and t.index in indices else t

    ops = tuple(
        dataclasses.replace(op, inputs=tuple(fix(t) for t in op.inputs), outputs=tuple(fix(t) for t in op.outputs)) for op in graph.ops
    )
    return dataclasses.replace(graph, ops=ops)


def _runtime(tensors):
    return [t for t in tensors if t is not None and not t.is_const]


def _check_op(op, allow_quantized, enhanced):
    if op.name not in _OP_RULES:
        yield f"not supported op {op.name}", "error"
        return
    tensors = [t for t in op.inputs + op.outputs if t is not None]
    for t in tensors:
        if len(t.shape) >= 5:
            yield f"tensor {t.name!r} has rank {len(t.shape)} (the GPU delegate supports up to 4)", "error"
            return
        if any(d < 0 for d in t.signature):
            yield f"tensor {t.name!r} has a dynamic shape {t.signature} (static shapes only)", "error"
            return
    allowed_types = FLOAT_TYPES + (QUANTIZED_TYPES if allow_quantized else ())
    if op.name not in ("QUANTIZE", "DEQUANTIZE", "CAST", "GATHER", "RESHAPE"):
        for t in _runtime(op.inputs) + list(op.outputs):
            if t.dtype not in allowed_types:
                yield f"tensor {t.name!r} is {t.dtype} (GPU delegate: {', '.join(allowed_types)})", "error"
                return
    yield from _OP_RULES[op.name](op, enhanced)


def _ok(op, enhanced):
    return iter(())


def _activation(op):
    act = op.option("fusedActivationFunction", 0)
    if act not in SUPPORTED_ACTIVATIONS:
        yield f"fused activation {act} is not supported", "error"


def _broadcast(a, b, enhanced):
    if len(a.shape) <= 1 or len(b.shape) <= 1 or len(a.shape) == len(b.shape):
        return True
    longer, shorter = (a.shape, b.shape) if len(a.shape) >= len(b.shape) else (b.shape, a.shape)
    if enhanced:
        return all(x == y or x == 1 or y == 1 for x, y in zip(reversed(longer), reversed(shorter)))
    if len(longer) == 4 and len(shorter) == 3 and longer[0] == 1:
        return True
    if len(longer) == 4 and len(shorter) == 2 and longer[0] == 1 and shorter == (1, 1):
        return True
    return len(longer) == 4 and len(shorter) == 2 and longer[0] == shorter[0] and longer[3] == shorter[1]


def _add_mul(op, enhanced):
    if len(op.inputs) != 2:
        yield f"{op.name} requires two input tensors", "error"
        return
    a, b = op.inputs
    if not _broadcast(a, b, enhanced):
        yield f"doesn't support broadcasting {list(a.shape)} with {list(b.shape)}", "error"
        return
    yield from _activation(op)


def _conv2d(op, enhanced):
    if len(_runtime(op.inputs)) > 2 or len(op.outputs) != 1:
        yield "expected 1 or 2 runtime inputs and 1 output", "error"
        return
    if op.option("strideH", 1) <= 0 or op.option("dilationHFactor", 1) <= 0:
        yield "incorrect stride or dilation", "error"
        return
    yield from _activation(op)
    data, weights = op.inputs[0], op.inputs[1]
    if weights is not None and weights.is_const and len(data.shape) == 4 and len(weights.shape) == 4:
        src_group = weights.shape[3]
        groups = data.shape[3] // src_group if src_group else 1
        dst_group = weights.shape[0] // max(groups, 1)
        if groups > 1 and (src_group % 4 or dst_group % 4):
            yield (
                f"grouped convolution with {src_group} input / {dst_group} output channels per group "
                "(not multiples of 4) is split into one convolution per group",
                "warning",
            )


def _depthwise(op, enhanced):
    data, weights, out = op.inputs[0], op.inputs[1], op.outputs[0]
    if len(data.shape) != 4 or len(weights.shape) != 4 or len(out.shape) != 4:
        yield "depthwise convolution needs 4-D input, filter and output", "error"
        return
    if out.shape[3] != data.shape[3] * op.option("depthMultiplier", 1) or weights.shape[3] != out.shape[3]:
        yield "output channels != input channels * depth_multiplier", "error"
        return
    yield from _activation(op)


def _pool(op, enhanced):
    if len(_runtime(op.inputs)) != 1 or len(op.outputs) != 1:
        yield "expected 1 runtime input and 1 output", "error"
        return
    if op.option("filterHeight", 1) <= 0 or op.option("strideH", 1) <= 0:
        yield "incorrect kernel or stride", "error"
        return
    yield from _activation(op)


def _axes_const(op, index=1):
    if len(op.inputs) <= index or op.inputs[index] is None:
        yield f"{op.name} needs an axes tensor", "error"
        return
    axes = op.inputs[index]
    if not axes.is_const:
        yield f"{op.name} is only supported with constant axes", "error"
    elif axes.dtype != "INT32":
        yield f"{op.name} supports int32 axes, got {axes.dtype}", "error"


def _reduce(op, enhanced):
    if len(_runtime(op.inputs)) != 1 or len(op.outputs) != 1:
        yield "expected 1 runtime input and 1 output", "error"
        return
    yield from _axes_const(op)


def _fully_connected(op, enhanced):
    if op.option("weightsFormat", 0) != 0:
        yield "unsupported FullyConnected weights format", "error"
    elif len(_runtime(op.inputs)) > 2:
        yield "FullyConnected doesn't support more than 2 runtime inputs", "error"
    elif op.option("keepNumDims", False) and len(op.inputs[0].shape) != len(op.outputs[0].shape):
        yield "keep_num_dims with a rank change is not supported", "error"


def _softmax(op, enhanced):
    if op.option("beta", 1.0) != 1.0:
        yield "Softmax beta != 1 is not supported", "error"


def _transpose(op, enhanced):
    if len(_runtime(op.inputs)) != 1:
        yield "TRANSPOSE needs one runtime input and constant permutation", "error"
    elif not 2 <= len(op.inputs[0].shape) <= 4:
        yield f"TRANSPOSE of a {len(op.inputs[0].shape)}-D tensor (2-4-D only)", "error"


def _reshape(op, enhanced):
    if len(_runtime(op.inputs)) != 1 or len(op.outputs) != 1:
        yield "RESHAPE needs one runtime input (a constant shape)", "error"


def _pad(op, enhanced):
    if len(_runtime(op.inputs)) != 1 or len(op.inputs) < 2:
        yield "PAD needs one runtime input and constant paddings", "error"
        return
    paddings = op.inputs[1].shape
    if len(paddings) != 2 or paddings[0] not in (3, 4) or paddings[1] != 2:
        yield f"invalid paddings tensor shape {list(paddings)} (expected 4x2 or 3x2)", "error"


def _strided_slice(op, enhanced):
    for mask in ("ellipsisMask", "newAxisMask", "shrinkAxisMask"):
        if op.option(mask, 0):
            yield f"STRIDED_SLICE does not support {mask}", "error"
            return
    if len(op.inputs) < 4 or len(op.inputs[0].shape) not in (3, 4):
        yield "STRIDED_SLICE supports 3-D or 4-D tensors with 4 inputs", "error"


def _dequantize(op, enhanced):
    if op.inputs[0].dtype == "INT16":
        yield "unsupported dequantization type INT16", "error"


def _unary(op, enhanced):
    if len(_runtime(op.inputs)) != 1 or len(op.inputs) != 1 or len(op.outputs) != 1:
        yield f"{op.name} needs exactly one runtime input", "error"


def _binary(op, enhanced):
    runtime = len(_runtime(op.inputs))
    if len(op.inputs) != 2 or runtime not in (1, 2):
        yield "op can only handle 1 or 2 operand(s)", "error"
        return
    yield from _activation(op)


_OP_RULES = {
    "ADD": _add_mul,
    "MUL": _add_mul,
    "CONV_2D": _conv2d,
    "DEPTHWISE_CONV_2D": _depthwise,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "FULLY_CONNECTED": _fully_connected,
    "SOFTMAX": _softmax,
    "TRANSPOSE": _transpose,
    "RESHAPE": _reshape,
    "PAD": _pad,
    "PADV2": _pad,
    "STRIDED_SLICE": _strided_slice,
    "DEQUANTIZE": _dequantize,
    **{name: _reduce for name in _REDUCE},
    **{name: _unary for name in _UNARY},
    **{name: _binary for name in _BINARY},
    **{name: _ok for name in _ALWAYS_OK},
}
