#!/usr/bin/env python
"""Time the complexity report of every registered model.

Builds each model once at 224x224, counts it (`complexity_report`),
attaches its plain twin's counts, and renders the JSON, timing building and
counting apart. The result goes to the "## Complexity report" section of
BENCHMARKS.md (other sections are left as they are).

    python benchmarks/report_all.py            # writes BENCHMARKS.md
    python benchmarks/report_all.py --dry-run  # prints the section only
"""

import argparse
import datetime
import os
import subprocess
import sys
import time

START = time.perf_counter()

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _markdown import machine_summary, update_section  # noqa: E402

SECTION = "## Complexity report"


def _nproc():
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(os.cpu_count())


def measure(size):
    import keras

    import keras_se
    from keras_se.analysis import formats
    from keras_se.analysis.complexity import attach_twin, report_keras_model
    from keras_se.models.registry import get_entry

    imported = time.perf_counter()
    machine = machine_summary()
    reports, timings, freeing = {}, {}, 0.0
    for name in keras_se.list_models():
        t0 = time.perf_counter()
        model = keras_se.create_model(name, input_shape=(size, size, 3))
        t1 = time.perf_counter()
        reports[name] = report_keras_model(model, name)
        t2 = time.perf_counter()
        timings[name] = (t1 - t0, t2 - t1)
        del model
        keras.backend.clear_session()  # keeps memory flat over 30 models
        freeing += time.perf_counter() - t2
    t0 = time.perf_counter()
    for name, report in reports.items():
        twin = get_entry(name).twin
        if twin:
            attach_twin(report, reports[twin], twin)
        formats.render(report, "json")
    finish = time.perf_counter() - t0
    return reports, timings, finish, freeing, imported - START, f"{machine}, keras_se {keras_se.__version__}"


def section(size, reports, timings, finish, freeing, startup, machine, total, load):
    build = sum(b for b, _ in timings.values())
    count = sum(c for _, c in timings.values())
    lines = [
        f"Every registered model ({len(reports)}) built once at {size}x{size}, counted with "
        "`keras_se.analysis.complexity` (layer configs and shapes; no profiler, no tracing), its plain "
        "twin's counts attached and the JSON rendered.",
        "",
        "```",
        "python benchmarks/report_all.py",
        "```",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {machine}; nproc {_nproc()}; load average {load[0]:.1f} at the start, {load[1]:.1f} "
        "at the end (other work on the machine slows the builds)",
        f"- wall time, end to end: **{total:.1f} s** (importing TensorFlow and Keras {startup:.1f} s, "
        f"building the models {build:.1f} s, counting them {count:.2f} s, twins and JSON {finish:.2f} s, "
        f"`clear_session` between models {freeing:.1f} s)",
        f"- counting alone: {1000 * count / len(reports):.0f} ms per model on average; building dominates",
        "",
        "| model | params | MACs (G) | build (s) | count (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, report in reports.items():
        b, c = timings[name]
        lines.append(f"| {name} | {report.params:,} | {report.macs / 1e9:.3f} | {b:.2f} | {1000 * c:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--output", default=os.path.join(HERE, "..", "BENCHMARKS.md"))
    parser.add_argument("--dry-run", action="store_true", help="print the section, write nothing")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    load_start = os.getloadavg()[0]
    reports, timings, finish, freeing, startup, machine = measure(args.input_size)
    total = time.perf_counter() - START
    load = (load_start, os.getloadavg()[0])
    body = section(args.input_size, reports, timings, finish, freeing, startup, machine, total, load)
    if args.dry_run:
        print(body)
        return 0
    update_section(args.output, SECTION, body)
    print(f"wrote the {SECTION!r} section of {os.path.normpath(args.output)} ({total:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
