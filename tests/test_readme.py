"""README's Python examples name things that exist, reached as README reaches them.

Each example's `keras_se.a.b` chains and `from keras_se.x import y` names
are resolved in a fresh interpreter after nothing but `import keras_se` (as
a reader runs them); the first example, which needs no data, runs whole.
"""

import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _examples():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def _references(code):
    chains = set(re.findall(r"\bkeras_se(?:\.[A-Za-z_]\w*)+", code))
    for module, names in re.findall(r"^from (keras_se[\w.]*) import ([\w, ]+)$", code, flags=re.M):
        chains.update(f"{module}.{name.strip()}" for name in names.split(","))
    return sorted(chains)


def test_readme_has_examples_and_they_reference_keras_se():
    examples = _examples()
    assert len(examples) >= 5
    assert "keras_se.export.to_tflite" in _references("\n".join(examples))


def test_every_name_in_readme_examples_is_reachable_after_import_keras_se():
    chains = _references("\n".join(_examples()))
    child = textwrap.dedent(
        """
        import sys
        import keras_se

        missing = []
        for chain in sys.argv[1:]:
            value = keras_se
            for part in chain.split(".")[1:]:
                try:
                    value = getattr(value, part)
                except AttributeError:
                    missing.append(chain)
                    break
        print("MISSING", *missing)
        """
    )
    proc = subprocess.run([sys.executable, "-c", child, *chains], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["MISSING"], f"README names what `import keras_se` does not reach: {proc.stdout}"


@pytest.mark.large  # three full-size models
def test_the_first_readme_example_runs_as_written():
    first = _examples()[0]
    assert first.startswith("import keras_se")
    # The count in its comment ("its plain twin, 25,557,032") is the learned
    # parameters, as torchvision and the papers count them (BN statistics excluded).
    stated = int(re.search(r"plain = .*# its plain twin, ([\d,]+)", first).group(1).replace(",", ""))
    child = first + "\nprint('PARAMS', sum(int(w.numpy().size) for w in plain.trainable_weights))\n"
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-2:] == ["PARAMS", str(stated)]


def test_the_attention_plug_in_example_runs_as_written():
    example = next(code for code in _examples() if "register_attention(" in code)
    child = example + "\nprint('KINDS', *attention_kinds())\n"
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    stated = re.search(r"attention_kinds\(\)  # \(([^)]*)\)", example).group(1).replace("'", "").replace(",", "").split()
    assert proc.stdout.split()[-len(stated) - 1 :] == ["KINDS", *stated]
