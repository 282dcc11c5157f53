"""Qualcomm's Hexagon NPU (HTP): static batch-1 QDQ ONNX, run through ONNX Runtime's QNN execution provider.

onnxruntime-qnn bundles Qualcomm's QAIRT runtime. On a phone its
`libQnnHtp.so` drives the Hexagon Tensor Processor; on x86-64 Linux the
same library is an HTP simulator, so a graph really runs with the HTP's
kernels and fixed-point arithmetic (20 to 70 times slower than ONNX
Runtime's CPU EP; not phone times). The HTP needs static shapes and
quantised tensors: a file with a dynamic batch puts no node on it, a float
file none either (the HTP's float16 path needs a named SoC).

What runs there runs in a child process that imports only ONNX Runtime
(`_npu_child.py`), so a crash of the runtime is a reported result.
"""

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from keras_se.export.gpu_run import _signal_name

VENDORS = ("qualcomm",)
# Snapdragon SoCs: (Hexagon architecture, QNN's soc_model), as QNN numbers
# them (LiteRT's vendors/qualcomm/core/schema/soc_table.h).
QUALCOMM_SOCS = {"sm8350": (68, 30), "sm8450": (69, 36), "sm8550": (73, 43), "sm8650": (75, 57), "sm8750": (79, 69)}
HTP_ARCHES = (68, 69, 73, 75, 79, 81)
# Weights and activations: w8a8 (uint8 activations) or w8a16 (uint16
# activations, closer to float at twice the activation memory).
NPU_QUANTIZE = ("w8a8", "w8a16")
DEFAULT_TIMEOUT = 900
_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_npu_child.py")
_EP = "QNNExecutionProvider"


def parse_npu(npu):
    """`"qualcomm"` or `"qualcomm:TARGET[,TARGET...]"` -> ("qualcomm", targets).

    A target is a Snapdragon SoC (`QUALCOMM_SOCS`: sm8650 is the Snapdragon
    8 Gen 3) or a Hexagon architecture (v68 ... v81); each gets a context
    binary made ahead of time.
    """
    if not isinstance(npu, str) or npu.partition(":")[0].strip().lower() not in VENDORS:
        raise ValueError(f"npu must be 'qualcomm' or 'qualcomm:TARGET[,TARGET...]' (e.g. qualcomm:sm8650,sm8750). Received: npu={npu!r}")
    targets = [t.strip().lower() for t in npu.partition(":")[2].split(",") if t.strip()]
    for target in targets:
        target_options(target)
    return "qualcomm", tuple(dict.fromkeys(targets))


def target_options(target):
    """The QNN provider options that compile for `target` (a SoC name or a Hexagon architecture)."""
    if target in QUALCOMM_SOCS:
        arch, soc = QUALCOMM_SOCS[target]
        return {"htp_arch": str(arch), "soc_model": str(soc)}
    match = re.fullmatch(r"v(\d+)", str(target))
    if match and int(match.group(1)) in HTP_ARCHES:
        return {"htp_arch": match.group(1)}
    raise ValueError(
        f"unknown Qualcomm NPU target {target!r}: give a Snapdragon SoC ({', '.join(QUALCOMM_SOCS)}) "
        f"or a Hexagon architecture ({', '.join(f'v{a}' for a in HTP_ARCHES)})"
    )


@dataclasses.dataclass
class NpuRun:
    """What the QNN execution provider's HTP did with one ONNX file.

    status is one of:
      - "ran": the session was created and the inputs ran;
      - "refused": ONNX Runtime or QNN refused the graph (`reason`);
      - "crashed": the runtime killed its process (`reason` names the signal);
      - "timeout": no answer within the time limit;
      - "not run": onnxruntime-qnn is not installed or loads no device
        (`reason` says what to install). Never counted as passed.

    `nodes` counts the graph's nodes per execution provider; `fallback`
    lists those ONNX Runtime put on the CPU (the graph-input Quantize and
    graph-output Dequantize, on the CPU by design, excepted), and
    `unsupported` QNN's reason for each node it refused.
    """

    status: str
    reason: str = ""
    nodes: dict = dataclasses.field(default_factory=dict)
    fallback: list = dataclasses.field(default_factory=list)
    unsupported: list = dataclasses.field(default_factory=list)
    partitions: int = 0
    # target -> {"bytes", "relative_l2" (over the larger norm) and
    # "max_abs_error" (reloaded and run on the first input: its first output
    # against the HTP run's), "path" (where kept)}
    contexts: dict = dataclasses.field(default_factory=dict)
    outputs: object = dataclasses.field(default=None, repr=False)
    # Set by `to_onnx(..., npu=...)`: the HTP's logits against ONNX Runtime's
    # CPU EP on the same QDQ file (relative L2), and why not when None.
    cpu_relative_l2: float = None
    cpu_reason: str = ""

    @property
    def passed(self):
        """True only when the file ran with every node on the HTP."""
        return self.status == "ran" and not self.fallback and self.nodes.get(_EP, 0) > 0

    def verdict(self):
        """One short phrase for tables: "fully on the HTP", "partly: ...", "refused: ...", "not run: ..."."""
        if self.status != "ran":
            return f"{self.status}: {self.reason}"
        if self.passed:
            return "fully on the HTP"
        reasons = {u["name"]: u["reason"] for u in self.unsupported}
        ops = {}
        for node in self.fallback:
            ops.setdefault(node["op_type"], reasons.get(node["name"], ""))
        named = "; ".join(f"{op}" + (f" ({why})" if why else "") for op, why in sorted(ops.items()))
        return f"partly on the HTP: {len(self.fallback)} of {sum(self.nodes.values())} nodes on the CPU: {named or 'none named'}"

    def to_dict(self, parity=None):
        record = dataclasses.asdict(self)
        record.pop("outputs")
        record.update(passed=self.passed, verdict=self.verdict(), parity=dataclasses.asdict(parity) if parity else None)
        return record


def run_on_npu(onnx_model, samples=None, targets=(), timeout=DEFAULT_TIMEOUT, context_model=None, context_dir=None):
    """Runs a static-shape QDQ ONNX file on Qualcomm's HTP through ONNX Runtime's QNN EP, in a child process.

    Args:
        onnx_model: path of an `.onnx` file, or its bytes.
        samples: optional float array (N, ...) of inputs, run one at a
            time (batch 1); the result's `outputs` are the file's outputs
            for them (an array, or a list for several outputs).
        targets: names of `parse_npu` targets: each gets an EP context
            binary made ahead of time, reloaded and run on the first sample.
        timeout: float, seconds for the whole run.
        context_model: the file to make the context binaries of (default:
            `onnx_model`); its outputs must lead `onnx_model`'s.
        context_dir: an existing folder to keep the context models in
            (`ctx_TARGET.onnx`); by default only their sizes are kept.

    Returns:
        `NpuRun`: check `passed`, never the absence of an error.
    """
    providers = {t: target_options(t) for t in targets}
    workdir = tempfile.mkdtemp(prefix="keras_se_npu_")
    try:
        with _as_file(onnx_model, workdir, "model.onnx") as path, _as_file(context_model, workdir, "shipped.onnx") as shipped:
            if samples is not None:
                np.save(os.path.join(workdir, "x.npy"), np.asarray(samples, "float32"))
            # -P: the script's folder (keras_se/export, whose onnx.py would shadow the onnx package) stays off sys.path.
            command = [sys.executable, "-P", _CHILD, path, "--workdir", workdir, "--targets", json.dumps(providers)]
            if shipped:
                command += ["--context-model", shipped]
            log = os.path.join(workdir, "stderr.log")
            with open(log, "w") as stderr:
                try:
                    process = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, timeout=timeout)
                except subprocess.TimeoutExpired:
                    return NpuRun("timeout", f"no answer from the QNN HTP within {timeout:g} s")
            result_path = os.path.join(workdir, "result.json")
            if not os.path.exists(result_path):
                with open(log) as handle:
                    last = _last_error(handle.read())
                reason = f"the QNN runtime's process died ({_signal_name(process.returncode)})" + (f"; last error: {last}" if last else "")
                return NpuRun("crashed", reason)
            with open(result_path) as handle:
                record = json.load(handle)
            run = NpuRun(**record)
            outputs_path = os.path.join(workdir, "y.npz")
            if os.path.exists(outputs_path):
                with np.load(outputs_path) as arrays:
                    outputs = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
                run.outputs = outputs[0] if len(outputs) == 1 else outputs
            for target, context in run.contexts.items():
                if context_dir is not None:
                    context["path"] = os.path.join(context_dir, f"ctx_{target}.onnx")
                    shutil.move(os.path.join(workdir, f"ctx_{target}.onnx"), context["path"])
            return run
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _last_error(text):
    lines = [line for line in text.splitlines() if "error" in line.lower() or line.startswith(("E0", "F0"))]
    return lines[-1].strip()[:300] if lines else None


@contextlib.contextmanager
def _as_file(model, workdir, name):
    if model is None:
        yield None
    elif isinstance(model, (bytes, bytearray)):
        path = os.path.join(workdir, name)
        with open(path, "wb") as handle:
            handle.write(model)
        yield path
    else:
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise ValueError(f"ONNX file not found. Received: {path!r}")
        yield path


def context_path(path, target):
    """Where the NPU preset keeps `path`'s EP context model for `target`: `{stem}_{target}_ctx.onnx` beside it."""
    return f"{os.path.splitext(os.fspath(path))[0]}_{target}_ctx.onnx"


def softmax_input(proto):
    """The name of the tensor that feeds the softmax ending a one-output graph (through Identity nodes), or None."""
    if len(proto.graph.output) != 1:
        return None
    producer = {output: node for node in proto.graph.node for output in node.output}
    tensor = proto.graph.output[0].name
    while tensor in producer:
        node = producer[tensor]
        if node.op_type == "Softmax":
            return node.input[0]
        if node.op_type != "Identity":
            return None
        tensor = node.input[0]
    return None


def quantize_qdq(proto, samples, quantize="w8a8", progress=None):
    """A QDQ copy of a static-shape float ONNX `proto` for the HTP, calibrated on `samples`.

    ONNX Runtime's QNN recipe (`get_qnn_qdq_config`): 8-bit weights per
    output channel (per tensor, SE-MobileNet's logits error against Keras
    grows from 0.94 to 1.16 and SKNet-50's from 0.83 to 1.0), activations
    uint8 (`w8a8`) or uint16 (`w8a16`), min-max calibration, one sample at
    a time. Where the graph ends in a softmax, its input is
    a second graph output ("logits"), for verification; `strip_logits`
    removes it.

    Returns:
        (QDQ ModelProto, logits output name or None).
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantType
    from onnxruntime.quantization import quantize as ort_quantize
    from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

    if quantize not in NPU_QUANTIZE:
        raise ValueError(f"npu_quantize must be one of {NPU_QUANTIZE}. Received: npu_quantize={quantize!r}")
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    logits = softmax_input(proto)
    if logits is not None:
        proto.graph.output.append(onnx.helper.make_tensor_value_info(logits, onnx.TensorProto.FLOAT, None))
    feed = proto.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.rows = iter(np.asarray(samples, "float32"))

        def get_next(self):
            row = next(self.rows, None)
            if row is None:
                return None
            if progress:
                progress()
            return {feed: row[None]}

    activation = QuantType.QUInt16 if quantize == "w8a16" else QuantType.QUInt8
    with tempfile.TemporaryDirectory(prefix="keras_se_qdq_") as folder:
        source, target = os.path.join(folder, "float.onnx"), os.path.join(folder, "qdq.onnx")
        onnx.save(proto, source)
        config = get_qnn_qdq_config(source, Reader(), activation_type=activation, weight_type=QuantType.QUInt8, per_channel=True)
        ort_quantize(source, target, config)
        return onnx.load(target), logits


def strip_logits(proto, logits):
    """`proto` without the "logits" output `quantize_qdq` added, and without the nodes that only fed it (`proto` itself when `logits` is None)."""
    import onnx

    if logits is None:
        return proto

    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    outputs = [o for o in proto.graph.output if o.name != logits]
    del proto.graph.output[:]
    proto.graph.output.extend(outputs)
    while True:
        used = {name for node in proto.graph.node for name in node.input} | {o.name for o in proto.graph.output}
        dead = [node for node in proto.graph.node if not any(name in used for name in node.output)]
        if not dead:
            break
        for node in dead:
            proto.graph.node.remove(node)
    live = {name for node in proto.graph.node for name in node.input}
    initializers = [t for t in proto.graph.initializer if t.name in live]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(initializers)
    return proto


def output_step(proto):
    """The quantisation step of the Dequantize that makes the graph's first output (0.0 if none)."""
    from onnx import numpy_helper

    producer = {node.output[0]: node for node in proto.graph.node}
    node = producer.get(proto.graph.output[0].name)
    if node is None or node.op_type != "DequantizeLinear":
        return 0.0
    scales = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    return float(np.max(scales.get(node.input[1], 0.0)))
