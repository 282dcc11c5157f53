"""Export: TFLite (fp32 / fp16 / dynamic / int8) and ONNX, each verified
against Keras; the classic GPU delegate's rules, and runs on LiteRT's real
GPU accelerator."""

from keras_se.export.delegation import Delegation, xnnpack_delegation
from keras_se.export.errors import ConversionError, GpuNotRunWarning, LogitsNotCheckedWarning, VerificationError
from keras_se.export.gpu import GpuFinding, check_gpu
from keras_se.export.gpu_run import GpuRun, run_on_gpu_accelerator
from keras_se.export.onnx import to_onnx
from keras_se.export.tflite import to_tflite
from keras_se.export.verify import Parity
from keras_se.tflite_file import read_tflite

__all__ = [
    "ConversionError",
    "Delegation",
    "GpuFinding",
    "GpuNotRunWarning",
    "LogitsNotCheckedWarning",
    "GpuRun",
    "Parity",
    "VerificationError",
    "check_gpu",
    "read_tflite",
    "run_on_gpu_accelerator",
    "to_onnx",
    "to_tflite",
    "xnnpack_delegation",
]
