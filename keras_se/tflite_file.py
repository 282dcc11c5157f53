"""The one `.tflite` reader of keras_se: ops, tensors, options and constants
as plain Python, every index and quantisation parameter checked.

The GPU rules (`keras_se.export.gpu`), op histograms and the int8 check
(`keras_se.export.tflite`, `keras_se.quantization.integer_only`) and the
complexity of converted files (`keras_se.analysis.tflite`) all read files
through `read_tflite`. A file that cannot be trusted (not a TFLite
flatbuffer, truncated, or with a tensor, buffer or opcode index out of
range, a quantisation parameter that is not one, or a constant whose size
does not match its shape) raises one `TFLiteFileError` (a `ValueError`)
naming the file and what is wrong, before any of them indexes into it.
"""

import collections
import dataclasses
import math
import os

from keras_se.errors import optional_import

schema = optional_import("ai_edge_litert.schema_py_generated", "Reading and writing .tflite files")
flatbuffer_utils = optional_import("ai_edge_litert.tools.flatbuffer_utils", "Reading and writing .tflite files")

OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
FILE_IDENTIFIER = b"TFL3"  # the flatbuffer file identifier, bytes 4-8

# Bytes per element of the types whose constants are stored unpacked.
_ITEMSIZE = {
    "FLOAT32": 4,
    "FLOAT16": 2,
    "BFLOAT16": 2,
    "FLOAT64": 8,
    "INT32": 4,
    "UINT32": 4,
    "INT64": 8,
    "UINT64": 8,
    "INT16": 2,
    "UINT16": 2,
    "INT8": 1,
    "UINT8": 1,
    "BOOL": 1,
    "COMPLEX64": 8,
    "COMPLEX128": 16,
    "FLOAT8_E4M3FN": 1,
    "FLOAT8_E5M2": 1,
}
_ZERO_POINT_RANGE = {"INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-32768, 32767), "INT4": (-8, 7), "UINT4": (0, 15)}

# Inputs LiteRT's kernels require (never optional) and the ranks they check,
# for the ops keras_se's readers look into.
_BINARY = ("ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "POW", "FLOOR_DIV", "FLOOR_MOD", "ATAN2")
_REDUCE = ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY")
_REQUIRED_INPUTS = {
    "CONV_2D": 2,
    "DEPTHWISE_CONV_2D": 2,
    "CONV_3D": 2,
    "FULLY_CONNECTED": 2,
    "TRANSPOSE_CONV": 3,
    "TRANSPOSE": 2,
    "PAD": 2,
    "PADV2": 2,
    "MIRROR_PAD": 2,
    "STRIDED_SLICE": 4,
    "BATCH_MATMUL": 2,
    **{name: 2 for name in _BINARY + _REDUCE},
}
_RANKS = {  # op -> {input position: rank}
    "CONV_2D": {0: 4, 1: 4},
    "DEPTHWISE_CONV_2D": {0: 4, 1: 4},
    "CONV_3D": {0: 5, 1: 5},
    "TRANSPOSE_CONV": {1: 4},
    "FULLY_CONNECTED": {1: 2},
}
# The converter always writes these ops with a bias slot (-1 when there is
# none); LiteRT's kernels read the third input without checking that it
# exists (a two-input DEPTHWISE_CONV_2D crashes the interpreter, reference
# kernels included), so a file without it is refused here.
_EXACT_INPUTS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 3}
_NO_OUTPUTS = {"ASSIGN_VARIABLE", "CALL_ONCE", "CUSTOM"}


class TFLiteFileError(ValueError):
    """A `.tflite` file that is missing, not a TFLite flatbuffer, or cannot be trusted."""


@dataclasses.dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple
    signature: tuple
    dtype: str
    is_const: bool
    quantized: bool
    scale: tuple = ()  # quantisation scales (one per channel, or one), checked finite and >= 0
    zero_point: tuple = ()  # in the dtype's range
    buffer: int = 0


@dataclasses.dataclass(frozen=True)
class Op:
    index: int
    name: str
    inputs: tuple  # Tensor or None for optional inputs
    outputs: tuple
    options: object  # the schema's *OptionsT object, or None

    def option(self, field, default=None):
        return getattr(self.options, field, default) if self.options is not None else default


@dataclasses.dataclass(frozen=True)
class TFLiteGraph:
    ops: tuple
    inputs: tuple
    outputs: tuple
    tensors: tuple
    constants: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)  # buffer index -> bytes

    def op_histogram(self):
        return dict(collections.Counter(op.name for op in self.ops))

    def buffer_data(self, tensor):
        """The stored bytes of a constant tensor (b"" for a runtime tensor)."""
        return self.constants.get(tensor.buffer, b"") if tensor is not None else b""


def read_tflite(source, name=None):
    """Parses a .tflite path or its bytes into a `TFLiteGraph` (main subgraph), checked.

    Args:
        source: path of a `.tflite` file, or its bytes.
        name: optional label for bytes in error messages (e.g. the path they came from).

    Raises:
        TFLiteFileError (a ValueError): the file is missing, is not a TFLite
            flatbuffer, or cannot be trusted; the message names the file and
            what is wrong.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or "<bytes>"
    else:
        label = os.fspath(source)
        if not os.path.isfile(label):
            raise TFLiteFileError(f"TFLite file not found. Received: {label!r}")
        try:
            with open(label, "rb") as handle:
                data = handle.read()
        except OSError as error:
            raise TFLiteFileError(f"cannot read {label!r}: {error.strerror or error}") from None
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise TFLiteFileError(f"{label!r} is not a TFLite model file (not a TFLite flatbuffer: no TFL3 identifier)")
    try:
        model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    except Exception as error:  # offsets of a truncated or damaged file point anywhere
        raise TFLiteFileError(f"cannot read {label!r} as a TFLite model: damaged flatbuffer ({type(error).__name__}: {error})") from None
    try:
        return _graph(model, data)
    except _Untrusted as error:
        raise TFLiteFileError(f"cannot read {label!r} as a TFLite model: {error}") from None
    except (TypeError, AttributeError, ValueError, OverflowError, UnicodeDecodeError) as error:
        raise TFLiteFileError(f"cannot read {label!r} as a TFLite model: damaged flatbuffer ({type(error).__name__}: {error})") from None


class _Untrusted(Exception):
    pass


def _ints(values, what):
    out = []
    for v in values if values is not None else ():
        if not isinstance(v, (int,)) and not hasattr(v, "__index__"):
            raise _Untrusted(f"{what} holds a non-integer {v!r}")
        out.append(int(v))
    return tuple(out)


def _buffers(model, data):
    """buffer index -> stored bytes, every offset and size inside the file."""
    constants = {}
    for index, buffer in enumerate(model.buffers or ()):
        if buffer is None:
            continue
        offset, size = int(getattr(buffer, "offset", 0) or 0), int(getattr(buffer, "size", 0) or 0)
        if buffer.data is not None and len(buffer.data) > 0:
            constants[index] = buffer.data.tobytes() if hasattr(buffer.data, "tobytes") else bytes(buffer.data)
        elif offset > 1:
            if size < 0 or offset + size > len(data):
                raise _Untrusted(f"buffer {index} lies outside the file (offset {offset}, size {size}, file {len(data)} bytes)")
            constants[index] = data[offset : offset + size]
    return constants


def _quantization(t, where, dtype, shape):
    quant = t.quantization
    if quant is None or quant.scale is None or len(quant.scale) == 0:
        return (), ()
    scale = tuple(float(s) for s in quant.scale)
    zero = tuple(int(z) for z in quant.zeroPoint) if quant.zeroPoint is not None else ()
    if any(not math.isfinite(s) or s < 0 for s in scale):
        bad = next(s for s in scale if not math.isfinite(s) or s < 0)
        raise _Untrusted(f"{where} has quantisation scale {bad} (finite and >= 0 only)")
    if zero and len(zero) != len(scale):
        raise _Untrusted(f"{where} has {len(scale)} quantisation scales but {len(zero)} zero points")
    low, high = _ZERO_POINT_RANGE.get(dtype, (-(2**63), 2**63 - 1))
    if any(not low <= z <= high for z in zero):
        bad = next(z for z in zero if not low <= z <= high)
        raise _Untrusted(f"{where} has zero point {bad}, outside {dtype}'s range [{low}, {high}]")
    if len(scale) > 1:
        axis = int(quant.quantizedDimension or 0)
        if not 0 <= axis < len(shape) or shape[axis] != len(scale):
            raise _Untrusted(f"{where} has {len(scale)} per-channel scales along dimension {axis} of shape {list(shape)}")
    return scale, zero


def _tensors(subgraph, model, constants, s):
    buffers = len(model.buffers or ())
    tensors = []
    for i, t in enumerate(subgraph.tensors or ()):
        where = f"tensor {i} of subgraph {s}"
        if t is None:
            raise _Untrusted(f"{where} is missing")
        shape = _ints(t.shape, f"{where}'s shape")
        signature = _ints(t.shapeSignature, f"{where}'s shape signature") if t.shapeSignature is not None else shape
        if any(d < 0 for d in shape) or any(d < -1 for d in signature):
            raise _Untrusted(f"{where} has a negative dimension in shape {list(shape)}")
        if t.type not in TYPE_NAMES:
            raise _Untrusted(f"{where} has unknown type {t.type}")
        dtype = TYPE_NAMES[t.type]
        buffer = int(t.buffer or 0)
        if not 0 <= buffer < max(buffers, 1):
            raise _Untrusted(f"{where} names buffer {buffer}, but the file has {buffers}")
        stored = constants.get(buffer, b"") if buffer > 0 else b""
        if stored and dtype in _ITEMSIZE and t.sparsity is None:
            expected = math.prod(shape) * _ITEMSIZE[dtype]
            if len(stored) != expected:
                raise _Untrusted(
                    f"{where} ({dtype} {list(shape)}) needs {expected} bytes of constant data, buffer {buffer} holds {len(stored)}"
                )
        scale, zero = _quantization(t, where, dtype, shape)
        name = t.name.decode("utf-8") if isinstance(t.name, bytes) else str(t.name or "")
        tensors.append(Tensor(i, name, shape, signature, dtype, bool(stored), bool(scale), scale, zero, buffer))
    return tensors


def _graph(model, data):
    if not model.subgraphs:
        raise _Untrusted("the file has no subgraph")
    constants = _buffers(model, data)
    codes = model.operatorCodes or []
    main = None
    for s, subgraph in enumerate(model.subgraphs):
        if subgraph is None:
            raise _Untrusted(f"subgraph {s} is missing")
        tensors = _tensors(subgraph, model, constants, s)

        def tensor(j, where, optional=False, tensors=tensors, s=s):
            if optional and j == -1:
                return None
            if not 0 <= j < len(tensors):
                raise _Untrusted(f"{where} of subgraph {s} names tensor {j}, but the subgraph has {len(tensors)}")
            return tensors[j]

        ops = []
        for i, op in enumerate(subgraph.operators or ()):
            where = f"operator {i}"
            if op is None:
                raise _Untrusted(f"{where} of subgraph {s} is missing")
            if not 0 <= int(op.opcodeIndex or 0) < len(codes):
                raise _Untrusted(f"{where} of subgraph {s} names opcode {op.opcodeIndex}, but the file has {len(codes)}")
            code = codes[op.opcodeIndex]
            builtin = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
            name = OP_NAMES.get(builtin, str(builtin))
            if name == "CUSTOM":
                custom = code.customCode.decode("utf-8") if isinstance(code.customCode, bytes) else code.customCode
                name = f"CUSTOM:{custom}"
            ins = tuple(tensor(j, f"input {k} of {where} ({name})", optional=True) for k, j in enumerate(_ints(op.inputs, where)))
            outs = tuple(tensor(j, f"output {k} of {where} ({name})") for k, j in enumerate(_ints(op.outputs, where)))
            for j in _ints(op.intermediates, where):
                tensor(j, f"an intermediate of {where} ({name})")
            required = _REQUIRED_INPUTS.get(name, 1 if ins else 0)
            if len(ins) < required or any(t is None for t in ins[:required]):
                raise _Untrusted(f"{where} ({name}) of subgraph {s} lacks one of its {required} required inputs")
            if name in _EXACT_INPUTS and len(ins) != _EXACT_INPUTS[name]:
                raise _Untrusted(f"{where} ({name}) of subgraph {s} has {len(ins)} inputs, not {_EXACT_INPUTS[name]}")
            if not outs and name.split(":")[0] not in _NO_OUTPUTS:
                raise _Untrusted(f"{where} ({name}) of subgraph {s} has no output")
            for position, rank in _RANKS.get(name, {}).items():
                if len(ins[position].shape) != rank:
                    raise _Untrusted(
                        f"{where} ({name}) of subgraph {s}: input {position} has rank {len(ins[position].shape)}, expected {rank}"
                    )
            ops.append(Op(i, name, ins, outs, op.builtinOptions))
        graph = TFLiteGraph(
            ops=tuple(ops),
            inputs=tuple(tensor(j, "an input") for j in _ints(subgraph.inputs, "the inputs")),
            outputs=tuple(tensor(j, "an output") for j in _ints(subgraph.outputs, "the outputs")),
            tensors=tuple(tensors),
            constants=constants,
        )
        main = main or graph
    return main
