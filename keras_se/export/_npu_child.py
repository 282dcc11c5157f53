"""The child process behind `keras_se.export.npu`: one QDQ ONNX file on Qualcomm's HTP through ONNX Runtime's QNN EP.

Run as a script (`python _npu_child.py MODEL --workdir DIR [--targets
JSON] [--context-model FILE]`), never imported: it imports only ONNX Runtime, onnxruntime-qnn and
ONNX, so that a crash of the HTP (simulator) runtime is its own death, never
the caller's.

Reads DIR/x.npy (inputs, one row per run, batch 1) when present; writes
DIR/y.npz (one array per graph output, in graph order), DIR/ctx_TARGET.onnx
(an EP context model per target) and, last, DIR/result.json:
    {"status": "ran" | "refused" | "not run", "reason": str,
     "nodes": {"QNNExecutionProvider": n, ...}, "fallback": [{"name", "op_type"}, ...],
     "unsupported": [{"name", "op_type", "reason"}, ...], "partitions": n,
     "contexts": {target: {"bytes": n, "relative_l2", "max_abs_error": its first output against the HTP run's}}}
"""

import argparse
import json
import os
import sys

import numpy as np

_EP = "QNNExecutionProvider"
# QNN's reasons for the nodes ONNX Runtime keeps on the CPU by design.
_BY_DESIGN = ("Q nodes that consume a graph input", "DQ nodes that generate a graph output")


def _register():
    """The QNN EP's devices, or (None, why not)."""
    import onnxruntime

    try:
        import onnxruntime_qnn
    except ImportError:
        return None, "onnxruntime-qnn is not installed (pip install 'keras_se[npu]')"
    if not hasattr(onnxruntime, "register_execution_provider_library"):
        return None, f"onnxruntime {onnxruntime.__version__} cannot load plugin execution providers (onnxruntime-qnn needs >= 1.24.2)"
    try:
        onnxruntime.register_execution_provider_library(_EP, onnxruntime_qnn.get_library_path())
    except Exception as error:  # already registered in this process, or a broken library
        if "already" not in str(error).lower():
            return None, f"the QNN execution provider does not load: {' '.join(str(error).split())[:300]}"
    devices = [d for d in onnxruntime.get_ep_devices() if d.ep_name == _EP]
    if not devices:
        return None, "the QNN execution provider lists no device"
    return devices, ""


def _session(path, devices, provider_options, config):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    for key, value in config.items():
        options.add_session_config_entry(key, value)
    options.add_provider_for_devices(devices, {"backend_type": "htp", **provider_options})
    return onnxruntime.InferenceSession(path, sess_options=options)


def _boundary(proto):
    """Names of the graph-input Quantize and graph-output Dequantize nodes: ONNX Runtime keeps those on the CPU by design."""
    inputs = {i.name for i in proto.graph.input}
    outputs = {o.name for o in proto.graph.output}
    return {
        n.name
        for n in proto.graph.node
        if (n.op_type == "QuantizeLinear" and n.input[0] in inputs) or (n.op_type == "DequantizeLinear" and n.output[0] in outputs)
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--targets", default="{}", help="JSON {name: provider options}")
    parser.add_argument("--context-model", help="the file to make context binaries of (default: MODEL); its outputs lead MODEL's")
    args = parser.parse_args()
    os.dup2(2, 1)  # native code that prints goes to the log
    sys.stdout = sys.stderr
    result = {"status": "ran", "reason": "", "nodes": {}, "fallback": [], "unsupported": [], "partitions": 0, "contexts": {}}

    def finish(**fields):
        result.update(fields)
        tmp = os.path.join(args.workdir, "result.json.tmp")
        with open(tmp, "w") as handle:
            json.dump(result, handle)
        os.replace(tmp, os.path.join(args.workdir, "result.json"))

    devices, reason = _register()
    if devices is None:
        return finish(status="not run", reason=reason)
    import onnx

    proto = onnx.load(args.model, load_external_data=False)
    boundary = _boundary(proto)
    trace = os.path.join(args.workdir, "trace")
    config = {"session.record_ep_graph_assignment_info": "1"}
    try:
        session = _session(args.model, devices, {"enable_framework_op_trace": "1", "framework_op_trace_dir": trace}, config)
    except Exception as error:  # ONNX Runtime raises its own Fail / RuntimeException types
        return finish(status="refused", reason=" ".join(str(error).split())[:500])
    for subgraph in session.get_provider_graph_assignment_info():
        nodes = subgraph.get_nodes()
        result["nodes"][subgraph.ep_name] = result["nodes"].get(subgraph.ep_name, 0) + len(nodes)
        result["partitions"] += subgraph.ep_name == _EP
        if subgraph.ep_name != _EP:
            result["fallback"] += [{"name": n.name, "op_type": n.op_type} for n in nodes]
    for name in sorted(os.listdir(trace)) if os.path.isdir(trace) else ():
        with open(os.path.join(trace, name)) as handle:
            record = json.load(handle)
        unsupported = record.get("unsupported_nodes")
        if isinstance(unsupported, list):
            result["unsupported"] += [{"name": u["node_name"], "op_type": u["op_type"], "reason": u.get("reason", "")} for u in unsupported]
    # ONNX Runtime's optimiser may add its own graph-input Quantize ("input_q",
    # past a moved Transpose): QNN names those in its reasons.
    boundary |= {u["name"] for u in result["unsupported"] if any(why in u["reason"] for why in _BY_DESIGN)}
    result["fallback"] = [node for node in result["fallback"] if node["name"] not in boundary]
    feed = session.get_inputs()[0].name
    inputs_path = os.path.join(args.workdir, "x.npy")
    first = None
    if os.path.exists(inputs_path):
        outputs = []
        for x in np.load(inputs_path):
            outputs.append(session.run(None, {feed: x[None]}))
        first = outputs[0]
        np.savez(os.path.join(args.workdir, "y.npz"), *[np.concatenate(o) for o in zip(*outputs)])
    # One context binary per target, made ahead of time, then reloaded and
    # run: what an app ships instead of compiling the graph at start-up.
    for target, provider_options in json.loads(args.targets).items():
        path = os.path.join(args.workdir, f"ctx_{target}.onnx")
        context_config = {
            "ep.context_enable": "1",
            "ep.context_file_path": path,
            "ep.context_embed_mode": "1",
            "session.disable_cpu_ep_fallback": "1",
        }
        try:
            _session(
                args.context_model or args.model,
                devices,
                {"htp_graph_finalization_optimization_mode": "3", **provider_options},
                context_config,
            )
            reloaded = _session(path, devices, provider_options, {"session.disable_cpu_ep_fallback": "1"})
        except Exception as error:
            return finish(status="refused", reason=f"context binary for {target}: {' '.join(str(error).split())[:400]}")
        record = {"bytes": os.path.getsize(path), "relative_l2": None, "max_abs_error": None}
        if first is not None:
            again = reloaded.run(None, {feed: np.load(inputs_path)[:1]})[0].astype("float64")
            # Over the larger of the two norms: an output that is all zeros in
            # one run (int8 probabilities of 1000 near-equal classes round to
            # 0) gives 1, not an error of 1e28 over a zero norm.
            scale = max(float(np.linalg.norm(first[0])), float(np.linalg.norm(again)), 1e-30)
            record["relative_l2"] = float(np.linalg.norm(again - first[0]) / scale)
            record["max_abs_error"] = float(np.max(np.abs(again - first[0])))
        result["contexts"][target] = record
    finish()


if __name__ == "__main__":
    main()
