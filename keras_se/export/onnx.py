"""Keras -> ONNX through tf2onnx, verified in onnxruntime; the NPU preset for Qualcomm's HTP."""

import contextlib
import dataclasses
import os
import shutil
import tempfile
import warnings

import numpy as np

from keras_se.errors import require_tensorflow_backend
from keras_se.export import calibration
from keras_se.export.errors import ConversionError, NpuNotRunWarning, VerificationError
from keras_se.export.forms import average_pools_as_depthwise
from keras_se.export.npu import NPU_QUANTIZE, NpuRun, context_path, output_step, parse_npu, quantize_qdq, run_on_npu, strip_logits
from keras_se.export.verify import Parity, _centered, keras_logits, keras_outputs, parity_of, parity_of_outputs, relative_l2, with_logits
from keras_se.io_utils import atomic_output, quiet_native_logs, refuse_overwrite
from keras_se.tf2onnx_workaround import tf2onnx_garbage_collected

OPSET = 17
# The QNN HTP against ONNX Runtime's CPU EP on the same QDQ file: the
# relative L2 error of the logits (the outputs for a file without a final
# softmax). Both compute the same quantised graph and differ in how each
# rounds when it requantises, which random networks with BN statistics from
# data amplify layer by layer (BENCHMARKS.md, "Qualcomm HTP (NPU)"):
# where the HTP computes the graph right, w8a8 gives 0.05 to 0.76 over the
# 39 registered models it passes (plain MobileNet at 64 px the worst) and
# w8a16 0.006 to 0.12; what the HTP computes wrong gives 1.6 to 5.6 (a
# strided 1x1 AveragePool, a padded 2x2 -> 1x1 AveragePool) and 3.8 for
# MobileNetV3-Small in w8a8 (0.026 in w8a16).
NPU_CPU_RELATIVE_L2 = {"w8a8": 1.0, "w8a16": 0.3}
# A context binary is the same quantised graph compiled ahead of time for
# one Hexagon generation, with the finalisation optimisations on: it must
# reload and run to finite outputs. Its outputs (probabilities: the shipped
# file has no logits output) differ from the HTP run's by that compile's own
# rounding, 0.0 to 0.8 relative L2 on near-uniform untrained probabilities:
# reported, not bounded.


@dataclasses.dataclass
class OnnxExport:
    """What `to_onnx` wrote and measured."""

    path: str
    size_bytes: int
    ops: dict
    parity: Parity  # onnxruntime's CPU EP against Keras (the QDQ file's, with `npu`)
    quantize: str = None  # the NPU preset's "w8a8" / "w8a16"; None: float32
    npu: NpuRun = None  # the NPU preset: the file on the QNN HTP
    npu_parity: Parity = None  # its outputs against Keras

    def to_dict(self):
        return {
            "path": self.path,
            "quantize": self.quantize,
            "size_bytes": self.size_bytes,
            "ops": self.ops,
            "parity": dataclasses.asdict(self.parity) if self.parity else None,
            "npu": self.npu.to_dict(self.npu_parity) if self.npu else None,
        }


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


def to_onnx(
    model,
    path,
    opset=OPSET,
    overwrite=False,
    verify=True,
    verify_samples=4,
    npu=None,
    npu_quantize="w8a8",
    representative_data=None,
    progress=None,
):
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
        npu: None, or the NPU preset: `"qualcomm"` or
            `"qualcomm:TARGET[,TARGET...]"` (`keras_se.export.npu.parse_npu`).
            The file is then what Qualcomm's HTP runs: batch 1, static
            shapes, QDQ-quantised with ONNX Runtime's QNN recipe and
            calibrated on `representative_data`; it is run on the HTP
            through onnxruntime-qnn (on x86-64 its simulator): every node
            on the HTP, outputs against Keras (the int8 bounds of
            `LOGITS_RELATIVE_L2` and the top-1 rule) and against ONNX
            Runtime's CPU EP on the same file (`NPU_CPU_RELATIVE_L2`). A
            node left on the CPU, a refusal, a crash or a parity failure
            fails the conversion. Each TARGET also gets an EP context
            binary (`{stem}_{TARGET}_ctx.onnx` beside `path`), reloaded and
            run. Where onnxruntime-qnn is missing the run is "not run" (an
            `NpuNotRunWarning`), never a pass.
        npu_quantize: "w8a8" (defaults; uint8 activations) or "w8a16"
            (uint16 activations: closer to float, twice the activation memory).
        representative_data: with `npu`: a (N, H, W, C) array of real,
            preprocessed inputs for calibration, as for TFLite int8. None
            uses random data with a `RandomCalibrationWarning`. Also the
            inputs used to verify.
        progress: optional callable() called per calibration sample.

    Returns:
        `OnnxExport`.

    Example:

    >>> result = to_onnx(model, "se_mobilenet_w8a8_npu.onnx", npu="qualcomm:sm8650")
    >>> result.npu.verdict(), result.npu.contexts["sm8650"]["bytes"]
    ('fully on the HTP', 4006813)
    """
    require_tensorflow_backend("ONNX export")
    targets = parse_npu(npu)[1] if npu is not None else ()
    if npu is not None and npu_quantize not in NPU_QUANTIZE:
        raise ValueError(f"npu_quantize must be one of {NPU_QUANTIZE}. Received: npu_quantize={npu_quantize!r}")
    import onnxruntime

    path = refuse_overwrite(path, overwrite)  # before the (slow) conversion
    contexts = {target: refuse_overwrite(context_path(path, target), overwrite) for target in targets}
    shape = tuple(model.input_shape[1:])
    if npu is not None:
        if any(d is None for d in shape):
            raise ValueError(
                f"the NPU preset needs a static input size; build the model with input_shape=(H, W, C). Received: input_shape={shape}"
            )
        if representative_data is not None:
            samples = calibration.check_samples(representative_data, shape)
        else:
            samples = calibration.random_samples(shape)
    proto = trace(model, opset, npu=npu is not None)
    if npu is not None:
        return _to_npu(model, proto, path, contexts, samples, npu_quantize, verify, verify_samples, overwrite, progress)
    data = proto.SerializeToString()
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
    return OnnxExport(path, len(data), _histogram(proto), parity)


def trace(model, opset=OPSET, npu=False):
    """The standard-ops ONNX graph of `model(x, training=False)` (`check_standard`); with `npu`, the NPU preset's float graph.

    The NPU preset's graph has batch 1 (the HTP needs static shapes; phones
    run batch 1) and the HTP's graph forms: it computes a 1x1 AveragePool
    of stride 2 wrong (SKNet's strided dilated paths subsample so: relative
    L2 5.6 against the CPU EP), the equal depthwise convolution right
    (`forms.average_pools_as_depthwise`, tests/export/test_npu.py).
    """
    import tensorflow as tf
    import tf2onnx

    if npu:
        model = average_pools_as_depthwise(model)
    function = tf.function(lambda x: model(x, training=False))
    spec = [tf.TensorSpec((1 if npu else None, *model.input_shape[1:]), tf.float32, name="input")]
    with quiet_native_logs(), tf2onnx_garbage_collected():
        proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=opset)
    check_standard(proto)
    return proto


def _histogram(proto):
    ops = {}
    for node in proto.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return ops


def _to_npu(model, proto, path, contexts, samples, quantize, verify, verify_samples, overwrite, progress):
    """The NPU preset's QDQ file, its run on the HTP and its context binaries, written as a set."""
    with quiet_native_logs():
        qdq, logits = quantize_qdq(proto, samples, quantize, progress)
    shipped = strip_logits(qdq, logits)
    data = shipped.SerializeToString()
    parity = npu_parity = None
    run = NpuRun("not run", "verify=False: the file was not run on the HTP")
    with tempfile.TemporaryDirectory(prefix="keras_se_npu_") as folder:
        if verify:
            run, parity, npu_parity = compare_on_npu(model, qdq, logits, samples[:verify_samples], list(contexts), data, folder)
            check_npu_run(run, parity, npu_parity, quantize)
        if run.status == "not run":
            warnings.warn(f"QNN HTP not run: {run.reason}", NpuNotRunWarning, stacklevel=3)
        written = []
        try:
            for target, target_path in contexts.items():
                if target in run.contexts:  # not made when the HTP did not run
                    with open(run.contexts[target]["path"], "rb") as source, atomic_output(target_path, overwrite) as handle:
                        shutil.copyfileobj(source, handle)
                    written.append(target_path)
                    run.contexts[target]["path"] = target_path
            with atomic_output(path, overwrite) as handle:
                handle.write(data)
        except BaseException:
            for written_path in written:  # the set appears whole or not at all
                with contextlib.suppress(OSError):
                    os.unlink(written_path)
            raise
    return OnnxExport(path, len(data), _histogram(shipped), parity, quantize, run, npu_parity)


def compare_on_npu(model, qdq, logits, samples, targets=(), shipped=None, context_dir=None):
    """Runs a QDQ file (with its "logits" output, `quantize_qdq`) on ONNX Runtime's CPU EP and on the QNN HTP.

    Returns:
        (`NpuRun` with `cpu_relative_l2`, CPU EP `Parity` against Keras,
        HTP `Parity` against Keras or None when it did not run).
    """
    import onnxruntime

    reference = keras_outputs(model, samples)
    count = len(reference) if isinstance(reference, list) else 1
    data = qdq.SerializeToString()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    rows = [session.run(None, {feed: x[None]}) for x in samples]
    cpu = [np.concatenate(column) for column in zip(*rows)]
    step = output_step(qdq)

    def parity(outputs, runtime):
        result = parity_of_outputs(reference, outputs[0] if count == 1 else outputs[:count], runtime, step)
        return with_logits(result, expected, outputs[count]) if logits else result

    expected = keras_logits(model, samples, reference) if logits else None
    cpu_parity = parity(cpu, "ONNX Runtime CPU EP (the QDQ file)")
    run = run_on_npu(data, samples, targets, context_model=shipped, context_dir=context_dir)
    if run.outputs is None:
        run.cpu_reason = run.verdict()
        return run, cpu_parity, None
    htp = run.outputs if isinstance(run.outputs, list) else [run.outputs]
    run.cpu_relative_l2 = relative_l2(_centered(cpu[-1]), _centered(htp[-1])) if logits else relative_l2(cpu[0], htp[0])
    return run, cpu_parity, parity(htp, "QNN HTP (simulator)")


def check_npu_run(run, parity, npu_parity, quantize="w8a8"):
    """Raises unless a `compare_on_npu` result passes; a "not run" HTP is left to the caller (a warning, never a pass)."""
    parity.check("int8")
    if run.status == "not run":
        return
    if not run.passed:
        raise ConversionError(f"Qualcomm HTP: {run.verdict()}")
    npu_parity.check("int8")
    bound = NPU_CPU_RELATIVE_L2[quantize]
    if not run.cpu_relative_l2 <= bound:
        raise VerificationError(
            f"the QNN HTP computes this file differently from ONNX Runtime's CPU EP: relative L2 {run.cpu_relative_l2:.3g} "
            f"({quantize} bound {bound})"
        )
    for target, context in run.contexts.items():
        if context["relative_l2"] is not None and not np.isfinite(context["relative_l2"]):
            raise VerificationError(f"the {target} context binary reloads but computes a non-finite output")
