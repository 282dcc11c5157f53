"""Complexity reports: parameters and multiply-adds per layer and per stage,
and the SE overhead measured three ways. This module is the front door
(`complexity_report` takes a registry name, a model, a `.keras` or a
`.tflite` file); the work is done by `keras_count` (Keras models), `tflite`
(converted files), `stages` (stages and totals), `se_formula` (the paper's
formula) and `records` (what a report holds).

Everything is computed from layer configurations and tensor shapes: no
profiler, no tracing. A 500-layer model is counted in milliseconds; building
it is what costs time.

Counting conventions (also in `CONVENTIONS`, which every report carries):

- MACs are the multiply-adds of convolutions and fully connected layers, the
  SENet and SKNet papers' "GFLOPs". A convolution costs
  `H_out * W_out * C_out * k_h * k_w * C_in / groups`; depthwise and grouped
  convolutions are the special cases, and dilation does not change the count.
  SE's FCs are 1x1 convolutions on a 1x1 map: `C * C/r` each.
- Element-wise work is counted separately (one operation per output element):
  bias adds and fused activations, BN (one multiply-add per element), merges
  (`n - 1` per element for `n` inputs, so the SE scale multiply is
  `H * W * C`), activations, pooling (`k * k` per output element; global
  pooling one per input element) and the SK path selection.
- Data movement (padding, reshapes, concatenation, channel shuffle, dropout)
  costs nothing.
- Parameters exclude BN moving statistics (`keras_se.analysis.count_params`).
  At inference BN folds into the preceding convolution: `params_folded` is
  the count after folding (a folded BN leaves one bias vector), the number a
  converted `.tflite` file stores.
- A layer type the report does not know is a row marked "not counted" with a
  warning, never a silent zero.

Reference:
    - [Hu et al., Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507)
    - [Li et al., Selective Kernel Networks](https://arxiv.org/abs/1903.06586)
"""

import os

from keras_se.analysis.keras_count import report_keras_model, tensor_shape
from keras_se.analysis.records import (  # noqa: F401  (the report's records, public here too)
    CONVENTIONS,
    AttentionOverhead,
    ComplexityReport,
    ComplexityWarning,
    LayerRow,
    SEStage,
    StageRow,
)
from keras_se.analysis.se_formula import SE_STAGE_FORMULA, se_overhead_per_stage  # noqa: F401
from keras_se.analysis.stages import assign_stages, report_from_rows  # noqa: F401
from keras_se.keras_graph import is_functional


def attach_twin(report, twin_report, twin_name):
    """Adds the plain twin's totals and the measured deltas to `report`."""
    report.twin = twin_name
    report.twin_stages = twin_report.stages
    report.twin_params = twin_report.params
    report.twin_macs = twin_report.macs
    report.twin_weighting_macs = twin_report.weighting_macs
    if report.attention is not None:
        report.attention.twin = twin_name
        report.attention.twin_params_delta = report.params - twin_report.params
        report.attention.twin_macs_delta = report.macs - twin_report.macs
    return report


def _file_kind(path):
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as error:
        raise ValueError(f"cannot read {path!r}: {error.strerror or error}") from None
    if head[4:8] == b"TFL3":
        return "tflite"
    if head[:4] == b"PK\x03\x04":
        return "keras"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "h5"
    return None


def _looks_like_path(value):
    return os.sep in value or value.endswith((".keras", ".tflite", ".h5", ".hdf5")) or os.path.exists(value)


def load_keras_file(path):
    """Loads a `.keras` file for counting, with one-line errors."""
    import keras  # importing Keras registers keras_se's classes (keras_se/__init__.py)

    from keras_se.io_utils import check_keras_archive

    if _file_kind(path) == "keras":
        check_keras_archive(path)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad archive
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot read {path!r} as a Keras model: {reason}") from None


def _with_input_shape(model, input_shape):
    import keras

    current = tuple(tensor_shape(model.inputs[0])[1:])
    if tuple(input_shape) == current:
        return model
    config = _keras_se_config(model)
    if config:
        return type(model).from_config({**config, "input_shape": tuple(input_shape)})
    if len(model.inputs) != 1:
        raise ValueError(f"input_shape applies to single-input models; this one has {len(model.inputs)} inputs")
    try:
        return keras.models.clone_model(model, input_tensors=keras.Input(shape=tuple(input_shape)))
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot rebuild {model.name!r} at input_shape={tuple(input_shape)}: {reason}") from None


def _check_input_shape(input_shape):
    if input_shape is None:
        return None
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(f"input_shape must be (height, width, channels) with positive ints. Received: input_shape={input_shape!r}")
    return shape


def complexity_report(model, input_shape=None, *, twin=None, reduction=None, **build_kwargs):
    """Parameters and MACs per layer, per stage and in total, and the SE overhead.

    Args:
        model: a registry name (`"se_resnet50"`), a path to a `.keras` or
            `.tflite` file, a functional or Sequential Keras model (Keras 3 or
            tf_keras), or a single Keras layer (then `input_shape` is needed).
        input_shape: tuple `(height, width, channels)` or None. For a registry
            name, the size to build at (default: the builder's 224x224); for a
            model, rebuilds it at that size; a `.tflite` file has its own.
        twin: the plain model to measure the attention overhead against: a
            registry name, a model, False for none, or None (default): the
            registry's plain twin for a registry name, else, for a keras_se
            model (built or loaded), the same configuration without attention.
        reduction: number or None. r of the SE formula; None reads it from
            the model (the SqueezeExcite layers, the builder's `reduction`,
            else the units' most common C / C_r). For a registry name it is
            also the model's r: the model is built with it.
        **build_kwargs: builder arguments for a registry name (`reduction`,
            `se_bias`, `se_stages`, ...); also used for its twin.

    Returns:
        A `ComplexityReport`.

    Example:

    >>> report = complexity_report("se_resnet50")
    >>> round(report.gmacs, 2), report.attention.twin_macs_delta
    (3.86, 2514944)
    """
    input_shape = _check_input_shape(input_shape)
    twin_model = None
    name = None
    if isinstance(model, (str, os.PathLike)):
        value = os.fspath(model)
        if _looks_like_path(value):
            if build_kwargs:
                raise ValueError(f"builder arguments apply to registry names only. Received: {sorted(build_kwargs)} for {value!r}")
            if not os.path.exists(value):
                raise ValueError(f"model file not found: {value!r}")
            if os.path.isdir(value):
                raise ValueError(f"expected a model file, got a directory: {value!r}")
            kind = _file_kind(value)
            if kind == "tflite":
                from keras_se.analysis.tflite import tflite_report

                if input_shape is not None:
                    raise ValueError(
                        f"a .tflite file has a fixed input shape; input_shape cannot change it. Received: input_shape={input_shape}"
                    )
                report = tflite_report(value, reduction=reduction)
                if twin not in (None, False):
                    attach_twin(report, complexity_report(twin, report.input_shape, twin=False), _twin_name(twin))
                return report
            if kind is None:
                raise ValueError(f"{value!r} is not a Keras (.keras, .h5) or TFLite (.tflite) model file")
            model = load_keras_file(value)
            name = os.path.basename(value)
        else:
            from keras_se.models.registry import build_model, get_entry

            kwargs = dict(build_kwargs)
            if input_shape is not None:
                kwargs["input_shape"] = input_shape
            entry = get_entry(value)
            if reduction is not None and entry.kwargs.get("attention") in ("se", "sk"):
                kwargs["reduction"] = reduction  # the model's r is the formula's r
            model, input_shape, name = build_model(value, **kwargs), None, value
            if twin is None and entry.twin:
                twin_model = build_model(entry.twin, **kwargs)
    elif build_kwargs:
        raise ValueError(f"builder arguments apply to registry names only. Received: {sorted(build_kwargs)}")
    if not is_functional(model) and hasattr(model, "compute_output_shape") and not hasattr(model, "layers"):
        model = _wrap_layer(model, input_shape)
        input_shape = None
    if input_shape is not None:
        model = _with_input_shape(model, input_shape)
    config = _keras_se_config(model)
    if reduction is None and config.get("attention") == "se":
        reduction = config["reduction"]
    if twin is None and twin_model is None and config.get("attention"):
        twin_model = model.plain_twin()  # the same architecture without attention
    report = report_keras_model(model, name, reduction)
    if twin_model is not None:
        attach_twin(report, report_keras_model(twin_model, twin_model.name), twin_model.name)
    elif twin not in (None, False):
        twin_input = report.input_shape if input_shape is None else input_shape
        attach_twin(report, complexity_report(twin, twin_input, twin=False), _twin_name(twin))
    return report


def _keras_se_config(model):
    """A keras_se model's architecture (`get_config()`), or {} for any other model."""
    from keras_se.models.base import SEModel

    return model.get_config() if isinstance(model, SEModel) else {}


def _twin_name(twin):
    return twin if isinstance(twin, str) else getattr(twin, "name", str(twin))


def _wrap_layer(layer, input_shape):
    import keras

    if input_shape is None:
        raise ValueError(f"a single layer needs input_shape to be counted. Received: layer {layer.name!r}, input_shape=None")
    inputs = keras.Input(shape=input_shape, name="input")
    return keras.Model(inputs, layer(inputs), name=layer.name)
