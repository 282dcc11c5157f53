"""Checks that could not run are "not run" (tests/conftest.py's `not_run`), never silently skipped.

`not_run(reason)` skips with the reason, and fails under CI=true, so that CI
never counts a missing fixture or GPU adapter as passed. A bare
`pytest.skip` (or `importorskip`, `mark.skip`, `mark.skipif`) would skip
under CI as well.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SKIPS = {"skip", "skipif", "importorskip"}


def _silent_skips(source, name):
    """`name:line attribute` of each pytest.skip / importorskip / mark.skip / mark.skipif in `source`."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Attribute) and node.attr in SKIPS:
            owner = node.value
            if (isinstance(owner, ast.Name) and owner.id == "pytest") or (isinstance(owner, ast.Attribute) and owner.attr == "mark"):
                found.append(f"{name}:{node.lineno} {node.attr}")
    return found


def test_no_test_skips_without_not_run():
    modules = [p for p in sorted(TESTS.rglob("*.py")) if p != TESTS / "conftest.py"]
    assert len(modules) > 50
    assert [hit for p in modules for hit in _silent_skips(p.read_text(), str(p.relative_to(ROOT)))] == []
    # The scan finds what it looks for.
    probe = "import pytest\n\n@pytest.mark.skipif(True, reason='x')\ndef f():\n    pytest.skip('y')\n    pytest.importorskip('z')\n"
    assert sorted(hit.split()[1] for hit in _silent_skips(probe, "probe")) == ["importorskip", "skip", "skipif"]


def test_convert_gpu_check_that_did_not_run_fails_under_ci(tmp_path):
    # No Vulkan driver: LiteRT's GPU accelerator finds no adapter and the
    # convert test's GPU check is "not run": under CI=true a failure.
    env = {
        **os.environ,
        "CI": "true",
        "PYTHONPATH": str(ROOT),
        "VK_ICD_FILENAMES": "/nonexistent/icd.json",
        "VK_DRIVER_FILES": "/nonexistent/icd.json",
    }
    test = "tests/export/test_cli.py::test_convert_keras_file_fp32_and_int8"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout[-3000:]
    assert "not run: LiteRT GPU accelerator: no GPU adapter" in done.stdout and "CI=true: every check must run" in done.stdout
