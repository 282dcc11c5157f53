"""`keras-se train`: train a model on an image folder or the digits demo,
optionally quantisation-aware to a fully int8 TFLite file."""

import json

from keras_se.errors import UserError


def add_commands(subparsers):
    p = subparsers.add_parser(
        "train",
        help="train a model (float, then optionally QAT to int8 TFLite) on an image folder or the digits demo",
        description=(
            "Train MODEL (a registry name, see `keras-se list`) on an image folder with one sub-folder "
            "per class, or on scikit-learn's handwritten digits (--digits). With --qat, fine-tune it "
            "with quantisation-aware training and write a fully int8 TFLite file. Checkpoints, the "
            "float .keras model, the int8 file and train.json go to --output-dir."
        ),
    )
    p.add_argument("model", help="registry name, e.g. se_mobilenet")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="DIR", help="image folder: one sub-folder of images per class")
    source.add_argument("--digits", action="store_true", help="scikit-learn's handwritten digits, fixed 75/25 split")
    p.add_argument("--output-dir", required=True, help="where checkpoints, model.keras, model_int8.tflite and train.json go")
    p.add_argument("--image-size", type=int, default=None, help="input height and width (default: 32 for --digits, 224 for --data)")
    p.add_argument("--epochs", type=int, default=10, help="float epochs (default: 10)")
    p.add_argument("--batch-size", type=int, default=64, help="global batch size (default: 64)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="initial learning rate, cosine decay (default: 0.001)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="Adam, or SGD with momentum 0.9 (default: adam)")
    p.add_argument("--qat", action="store_true", help="quantisation-aware fine-tuning, then a fully int8 TFLite file")
    p.add_argument("--qat-epochs", type=int, default=3, help="QAT epochs with --qat (default: 3)")
    p.add_argument("--qat-learning-rate", type=float, default=None, help="QAT learning rate (default: --learning-rate / 10)")
    p.add_argument("--validation-split", type=float, default=0.2, help="held-out fraction of --data (default: 0.2)")
    p.add_argument("--augment", action="store_true", help="random shifts of up to 1/16 of the image size")
    p.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multi_worker"),
        default="default",
        help="tf.distribute strategy: one device, all local GPUs (or logical CPUs), or a TF_CONFIG cluster",
    )
    p.add_argument(
        "--cluster-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="--strategy multi_worker: how long to wait for every worker of TF_CONFIG to answer (default: 300)",
    )
    p.add_argument("--no-sync-bn", action="store_true", help="per-replica BatchNorm statistics under a multi-device strategy")
    p.add_argument(
        "--weights",
        help="start from pretrained weights: imagenet (the model's ImageNet release; the classifier starts anew "
        "for another number of classes), hf://timm/NAME.TAG, or a weights file",
    )
    p.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="builder argument, e.g. alpha=0.5 or se_gate=hard_sigmoid (repeatable; values are Python literals)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--force", action="store_true", help="replace existing outputs in --output-dir")
    p.set_defaults(func=_cmd_train)


def parse_model_args(items):
    """`["alpha=0.5", "se_gate=hard_sigmoid"]` -> `{"alpha": 0.5, "se_gate": "hard_sigmoid"}`."""
    import ast

    kwargs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise UserError(f"--model-arg must be KEY=VALUE, got {item!r}")
        if key in ("input_shape", "classes", "flavour", "input_tensor"):
            raise UserError(f"--model-arg {key} is set by keras-se train itself")
        try:
            kwargs[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            kwargs[key] = value  # a bare word: a string such as hard_sigmoid
    return kwargs


def _cmd_train(args):
    from keras_se import training

    for name in ("epochs", "qat_epochs", "batch_size"):
        value = getattr(args, name)
        if value < (1 if name == "batch_size" else 0):
            raise UserError(f"--{name.replace('_', '-')} must be {'positive' if name == 'batch_size' else '>= 0'}, got {value}")
    if not 0 < args.cluster_timeout < float("inf"):  # inf would wait for ever, nan compares false
        raise UserError(f"--cluster-timeout must be a positive, finite number of seconds, got {args.cluster_timeout}")
    image_size = args.image_size or (32 if args.digits else 224)
    if image_size < 32:
        raise UserError(f"--image-size must be at least 32, got {image_size}")
    model_kwargs = parse_model_args(args.model_arg)
    # Before any data is read: an existing run is not replaced by mistake, a
    # folder with other files is never replaced, and an unknown builder
    # argument fails now rather than after the data is loaded.
    from keras_se.training.trainer import check_model_kwargs, check_output_dir

    try:
        check_output_dir(args.output_dir, args.force)
    except FileExistsError as error:
        existing = str(error).split(";")[0]
        raise UserError(f"{existing}; use --force to replace it (the previous run is replaced as a whole)") from None
    check_model_kwargs(args.model, model_kwargs)
    # Before the data: multi_worker configures collective ops, possible only before
    # anything initialises TensorFlow.
    strategy = training.make_strategy(args.strategy, timeout=args.cluster_timeout) if args.strategy == "multi_worker" else args.strategy
    if args.digits:
        train_data, validation_data = training.load_digits(image_size)
        classes = 10
    else:
        train_data, validation_data, class_names = training.image_directory(
            args.data, image_size, args.batch_size, args.validation_split, args.seed
        )
        classes = len(class_names)
    result = training.train(
        args.model,
        train_data,
        validation_data,
        classes=classes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        optimizer=args.optimizer,
        qat_epochs=args.qat_epochs if args.qat else 0,
        qat_learning_rate=args.qat_learning_rate,
        strategy=strategy,
        sync_batchnorm=not args.no_sync_bn,
        output_dir=args.output_dir,
        overwrite=args.force,
        seed=args.seed,
        progress=not args.no_progress,
        augment=args.augment,
        model_kwargs=model_kwargs,
        weights=args.weights,
    )
    summary = {"model": args.model, "replicas": result.replicas, **result.metrics, "files": result.files}
    print(json.dumps(summary, indent=2))
