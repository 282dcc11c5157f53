"""Reading PyTorch state dicts: `.safetensors` without torch, `.pth` /
`.pt` / `.bin` with torch (imported only for those)."""

import os

import numpy as np

SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pth", ".pt", ".bin")
# Training checkpoints wrap the state dict; timm's own release files do not.
_WRAPPER_KEYS = ("state_dict", "model")


def read_state_dict(path):
    """Reads a PyTorch state dict into numpy arrays.

    `.safetensors` files are read with the `safetensors` package and need no
    torch (bfloat16 tensors are widened to float32). `.pth`, `.pt` and `.bin`
    files are pickles that only torch can read: torch is imported for those
    alone, with `weights_only=True`. A training checkpoint that wraps the
    state dict under `"state_dict"` or `"model"` is unwrapped, and the
    `"module."` prefix of `DataParallel` is dropped.

    Args:
        path: str or path-like. The checkpoint file.

    Returns:
        dict from tensor name to numpy array, in file order.

    Raises:
        ValueError: the file is missing, has another suffix, is truncated or
            is not a state dict.
        ImportError: a `.pth` / `.pt` / `.bin` file and torch is not installed.

    Example:

    >>> state = read_state_dict("legacy_seresnet18.safetensors")
    >>> state["layer0.conv1.weight"].shape
    (64, 3, 7, 7)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a str or path-like. Received: path={path!r}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"checkpoint file not found. Received: path={path!r}")
    lower = path.lower()
    if lower.endswith(SAFETENSORS_SUFFIXES):
        state = _read_safetensors(path)
    elif lower.endswith(TORCH_SUFFIXES):
        state = _read_torch(path)
    else:
        raise ValueError(f"path must end with one of {SAFETENSORS_SUFFIXES + TORCH_SUFFIXES}. Received: path={path!r}")
    if not state:
        raise ValueError(f"checkpoint holds no tensors. Received: path={path!r}")
    return _strip_module_prefix(state)


def _read_safetensors(path):
    import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy, for get_tensor)
    import safetensors

    try:
        # Tensor by tensor from the mapped file (`load_file` holds the whole
        # file's bytes and the arrays at once), in file order.
        with safetensors.safe_open(path, framework="numpy") as handle:
            return {name: _widen(handle.get_tensor(name)) for name in handle.offset_keys()}
    except safetensors.SafetensorError as error:
        raise ValueError(f"not a readable safetensors file (truncated or corrupt: {error}). Received: path={path!r}") from None


def _widen(tensor):
    return tensor.astype(np.float32) if tensor.dtype.name == "bfloat16" else tensor


def _read_torch(path):
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"Reading {path!r} needs PyTorch: .pth, .pt and .bin files are torch pickles. "
            "Install torch (`pip install torch`), or convert the file once where torch is "
            "installed: `safetensors.torch.save_file(torch.load(path, map_location='cpu'), "
            "'model.safetensors')`, and load the .safetensors file, which needs no torch."
        ) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors alike
        raise ValueError(f"torch cannot read this file as a state dict ({error}). Received: path={path!r}") from None
    for key in _WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ValueError(f"file holds a {type(obj).__name__}, not a state dict. Received: path={path!r}")
    state = {}
    for name, tensor in obj.items():
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"entry {name!r} is a {type(tensor).__name__}, not a tensor. Received: path={path!r}")
        tensor = tensor.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.float()
        state[name] = tensor.numpy()
    return state


def _strip_module_prefix(state):
    if all(name.startswith("module.") for name in state):
        return {name[len("module.") :]: tensor for name, tensor in state.items()}
    return state


def check_tensor_values(name, tensor):
    """Raises `ValueError` naming tensor `name` unless it holds finite floats.

    A float weight stored with an integer dtype (a file written by a
    quantising or broken exporter) would load as whole numbers, and a NaN
    or infinity would make every output NaN: both are refused before any
    weight is set.
    """
    dtype = np.asarray(tensor).dtype
    if dtype.name == "bfloat16":
        tensor = np.asarray(tensor, np.float32)
    elif dtype.kind != "f":
        raise ValueError(f"tensor {name!r} is stored as {dtype.name}, not as floats: the file is not a float model's weights.")
    finite = np.isfinite(tensor)
    if not finite.all():
        bad = np.asarray(tensor).reshape(-1)[np.argmin(finite.reshape(-1))]
        raise ValueError(f"tensor {name!r} holds {int(finite.size - np.count_nonzero(finite))} non-finite values ({bad}).")


def check_keras_weights_file(path, integers_allowed=False):
    """Checks every tensor of a Keras `.weights.h5` file, or of the weights in a `.keras` file.

    Raises `ValueError` (see `check_tensor_values`) naming the file and the
    first offending tensor; `integers_allowed` skips the dtype check (for a
    model that has integer variables of its own).
    """
    import io
    import zipfile

    import h5py

    def check(handle):
        def visit(name, item):
            if not isinstance(item, h5py.Dataset):
                return None
            if integers_allowed and item.dtype.kind in "iub":
                return None
            try:
                check_tensor_values(name, item[()])
            except ValueError as error:
                return str(error)
            return None

        problem = handle.visititems(visit)
        if problem:
            raise ValueError(f"{problem} Nothing was loaded. Received: weights={path!r}")

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if "model.weights.h5" not in archive.namelist():
                return
            data = io.BytesIO(archive.read("model.weights.h5"))
    else:
        data = path
    try:
        handle = h5py.File(data, "r")
    except OSError:
        return  # not HDF5: Keras' own loader names what the file is not
    with handle:
        check(handle)
