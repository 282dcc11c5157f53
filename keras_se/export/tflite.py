"""Keras -> TFLite (fp32, fp16, dynamic range, full int8), verified against Keras."""

import dataclasses
import re
import time
import warnings

import numpy as np

from keras_se.errors import require_tensorflow_backend
from keras_se.export import calibration
from keras_se.export.errors import ConversionError, GpuNotRunWarning, LogitsNotCheckedWarning
from keras_se.export.forms import average_pools_as_depthwise, grouped_convolutions_for_gpu, hard_swish_for_int8
from keras_se.export.gpu import check_gpu
from keras_se.export.gpu_run import GpuRun
from keras_se.export.verify import Parity, check_gpu_run, compare_on_gpu, compare_outputs, keras_outputs
from keras_se.io_utils import atomic_output, quiet_native_logs, refuse_overwrite
from keras_se.quantization.configs import is_qat_model
from keras_se.tflite_file import read_tflite

QUANTIZE = (None, "float16", "dynamic", "int8")
VERIFY_OFF = "verify=False: the file was not run on LiteRT's GPU accelerator (no kernel or float16 check); only the classic rules were"


@dataclasses.dataclass
class TFLiteExport:
    """What `to_tflite` wrote and measured."""

    path: str
    quantize: str
    gpu: bool
    size_bytes: int
    ops: dict
    parity: Parity
    gpu_findings: list  # check_gpu's findings ([] when the rules were not checked)
    seconds: float
    gpu_run: GpuRun = None  # LiteRT's GPU accelerator, with gpu=True
    gpu_parity: Parity = None  # its outputs against Keras

    def to_dict(self):
        return {
            "path": self.path,
            "quantize": self.quantize,
            "gpu": self.gpu,
            "size_bytes": self.size_bytes,
            "ops": self.ops,
            "parity": dataclasses.asdict(self.parity) if self.parity else None,
            "gpu_findings": [str(f) for f in self.gpu_findings],
            "gpu_rules": gpu_rules_verdict(self.gpu_findings) if self.gpu or self.gpu_run else None,
            "gpu_accelerator": self.gpu_run.to_dict(self.gpu_parity) if self.gpu_run else None,
            "seconds": round(self.seconds, 2),
        }


def gpu_rules_verdict(findings):
    """The classic GPU delegate's verdict in a few words, from `check_gpu` findings."""
    errors = sum(f.severity == "error" for f in findings)
    warnings_ = len(findings) - errors
    if errors:
        return f"refused ({errors} op{'s' * (errors > 1)})"
    return f"pass ({warnings_} slow-path note{'s' * (warnings_ > 1)})" if warnings_ else "pass"


def _static_input_shape(model):
    shape = tuple(model.input_shape[1:])
    if any(d is None for d in shape):
        raise ValueError(
            f"TFLite export needs a static input size; build the model with input_shape=(H, W, C). Received: input_shape={shape}"
        )
    return shape


def _batch_one(model):
    """The same model with a static batch-1 input (phones run batch 1)."""
    import keras

    if not isinstance(model, keras.Model):  # tf_keras (QAT) models keep their graph
        return model
    inputs = keras.Input(batch_shape=(1, *model.input_shape[1:]), name="input")
    return keras.Model(inputs, model(inputs, training=False), name=model.name)


def _converter(model, quantize, samples, progress, gpu=False):
    import tensorflow as tf

    if is_qat_model(model):
        from keras_se.quantization.qat import tflite_converter

        converter = tflite_converter(model)  # seconds, where from_keras_model takes a minute
    else:
        # int8: XNNPACK runs depthwise convolutions in int8, not average pools.
        # GPU: LiteRT's GPU accelerator folds a zero PAD into the following
        # average pool and then leaves the padding out of the average
        # (SE-ShuffleNet's shortcut: relative error 0.27); a depthwise
        # convolution after the same PAD is computed right.
        if quantize == "int8" or gpu:
            model = average_pools_as_depthwise(model)
        if quantize == "int8":
            # XNNPACK runs no int8 HARD_SWISH; ADD and MUL it runs.
            model = hard_swish_for_int8(model)
        if gpu:
            model = grouped_convolutions_for_gpu(model)
        converter = tf.lite.TFLiteConverter.from_keras_model(_batch_one(model))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        # A QAT model's fake-quant ranges quantise every op; the converter
        # refuses TFLITE_BUILTINS_INT8 without a representative dataset, so
        # QAT keeps TFLITE_BUILTINS (keras_se.quantization.float_ops checks
        # that no float op is left).
        if not is_qat_model(model):
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]

            def representative():
                for sample in samples:
                    progress()
                    yield [sample[None].astype("float32")]

            converter.representative_dataset = representative
    return converter


def _missing_ops(message):
    ops = sorted(set(re.findall(r"'?(tf\.[A-Za-z0-9_]+)'?", message)))
    return ", ".join(ops) if ops else message.strip().splitlines()[0][:200]


def to_tflite(
    model,
    path,
    quantize=None,
    representative_data=None,
    gpu=False,
    overwrite=False,
    verify=True,
    verify_samples=4,
    progress=None,
):
    """Converts a Keras model to a TFLite file and checks it against Keras.

    Builtin ops only (never Flex / SELECT_TF_OPS), batch-1 static input.

    Args:
        model: a Keras 3 model with a static input size (or a tfmot QAT
            model for `quantize="int8"`).
        path: output `.tflite` path. Written to a temporary file and renamed,
            so a failed conversion leaves nothing behind.
        quantize: None (float32), `"float16"` (fp16 weights), `"dynamic"`
            (int8 weights, float activations) or `"int8"` (full integer with
            int8 input and output; valid-padded average pools are written as
            the equal depthwise convolutions and hard-swish as
            `x * relu6(x + 3)` with the 1/6 in the next layer's kernel,
            which XNNPACK runs in int8:
            `keras_se.export.forms`).
        representative_data: for `"int8"` (post-training): a (N, H, W, C)
            array of real, preprocessed inputs (see
            `keras_se.export.calibration`). None uses random data with a
            `RandomCalibrationWarning`. Also the inputs used to verify.
        gpu: bool, defaults to False. The GPU preset: the graph forms LiteRT's
            GPU accelerator computes right (`keras_se.export.forms`: grouped
            convolutions split or merged to multiples of 4 channels per
            group, valid average pools as depthwise convolutions), and two
            GPU verdicts: the classic GPU delegate's rules (`check_gpu`) and,
            with `verify`, runs on LiteRT's GPU accelerator
            (`keras_se.export.verify.compare_on_gpu`): fully accelerated,
            float32 kernels within `GPU_KERNEL_RELATIVE_L2` of the CPU
            runtime and float16 outputs within `GPU_RELATIVE_L2` of Keras
            (float files). A refusal by either, a crash, a wrong kernel or a
            float16 parity failure fails the conversion. Where the machine
            has no GPU adapter, or with `verify=False`, the run is "not run"
            (a `GpuNotRunWarning`, and `gpu_run.status` says so), never a
            pass.
        overwrite: bool, defaults to False. Replace an existing file.
        verify: bool, defaults to True. Run the file in LiteRT on a few
            inputs and compare with Keras (`Parity`); float32 must agree
            within keras-hub's LiteRT thresholds (max 5e-5, mean 1e-5);
            every mode's logits (the input of the final softmax) must stay
            within `LOGITS_RELATIVE_L2` of Keras' and top-1 agreement above
            50 %. Where Keras' own logits vanish (untrained weights) the
            logits bound is "n/a" (a `LogitsNotCheckedWarning`), never a
            pass.
        verify_samples: int, defaults to 4. Inputs used to verify.
        progress: optional callable(advance) for calibration progress.

    Returns:
        `TFLiteExport`.

    Raises:
        ValueError: bad arguments, an existing file, ops TFLite builtins
            cannot express (`ConversionError`), a failed check
            (`VerificationError`), or GPU findings with `gpu=True`.

    Example:

    >>> model = keras_se.SEMobileNet(input_shape=(224, 224, 3))
    >>> result = keras_se.export.to_tflite(model, "se_mobilenet.tflite", gpu=True)
    >>> result.parity.max_abs_error < 5e-5
    True
    """
    require_tensorflow_backend("TFLite conversion")
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {QUANTIZE}. Received: quantize={quantize!r}")
    path = refuse_overwrite(path, overwrite)  # before the (slow) conversion
    input_shape = _static_input_shape(model)
    if representative_data is not None:
        samples = calibration.check_samples(representative_data, input_shape)
    elif quantize == "int8" and not is_qat_model(model):
        samples = calibration.random_samples(input_shape)
    else:
        samples = np.random.default_rng(0).uniform(0, 1, (verify_samples, *input_shape)).astype("float32")

    start = time.perf_counter()
    import tensorflow as tf

    try:
        with quiet_native_logs(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            data = _converter(model, quantize, samples, progress or (lambda: None), gpu).convert()
    except Exception as error:  # the converter raises ConverterError and friends
        if isinstance(error, tf.errors.OpError) or "ConverterError" in type(error).__name__ or "converter" in str(error).lower():
            raise ConversionError(f"TFLite builtins cannot express this model ({_missing_ops(str(error))})") from None
        raise
    seconds = time.perf_counter() - start

    graph = read_tflite(data)
    parity = None
    gpu_checks = {"gpu_findings": [], "gpu_run": None, "gpu_parity": None}
    if verify:
        inputs = samples[:verify_samples]
        reference = keras_outputs(model, inputs)
        parity = compare_outputs(model, data, inputs, reference)
        parity.check(quantize)
        if parity.logits_not_checked:
            warnings.warn(f"{quantize or 'float32'} logits not checked: {parity.logits_not_checked}", LogitsNotCheckedWarning, stacklevel=2)
    if gpu:
        gpu_checks = gpu_verdicts(data, quantize, *((inputs, reference) if verify else ()))
        if not verify:
            gpu_checks["gpu_run"] = GpuRun("not run", VERIFY_OFF)
    findings, gpu_run = gpu_checks["gpu_findings"], gpu_checks["gpu_run"]
    refused = [str(f) for f in findings if f.severity == "error"]
    if refused:
        also = f" (LiteRT GPU accelerator: {gpu_run.verdict()})" if gpu_run else ""
        raise ConversionError("GPU delegate would reject: " + "; ".join(refused) + also)
    if gpu_run is not None:
        if gpu_run.status == "not run":
            warnings.warn(f"LiteRT GPU accelerator not run: {gpu_run.reason}", GpuNotRunWarning, stacklevel=2)
        else:
            check_gpu_run(gpu_run, gpu_checks["gpu_parity"], quantize)
    with atomic_output(path, overwrite) as handle:
        handle.write(data)
    return TFLiteExport(path, quantize or "float32", gpu, len(data), graph.op_histogram(), parity, seconds=seconds, **gpu_checks)


def gpu_verdicts(tflite, quantize=None, inputs=None, reference=None):
    """Both GPU verdicts of a converted file (bytes or path), as `TFLiteExport` fields.

    The classic GPU delegate's rules (`check_gpu`; int8 files with quantised
    models allowed) and, given `inputs` and Keras' `reference` outputs for
    them, LiteRT's GPU accelerator (`compare_on_gpu`). Nothing is raised:
    `to_tflite` decides what fails.

    Returns:
        dict with `gpu_findings`, `gpu_run` and `gpu_parity` (the last two
        None without inputs or when the file did not run).
    """
    findings = check_gpu(tflite, allow_quantized=quantize == "int8")
    run, parity = compare_on_gpu(tflite, inputs, reference) if inputs is not None else (None, None)
    return {"gpu_findings": findings, "gpu_run": run, "gpu_parity": parity}
