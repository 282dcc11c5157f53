"""`keras-se report`: the complexity report on the command line.

Only formats what `keras_se.analysis.complexity_report` and
`keras_se.analysis.paper.paper_comparison` compute. Heavy imports (Keras,
rich, matplotlib) happen inside the command.
"""

FORMATS = ("table", "json", "markdown", "csv")


def add_commands(subparsers):
    p = subparsers.add_parser(
        "report",
        help="parameters and multiply-adds per layer and stage, and the SE overhead",
        description=(
            "Parameters and multiply-adds (MACs) per layer and per stage of a model, and what its SE "
            "(or SK) attention costs: measured against the plain twin, by the SENet formula "
            "2/r * sum N_s*C_s^2, and the bias term. MACs are those of convs and FCs (the papers' "
            "'GFLOPs'); element-wise work is counted apart."
        ),
    )
    p.add_argument("model", nargs="?", help="a registry name (see `keras-se list`), a .keras file or a .tflite file")
    p.add_argument(
        "--paper", action="store_true", help="every model of the SENet paper's Tables 2-3 and SKNet-50/101 beside the papers' numbers"
    )
    p.add_argument(
        "--input-size", type=int, metavar="N", help="count at N x N (default: 224 for registry names, the model's own size for files)"
    )
    p.add_argument("--reduction", type=float, metavar="R", help="SE reduction r of a registry model (default: 16)")
    p.add_argument("--no-se-bias", action="store_true", help="build a registry SE model with bias-free FCs (the paper's ablations)")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--layers", action="store_true", help="table format: also list every layer")
    p.add_argument("--output", metavar="FILE", help="write the json/markdown/csv output to FILE instead of stdout")
    p.add_argument("--plot", metavar="FILE.png", help="write a PNG of per-stage parameters and MACs, SE vs plain")
    p.add_argument("--force", action="store_true", help="overwrite existing --output / --plot files")
    p.set_defaults(func=_cmd_report)


def _check_outputs(args, UserError):
    import os

    from keras_se.io_utils import refuse_overwrite

    for flag, path in (("--output", args.output), ("--plot", args.plot)):
        if path is None:
            continue
        try:
            refuse_overwrite(path, args.force)
        except FileExistsError:
            raise UserError(f"{flag} {path!r} exists; pass --force to overwrite it") from None
        except FileNotFoundError:
            raise UserError(f"{flag}: directory does not exist: {os.path.dirname(os.path.abspath(path))!r}") from None
        except (IsADirectoryError, ValueError) as error:
            raise UserError(f"{flag}: {error}") from None
    if args.plot and not args.plot.lower().endswith(".png"):
        raise UserError(f"--plot writes a PNG; give a .png file. Received: {args.plot!r}")
    if args.output and args.format == "table":
        raise UserError("--output needs --format json, markdown or csv")


def _cmd_report(args):
    import sys

    from keras_se.errors import UserError

    if args.paper == bool(args.model):
        raise UserError(
            "give a MODEL or --paper (not both)" if args.paper else "give a MODEL (a registry name, .keras or .tflite file) or --paper"
        )
    if args.input_size is not None and args.input_size <= 0:
        raise UserError(f"--input-size must be a positive int. Received: {args.input_size}")
    _check_outputs(args, UserError)

    from rich.console import Console

    from keras_se.analysis import formats

    console = Console()
    stderr = Console(stderr=True)
    if args.paper:
        if args.plot or args.reduction or args.no_se_bias:
            raise UserError("--plot, --reduction and --no-se-bias apply to one MODEL, not to --paper")
        if args.input_size not in (None, 224):
            raise UserError(f"--paper compares at the papers' 224x224. Received: --input-size {args.input_size}")
        rows = _paper(stderr)
        if args.format == "table":
            formats.print_paper(rows, console)
        else:
            _emit(formats.render_paper(rows, args.format), args)
        return

    import warnings

    from keras_se.analysis.complexity import ComplexityWarning, complexity_report

    kwargs = {}
    if args.reduction is not None:
        kwargs["reduction"] = int(args.reduction) if float(args.reduction).is_integer() else args.reduction
    if args.no_se_bias:
        kwargs["se_bias"] = False
    size = (args.input_size, args.input_size, 3) if args.input_size else None
    with warnings.catch_warnings():
        # The report lists its warnings itself; do not print them twice.
        warnings.simplefilter("ignore", ComplexityWarning)
        with stderr.status(f"Building and counting {args.model}", spinner="dots"):
            report = complexity_report(args.model, size, **kwargs)
    if args.format == "table":
        formats.print_report(report, console, layers=args.layers)
        _paper_line(report, console)
    else:
        _emit(formats.render(report, args.format), args)
        for warning in report.warnings:
            print(f"keras-se: warning: {warning}", file=sys.stderr)
    if args.plot:
        from keras_se.analysis.plot import plot_report

        plot_report(report, args.plot, force=args.force)
        stderr.print(f"wrote {args.plot}")


def _emit(text, args):
    if args.output:
        from keras_se.io_utils import write_atomic

        write_atomic(args.output, text, overwrite=args.force)
    else:
        print(text, end="")


def _paper(stderr):
    from rich.progress import track

    from keras_se.analysis.paper import paper_comparison

    def progress(names):
        return track(names, description=f"Building {len(names)} models at 224x224", console=stderr, transient=True)

    return paper_comparison(224, iterate=progress)


def _paper_line(report, console):
    """The paper's number for a registry model at 224x224, if it has one."""
    from keras_se.analysis.paper import reference

    ref = reference(report.model)
    size = ref.input_size or 224 if ref is not None else 224
    if ref is None or ref.macs is None or tuple(report.input_shape) != (size, size, 3) or report.source != "keras":
        return
    from keras_se.analysis.paper import compare

    twin = None
    if report.twin_macs is not None:
        from types import SimpleNamespace

        twin = SimpleNamespace(
            model=report.twin, macs=report.twin_macs, macs_with_weighting=report.twin_macs + (report.twin_weighting_macs or 0)
        )
    row = compare(report.model, report, twin)
    scale = 1e9 if ref.macs_unit == "G" else 1e6
    verdict = "agrees" if row.macs_agree else "differs"
    console.print(
        f"{ref.source}: {ref.label} {ref.macs:.{ref.macs_digits}f} {ref.macs_unit}; ours "
        f"{row.compared_macs / scale:.{ref.macs_digits + 2}f} {ref.macs_unit} ({verdict})" + (f": {row.note}" if row.note else ""),
        highlight=False,
    )
