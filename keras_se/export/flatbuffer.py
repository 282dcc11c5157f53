"""Reading a .tflite flatbuffer: ops, tensors and options as plain Python.

The one place keras_se parses TFLite files (GPU check, op histograms,
quantisation checks, complexity of converted models).
"""

import collections
import dataclasses
import os

from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


@dataclasses.dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple
    signature: tuple
    dtype: str
    is_const: bool
    quantized: bool


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

    def op_histogram(self):
        return dict(collections.Counter(op.name for op in self.ops))


def read_tflite(source):
    """Parses a .tflite path or its bytes into a `TFLiteGraph` (main subgraph).

    Raises:
        ValueError: the file is missing or is not a TFLite flatbuffer.
    """
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        label = "<bytes>"
    else:
        label = os.fspath(source)
        if not os.path.isfile(label):
            raise ValueError(f"TFLite file not found. Received: {label!r}")
        with open(label, "rb") as handle:
            data = handle.read()
    # "TFL3" is the flatbuffer file identifier at bytes 4-8.
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError(f"not a TFLite flatbuffer (no TFL3 identifier): {label!r}")
    try:
        model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    except Exception as error:  # a truncated or corrupt buffer
        raise ValueError(f"cannot parse TFLite file {label!r}: {error}") from None
    subgraph = model.subgraphs[0]

    def buffer_has_data(index):
        if index is None or index <= 0 or index >= len(model.buffers):
            return False
        buffer = model.buffers[index]
        return (buffer.data is not None and len(buffer.data) > 0) or (getattr(buffer, "offset", 0) or 0) > 1

    tensors = []
    for i, t in enumerate(subgraph.tensors):
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        signature = tuple(int(d) for d in t.shapeSignature) if t.shapeSignature is not None else shape
        quant = t.quantization
        quantized = quant is not None and quant.scale is not None and len(quant.scale) > 0
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        tensors.append(Tensor(i, name, shape, signature, TYPE_NAMES.get(t.type, str(t.type)), buffer_has_data(t.buffer), quantized))
    ops = []
    for i, op in enumerate(subgraph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = OP_NAMES.get(builtin, str(builtin))
        if name == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            name = f"CUSTOM:{custom}"
        ins = tuple(tensors[j] if j >= 0 else None for j in (op.inputs if op.inputs is not None else ()))
        outs = tuple(tensors[j] for j in (op.outputs if op.outputs is not None else ()))
        ops.append(Op(i, name, ins, outs, op.builtinOptions))
    return TFLiteGraph(
        ops=tuple(ops),
        inputs=tuple(tensors[j] for j in subgraph.inputs),
        outputs=tuple(tensors[j] for j in subgraph.outputs),
        tensors=tuple(tensors),
    )
