"""Model analysis: parameter counts and complexity reports.

`complexity_report(model)` counts parameters and multiply-adds per layer and
per stage of a registry model, a Keras model, a `.keras` or a `.tflite` file,
and the SE overhead three ways; `keras-se report` formats it.
"""

from keras_se.analysis.complexity import (
    CONVENTIONS,
    AttentionOverhead,
    ComplexityReport,
    ComplexityWarning,
    LayerRow,
    SEStage,
    StageRow,
    complexity_report,
)
from keras_se.analysis.params import count_params

__all__ = [
    "CONVENTIONS",
    "AttentionOverhead",
    "ComplexityReport",
    "ComplexityWarning",
    "LayerRow",
    "SEStage",
    "StageRow",
    "complexity_report",
    "count_params",
]
