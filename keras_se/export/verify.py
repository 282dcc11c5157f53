"""Running converted models and comparing them with Keras."""

import dataclasses

import numpy as np

# keras-hub's LiteRT export tests: float32 outputs (probabilities) within these.
FLOAT32_MAX_ABS = 5e-5
FLOAT32_MEAN_ABS = 1e-5
MIN_TOP1_AGREEMENT = 0.5


@dataclasses.dataclass
class Parity:
    """Agreement between a converted model and Keras on the same inputs."""

    samples: int
    max_abs_error: float
    mean_abs_error: float
    top1_agreement: float  # over the decisive samples; None if there are none
    decisive: int  # samples whose Keras top-1 beats top-2 by more than 2 output quanta
    runtime: str

    def check(self, quantize=None):
        """Raises `VerificationError` if the bounds for `quantize` fail."""
        from keras_se.export.tflite import VerificationError

        if quantize is None and (self.max_abs_error > FLOAT32_MAX_ABS or self.mean_abs_error > FLOAT32_MEAN_ABS):
            raise VerificationError(
                f"float32 {self.runtime} output differs from Keras: max abs error "
                f"{self.max_abs_error:.3g} (bound {FLOAT32_MAX_ABS}), mean {self.mean_abs_error:.3g} "
                f"(bound {FLOAT32_MEAN_ABS})"
            )
        if self.top1_agreement is not None and self.top1_agreement < MIN_TOP1_AGREEMENT:
            raise VerificationError(
                f"{quantize or 'float32'} {self.runtime} top-1 agreement with Keras collapsed to "
                f"{self.top1_agreement:.0%} on {self.decisive} inputs"
            )

    def __str__(self):
        if self.top1_agreement is None:
            top1 = "top-1 not comparable (no input where Keras' top-1 leads by more than the output step)"
        else:
            top1 = f"top-1 agreement {self.top1_agreement:.0%} on {self.decisive}"
        return f"{self.runtime}: max |err| {self.max_abs_error:.2e}, mean {self.mean_abs_error:.2e}, {top1} of {self.samples} inputs"


def keras_outputs(model, samples):
    out = model(np.asarray(samples, "float32"), training=False)
    return np.asarray(out.numpy() if hasattr(out, "numpy") else out, "float32")


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
    out = interpreter.get_output_details()[0]
    results = []
    for sample in np.asarray(samples, "float32"):
        x = sample[None]
        scale, zero = inp["quantization"]
        if inp["dtype"] in (np.int8, np.uint8):
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"]).astype("float32")
        scale, zero = out["quantization"]
        if out["dtype"] in (np.int8, np.uint8):
            y = (y - zero) * scale
        results.append(y[0])
    return np.stack(results)


def parity_of(reference, actual, runtime, output_step=0.0):
    """Errors and top-1 agreement of `actual` against `reference`.

    Top-1 is compared only on decisive inputs, where the reference's top-1
    leads its runner-up by more than two output quantisation steps: an
    int8 output cannot order two classes closer than that (an untrained
    model's near-uniform probabilities all tie).
    """
    reference = reference.reshape(len(reference), -1)
    actual = actual.reshape(len(actual), -1)
    error = np.abs(reference - actual)
    top2 = np.sort(reference, axis=1)[:, -2:] if reference.shape[1] > 1 else np.zeros((len(reference), 2))
    decisive = (top2[:, 1] - top2[:, 0]) > 2 * output_step
    agree = reference.argmax(1) == actual.argmax(1)
    return Parity(
        samples=len(reference),
        max_abs_error=float(error.max()),
        mean_abs_error=float(error.mean()),
        top1_agreement=float(agree[decisive].mean()) if decisive.any() else None,
        decisive=int(decisive.sum()),
        runtime=runtime,
    )


def compare_outputs(model, tflite, samples):
    """`Parity` of a TFLite model (bytes or path) against Keras."""
    interpreter, kernels = make_interpreter(tflite)
    output = interpreter.get_output_details()[0]
    step = output["quantization"][0] if output["dtype"] in (np.int8, np.uint8) else 0.0
    return parity_of(keras_outputs(model, samples), run_tflite(tflite, samples), f"LiteRT ({kernels})", step)
