import pytest

from keras_se.cli import main
from keras_se.export import to_tflite
from keras_se.export.bench import measure_latency


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory, tiny_se_model):
    path = tmp_path_factory.mktemp("bench") / "tiny.tflite"
    to_tflite(tiny_se_model, path, verify=False)
    return str(path)


def test_latency_is_measured_for_each_model(tiny_tflite):
    results = measure_latency([tiny_tflite, tiny_tflite], threads=1, runs=5, warmup=1)
    assert len(results) == 2
    for r in results:
        assert r.runs == 5 and r.kernels == "XNNPACK"
        assert 0 < r.p10_ms <= r.median_ms <= r.p90_ms


def test_bad_bench_arguments(tiny_tflite):
    with pytest.raises(ValueError, match="runs=0"):
        measure_latency(tiny_tflite, runs=0)


def test_bench_cli_prints_ratio(tiny_tflite, capsys):
    assert main(["bench", tiny_tflite, "--vs", tiny_tflite, "--runs", "3", "--warmup", "1"]) == 0
    assert "ratio tiny.tflite / tiny.tflite" in capsys.readouterr().out


def test_bench_cli_rejects_non_tflite(tmp_path, capsys):
    bogus = tmp_path / "x.tflite"
    bogus.write_text("nope")
    assert main(["bench", str(bogus)]) == 2
    assert "not a TFLite flatbuffer" in capsys.readouterr().err
