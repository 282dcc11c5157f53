"""Keras -> ONNX through tf2onnx, verified in onnxruntime."""

import dataclasses

import numpy as np

from keras_se.errors import require_tensorflow_backend
from keras_se.export.errors import ConversionError
from keras_se.export.verify import Parity, keras_outputs, parity_of
from keras_se.io_utils import atomic_output, quiet_native_logs, refuse_overwrite
from keras_se.tf2onnx_workaround import tf2onnx_garbage_collected

OPSET = 17


@dataclasses.dataclass
class OnnxExport:
    path: str
    size_bytes: int
    ops: dict
    parity: Parity

    def to_dict(self):
        return {"path": self.path, "size_bytes": self.size_bytes, "ops": self.ops, "parity": dataclasses.asdict(self.parity)}


def _nodes(graph):
    """Every node of `graph` and of the subgraphs its nodes hold (Loop, If, Scan bodies)."""
    import onnx

    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _nodes(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from _nodes(subgraph)


def check_standard(proto):
    """Raises `ConversionError` unless every op of `proto` is a standard ONNX op and the model is valid.

    tf2onnx leaves a TensorFlow op it cannot convert in the graph under its
    own name, in the default domain (`Lgamma`, `StatefulPartitionedCall`):
    a domain filter lets it through and only a runtime would fail on it.
    Each op is looked up in ONNX's operator registry (`onnx.defs.has`),
    subgraphs included, then `onnx.checker` validates the whole model.
    Run with `verify=False` too: a file is never written otherwise.
    """
    import onnx

    nonstandard = sorted(
        {
            f"{n.domain}::{n.op_type}" if n.domain else n.op_type
            for n in _nodes(proto.graph)
            if n.domain not in ("", "ai.onnx") or not onnx.defs.has(n.op_type)
        }
    )
    if nonstandard:
        raise ConversionError(f"ONNX graph kept ops outside the ONNX standard (tf2onnx could not convert them): {', '.join(nonstandard)}")
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as error:
        raise ConversionError(f"ONNX graph is not valid: {str(error).strip().splitlines()[0]}") from None


def to_onnx(model, path, opset=OPSET, overwrite=False, verify=True, verify_samples=4):
    """Converts a Keras model to ONNX and checks it in onnxruntime.

    Traces `model(x, training=False)` as a tf.function, as Keras 3's own
    ONNX export does (tf2onnx's `from_keras` fails on Keras 3 models and
    tolerates unconverted ops: https://github.com/onnx/tensorflow-onnx/issues/2448).
    keras_se's `GroupConv2D` becomes one ONNX `Conv` with `group=G`.

    Args:
        model: a Keras 3 model.
        path: output `.onnx` path (written atomically).
        opset: int, defaults to 17.
        overwrite: bool, defaults to False.
        verify: bool, defaults to True. Compare onnxruntime with Keras
            (float32 bounds as for TFLite). Standard ops only and a valid
            model are checked either way (`check_standard`).
        verify_samples: int, defaults to 4.

    Returns:
        `OnnxExport`.
    """
    require_tensorflow_backend("ONNX export")
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    path = refuse_overwrite(path, overwrite)  # before the (slow) conversion
    shape = tuple(model.input_shape[1:])
    function = tf.function(lambda x: model(x, training=False))
    spec = [tf.TensorSpec((None, *shape), tf.float32, name="input")]
    with quiet_native_logs(), tf2onnx_garbage_collected():
        proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=opset)
    check_standard(proto)
    data = proto.SerializeToString()
    ops = {}
    for node in proto.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    parity = None
    if verify:
        try:
            session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise ConversionError(f"onnxruntime rejects the ONNX graph: {str(error).splitlines()[0]}") from None
        samples = np.random.default_rng(0).uniform(0, 1, (verify_samples, *shape)).astype("float32")
        actual = session.run(None, {session.get_inputs()[0].name: samples})[0]
        parity = parity_of(keras_outputs(model, samples), np.asarray(actual), "onnxruntime")
        parity.check(None)
    with atomic_output(path, overwrite) as handle:
        handle.write(data)
    return OnnxExport(path, len(data), ops, parity)
