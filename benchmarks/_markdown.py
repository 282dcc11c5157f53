"""Helpers for benchmark scripts: BENCHMARKS.md sections."""

import os

from keras_se.io_utils import machine_summary  # noqa: F401  (re-exported for the scripts)


def update_section(path, heading, body):
    """Replaces the `heading` section of a Markdown file (or appends it)."""
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    lines = text.splitlines()
    level = heading.split(" ")[0]
    try:
        start = lines.index(heading)
    except ValueError:
        new = text.rstrip("\n") + f"\n\n{heading}\n\n{body.strip()}\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(level + " ")), len(lines))
        new = "\n".join(lines[: start + 1] + ["", body.strip(), ""] + lines[end:]).rstrip("\n") + "\n"
    tmp = f"{path}.part"
    with open(tmp, "w") as handle:
        handle.write(new)
    os.replace(tmp, path)
