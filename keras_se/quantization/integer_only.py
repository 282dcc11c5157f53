"""Checking that a TFLite model is integer only: every op int8 end to end.

A "fully int8" conversion can still leave float islands: an op the converter
could not quantise stays float between a DEQUANTIZE and a QUANTIZE, and the
file converts and runs. `float_ops` walks the flatbuffer and lists them.
"""

import dataclasses

from keras_se.tflite_file import read_tflite

FLOAT_TYPES = ("FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16")


@dataclasses.dataclass(frozen=True)
class FloatOp:
    """An op that reads or writes a float tensor."""

    index: int
    op: str
    tensors: tuple  # (name, dtype) of its float inputs and outputs

    def __str__(self):
        names = ", ".join(f"{name} ({dtype})" for name, dtype in self.tensors)
        return f"#{self.index} {self.op}: {names}"


def float_ops(tflite, allow_float_io=False):
    """The ops of a TFLite model that touch a float tensor.

    Args:
        tflite: path or bytes of a `.tflite` file.
        allow_float_io: bool, defaults to False. If True, a QUANTIZE reading
            a model input and a DEQUANTIZE writing a model output are
            allowed (a model with float input and output): the check is then
            "no float op between the input QUANTIZE and the output
            DEQUANTIZE". If False (int8 input and output), no float tensor
            may appear at all.

    Returns:
        list of `FloatOp`, empty for an integer-only model.

    Example:

    >>> keras_se.quantization.float_ops("se_mobilenet_int8.tflite")
    []
    """
    graph = read_tflite(tflite)
    inputs = {t.index for t in graph.inputs}
    outputs = {t.index for t in graph.outputs}
    found = []
    for op in graph.ops:
        if allow_float_io:
            if op.name == "QUANTIZE" and op.inputs and op.inputs[0] is not None and op.inputs[0].index in inputs:
                continue
            if op.name == "DEQUANTIZE" and op.outputs and op.outputs[0].index in outputs:
                continue
        tensors = tuple((t.name, t.dtype) for t in (*op.inputs, *op.outputs) if t is not None and t.dtype in FLOAT_TYPES)
        if tensors:
            found.append(FloatOp(op.index, op.name, tensors))
    return found


def check_integer_only(tflite, allow_float_io=False):
    """Raises `ValueError` listing every float op (see `float_ops`)."""
    found = float_ops(tflite, allow_float_io)
    if found:
        listing = "; ".join(str(op) for op in found[:10])
        more = f" and {len(found) - 10} more" if len(found) > 10 else ""
        raise ValueError(f"{len(found)} float op(s) left in the int8 model: {listing}{more}")
