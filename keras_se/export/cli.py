"""`keras-se convert`: a model to TFLite (and ONNX) files a phone can run, checked."""

import errno
import json
import os

from keras_se.errors import UserError

MODES = {"none": None, "float16": "float16", "dynamic": "dynamic", "int8": "int8"}


def add_commands(subparsers):
    p = subparsers.add_parser(
        "convert",
        help="convert a model to TFLite (fp32/fp16/dynamic/int8) and ONNX, verified against Keras",
        description=(
            "Convert MODEL (a registry name such as se_mobilenet, or a .keras file) to TFLite files "
            "with builtin ops only, run each in LiteRT against Keras, and optionally check it against "
            "the GPU delegate's rules and run it on LiteRT's GPU accelerator, and export ONNX."
        ),
    )
    p.add_argument("model", help="registry name (see `keras-se list`) or a .keras file")
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--quantize", nargs="+", choices=sorted(MODES), default=["none"], help="one or more modes (default: none = float32)")
    p.add_argument(
        "--gpu",
        action="store_true",
        help="GPU preset: check every file against the classic GPU delegate's rules and run it on LiteRT's GPU "
        "accelerator against Keras; fail on a refusal, a crash or a parity failure",
    )
    p.add_argument("--onnx", action="store_true", help="also export ONNX (tf2onnx, verified in onnxruntime)")
    p.add_argument(
        "--npu",
        metavar="qualcomm[:TARGET,...]",
        help="NPU preset: a batch-1 QDQ ONNX file for Qualcomm's HTP, calibrated like int8, run on the HTP through "
        "onnxruntime-qnn (its simulator on x86-64) against Keras and ONNX Runtime's CPU EP; each TARGET "
        "(sm8550, sm8650, sm8750, ... or v68 ... v81) also gets an EP context binary; fails on a node left on the CPU",
    )
    p.add_argument("--npu-quantize", choices=("w8a8", "w8a16"), default="w8a8", help="NPU weights / activations bits (default: w8a8)")
    p.add_argument("--calib-dir", help="folder of images for int8 calibration (the real-data flow)")
    p.add_argument("--calib-npy", help=".npy array (N, H, W, C) of preprocessed inputs for int8 calibration")
    p.add_argument("--calib-limit", type=int, default=100, help="images to use from --calib-dir (default: 100)")
    p.add_argument(
        "--preprocess", choices=("unit", "imagenet", "raw"), default="unit", help="image scaling for --calib-dir (default: unit = x/255)"
    )
    p.add_argument("--input-size", type=int, default=224, help="input height and width for registry models (default: 224)")
    p.add_argument(
        "--weights",
        help="weights for a registry model: imagenet (its ImageNet release, from the Hugging Face cache or Hub), "
        "hf://timm/NAME.TAG, or a weights file",
    )
    p.add_argument("--format", choices=("table", "json"), default="table", help="report format (default: table)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(func=_cmd_convert)

    b = subparsers.add_parser(
        "bench",
        help="median LiteRT latency of a .tflite file on the CPU and / or GPU, optionally against another",
        description=(
            "Time FILE (and OTHER) in LiteRT, batch 1: on the CPU with XNNPACK and / or on LiteRT's GPU "
            "accelerator, every file and accelerator interleaved so machine drift cancels."
        ),
    )
    b.add_argument("file", help=".tflite file")
    b.add_argument("--vs", metavar="OTHER", help="second .tflite file; prints the latency ratio FILE / OTHER")
    b.add_argument(
        "--accelerator",
        choices=("cpu", "gpu", "both"),
        default="cpu",
        help="cpu: LiteRT with XNNPACK; gpu: LiteRT's GPU accelerator; both: interleaved (default: cpu)",
    )
    b.add_argument("--threads", type=int, default=1, help="LiteRT threads on the CPU (default: 1)")
    b.add_argument("--runs", type=int, default=50, help="timed runs per model (default: 50)")
    b.add_argument("--warmup", type=int, default=5, help="untimed runs first (default: 5)")
    b.set_defaults(func=_cmd_bench)


def _load_model(args):
    import keras_se

    if args.model.endswith(".keras") or os.path.sep in args.model:
        return load_keras_file(args.model), os.path.splitext(os.path.basename(args.model))[0]
    if args.input_size <= 0:
        raise UserError(f"--input-size must be positive, got {args.input_size}")
    if args.input_size < 8:
        raise UserError(f"--input-size must be at least 8 (the models downsample it), got {args.input_size}")
    kwargs = {"input_shape": (args.input_size, args.input_size, 3)}
    if args.weights:
        kwargs["weights"] = args.weights
    model = keras_se.create_model(args.model, **kwargs)
    # A timm alias ("timm:seresnet50") names its model after timm ("seresnet50"):
    # file names without the colon.
    return model, model.name


def load_keras_file(path):
    """A `.keras` file loaded with `safe_mode=True`; `UserError` with the reason if it cannot be.

    The archive is checked first (a truncated or damaged zip), so that the
    message says what is wrong with the file rather than Keras' guess.
    """
    import keras

    from keras_se.io_utils import check_keras_archive

    if not os.path.isfile(path):
        raise UserError(f"model file not found: {path}")
    try:
        check_keras_archive(path)
    except ValueError as error:
        raise UserError(str(error)) from None
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as error:
        text = str(error).strip().splitlines()
        raise UserError(f"cannot load a Keras model from {path}: {text[0] if text else type(error).__name__}") from None


def _prepare_out(args, names):
    out = args.out
    # OS errors keep their errno: keras_se.cli gives a read-only or full disk
    # exit status 1 in every command, another OS error 2.
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as error:
        raise OSError(error.errno, f"cannot create output directory {out}: {error.strerror}") from None
    if not os.access(out, os.W_OK):
        if os.statvfs(out).f_flag & os.ST_RDONLY:
            raise OSError(errno.EROFS, f"output directory is not writable: {out}: {os.strerror(errno.EROFS)}")
        raise UserError(f"output directory is not writable: {out}")
    from keras_se.io_utils import refuse_overwrite

    for name in names:
        path = os.path.join(out, name)
        try:
            refuse_overwrite(path, args.force)
        except FileExistsError:
            raise UserError(f"{path} exists; use --force to replace it") from None
        except (IsADirectoryError, ValueError) as error:
            raise UserError(f"{path}: {error}") from None
    return out


def _calibration(args, model):
    from keras_se.export import calibration

    shape = tuple(model.input_shape[1:])
    if args.calib_dir:
        return calibration.load_image_dir(args.calib_dir, shape[:2], args.calib_limit, args.preprocess)
    if args.calib_npy:
        return calibration.load_npy(args.calib_npy, shape)
    return None


def _cmd_convert(args):
    from rich.console import Console

    console = Console(stderr=True)
    if args.calib_dir and args.calib_npy:
        raise UserError("give --calib-dir or --calib-npy, not both")
    if args.calib_limit < 1:
        raise UserError(f"--calib-limit must be a positive number of images, got {args.calib_limit}")
    modes = list(dict.fromkeys(args.quantize))
    suffix = "_gpu" if args.gpu else ""
    targets = _npu_targets(args.npu)
    from keras_se.export.npu import context_path

    model, stem = _load_model(args)
    names = {m: f"{stem}_{'float32' if m == 'none' else m}{suffix}.tflite" for m in modes}
    npu_name = f"{stem}_{args.npu_quantize}_npu.onnx"
    npu_names = [npu_name] + [context_path(npu_name, t) for t in targets] if args.npu else []
    data = _calibration(args, model) if "int8" in modes or args.npu else None
    created = not os.path.isdir(args.out)
    out = _prepare_out(args, list(names.values()) + ([f"{stem}.onnx"] if args.onnx else []) + npu_names)
    try:
        _convert_all(args, model, stem, names, modes, data, out, console)
    except BaseException:
        if created and not os.listdir(out):
            os.rmdir(out)  # a failed run leaves no trace
        raise


def _npu_targets(npu):
    if npu is None:
        return ()
    from keras_se.export.npu import parse_npu

    try:
        return parse_npu(npu)[1]
    except ValueError as error:
        raise UserError(f"--npu: {error}") from None


def _convert_all(args, model, stem, names, modes, data, out, console):
    import warnings

    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from keras_se.export import calibration, to_onnx, to_tflite
    from keras_se.export.errors import GpuNotRunWarning

    if ("int8" in modes or args.npu) and data is None:
        console.print(
            "[bold yellow]WARNING:[/] int8 calibration uses RANDOM data (no --calib-dir / --calib-npy): "
            "the int8 model's accuracy on real inputs will suffer."
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", calibration.RandomCalibrationWarning)
            data = calibration.random_samples(tuple(model.input_shape[1:]))
    results = []
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        for mode in modes:
            quantize = MODES[mode]
            total = len(data) if quantize == "int8" and data is not None else None
            task = progress.add_task(f"{stem}: {mode} TFLite" + (" (and a GPU run)" if args.gpu else ""), total=total)
            with warnings.catch_warnings():
                # Reported in the table and its footnote instead.
                warnings.simplefilter("ignore", GpuNotRunWarning)
                result = to_tflite(
                    model,
                    os.path.join(out, names[mode]),
                    quantize=quantize,
                    representative_data=data if quantize == "int8" else None,
                    gpu=args.gpu,
                    overwrite=args.force,
                    progress=lambda: progress.advance(task),
                )
            progress.remove_task(task)
            results.append(result.to_dict())
        if args.onnx:
            task = progress.add_task(f"{stem}: ONNX", total=None)
            results.append({"quantize": "onnx", **to_onnx(model, os.path.join(out, f"{stem}.onnx"), overwrite=args.force).to_dict()})
            progress.remove_task(task)
        if args.npu:
            from keras_se.export.errors import NpuNotRunWarning

            task = progress.add_task(f"{stem}: {args.npu_quantize} ONNX for the NPU (and a run on the HTP)", total=len(data))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NpuNotRunWarning)  # in the table instead
                result = to_onnx(
                    model,
                    os.path.join(out, f"{stem}_{args.npu_quantize}_npu.onnx"),
                    overwrite=args.force,
                    npu=args.npu,
                    npu_quantize=args.npu_quantize,
                    representative_data=data,
                    progress=lambda: progress.advance(task),
                )
            progress.remove_task(task)
            results.append({**result.to_dict(), "quantize": f"{args.npu_quantize} npu"})
    _print(results, args.format)


def _print(results, fmt):
    if fmt == "json":
        print(json.dumps(results, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    out = os.path.dirname(results[0]["path"]) or "."
    table = Table(title="Converted and verified against Keras (LiteRT on the CPU)")
    for column in ("mode", "MiB", "ops", "max err", "mean err", "top-1", "s"):
        table.add_column(column, justify="left" if column == "mode" else "right", no_wrap=column == "mode")
    for r in results:
        parity = r["parity"]
        table.add_row(
            _mode(r),
            f"{r['size_bytes'] / 2**20:.1f}",
            str(sum(r["ops"].values())),
            f"{parity['max_abs_error']:.1e}",
            f"{parity['mean_abs_error']:.1e}",
            _top1(parity),
            f"{r['seconds']:.0f}" if "seconds" in r else "",
        )
    console = Console()
    console.print(table)
    console.print(f"written to {out}/: " + ", ".join(f"{_mode(r)}: {os.path.basename(r['path'])}" for r in results))
    if any(p["parity"]["top1_agreement"] is None for p in results):
        console.print("top-1 n/a: no input where Keras' top-1 led by more than the int8 output step (an untrained model).")
    if any(r.get("gpu") for r in results):
        _print_gpu([r for r in results if r.get("gpu")], console)
    for r in results:
        if r.get("npu"):
            _print_npu(r, console)


def _print_npu(result, console):
    run = result["npu"]
    parity = run["parity"]
    console.print(f"NPU (Qualcomm HTP through onnxruntime-qnn; a simulator on x86-64): {run['verdict']}")
    if run["status"] == "ran":
        nodes = ", ".join(f"{ep.replace('ExecutionProvider', '')} {n}" for ep, n in run["nodes"].items())
        console.print(
            f"  nodes: {nodes}; logits against Keras: relative L2 {parity['logits_relative_l2']:.2e}, top-1 {_top1(parity)}; "
            f"against ONNX Runtime's CPU EP on the same file: relative L2 {run['cpu_relative_l2']:.2e}"
        )
    for target, context in run["contexts"].items():
        console.print(f"  context binary for {target}: {os.path.basename(context['path'])}, {context['bytes'] / 2**20:.1f} MiB")


def _mode(result):
    """What tells a row apart: the quantisation, and "gpu" for the GPU preset."""
    return (result["quantize"] or "float32") + (" gpu" if result.get("gpu") else "")


def _top1(parity):
    return "n/a" if parity["top1_agreement"] is None else f"{parity['top1_agreement']:.0%}/{parity['decisive']}"


def _print_gpu(results, console):
    from rich.table import Table

    from keras_se.export.verify import GPU_KERNEL_RELATIVE_L2, GPU_RELATIVE_L2

    table = Table(title="Two GPU verdicts")
    for column in ("mode", "classic rules", "LiteRT GPU", "kernels", "fp16 L2", "top-1", "top-5"):
        table.add_column(column, justify="left" if column in ("mode", "classic rules", "LiteRT GPU") else "right", no_wrap=column == "mode")
    runs = [r["gpu_accelerator"] for r in results if r.get("gpu_accelerator")]
    for r in results:
        run = r.get("gpu_accelerator")
        parity = (run or {}).get("parity")
        verdict = "not run (verify off)" if run is None else "fully accelerated" if run["passed"] else run["status"]
        if r["quantize"] in ("int8", "dynamic") and parity:
            # An integer file's float16 comparison with Keras is not the check: see the note below.
            cells = ["-", "-", "-"]
        else:
            cells = [f"{parity['relative_l2']:.1e}", _top1(parity), f"{parity['top5_agreement']:.0%}"] if parity else ["", "", ""]
        table.add_row(_mode(r), r["gpu_rules"], verdict, _kernel_cell(run), *cells)
    console.print(table)
    adapter = next((g["adapter"] for g in runs if g["adapter"]), None)
    console.print(
        f"Ran on: {adapter or 'no GPU adapter'}. kernels: the file with float32 kernels on the GPU against LiteRT's "
        f"CPU runtime (relative L2, bound {GPU_KERNEL_RELATIVE_L2} for float files); fp16 L2: what phones compute "
        f"against Keras (bound {GPU_RELATIVE_L2}); top-5: overlap of the top-5 classes."
    )
    if any(r["quantize"] in ("int8", "dynamic") for r in results):
        console.print(
            "int8 / dynamic rows: kernels compares the accelerator's outputs with LiteRT's CPU runtime on the "
            "same file (reported, not bounded); their error against Keras is their row of the CPU table above."
        )
    if any(g["software"] for g in runs):
        console.print(
            "The adapter is a software one (Mesa's Vulkan driver on the CPU): verdicts and outputs are real, speed is not a phone's."
        )
    for r in results:
        if (r.get("gpu_accelerator") or {}).get("status") == "not run":
            console.print(f"[bold yellow]GPU not run[/] for {os.path.basename(r['path'])}: {r['gpu_accelerator']['reason']}")
    for r in results:
        run = r.get("gpu_accelerator") or {}
        if run.get("status") == "ran" and run.get("kernel_relative_l2") is None:
            console.print(f"[bold yellow]GPU kernels not checked[/] for {os.path.basename(r['path'])}: {run['kernel_check']}")
    for r in results:
        for finding in r["gpu_findings"]:
            console.print(f"note: {os.path.basename(r['path'])}: {finding}")


def _kernel_cell(run):
    """The float32 kernel check's cell: the relative L2, "not run" when the file ran without it, else blank."""
    if not run or run["status"] != "ran":
        return ""
    kernel = run.get("kernel_relative_l2")
    return "not run" if kernel is None else f"{kernel:.1e}"


def _cmd_bench(args):
    from rich.console import Console
    from rich.table import Table

    from keras_se.export.bench import measure_latency
    from keras_se.tflite_file import read_tflite

    paths = [args.file] + ([args.vs] if args.vs else [])
    for path in paths:
        read_tflite(path)  # a clear error for a missing, non-TFLite or damaged file
    accelerators = ["cpu", "gpu"] if args.accelerator == "both" else [args.accelerator]
    console = Console()
    with console.status(f"timing {len(paths)} model(s) on {' and '.join(accelerators)}, {args.runs} runs each"):
        try:
            results = measure_latency(paths, threads=args.threads, runs=args.runs, warmup=args.warmup, accelerators=accelerators)
        except RuntimeError as error:  # LiteRT refuses a file the reader could not fault
            raise UserError(f"LiteRT cannot run {' or '.join(paths)}: {str(error).strip().splitlines()[0]}") from None
    table = Table(title=f"LiteRT latency, batch 1, median of {args.runs} interleaved runs")
    for column in ("file", "on", "median ms", "p10 ms", "p90 ms", "kernels / adapter"):
        table.add_column(column, justify="right" if "ms" in column else "left")
    for r in results:
        on = f"CPU, {r.threads} thread(s)" if r.accelerator == "cpu" else "GPU"
        table.add_row(os.path.basename(r.path), on, f"{r.median_ms:.2f}", f"{r.p10_ms:.2f}", f"{r.p90_ms:.2f}", r.kernels)
    console.print(table)
    if any(r.software for r in results):
        console.print("GPU times are on a software adapter (Mesa's Vulkan driver on the CPU): not phone times.")
    by = {(r.path, r.accelerator): r.median_ms for r in results}
    name = os.path.basename
    if args.vs:
        for accelerator in accelerators:
            ratio = by[(args.file, accelerator)] / by[(args.vs, accelerator)]
            console.print(f"ratio {name(args.file)} / {name(args.vs)}{f' ({accelerator})' if len(accelerators) > 1 else ''}: {ratio:.3f}")
    if len(accelerators) > 1:
        for path in paths:
            console.print(f"ratio GPU / CPU ({name(path)}): {by[(path, 'gpu')] / by[(path, 'cpu')]:.3f}")
