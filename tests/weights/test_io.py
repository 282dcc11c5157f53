"""Tests for keras_se.weights.io: reading state dicts and the bad-input errors."""

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from keras_se.weights import read_state_dict

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "timm"
CHECKPOINT = FIXTURES / "legacy_seresnet18.safetensors"


def _needs_fixture(not_run):
    if not CHECKPOINT.is_file():
        not_run(f"timm fixture not present at {FIXTURES}")


def test_reads_the_timm_fixture(not_run):
    _needs_fixture(not_run)
    state = read_state_dict(CHECKPOINT)
    assert state["layer0.conv1.weight"].shape == (64, 3, 7, 7)
    assert state["layer0.conv1.weight"].dtype == np.float16
    assert state["layer1.0.se_module.fc1.weight"].shape == (4, 64, 1, 1)
    assert state["last_linear.weight"].shape == (1000, 512)
    assert len(state) == 134 + 20  # parameters and BN statistics, 20 num_batches_tracked


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"not found. Received: path=.*nope.safetensors"):
        read_state_dict(tmp_path / "nope.safetensors")


def test_unknown_suffix(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"must end with one of.*Received: path=.*weights.npz"):
        read_state_dict(path)


def test_path_type():
    with pytest.raises(ValueError, match="path=3"):
        read_state_dict(3)


def test_truncated_safetensors(tmp_path, not_run):
    _needs_fixture(not_run)
    data = CHECKPOINT.read_bytes()
    path = tmp_path / "truncated.safetensors"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated or corrupt.*Received: path=.*truncated.safetensors"):
        read_state_dict(path)


def test_not_a_safetensors_file(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"this is not a safetensors file" * 4)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_state_dict(path)


def test_empty_state_dict(tmp_path):
    path = tmp_path / "empty.safetensors"
    save_file({}, str(path))
    with pytest.raises(ValueError, match="no tensors"):
        read_state_dict(path)


def test_bfloat16_is_widened(tmp_path):
    import json
    import struct

    values = np.array([1.0, -2.5, 0.15625], np.float32)  # exact in bfloat16
    raw = values.view(np.uint32) >> 16
    header = json.dumps({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}).encode()
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + raw.astype("<u2").tobytes())
    state = read_state_dict(path)
    assert state["w"].dtype == np.float32
    np.testing.assert_array_equal(state["w"], values)


def test_data_parallel_prefix_is_dropped(tmp_path):
    path = tmp_path / "dp.safetensors"
    save_file({"module.conv1.weight": np.zeros((2, 3, 1, 1), np.float32)}, str(path))
    assert list(read_state_dict(path)) == ["conv1.weight"]


def test_torch_file_without_torch(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    path = tmp_path / "model.pth"
    path.write_bytes(b"not read")
    with pytest.raises(ImportError, match=r"needs PyTorch.*pip install torch.*safetensors"):
        read_state_dict(path)


class _FakeTensor:
    def __init__(self, array):
        self.array = np.asarray(array)

    def detach(self):
        return self

    def cpu(self):
        return self

    def is_floating_point(self):
        return self.array.dtype.kind == "f"

    def float(self):
        return _FakeTensor(self.array.astype(np.float32))

    def numpy(self):
        return self.array


def _fake_torch(obj):
    calls = []

    def load(path, map_location=None, weights_only=False):
        calls.append(dict(map_location=map_location, weights_only=weights_only))
        if isinstance(obj, Exception):
            raise obj
        return obj

    return types.SimpleNamespace(load=load, Tensor=_FakeTensor), calls


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".bin"])
def test_torch_file_is_read_with_torch(tmp_path, monkeypatch, suffix):
    checkpoint = {"state_dict": {"fc.weight": _FakeTensor(np.ones((2, 3), np.float16)), "bn.num_batches_tracked": _FakeTensor(np.int64(5))}}
    torch, calls = _fake_torch(checkpoint)
    monkeypatch.setitem(sys.modules, "torch", torch)
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"pickle")
    state = read_state_dict(path)
    assert calls == [dict(map_location="cpu", weights_only=True)]
    assert state["fc.weight"].dtype == np.float32 and state["fc.weight"].shape == (2, 3)
    assert state["bn.num_batches_tracked"] == 5


def test_torch_file_that_torch_cannot_read(tmp_path, monkeypatch):
    torch, _ = _fake_torch(RuntimeError("invalid load key"))
    monkeypatch.setitem(sys.modules, "torch", torch)
    path = tmp_path / "broken.pth"
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"torch cannot read.*invalid load key.*broken.pth"):
        read_state_dict(path)


def test_torch_file_holding_a_whole_model(tmp_path, monkeypatch):
    torch, _ = _fake_torch(["not", "a", "dict"])
    monkeypatch.setitem(sys.modules, "torch", torch)
    path = tmp_path / "model.pth"
    path.write_bytes(b"pickle")
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        read_state_dict(path)


def test_real_torch_round_trip(tmp_path, not_run):
    try:
        import torch
    except ImportError:
        not_run("torch is not installed (reading .pth files needs it; .ci/run installs the CPU build)")
    path = tmp_path / "model.pth"
    torch.save({"conv1.weight": torch.arange(6, dtype=torch.bfloat16).reshape(1, 6, 1, 1)}, path)
    state = read_state_dict(path)
    np.testing.assert_array_equal(state["conv1.weight"].ravel(), np.arange(6, dtype=np.float32))
