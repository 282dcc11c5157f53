"""Every script in benchmarks/, run as its user runs it with its smallest settings, so that none rots.

Each writes its BENCHMARKS.md section into a scratch file (`--markdown`, or
prints it with `--dry-run`); the test checks that the section came out with
its table filled in. Such runs' figures mean nothing (tiny inputs, one timed
run): what is tested is that every script still runs against today's
keras_se. Here, beside the GPU and NPU fixtures, because two of the scripts
need them. The cheap ones run in CI (`large`); those of minutes (several
models, training, two-process runs, every model's report) and timm's, which
needs timm, with `xlarge`.
"""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCHMARKS = os.path.join(ROOT, "benchmarks")

# script: (arguments, where the section goes ("markdown" or "stdout"), a line
# of its table, fixtures it needs). "{tmp}" is the test's scratch folder.
SCRIPTS = {
    "gpu_accelerator": (
        ["--size", "32", "--models", "se_resnet18", "--runs", "1", "--warmup", "0", "--dry-run"],
        "stdout",
        "| se_resnet18 | ",
        ["gpu_adapter"],
    ),
    "npu_verdicts": (
        ["--size", "32", "--models", "se_resnet18", "--json", "{tmp}/npu.json", "--markdown", "{tmp}/section.md"],
        "markdown",
        "| se_resnet18 | 32 | fully on the HTP |",
        ["qnn_htp"],
    ),
    "se_forms": (["--runs", "1", "--size", "8", "--out", "{tmp}/files", "--markdown", "{tmp}/section.md"], "markdown", "| no SE |", []),
    "se_ablation": (
        ["--runs", "1", "--size", "32", "--out", "{tmp}/files", "--markdown", "{tmp}/section.md"],
        "markdown",
        "| SE without the scale |",
        [],
    ),
    "qat_digits": (["--models", "se_resnet18", "--epochs", "1", "--qat-epochs", "1", "--dry-run"], "stdout", "| se_resnet18 |", []),
    "backend_train_step": (
        ["--models", "se_mobilenet", "--rounds", "1", "--batch", "2", "--size", "32", "--dry-run"],
        "stdout",
        "| se_mobilenet | jax |",
        [],
    ),
    "attention_latency": (
        ["--networks", "mobilenet", "--kinds", "none", "se", "--size", "32", "--runs", "1", "--warmup", "0"]
        + ["--out", "{tmp}/files", "--markdown", "{tmp}/section.md"],
        "markdown",
        "| MobileNet | se |",
        [],
    ),
    "report_all": (["--input-size", "96", "--output", "{tmp}/section.md"], "markdown", "| se_inception_resnet_v2 |", []),
    "mobilenetv3_int8": (
        ["--runs", "1", "--repeats", "1", "--size", "32", "--out", "{tmp}/files", "--markdown", "{tmp}/section.md"],
        "markdown",
        "| mobilenetv3_large_plain (no SE, same activations) |",
        [],
    ),
    "weights_load": (
        ["--repeats", "1", "--out", "{tmp}/files", "--markdown", "{tmp}/section.md"],
        "markdown",
        "| sknet50 | imagenet |",
        [],
    ),
    "latency": (
        ["--runs", "1", "--warmup", "0", "--threads", "1", "--train-steps", "1", "--train-batch", "1", "--size", "32"]
        + ["--out", "{tmp}/files", "--markdown", "{tmp}/section.md"],
        "markdown",
        "| se_resnet50 / keras.ResNet50 |",
        [],
    ),
    "multi_worker": (["--epochs", "2", "--markdown", "{tmp}/section.md"], "markdown", "| two workers, multi_worker step |", []),
    "timm_families": (["--size", "32", "--out", "{tmp}/section.md"], "markdown", "| ecaresnet26t |", []),
}
# CI runs those of under a minute here (2 cores; measured: se_forms 20 s,
# gpu_accelerator 30 s, npu_verdicts 38 s, backend_train_step 45 s); the
# others (xlarge) 65 s (report_all) to 8.5 minutes (latency: 20 files, each
# converted in its own process).
CI_RUN = ("gpu_accelerator", "npu_verdicts", "se_forms", "backend_train_step")


def test_every_script_is_here():
    scripts = {name[:-3] for name in os.listdir(BENCHMARKS) if name.endswith(".py") and not name.startswith("_")}
    assert scripts == set(SCRIPTS)


@pytest.mark.parametrize(
    "script",
    [pytest.param(name, marks=pytest.mark.large if name in CI_RUN else [pytest.mark.large, pytest.mark.xlarge]) for name in SCRIPTS],
)
def test_benchmark_script_runs_with_its_smallest_settings(script, tmp_path, request, not_run):
    arguments, where, row, fixtures = SCRIPTS[script]
    for fixture in fixtures:
        request.getfixturevalue(fixture)
    if script == "timm_families" and importlib.util.find_spec("timm") is None:
        not_run("timm is not installed (pip install timm)")
    argv = [sys.executable, os.path.join(BENCHMARKS, f"{script}.py"), *(a.replace("{tmp}", str(tmp_path)) for a in arguments)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1800)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    section = (tmp_path / "section.md").read_text() if where == "markdown" else done.stdout
    assert row in section, section[-3000:]
    assert "nan" not in section.lower().split()
