"""Quantisation-aware training (QAT) of keras_se models, to fully int8 TFLite.

>>> qat = keras_se.quantization.quantize_model(model)   # a tf_keras QAT model
>>> qat.compile("adam", "sparse_categorical_crossentropy"); qat.fit(x, y)
>>> keras_se.export.to_tflite(qat, "model_int8.tflite", quantize="int8")
>>> keras_se.quantization.float_ops("model_int8.tflite")
[]

tfmot is imported only when a function needs it (importing it flips
`tf.keras` to tf_keras; `import_tfmot` prevents that).
"""

from keras_se.quantization.configs import import_tfmot, quantize_plan, quantize_scope
from keras_se.quantization.integer_only import FloatOp, check_integer_only, float_ops
from keras_se.quantization.qat import copy_float_weights, is_quantized, quantize_model, rebuild_tf_keras, tflite_converter

__all__ = [
    "FloatOp",
    "check_integer_only",
    "copy_float_weights",
    "float_ops",
    "import_tfmot",
    "is_quantized",
    "quantize_model",
    "quantize_plan",
    "quantize_scope",
    "rebuild_tf_keras",
    "tflite_converter",
]
