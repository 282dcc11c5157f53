"""Error types shared by the command-line modules, and the phone path's backend check (no heavy imports)."""


def require_tensorflow_backend(what):
    """A `ValueError` unless Keras runs on TensorFlow, which `what` (the phone path) needs.

    A `.keras` file does not depend on the backend that saved it: the
    message says how to go on from a JAX or PyTorch session.
    """
    import keras

    backend = keras.backend.backend()
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
