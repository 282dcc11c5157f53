"""The one place keras_se works around tf2onnx (ONNX conversion, by `keras_se.export.to_onnx` and Keras' own `model.export(format="onnx")`)."""

import contextlib
import gc


class _Collected:
    """An optimizer factory that runs Python's cyclic garbage collector first."""

    def __init__(self, factory):
        self.factory = factory

    def __call__(self):
        gc.collect()
        return self.factory()


@contextlib.contextmanager
def tf2onnx_garbage_collected():
    """Workaround: tf2onnx's graph optimizer holds dead copies of the weights.

    `tf2onnx.optimizer.optimize_graph` (tf2onnx 1.17,
    https://github.com/onnx/tensorflow-onnx/blob/main/tf2onnx/optimizer/__init__.py)
    deep-copies the whole graph, weights included, before each of its
    optimizers on every pass. The dropped copies sit in reference cycles,
    which Python's collector (triggered by object counts, not bytes) frees
    late: a 7x7 convolution of 411 MB peaked at 19.6 GB, and SE-VGG-16's ONNX
    export ran a 24 GB machine out of memory. Collecting before each
    optimizer: 10.2 GB, the rest TensorFlow's own freezing of the variables
    (https://github.com/onnx/tensorflow-onnx/issues/1540). No upstream issue
    names the optimizer copies; this wraps the registry of optimizers
    (`tf2onnx.optimizer._optimizers`) for the conversion and restores it.
    """
    from tf2onnx import optimizer

    registry = getattr(optimizer, "_optimizers", None)
    if registry is None:  # another tf2onnx layout: convert without the workaround
        yield
        return
    saved = dict(registry)
    registry.update({name: _Collected(factory) for name, factory in saved.items()})
    try:
        yield
    finally:
        registry.update(saved)
