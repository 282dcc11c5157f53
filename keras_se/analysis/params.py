"""Parameter counting as the SENet / SKNet papers and timm count."""

import math

_STATISTICS = ("moving_mean", "moving_variance")


def _is_statistic(weight):
    name = getattr(weight, "path", None) or weight.name
    return name.split("/")[-1].split(":")[0] in _STATISTICS


def count_params(model):
    """Parameters as the references count them.

    Weights, biases, BN gamma/beta and the classifier; not BN moving
    statistics (which Keras' `count_params()` includes). Works for Keras 3 and
    tf_keras models and layers.

    Example:

    >>> count_params(keras_se.ResNet50())
    25557032
    """
    return sum(math.prod(w.shape) for w in model.weights if not _is_statistic(w))
