"""Export: TFLite (fp32 / fp16 / dynamic / int8) and ONNX, each verified
against Keras, and a real GPU-delegate compatibility check."""

from keras_se.export.flatbuffer import read_tflite
from keras_se.export.gpu import GpuFinding, check_gpu
from keras_se.export.onnx import to_onnx
from keras_se.export.tflite import ConversionError, VerificationError, to_tflite
from keras_se.export.verify import Parity

__all__ = ["ConversionError", "GpuFinding", "Parity", "VerificationError", "check_gpu", "read_tflite", "to_onnx", "to_tflite"]
