"""The child process behind `keras_se.export.gpu_run`: one .tflite file on LiteRT's GPU accelerator.

Run as a script (`python _gpu_child.py FILE --reply-fd N [--precision
float16|float32]`), never imported: it must not
import TensorFlow (nor keras_se, whose package imports Keras), because
TensorFlow and the GPU accelerator in one process crash at model creation.

Protocol: one JSON object per line on the file descriptor named by
`--reply-fd` (fd 1 is pointed at fd 2 first, so native code that prints
cannot corrupt it), commands one JSON object per line on stdin:
    -> {"event": "ready", "fully_accelerated": bool, "input": {...}, "outputs": [{...}, ...]}
       (shape, dtype and quantisation of each; the outputs in the signature's
       order, each with its signature `name`) or {"event": "error", "message": str}
    <- {"cmd": "run", "inputs": "x.npy", "outputs": "y.npz"}   tensors in the file's dtypes, one array per output
    -> {"event": "ran"}
    <- {"cmd": "time", "runs": n}
    -> {"event": "timed", "ms": [...]}
    <- {"cmd": "quit"}
The parent (de)quantises, with `keras_se.export.verify`'s helpers, as for
the CPU runtime.
"""

import argparse
import json
import os
import sys
import time

import numpy as np


def _details(path, model):
    from ai_edge_litert.interpreter import Interpreter

    def record(t, name=None):
        return {
            "shape": [int(d) for d in t["shape"]],
            "dtype": np.dtype(t["dtype"]).name,
            "quantization": [float(q) for q in t["quantization"]],
            "name": name,
        }

    # Only the tensor metadata (quantisation); no allocation.
    interpreter = Interpreter(model_path=path)
    outputs = interpreter.get_output_details()
    if len(outputs) > 1:
        # The compiled model's output buffers follow its own signature order
        # (the file's), which the interpreter's signature list does not keep.
        key, signature = next(iter(model.get_signature_list().items()))
        by_name = interpreter.get_signature_runner(key).get_output_details()
        return record(interpreter.get_input_details()[0]), [record(by_name[n], n) for n in signature["outputs"]]
    return record(interpreter.get_input_details()[0]), [record(outputs[0])]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--reply-fd", type=int, required=True)
    parser.add_argument("--precision", choices=("float16", "float32"), default="float16")
    args = parser.parse_args()
    reply_stream = os.fdopen(args.reply_fd, "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(**message):
        reply_stream.write(json.dumps(message) + "\n")

    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    from ai_edge_litert.options import GpuOptions, Options

    # float16 is what phones run (LiteRT's default); float32 computes the
    # same kernels in full precision.
    options = Options(hardware_accelerators=HardwareAccelerator.GPU, gpu_options=GpuOptions(enforce_f32=args.precision == "float32"))
    try:
        model = CompiledModel.from_file(args.path, options=options)
        inp, outs = _details(args.path, model)
        inputs = model.create_input_buffers(0)
        outputs = model.create_output_buffers(0)
    except Exception as error:  # LiteRT raises RuntimeError with its status trace
        reply(event="error", message=" ".join(str(error).split()))
        return
    reply(event="ready", fully_accelerated=bool(model.is_fully_accelerated()), input=inp, outputs=outs)
    out, out_size = outs[0], int(np.prod(outs[0]["shape"]))
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "run":
            results = [[] for _ in outs]
            for x in np.load(command["inputs"]):
                inputs[0].write(np.ascontiguousarray(x, dtype=inp["dtype"]).reshape(-1))
                model.run_by_index(0, inputs, outputs)
                for result, buffer, o in zip(results, outputs, outs):
                    result.append(buffer.read(int(np.prod(o["shape"])), o["dtype"]).reshape(o["shape"][1:]))
            np.savez(command["outputs"], *[np.stack(result) for result in results])
            reply(event="ran")
        elif command["cmd"] == "time":
            times = []
            for _ in range(int(command["runs"])):
                start = time.perf_counter()
                model.run_by_index(0, inputs, outputs)
                # Reading the output waits for the GPU: the time an app waits.
                outputs[0].read(out_size, out["dtype"])
                times.append((time.perf_counter() - start) * 1e3)
            reply(event="timed", ms=times)
        else:
            break


if __name__ == "__main__":
    main()
