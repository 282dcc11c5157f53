"""What conversion and verification raise and warn, shared by every export module."""


class ConversionError(ValueError):
    """The model cannot be expressed in TFLite builtin ops (no Flex ops allowed)."""


class VerificationError(ValueError):
    """The converted model disagrees with Keras beyond the stated bounds."""


class GpuNotRunWarning(UserWarning):
    """`to_tflite(gpu=True)` did not run the file on a GPU (no adapter, or `verify=False`): only the rules were checked."""


class LogitsNotCheckedWarning(UserWarning):
    """`to_tflite` could not bound the file's logits error (Keras' own logits vanish: untrained weights)."""


class NpuNotRunWarning(UserWarning):
    """`to_onnx(npu=...)` did not run the file on the NPU (onnxruntime-qnn missing, or `verify=False`): never a pass."""
