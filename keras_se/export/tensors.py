"""A converted file's input and output tensors as floats, through their quantisation.

Shared by the CPU runtime's verification (`verify.py`) and the GPU
accelerator's child-process runner (`gpu_run.py`).
"""

import numpy as np


def quantize_input(x, dtype, quantization):
    """Float inputs as a file's input tensor takes them (int8/uint8 through its scale and zero point)."""
    dtype = np.dtype(dtype)
    if dtype in (np.int8, np.uint8):
        scale, zero = quantization
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
    return np.asarray(x).astype(dtype)


def dequantize_output(y, dtype, quantization):
    """A file's output tensor as float32 (int8/uint8 through its scale and zero point)."""
    y = np.asarray(y).astype("float32")
    if np.dtype(dtype) in (np.int8, np.uint8):
        scale, zero = quantization
        y = (y - zero) * scale
    return y
