"""Inputs under faults: mutated .tflite and .keras files, non-finite and
wrong-dtype arrays, corrupt images, argument mistakes."""

import copy
import os
import warnings
import zipfile

import numpy as np
import pytest

from keras_se.tflite_file import TFLiteFileError, read_tflite

from .conftest import assert_one_line, call_main


def _byte_mutants(data, seed):
    rng = np.random.default_rng(seed)
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        i = int(rng.integers(8, len(b) - 4))
        kind = rng.integers(0, 3)
        if kind == 0:
            b[i] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:
            b[i] = int(rng.integers(0, 256))
        else:
            b[i : i + 4] = int(rng.integers(-(2**31), 2**31)).to_bytes(4, "little", signed=True)
    return bytes(b)


def _readers():
    from keras_se.analysis.tflite import tflite_report
    from keras_se.export.gpu import check_gpu
    from keras_se.quantization.integer_only import float_ops

    return (read_tflite, check_gpu, float_ops, tflite_report)


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_seeded_byte_mutations_read_cleanly_or_fail_with_one_valueerror(tmp_path, tiny_model_files, kind):
    data = open(tiny_model_files[kind], "rb").read()
    path = tmp_path / "mutant.tflite"
    outcomes = {"read": 0, "refused": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(150):
            path.write_bytes(_byte_mutants(data, seed))
            for reader in _readers():
                try:
                    reader(str(path))
                    outcomes["read"] += 1
                except ValueError as error:
                    assert "\n" not in str(error) and "mutant.tflite" in str(error), (seed, reader.__name__, error)
                    outcomes["refused"] += 1
    assert outcomes["refused"] >= 50 and outcomes["read"] >= 50  # both branches exercised


def _structural_mutant(model, rng):
    """One field of the parsed model set to a value a damaged file could hold."""
    graph = model.subgraphs[0]
    tensor = graph.tensors[int(rng.integers(len(graph.tensors)))]
    op = graph.operators[int(rng.integers(len(graph.operators)))]
    # Past the end of every table: tensors, buffers and opcodes.
    end = max(len(graph.tensors), len(model.buffers), len(model.operatorCodes))
    wild = int(rng.choice([end, end + int(rng.integers(1, 1000)), 2**31 - 1]))
    kind = int(rng.integers(0, 8))
    if kind == 0:
        tensor.buffer = wild
    elif kind == 1:
        op.inputs[int(rng.integers(len(op.inputs)))] = int(rng.choice([wild, -7]))
    elif kind == 2:
        op.outputs[0] = int(rng.choice([wild, -1]))
    elif kind == 3:
        op.opcodeIndex = wild
    elif kind == 4:
        graph.inputs[0] = wild
    elif kind == 5:
        op.inputs = op.inputs[:1]
    elif kind == 6:
        from ai_edge_litert import schema_py_generated as schema

        quantized = [
            t
            for t in graph.tensors
            if t.type == schema.TensorType.INT8
            and t.quantization is not None
            and t.quantization.zeroPoint is not None
            and len(t.quantization.zeroPoint)
        ]
        target = quantized[int(rng.integers(len(quantized)))] if quantized else tensor
        if target.quantization is None or target.quantization.zeroPoint is None or not len(target.quantization.zeroPoint):
            return None
        target.quantization.zeroPoint[0] = int(rng.choice([300, -1000, 2**40]))
    else:
        constants = [
            t for t in graph.tensors if t.buffer and model.buffers[t.buffer].data is not None and t.shape is not None and len(t.shape)
        ]
        if not constants:
            return None
        target = constants[int(rng.integers(len(constants)))]
        target.shape[0] = int(target.shape[0]) + 3  # the constant no longer fits its shape
    return kind


def test_damaged_indices_and_quantisation_are_refused(tmp_path, tiny_model_files):
    from ai_edge_litert.tools import flatbuffer_utils

    refused = set()
    for kind_name in ("float32", "int8"):
        base = flatbuffer_utils.read_model(tiny_model_files[kind_name])
        for seed in range(60):
            model = copy.deepcopy(base)
            kind = _structural_mutant(model, np.random.default_rng(seed))
            if kind is None:
                continue
            path = tmp_path / f"damaged_{kind_name}_{seed}.tflite"
            flatbuffer_utils.write_model(model, str(path))
            for reader in _readers():
                with pytest.raises(TFLiteFileError, match=f"damaged_{kind_name}_{seed}.tflite"):
                    reader(str(path))
            refused.add(kind)
    assert refused == set(range(8))


def test_corrupt_tflite_is_one_line_in_report_bench_and_the_gpu_check(tmp_path, tiny_model_files, capsys, keras_se_cli):
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(tiny_model_files["int8"])
    model.subgraphs[0].operators[0].inputs[0] = 10**6
    bad = tmp_path / "bad.tflite"
    flatbuffer_utils.write_model(model, str(bad))
    done = keras_se_cli("report", bad)  # the installed script: import-time output would show here
    assert_one_line(done.stderr, done.returncode, 2, "bad.tflite", "names tensor 1000000")
    code, err = call_main(capsys, ["bench", bad, "--runs", "1"])
    assert_one_line(err, code, 2, "bad.tflite", "names tensor 1000000")
    from keras_se.export import check_gpu

    with pytest.raises(ValueError, match="bad.tflite.*names tensor 1000000"):
        check_gpu(str(bad))


def test_mutated_keras_archives_load_or_fail_with_one_line(tmp_path, tiny_model_files):
    from keras_se.errors import UserError
    from keras_se.export.cli import load_keras_file

    data = open(tiny_model_files["keras"], "rb").read()
    path = tmp_path / "mutant.keras"
    outcomes = {"loaded": 0, "refused": 0}
    for seed in range(200):
        rng = np.random.default_rng(seed)
        b = bytearray(data)
        if seed % 4 == 0:
            b = b[: int(rng.integers(0, len(b)))]  # truncated
        else:
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        path.write_bytes(bytes(b))
        try:
            load_keras_file(str(path))
            outcomes["loaded"] += 1
        except UserError as error:
            assert "mutant.keras" in str(error) and "\n" not in str(error), (seed, error)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 150
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated or damaged"):
        load_keras_file(str(path))


def test_truncated_keras_archive_is_one_line(tmp_path, tiny_model_files, capsys):
    data = open(tiny_model_files["keras"], "rb").read()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(data[: len(data) - 100])
    code, err = call_main(capsys, ["convert", cut, "--out", tmp_path / "out"])
    assert_one_line(err, code, 2, "cut.keras", "truncated or damaged")
    assert not (tmp_path / "out").exists()
    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as archive:
        archive.writestr("readme.txt", "no model")
    code, err = call_main(capsys, ["convert", tmp_path / "empty.keras", "--out", tmp_path / "out"])
    assert_one_line(err, code, 2, "no config.json")


def test_bench_names_a_file_that_litert_refuses(tmp_path, tiny_model_files, keras_se_cli):
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(tiny_model_files["float32"])
    (code,) = [c for c in model.operatorCodes if c.builtinCode == schema.BuiltinOperator.FULLY_CONNECTED]
    code.version = 63  # well-formed, but no LiteRT has this version of the op
    path = tmp_path / "future.tflite"
    flatbuffer_utils.write_model(model, str(path))
    done = keras_se_cli("bench", path, "--runs", "1", "--warmup", "0")
    assert_one_line(done.stderr, done.returncode, 2, "future.tflite", "FULLY_CONNECTED")
    from keras_se.export.bench import measure_latency

    for paths in ([path], [tiny_model_files["float32"], path]):  # named alone, also as the --vs file
        with pytest.raises(ValueError, match=r"^LiteRT cannot run \S*future.tflite: Didn't find op"):
            measure_latency(paths, runs=1, warmup=0)


@pytest.mark.parametrize("which", ["file", "class folder"])
def test_train_names_an_image_whose_name_is_not_utf8(tmp_path, image_folder, keras_se_cli, which):
    old, new = (image_folder / "a" / "0.png", b"a/\xff0.png") if which == "file" else (image_folder / "b", b"b\xff")
    os.rename(os.fsencode(old), os.fsencode(image_folder) + b"/" + new)
    done = keras_se_cli("train", "se_mobilenet", "--data", image_folder, "--image-size", "32", "--output-dir", tmp_path / "run")
    assert_one_line(done.stderr, done.returncode, 2, str(image_folder), repr(new), "not UTF-8")
    assert not (tmp_path / "run").exists()


def test_report_on_a_truncated_keras_file_says_what_it_is(tmp_path, tiny_model_files, keras_se_cli):
    data = open(tiny_model_files["keras"], "rb").read()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(data[: len(data) // 2])
    done = keras_se_cli("report", cut)
    line = assert_one_line(done.stderr, done.returncode, 2, "cut.keras", "not a readable .keras file", "truncated or damaged")
    assert "not found" not in line


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((2, 16, 16, 3), np.nan, "float32"), "1536 non-finite value(s) (NaN) of 1536, the first at index (0, 0, 0, 0)"),
        (
            np.where(np.arange(768).reshape(1, 16, 16, 3) == 500, np.inf, 0.5),
            "1 non-finite value(s) (inf) of 768, the first at index (0, 10, 6, 2)",
        ),
        (np.full((1, 16, 16, 3), 1e300), "(inf)"),  # beyond float32
        (np.zeros((1, 16, 16, 3), "complex64"), "dtype=complex64"),
        (np.full((1, 16, 16, 3), "a"), "dtype=<U1"),
        (np.zeros((1, 16, 16, 3), bool), "dtype=bool"),
        (np.zeros((1, 16, 16), "float32"), "(N, 16, 16, 3)"),
    ],
    ids=["all-nan", "one-inf", "overflow", "complex", "string", "bool", "shape"],
)
def test_bad_calibration_arrays(tmp_path, tiny_model_files, capsys, array, message):
    path = tmp_path / "calib.npy"
    np.save(path, array)
    argv = ["convert", tiny_model_files["keras"], "--out", tmp_path / "out", "--quantize", "int8", "--calib-npy", path]
    code, err = call_main(capsys, argv)
    assert_one_line(err, code, 2, message, "calib.npy")
    assert not (tmp_path / "out").exists()  # refused before any conversion


def test_npz_and_pickled_calibration_files(tmp_path, tiny_model_files, capsys):
    np.savez(tmp_path / "calib.npz", x=np.zeros((1, 16, 16, 3)))
    argv = ["convert", tiny_model_files["keras"], "--out", tmp_path / "out", "--quantize", "int8", "--calib-npy"]
    code, err = call_main(capsys, argv + [tmp_path / "calib.npz"])
    assert_one_line(err, code, 2, ".npz archive (arrays: x)")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, err = call_main(capsys, argv + [tmp_path / "objects.npy"])
    assert_one_line(err, code, 2, "objects.npy")


def test_corrupt_images_and_limits(tmp_path, tiny_model_files, image_folder, capsys):
    (image_folder / "b" / "cut.png").write_bytes(open(image_folder / "b" / "0.png", "rb").read()[:60])
    argv = ["convert", tiny_model_files["keras"], "--out", tmp_path / "out", "--quantize", "int8", "--calib-dir", image_folder]
    code, err = call_main(capsys, argv)
    assert_one_line(err, code, 2, "cut.png")
    for limit in ("-3", "0"):
        code, err = call_main(capsys, argv + ["--calib-limit", limit])
        assert_one_line(err, code, 2, f"--calib-limit must be a positive number of images, got {limit}")
    train = ["train", "se_mobilenet", "--data", image_folder, "--image-size", "32", "--epochs", "1", "--model-arg", "alpha=0.25"]
    code, err = call_main(capsys, train + ["--output-dir", tmp_path / "run"])
    assert_one_line(err, code, 2, "cannot decode image", "cut.png")
    os.remove(image_folder / "b" / "cut.png")
    os.rename(image_folder / "b", tmp_path / "b")
    code, err = call_main(capsys, train + ["--output-dir", tmp_path / "run"])
    assert_one_line(err, code, 2, "at least 2 class sub-folders")
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()


def test_unknown_builder_argument_is_named(tmp_path, capsys):
    argv = ["train", "se_mobilenet", "--digits", "--output-dir", tmp_path / "run", "--model-arg", "alpah=0.25"]
    code, err = call_main(capsys, argv)
    assert_one_line(err, code, 2, "no argument 'alpah'", "alpha")
    assert not (tmp_path / "run").exists()
