"""Weights from the Hugging Face Hub: `weights="imagenet"` and `"hf://<owner>/<repo>"`.

Files are fetched with `huggingface_hub.hf_hub_download`, so they live in
the Hugging Face cache shared with timm and transformers (`HF_HOME`,
default `~/.cache/huggingface`; `HF_HUB_CACHE` for the hub folder alone),
interrupted downloads resume, a cached file is used without contacting the
Hub once it is there, and `HF_HUB_OFFLINE=1` never touches the network.
A cached file is checked against the hash the cache names it by (SHA-256
for LFS files, the git blob id otherwise) before any weight is set: a
truncated or corrupt file is an error, never a half-loaded model. A copy
the cache does not name by its hash cannot be checked that way: an
`UncheckedWeightsWarning` says so.
"""

import hashlib
import os
import re
import stat
import warnings

from keras_se.weights.io import read_state_dict
from keras_se.weights.pretrained import HF_PREFIX, imagenet_source, parse_hf, repo_id

WEIGHTS_FILE = "model.safetensors"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_SHA1 = re.compile(r"[0-9a-f]{40}")


class WeightsUnavailableError(ValueError):
    """The weights are neither in the Hugging Face cache nor reachable on the Hub."""


class UncheckedWeightsWarning(UserWarning):
    """A cached weights file could not be checked against its hash (only the safetensors reader checked it)."""


def resolve(weights, model_name):
    """The Hugging Face repository id that `weights` names for `model_name`.

    Args:
        weights: `"imagenet"` or `"hf://<owner>/<repository>"`.
        model_name: the registered model (or `timm:` alias) being loaded.
    """
    if weights == "imagenet":
        return repo_id(imagenet_source(model_name))
    if isinstance(weights, str) and weights.startswith(HF_PREFIX):
        return parse_hf(weights)[0]
    raise ValueError(f"weights must be 'imagenet' or 'hf://<owner>/<repository>'. Received: weights={weights!r}")


def _fetch_hint(repo, filename):
    from huggingface_hub import constants

    return (
        f"fetch it once where the Hub is reachable: `hf download {repo} {filename}` "
        f"(into the cache at {constants.HF_HUB_CACHE}; HF_HOME / HF_HUB_CACHE choose another)"
    )


def download(repo, filename=WEIGHTS_FILE, revision=None):
    """The local path of `filename` of Hub repository `repo`, downloaded into the cache if needed.

    Raises:
        WeightsUnavailableError: not cached, and offline (`HF_HUB_OFFLINE=1`)
            or the Hub cannot be reached; names the repository and how to
            fetch it.
        ValueError: the repository, revision or file does not exist.
    """
    from huggingface_hub import constants, errors, hf_hub_download

    try:
        path = hf_hub_download(repo, filename, revision=revision)
    except UnicodeDecodeError:
        # huggingface_hub reads refs/<revision> as UTF-8 text and names no file.
        ref = os.path.join(constants.HF_HUB_CACHE, "models--" + repo.replace("/", "--"), "refs", revision or "main")
        if _is_utf8(ref):
            raise
        raise ValueError(
            f"the Hugging Face cache of {repo} is damaged: {ref} is not a revision name (not UTF-8 text); "
            f"delete it (or run `hf cache delete`) and load again. Nothing was loaded."
        ) from None
    except errors.LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hugging Face Hub cannot be reached"
        raise WeightsUnavailableError(
            f"{repo}: {filename} is not in the Hugging Face cache and {why}; {_fetch_hint(repo, filename)}."
        ) from None
    except errors.RepositoryNotFoundError:
        raise ValueError(f"no repository {repo!r} on the Hugging Face Hub (or it is private or gated).") from None
    except errors.RevisionNotFoundError:
        raise ValueError(f"repository {repo!r} has no revision {revision!r}.") from None
    except errors.EntryNotFoundError:
        raise ValueError(f"repository {repo!r} has no file {filename!r}.") from None
    except errors.HFValidationError as error:
        raise ValueError(f"not a Hugging Face repository id ({str(error).splitlines()[0]}). Received: {repo!r}") from None
    except OSError as error:  # network errors mid-download, a cache folder that cannot be written
        raise WeightsUnavailableError(
            f"{repo}: downloading {filename} failed ({str(error).splitlines()[0]}); {_fetch_hint(repo, filename)}."
        ) from None
    _check_regular_file(path, repo)
    return path


def _check_regular_file(path, repo):
    """A cached file that is not a regular file is refused without opening it:
    reading a FIFO would wait for a writer for ever, a folder cannot be read."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise ValueError(_damaged(repo, path, f"not readable ({error.strerror or error})")) from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a special file"
        raise ValueError(_damaged(repo, path, f"{kind}, not a regular file"))


def _is_utf8(path):
    try:
        with open(path, "rb") as handle:
            handle.read().decode("utf-8")
    except UnicodeDecodeError:
        return False
    except OSError:
        pass
    return True


def _damaged(repo, path, why):
    return (
        f"the cached weights of {repo} are damaged: {os.path.realpath(path)} is {why}; delete it "
        f"(or run `hf cache delete`) and load again to download them anew. Nothing was loaded."
    )


def check_cached_file(path, repo):
    """Raises `ValueError` unless a cached file's bytes have the hash its cache blob is named by.

    The Hugging Face cache stores each file as `blobs/<etag>` and links it
    from `snapshots/<revision>/`: the etag of a large (LFS) file is its
    SHA-256, that of a small one its git blob id (SHA-1 of
    `blob <size>\\0` and the bytes). A copy that is not such a link (a cache
    on a file system without links keeps plain files) carries no hash to
    check: an `UncheckedWeightsWarning` says so, and only the safetensors
    reader's checks (header, sizes) apply.
    """
    blob = os.path.realpath(path)
    expected = os.path.basename(blob)
    if os.path.islink(path) and _SHA256.fullmatch(expected):
        digest, what = hashlib.sha256(), "SHA-256"
    elif os.path.islink(path) and _GIT_SHA1.fullmatch(expected):
        digest, what = hashlib.sha1(f"blob {os.path.getsize(blob)}\0".encode()), "git blob id"
    else:
        warnings.warn(
            f"{repo}: the cached {os.path.basename(path)} was not checked against a hash: {path} is not a link to "
            "a cache blob named by its hash (a cache without symbolic links keeps plain copies); only the "
            "safetensors reader's checks apply. Delete it and load again where links work to have it checked.",
            UncheckedWeightsWarning,
            stacklevel=3,
        )
        return
    with open(blob, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise ValueError(_corrupt(repo, path, f"its {what} is {digest.hexdigest()[:12]}..., the Hub's is {expected[:12]}..."))


def _corrupt(repo, path, why):
    blob = os.path.realpath(path)
    return (
        f"the cached weights of {repo} are truncated or corrupt ({why}): delete {blob} "
        f"(or run `hf cache delete`) and load again to download them anew. Nothing was loaded."
    )


def read_hub_state_dict(repo, revision=None):
    """The state dict of `repo`'s `model.safetensors`, from the cache or the Hub, checked whole."""
    path = download(repo, WEIGHTS_FILE, revision)
    check_cached_file(path, repo)
    try:
        return read_state_dict(path)
    except ValueError as error:
        raise ValueError(_corrupt(repo, path, str(error).split(" Received:")[0])) from None


def load_from_hub(model, weights, model_name):
    """Loads `weights` (`"imagenet"` or `"hf://..."`) into `model` through the timm loader (all or nothing).

    A model with a classifier of other than 1000 classes is refused before
    anything is downloaded: ImageNet releases have 1000 classes (build with
    `classes=1000`, or `include_top=False` for a backbone).
    """
    from keras_se.weights.timm import load_timm

    repo = resolve(weights, model_name)
    config = model.get_config() if hasattr(model, "get_config") else {}
    if config.get("include_top") and not config.get("features_only") and config.get("classes", 1000) != 1000:
        raise ValueError(
            f"{repo} has a 1000-class ImageNet classifier: build the model with classes=1000, or with "
            f"include_top=False to use the pretrained backbone with a new head. Received: classes={config['classes']} "
            f"with weights={weights!r}"
        )
    state = [read_hub_state_dict(repo)]
    try:
        # Handed over, no reference kept here: load_timm frees each tensor once it is set.
        return load_timm(model, state.pop())
    except ValueError as error:
        raise ValueError(f"weights={weights!r} ({repo}): {error}") from None
