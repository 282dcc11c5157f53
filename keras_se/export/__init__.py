"""Export: TFLite (fp32 / fp16 / dynamic / int8) and ONNX, each verified
against Keras; the classic GPU delegate's rules, runs on LiteRT's real GPU
accelerator, and runs on Qualcomm's HTP (NPU) through onnxruntime-qnn.

Names are imported on first use, so that the command line can load
`keras_se.export.cli` where the `export` extra is not installed.
"""

import importlib

_NAMES = {
    "ConversionError": "keras_se.export.errors",
    "Delegation": "keras_se.export.delegation",
    "GpuFinding": "keras_se.export.gpu",
    "GpuNotRunWarning": "keras_se.export.errors",
    "GpuRun": "keras_se.export.gpu_run",
    "LogitsNotCheckedWarning": "keras_se.export.errors",
    "NpuNotRunWarning": "keras_se.export.errors",
    "NpuRun": "keras_se.export.npu",
    "Parity": "keras_se.export.verify",
    "VerificationError": "keras_se.export.errors",
    "check_gpu": "keras_se.export.gpu",
    "read_tflite": "keras_se.tflite_file",
    "run_on_gpu_accelerator": "keras_se.export.gpu_run",
    "run_on_npu": "keras_se.export.npu",
    "to_onnx": "keras_se.export.onnx",
    "to_tflite": "keras_se.export.tflite",
    "xnnpack_delegation": "keras_se.export.delegation",
}
__all__ = sorted(_NAMES)


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module 'keras_se.export' has no attribute {name!r}")
    from keras_se.errors import naming_the_extra

    with naming_the_extra(f"keras_se.export.{name}", "export"):
        value = getattr(importlib.import_module(_NAMES[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_NAMES))
