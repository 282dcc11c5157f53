"""Training keras_se models: float and quantisation-aware, on one device or
several (`tf.distribute`), with the digits demo and image-folder datasets.

>>> (x, y), (x_test, y_test) = keras_se.training.load_digits()
>>> result = keras_se.training.train("se_mobilenet", (x, y), (x_test, y_test),
...                                  qat_epochs=3, model_kwargs={"alpha": 0.25})
"""

from keras_se.training.data import check_arrays, check_dataset, image_directory, load_digits
from keras_se.training.trainer import (
    STRATEGIES,
    TrainResult,
    make_strategy,
    output_names,
    synchronize_batchnorm,
    tflite_accuracy,
    train,
)

__all__ = [
    "STRATEGIES",
    "TrainResult",
    "check_arrays",
    "check_dataset",
    "image_directory",
    "load_digits",
    "make_strategy",
    "output_names",
    "synchronize_batchnorm",
    "tflite_accuracy",
    "train",
]
