"""Running converted models and comparing them with Keras."""

import dataclasses

import numpy as np

from keras_se.export import gpu_run
from keras_se.export.errors import VerificationError
from keras_se.export.gpu_run import GPU_KERNEL_RELATIVE_L2
from keras_se.export.tensors import dequantize_output, quantize_input

# keras-hub's LiteRT export tests: float32 outputs (probabilities) within these.
FLOAT32_MAX_ABS = 5e-5
FLOAT32_MEAN_ABS = 1e-5
MIN_TOP1_AGREEMENT = 0.5
# LiteRT's GPU accelerator computes in float16 (as on phones: GpuOptions's
# enforce_f32 is off), whatever the file stores. float16's unit roundoff is
# 2**-11 = 4.9e-4 per operation and it compounds over a network's depth:
# against Keras float32, the relative L2 error of the logits is 2e-3 to 6e-3
# for every registered model (BENCHMARKS.md, "LiteRT GPU accelerator") and
# 2e-3 for timm's legacy_seresnet18 with real weights. The bound is about
# eight times the worst; a wrong kernel gives errors of order 1.
GPU_RELATIVE_L2 = 5e-2
# Every mode's bound on what a file computes: the relative L2 error of its
# logits (the input of its final softmax, less the per-sample mean a softmax
# does not see; the outputs themselves for a file without one), the largest
# over the verification inputs. Measured on se_mobilenet (alpha 0.25, 32 px),
# se_resnet18 (32 px), mobilenetv3_small (alpha 0.5, 64 px) and
# se_shufflenet_g3 (32 px), Keras' initial weights with BN statistics set
# from 16 calibration inputs (`calibration.trained_like_copy`), 8 other
# inputs. A wrong graph, measured the same way: one middle BN's scale off by
# 25 % gives 0.28 to 0.84 in float32; a constant output gives exactly 1.0
# (what the int8 file of an untrained MobileNet computes); an output that
# ignores its input (samples shifted by one) 1.15 to 2.7. Random networks
# with data statistics amplify rounding far more than trained ones (one
# rounded weight in every layer, 28 layers deep: se_mobilenet's float16
# error is 20 times se_resnet18's), so the quantised bounds are wide.
LOGITS_RELATIVE_L2 = {
    # worst 1.0e-4 (se_mobilenet; 5.5e-6 se_resnet18, 4.4e-6 mobilenetv3_small,
    # 2.0e-5 se_shufflenet_g3): float32 summation order, ten times that.
    "float32": 1e-3,
    # worst 0.077 (se_mobilenet; 0.004 se_resnet18, 0.017 mobilenetv3_small,
    # 0.049 se_shufflenet_g3): float16 weights (unit roundoff 4.9e-4)
    # compounded over depth; 2.6 times the worst, below the smallest
    # wrong-BN error (0.28).
    "float16": 0.2,
    # worst 0.50 (se_mobilenet; 0.057 se_resnet18, 0.081 mobilenetv3_small,
    # 0.35 se_shufflenet_g3): int8 weights and activations quantised per
    # tensor on the fly. 1.8 times the worst, below a constant output (1.0).
    "dynamic": 0.9,
    # worst 0.54 among files that keep top-1 (mobilenetv3_small; 0.36
    # se_resnet18); se_mobilenet (1.14, top-1 29 %) and se_shufflenet_g3
    # (0.70, top-1 38 %) in int8 fail MIN_TOP1_AGREEMENT with these random
    # weights. Below a constant output (1.0) and an input-blind one (>= 1.15).
    "int8": 0.9,
}
# Keras' centred logits with an RMS under this are not a trained network's
# (those are of order 1): untrained MobileNets give 9e-21 (se_mobilenet) and
# 7e-9 (mobilenetv3_small) as every SE gate halves the activations; their
# int8 files compute a constant. The logits bound is then "n/a", said so.
VANISHING_LOGITS = 1e-6


@dataclasses.dataclass
class Parity:
    """Agreement between a converted model and Keras on the same inputs."""

    samples: int
    max_abs_error: float
    mean_abs_error: float
    top1_agreement: float  # over the decisive samples; None if there are none
    decisive: int  # samples whose Keras top-1 beats top-2 by more than 2 output quanta
    runtime: str
    relative_l2: float = None  # the largest per-sample ||actual - keras|| / ||keras||
    top5_agreement: float = None  # mean overlap of the top-5 classes, over all samples
    outputs: list = None  # a model with several outputs: the Parity of each, in output order (the fields above: all of them together)
    logits_relative_l2: float = None  # the largest per-sample relative L2 error of `compared` (centred logits); `relative_l2` when None
    compared: str = "outputs"  # "logits" (the input of the file's final softmax) or "outputs" (a file that ends otherwise)
    logits_not_checked: str = None  # why the `LOGITS_RELATIVE_L2` bound could not be applied (never a pass)
    scale: float = None  # the largest |Keras output|: the float32 absolute bounds grow with it past 1

    def check(self, quantize=None):
        """Raises `VerificationError` if the bounds for `quantize` fail."""
        for i, output in enumerate(self.outputs or ()):
            _for_output(i, output.check, quantize)
        if not (np.isfinite(self.max_abs_error) and np.isfinite(self.mean_abs_error)):
            raise VerificationError(
                f"{quantize or 'float32'} {self.runtime} output is not finite (max abs error {self.max_abs_error}): "
                "NaN or inf is never verified"
            )
        if not self.logits_not_checked:
            error = self.relative_l2 if self.logits_relative_l2 is None else self.logits_relative_l2
            bound = LOGITS_RELATIVE_L2[quantize or "float32"]
            if not error <= bound:
                raise VerificationError(
                    f"{quantize or 'float32'} {self.runtime} {self.compared} differ from Keras: relative L2 error "
                    f"{error:.3g} (bound {bound})"
                )
        # keras-hub's bounds are for probabilities (outputs within [0, 1]); float32
        # rounding grows with the values compared, so for larger outputs (logits)
        # they scale with the largest one.
        grow = max(1.0, self.scale or 0.0)
        max_abs, mean_abs = FLOAT32_MAX_ABS * grow, FLOAT32_MEAN_ABS * grow
        if quantize is None and not (self.max_abs_error <= max_abs and self.mean_abs_error <= mean_abs):
            raise VerificationError(
                f"float32 {self.runtime} output differs from Keras: max abs error "
                f"{self.max_abs_error:.3g} (bound {max_abs:.3g}), mean {self.mean_abs_error:.3g} "
                f"(bound {mean_abs:.3g})"
            )
        self._check_top1(quantize)

    def _check_top1(self, quantize):
        if self.top1_agreement is not None and self.top1_agreement < MIN_TOP1_AGREEMENT:
            raise VerificationError(
                f"{quantize or 'float32'} {self.runtime} top-1 agreement with Keras collapsed to "
                f"{self.top1_agreement:.0%} on {self.decisive} inputs"
            )

    def check_gpu(self, quantize=None):
        """Raises `VerificationError` if GPU accelerator outputs fail their bounds.

        Float files (float32, float16) must stay within `GPU_RELATIVE_L2`
        of Keras; every file keeps the top-1 rule of `check`.
        """
        for i, output in enumerate(self.outputs or ()):
            _for_output(i, output.check_gpu, quantize)
        if quantize in (None, "float16") and not self.relative_l2 <= GPU_RELATIVE_L2:
            raise VerificationError(
                f"{quantize or 'float32'} {self.runtime} output differs from Keras: relative L2 error "
                f"{self.relative_l2:.3g} (float16 bound {GPU_RELATIVE_L2})"
            )
        self._check_top1(quantize)

    def __str__(self):
        if self.top1_agreement is None:
            top1 = "top-1 not comparable (no input where Keras' top-1 leads by more than the output step)"
        else:
            top1 = f"top-1 agreement {self.top1_agreement:.0%} on {self.decisive}"
        error = self.relative_l2 if self.logits_relative_l2 is None else self.logits_relative_l2
        logits = self.logits_not_checked or f"{self.compared} relative L2 {error:.2e}"
        return (
            f"{self.runtime}: max |err| {self.max_abs_error:.2e}, mean {self.mean_abs_error:.2e}, {logits}, {top1} of {self.samples} inputs"
        )


def _for_output(index, check, quantize):
    try:
        check(quantize)
    except VerificationError as error:
        raise VerificationError(f"output {index}: {error}") from None


def keras_outputs(model, samples):
    """Keras' outputs for `samples`: an array, or a list of arrays for a model with several outputs."""
    out = model(np.asarray(samples, "float32"), training=False)
    if isinstance(out, dict):
        out = [out[name] for name in model.output_names]
    if isinstance(out, (list, tuple)):
        return [np.asarray(o.numpy() if hasattr(o, "numpy") else o, "float32") for o in out]
    return np.asarray(out.numpy() if hasattr(out, "numpy") else out, "float32")


def output_details(interpreter):
    """A file's output tensors in the converted model's output order.

    The interpreter lists the tensors of a model with several outputs in
    graph order; the signature keeps the model's (`output_0`, `output_1`,
    ... for a Keras model).
    """
    details = interpreter.get_output_details()
    if len(details) == 1:
        return details
    by_name = interpreter.get_signature_runner().get_output_details()
    keys = sorted(by_name, key=lambda k: (len(k), k))  # output_2 before output_10
    return [by_name[k] for k in keys]


def make_interpreter(data, num_threads=1):
    """A LiteRT interpreter with XNNPACK, or reference kernels if XNNPACK refuses.

    XNNPACK rejects int8 ops whose requantisation scale is out of its range
    (e.g. a layer whose calibrated outputs were all zero); LiteRT's own
    kernels still run them. Returns (interpreter, kernels) with kernels
    "XNNPACK" or "reference".
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from keras_se.io_utils import quiet_native_logs

    kwargs = {"model_content": bytes(data)} if isinstance(data, (bytes, bytearray)) else {"model_path": str(data)}
    try:
        with quiet_native_logs():
            interpreter = Interpreter(num_threads=num_threads, **kwargs)
            interpreter.allocate_tensors()
        return interpreter, "XNNPACK"
    except RuntimeError:
        interpreter = Interpreter(
            num_threads=num_threads, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, **kwargs
        )
        interpreter.allocate_tensors()
        return interpreter, "reference"


def run_tflite(data, samples, num_threads=1):
    """Runs a TFLite model (bytes or path) on each sample, batch 1.

    Quantised inputs and outputs are (de)quantised with the tensors' own
    scale and zero point, so the result is comparable with float outputs.
    """
    interpreter, _ = make_interpreter(data, num_threads)
    inp = interpreter.get_input_details()[0]
    outs = output_details(interpreter)
    results = [[] for _ in outs]
    for sample in np.asarray(samples, "float32"):
        interpreter.set_tensor(inp["index"], quantize_input(sample[None], inp["dtype"], inp["quantization"]))
        interpreter.invoke()
        for result, out in zip(results, outs):
            result.append(dequantize_output(interpreter.get_tensor(out["index"]), out["dtype"], out["quantization"])[0])
    stacked = [np.stack(result) for result in results]
    return stacked[0] if len(stacked) == 1 else stacked


def parity_of(reference, actual, runtime, output_step=0.0, relative_l2_bound=0.0):
    """Errors and top-1 agreement of `actual` against `reference`.

    Top-1 is compared only on decisive inputs, where the reference's top-1
    leads its runner-up by more than two output quantisation steps: an
    int8 output cannot order two classes closer than that (an untrained
    model's near-uniform probabilities all tie). With `relative_l2_bound`
    (float16 GPU arithmetic), also by more than sqrt(2) * bound * ||reference||,
    the most an error within that bound can close the gap between two classes.
    """
    reference = reference.reshape(len(reference), -1)
    actual = actual.reshape(len(actual), -1)
    error = np.abs(reference - actual)
    k = min(5, reference.shape[1])
    top5 = [len(set(np.argsort(-r)[:k]) & set(np.argsort(-a)[:k])) / k for r, a in zip(reference, actual)]
    top2 = np.sort(reference, axis=1)[:, -2:] if reference.shape[1] > 1 else np.zeros((len(reference), 2))
    margin = np.maximum(2 * output_step, np.sqrt(2) * relative_l2_bound * np.linalg.norm(reference, axis=1))
    decisive = (top2[:, 1] - top2[:, 0]) > margin
    agree = reference.argmax(1) == actual.argmax(1)
    return Parity(
        samples=len(reference),
        max_abs_error=float(error.max()),
        mean_abs_error=float(error.mean()),
        top1_agreement=float(agree[decisive].mean()) if decisive.any() else None,
        decisive=int(decisive.sum()),
        runtime=runtime,
        relative_l2=relative_l2(reference, actual),
        top5_agreement=float(np.mean(top5)),
        scale=float(np.abs(reference).max()),
    )


def output_step(tflite):
    """The output quantisation step of a TFLite model (0.0 for float outputs)."""
    interpreter, _ = make_interpreter(tflite)
    steps = [o["quantization"][0] if o["dtype"] in (np.int8, np.uint8) else 0.0 for o in output_details(interpreter)]
    return steps[0] if len(steps) == 1 else steps


def _flat(outputs):
    """Several outputs as one row per sample."""
    return np.concatenate([np.asarray(o).reshape(len(o), -1) for o in outputs], axis=1)


def parity_of_outputs(reference, actual, runtime, output_step=0.0, relative_l2_bound=0.0):
    """`parity_of` for one output (arrays) or several (lists of arrays, `Parity.outputs` each)."""
    if not isinstance(reference, list):
        return parity_of(reference, actual, runtime, output_step, relative_l2_bound)
    steps = output_step if isinstance(output_step, list) else [output_step] * len(reference)
    parity = parity_of(_flat(reference), _flat(actual), runtime, max(steps), relative_l2_bound)
    parity.outputs = [parity_of(r, a, runtime, step, relative_l2_bound) for r, a, step in zip(reference, actual, steps)]
    return parity


def compare_outputs(model, tflite, samples, reference=None):
    """`Parity` of a TFLite model (bytes or path) on LiteRT's CPU runtime against Keras.

    Besides the outputs, the logits: where the file ends with a softmax,
    the softmax's input against `keras_logits`; otherwise the outputs
    themselves (`Parity.logits_relative_l2`).

    `reference`: Keras' outputs for `samples`, when the caller has them.
    """
    _, kernels = make_interpreter(tflite)
    reference = keras_outputs(model, samples) if reference is None else reference
    parity = parity_of_outputs(reference, run_tflite(tflite, samples), f"LiteRT ({kernels})", output_step(tflite))
    logits = tflite_logits(tflite, samples)
    return parity if logits is None else with_logits(parity, keras_logits(model, samples, reference), logits)


def with_logits(parity, expected, logits):
    """`parity` with its logits fields set: a file's `logits` against Keras' (`expected`, `keras_logits`)."""
    expected = _centered(expected)
    parity.logits_relative_l2 = relative_l2(expected, _centered(logits))
    parity.compared = "logits"
    scale = float(np.sqrt(np.mean(expected**2)))
    if not scale >= VANISHING_LOGITS:
        parity.logits_not_checked = (
            f"n/a: Keras' logits are ~{scale:.0e} (untrained weights: activations shrink layer by layer), so no error "
            "bound on them means anything; verify a copy with BN statistics from data "
            "(keras_se.export.calibration.trained_like_copy)"
        )
    return parity


def _centered(logits):
    """Logits less their per-sample mean: a softmax does not see the shift (and log-probabilities differ from logits by one)."""
    logits = np.asarray(logits, "float32").reshape(len(logits), -1)
    return logits - logits.mean(axis=1, keepdims=True)


def logits_model(model):
    """`model` without its final softmax, with the same weights; None when it has none to drop.

    A keras_se model is rebuilt from its config with
    `classifier_activation=None`; another Keras 3 model ending in a softmax
    `Activation`/`Softmax` layer is cut before it, one ending in a layer
    with `activation="softmax"` is cloned with a linear activation there.
    """
    import keras

    if not isinstance(model, keras.Model):
        return None
    try:
        config = model.get_config()
    except NotImplementedError:
        config = {}
    if config.get("classifier_activation") not in (None, "linear"):
        twin = type(model).from_config({**config, "classifier_activation": None})
        twin.set_weights(model.get_weights())
        return twin
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax) or (
        isinstance(last, keras.layers.Activation) and getattr(last.activation, "__name__", "") == "softmax"
    ):
        return keras.Model(model.inputs, last.input)
    if getattr(getattr(last, "activation", None), "__name__", "") != "softmax" or len(model.outputs) != 1:
        return None

    def linear_last(layer):
        config = layer.get_config()
        return type(layer).from_config({**config, "activation": "linear"} if layer is last else config)

    twin = keras.models.clone_model(model, clone_function=linear_last)
    twin.set_weights(model.get_weights())
    return twin


def keras_logits(model, samples, reference=None):
    """Keras' logits for `samples` (`logits_model`); without a twin (a tf_keras QAT model),
    the log of its softmax outputs `reference`, which differ from the logits by a per-sample constant."""
    twin = logits_model(model)
    if twin is not None:
        return keras_outputs(twin, samples)
    reference = keras_outputs(model, samples) if reference is None else reference
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(reference, "float32"))  # a zero probability gives -inf: compared, it fails


def _softmax_input(model_object):
    """The tensor that feeds the softmax producing a one-output file's output (through (de)quantise ops), or None."""
    from ai_edge_litert.tools.flatbuffer_utils import get_builtin_code_from_operator_code, schema_fb

    ops = schema_fb.BuiltinOperator
    graph = model_object.subgraphs[0]
    if len(graph.outputs) != 1:
        return None
    producer = {int(t): op for op in graph.operators for t in op.outputs}
    tensor = int(graph.outputs[0])
    while tensor in producer:
        op = producer[tensor]
        code = get_builtin_code_from_operator_code(model_object.operatorCodes[op.opcodeIndex])
        if code == ops.SOFTMAX:
            return int(op.inputs[0])
        if code not in (ops.QUANTIZE, ops.DEQUANTIZE):
            return None
        tensor = int(op.inputs[0])
    return None


def tflite_logits(tflite, samples, num_threads=1):
    """The input of the softmax that ends a file (bytes or path), dequantised, per sample; None if it ends otherwise.

    The tensor is added to the file's outputs, so XNNPACK writes it out
    (inside a delegated partition an intermediate tensor is never written):
    the same kernels compute it as in the file itself.
    """
    from ai_edge_litert.tools.flatbuffer_utils import convert_bytearray_to_object, convert_object_to_bytearray

    data = tflite if isinstance(tflite, (bytes, bytearray)) else open(tflite, "rb").read()
    model_object = convert_bytearray_to_object(bytearray(data))
    index = _softmax_input(model_object)
    if index is None:
        return None
    graph = model_object.subgraphs[0]
    graph.outputs = np.append(np.asarray(graph.outputs, "int32"), np.int32(index))
    interpreter, _ = make_interpreter(bytes(convert_object_to_bytearray(model_object)), num_threads)
    inp = interpreter.get_input_details()[0]
    out = next(d for d in interpreter.get_output_details() if d["index"] == index)
    logits = []
    for sample in np.asarray(samples, "float32"):
        interpreter.set_tensor(inp["index"], quantize_input(sample[None], inp["dtype"], inp["quantization"]))
        interpreter.invoke()
        logits.append(dequantize_output(interpreter.get_tensor(out["index"]), out["dtype"], out["quantization"])[0])
    return np.stack(logits)


def relative_l2(reference, actual):
    """The largest per-sample ||actual - reference|| / ||reference|| (NaN if `actual` is not finite); of several outputs, the largest."""
    if isinstance(reference, list):
        return max(relative_l2(r, a) for r, a in zip(reference, actual))
    reference = reference.reshape(len(reference), -1)
    actual = actual.reshape(len(actual), -1)
    if not np.isfinite(actual).all():
        return float("nan")  # compares false with every bound
    return float((np.linalg.norm(actual - reference, axis=1) / np.maximum(np.linalg.norm(reference, axis=1), 1e-30)).max())


def compare_on_gpu(tflite, samples, reference):
    """Runs a TFLite model (bytes or path) on LiteRT's GPU accelerator and compares it.

    Two runs: float16 (what phones run), compared with Keras (`Parity`);
    and, for files that ran, float32 kernels compared with LiteRT's CPU
    runtime on the same file (`GpuRun.kernel_relative_l2`), which tells a
    wrong kernel from float16 rounding. When the float32 run gives no fully
    accelerated outputs, `kernel_relative_l2` stays None and
    `GpuRun.kernel_reason` says why (`check_gpu_run` fails on it).

    Args:
        tflite: the file or its bytes.
        samples: float inputs (N, H, W, C).
        reference: Keras' outputs for `samples`.

    Returns:
        (`GpuRun`, `Parity`), the parity None when the file did not run.
    """

    run = gpu_run.run_on_gpu_accelerator(tflite, samples)
    if run.outputs is None:
        return run, None
    exact = gpu_run.run_on_gpu_accelerator(tflite, samples, precision="float32")
    if exact.outputs is None:
        run.kernel_reason = exact.verdict()  # "crashed: ...", "timeout: ...", "refused: ...", "not run: ..."
    elif not exact.passed:
        run.kernel_reason = "partly accelerated with float32 kernels (some ops ran on the CPU)"
    else:
        run.kernel_relative_l2 = relative_l2(run_tflite(tflite, samples), exact.outputs)
    where = "software adapter" if run.software else "hardware adapter"
    runtime = f"LiteRT GPU accelerator ({where})"
    return run, parity_of_outputs(reference, run.outputs, runtime, output_step(tflite), relative_l2_bound=GPU_RELATIVE_L2)


def check_gpu_run(run, parity, quantize=None):
    """Raises `VerificationError` unless a `compare_on_gpu` result passes.

    Fully accelerated; for float files (float32, float16), a float32 kernel
    run that happened (a crash, timeout or refusal of it fails), within
    `GPU_KERNEL_RELATIVE_L2` of the CPU runtime, and float16 outputs within
    `GPU_RELATIVE_L2` of Keras; the top-1 rule of `Parity.check`.
    """
    if not run.passed:
        raise VerificationError(f"LiteRT GPU accelerator: {run.verdict()}")
    if quantize in (None, "float16") and run.kernel_relative_l2 is None:
        # Without it a wrong kernel cannot be told from float16 rounding: not checked is not passed.
        raise VerificationError(
            f"LiteRT GPU accelerator: the float32 kernel run did not happen ({run.kernel_reason or 'no outputs'}), "
            "so the GPU kernels are not checked"
        )
    if quantize in (None, "float16") and not run.kernel_relative_l2 <= GPU_KERNEL_RELATIVE_L2:
        raise VerificationError(
            f"LiteRT GPU accelerator computes this file wrong: with float32 kernels its outputs differ from "
            f"LiteRT's CPU runtime by relative L2 {run.kernel_relative_l2:.3g} (bound {GPU_KERNEL_RELATIVE_L2})"
        )
    try:
        parity.check_gpu(quantize)
    except VerificationError as error:
        if run.kernel_relative_l2 is None:
            raise
        raise VerificationError(
            f"{error}; the kernels are right (with float32 kernels the GPU matches LiteRT's CPU runtime to "
            f"{run.kernel_relative_l2:.2g}): float16 arithmetic loses this model, e.g. activations outside float16's range"
        ) from None
