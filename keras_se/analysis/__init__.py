"""Model analysis: parameter counts (and, later, complexity reports)."""

from keras_se.analysis.params import count_params

__all__ = ["count_params"]
