#!/usr/bin/env python
"""Convert the mobile model set into tflite_models/ and write its manifest.

python tools/build_zoo.py [--out tflite_models] [--input-size 224] [--models NAME ...] [--no-npu] [--force]
"""

import argparse
import os
import sys

from keras_se.io_utils import quiet_native_logs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tflite_models"))
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per model")
    parser.add_argument("--force", action="store_true", help="replace existing files")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="only these models of the set (default: all)")
    parser.add_argument("--no-npu", action="store_true", help="leave out the NPU preset (Qualcomm HTP) files")
    args = parser.parse_args()
    with quiet_native_logs():
        import tensorflow  # noqa: F401  (its start-up logging, silenced)

        import keras_se.export.zoo as zoo
    from rich.console import Console

    entries = [entry for entry in zoo.MOBILE_SET if not args.models or entry[0] in args.models]
    unknown = sorted(set(args.models or ()) - {entry[0] for entry in zoo.MOBILE_SET})
    if unknown:
        print(f"build_zoo: error: --models {unknown[0]!r} is not in the set {sorted({e[0] for e in zoo.MOBILE_SET})}", file=sys.stderr)
        return 2
    console = Console(stderr=True)
    with console.status("converting") as status:
        try:
            manifest = zoo.build_zoo(
                args.out,
                entries,
                input_size=args.input_size,
                runs=args.runs,
                overwrite=args.force,
                progress=status.update,
                npu=not args.no_npu,
            )
        except (ValueError, FileExistsError) as error:
            print(f"build_zoo: error: {error}", file=sys.stderr)
            return 2
    for row in manifest["models"]:
        console.print(f"{row['path']}: {row['size_bytes'] / 2**20:.1f} MiB, {row['latency_ms']:.1f} ms")
    for row in manifest["npu"]:
        console.print(f"{row['path'] or row['model'] + ' NPU preset'}: {row['verdict']}", markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
