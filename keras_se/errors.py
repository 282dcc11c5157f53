"""Error types shared by the command-line modules, the phone path's backend
check, and the optional dependencies' extras (no heavy imports)."""

import contextlib
import importlib

# The optional packages (top-level module -> (pip package, keras_se extra)).
# `pip install keras_se` is the portable core: layers, builders, weights,
# complexity reports, on any Keras backend. The extras add the rest.
OPTIONAL = {
    "tensorflow": ("tensorflow", "tensorflow"),
    "ai_edge_litert": ("ai-edge-litert", "export"),
    "tf2onnx": ("tf2onnx", "export"),
    "onnxruntime": ("onnxruntime", "export"),
    "onnx": ("onnx", "export"),
    "onnxruntime_qnn": ("onnxruntime-qnn", "npu"),
    "tf_keras": ("tf-keras", "qat"),
    "tensorflow_model_optimization": ("tensorflow-model-optimization", "qat"),
    "sklearn": ("scikit-learn", "train"),
}


class MissingDependency(ImportError):
    """An optional package is not installed; the message names the extra
    that installs it (one line)."""


def missing_dependency(error, what=None, extra=None):
    """The `MissingDependency` an ImportError of an optional package stands
    for, or None when `error` is about another module. `extra`: the extra
    to name (default: the package's own)."""
    name = (getattr(error, "name", None) or "").split(".")[0]
    if not isinstance(error, (ModuleNotFoundError, MissingDependency)) or name not in OPTIONAL:
        return None
    package, extra = OPTIONAL[name][0], extra or OPTIONAL[name][1]
    return MissingDependency(
        f"{what or 'this'} needs {package}, which is not installed: pip install 'keras_se[{extra}]'",
        name=error.name,
    )


@contextlib.contextmanager
def naming_the_extra(what, extra=None):
    """Turns an ImportError of an optional package raised inside into a
    one-line `MissingDependency` saying that `what` needs it and which extra
    installs it (`extra`, default: the package's own)."""
    try:
        yield
    except ImportError as error:
        replacement = missing_dependency(error, what, extra)
        if replacement is None:
            raise
        raise replacement from None


def optional_import(module, what):
    """`importlib.import_module(module)`, or a one-line `MissingDependency`
    naming the extra to install when `module` is an optional package that is
    not installed. `what`: what needs it, for the message."""
    with naming_the_extra(what):
        return importlib.import_module(module)


def require_tensorflow_backend(what):
    """A `ValueError` unless Keras runs on TensorFlow, which `what` (the phone path) needs.

    A `.keras` file does not depend on the backend that saved it: the
    message says how to go on from a JAX or PyTorch session.
    """
    import keras

    backend = keras.backend.backend()
    optional_import("tensorflow", what)
    if backend != "tensorflow":
        raise ValueError(
            f"{what} needs Keras' TensorFlow backend; this process runs Keras on {backend!r}. Save the model "
            "(model.save('model.keras')) and run `keras-se convert model.keras`, or set KERAS_BACKEND=tensorflow "
            f"before Python starts. Received: keras.backend.backend()={backend!r}"
        )


class UserError(ValueError):
    """A mistake in the command line: one line on stderr, exit status 2.

    Subcommands raise this (or `ValueError` from the API) for user mistakes.
    """
