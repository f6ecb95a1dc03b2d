"""Fine-tune an ImageNet backbone into a face-mask classifier.

    python -m train --data ../shared/data/prajna --out models/inception

Steps: audit and decode every image → leak-free stratified split (duplicates never
straddle it) → phase 1, a new head on a frozen body → phase 2, the body unfrozen →
the best checkpoint by validation loss, evaluated once on the held-out split.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger("train")


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown, the description as written."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                formatter_class=_Help)
    p.add_argument("--data", action="append", required=True, type=Path,
                   help="folder with one sub-folder per class; repeat to merge datasets")
    p.add_argument("--out", required=True, type=Path, help="output folder, e.g. models/NAME")
    p.add_argument("--input-size", type=int, default=224, help="the model's input side, pixels")
    p.add_argument("--backbone", choices=("inception_v3", "efficientnet_lite0"),
                   default="inception_v3", help="the ImageNet body under the new head")
    p.add_argument("--weights", default="imagenet", help="imagenet | none | PATH to a no-top weights file")
    p.add_argument("--epochs-head", type=int, default=25,
                   help="phase 1: epochs of the new head on a frozen body")
    p.add_argument("--epochs-finetune", type=int, default=10,
                   help="phase 2: epochs of the whole network")
    p.add_argument("--batch-size", type=int, default=32, help="faces per step")
    p.add_argument("--test-size", type=float, default=0.25, help="held-out fraction")
    p.add_argument("--val-size", type=float, default=0.1,
                   help="fraction of the training split kept for checkpoint selection")
    p.add_argument("--seed", type=int, default=42, help="for the split, the shuffles and the "
                                                        "initial weights")
    p.add_argument("--lr-head", type=float, default=1e-3, help="Adam, phase 1")
    p.add_argument("--lr-finetune", type=float, default=1e-4, help="phase 2")
    p.add_argument("--optimizer-finetune", choices=("sgd", "adam"), default="sgd",
                   help="sgd: momentum 0.9, Nesterov (the seed's recipe)")
    p.add_argument("--unfreeze-from", default=None,
                   help="phase 2 trains the body from this layer on (default: all of it)")
    p.add_argument("--pooling", choices=("avg", "max"), default="avg")
    p.add_argument("--dense", type=int, default=128, help="head units (0: none)")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--augment", default="camera",
                   help="comma-separated augmentations of the training split (train.augment: "
                        "seed, flip, jitter, colour, blur, jpeg, occlusion, edge; camera = all "
                        "but seed; none)")
    p.add_argument("--exclude-photos", type=Path, metavar="FILE", action="append", default=[],
                   help="leave out the faces of these photos or pictures, and the synthetic "
                        "masks put on them (by the manifests' photo column): a JSON list of "
                        "names, or a split file whose 'eval' part is held out "
                        "(splits/prajna.json); repeat to add more")
    p.add_argument("--oversample", action="append", default=[], metavar="NAME=K",
                   help="show the training faces of the --data folder named NAME K times an "
                        "epoch (the few real camera faces among many pictures); repeat")
    p.add_argument("--mixed-precision", action="store_true", help="float16 compute on a GPU")
    args = p.parse_args(argv)
    try:
        args.oversample = {name: int(k) for name, k in (o.split("=") for o in args.oversample)}
    except ValueError:
        p.error("--oversample: give NAME=K, e.g. scenes=3")
    unknown = set(args.oversample) - {d.name for d in args.data}
    if unknown or any(k < 1 for k in args.oversample.values()):
        p.error(f"--oversample: {', '.join(sorted(unknown)) or 'K'}: NAME must be a --data "
                "folder's name and K at least 1")
    try:
        args.augment = augment_names(args.augment)
    except ValueError as exc:
        p.error(f"--augment: {exc}")
    for name in ("test_size", "val_size"):
        if not 0.0 < getattr(args, name) < 0.9:
            p.error(f"--{name.replace('_', '-')} must be between 0 and 0.9")
    if args.epochs_head < 0 or args.epochs_finetune < 0 or args.epochs_head + args.epochs_finetune == 0:
        p.error("--epochs-head/--epochs-finetune must be >= 0 and not both 0")
    if args.weights.lower() == "none":
        args.weights = None
    return args


def excluded_photos(files: list[Path]) -> set[str]:
    """The photo names of ``--exclude-photos`` files: lists, or split files' ``eval`` part."""
    names = set()
    for path in files:
        doc = json.loads(path.read_text())
        names |= set(doc["eval"] if isinstance(doc, dict) else doc)
    return names


def oversampled(indices, paths, data_dirs: list[Path], times: dict[str, int]):
    """``indices`` with those of files under a data folder named in ``times`` repeated."""
    import numpy as np

    roots = [(d.resolve(), times.get(d.name, 1)) for d in data_dirs]
    out = []
    for i in indices:
        path = Path(paths[i]).resolve()
        k = next((k for root, k in roots if path.is_relative_to(root)), 1)
        out += [i] * k
    return np.array(out, dtype=np.int64)


def versions() -> dict:
    return {d: importlib.metadata.version(d) for d in
            ("tensorflow", "keras", "numpy", "scikit-learn", "pillow", "opencv-python-headless")}


def augment_names(text: str) -> tuple[str, ...]:
    """The augmentation names of ``--augment`` (checked without importing TensorFlow)."""
    from train.augment import parse
    return parse(text)


def make_pipelines(images, labels, train_idx, val_idx, batch_size, seed, augmentations):
    """tf.data pipelines: augmentation (train.augment) on the training split only."""
    import tensorflow as tf

    from train.augment import make_augment

    augment = make_augment(augmentations, images.shape[1], seed)

    def as_float(x, y):
        return tf.cast(x, tf.float32), y

    train = (tf.data.Dataset.from_tensor_slices((images[train_idx], labels[train_idx]))
             .shuffle(len(train_idx), seed=seed, reshuffle_each_iteration=True)
             .map(as_float)
             .map(lambda x, y: (augment(x), y), num_parallel_calls=tf.data.AUTOTUNE)
             .batch(batch_size)
             .prefetch(tf.data.AUTOTUNE))
    val = (tf.data.Dataset.from_tensor_slices((images[val_idx], labels[val_idx]))
           .batch(batch_size).map(as_float).prefetch(tf.data.AUTOTUNE))
    return train, val


def class_weights(labels, num_classes) -> dict | None:
    """'balanced' weights when the largest class is >10% bigger than the smallest."""
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    counts = np.bincount(labels, minlength=num_classes)
    if counts.min() and counts.max() <= 1.1 * counts.min():
        return None
    present = np.flatnonzero(counts)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    return {int(c): float(w) for c, w in zip(present, weights)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Everything that can be checked without TensorFlow is, before its 10 s of imports.
    from train.weights import WeightsUnavailable, check_weights
    missing = [d for d in args.data if not d.is_dir()] + \
        [f for f in args.exclude_photos if not f.is_file()]
    if missing:
        log.error("%s: not found (give --data one folder per dataset, each with one "
                  "sub-folder per class; --exclude-photos a file; README: Data)",
                  ", ".join(map(str, missing)))
        return 2
    try:
        check_weights(args.weights)
    except WeightsUnavailable as exc:
        log.error("%s", exc)
        return 2
    if args.backbone == "efficientnet_lite0" and args.weights == "imagenet":
        # Lite0's ImageNet weights come from the train extra's PyTorch file, converted once
        # into Keras's cache (a few seconds, offline): made here, before the data is read.
        from train.convert_weights import convert_weights
        from train.efficientnet_lite import default_weights_path
        if not default_weights_path().is_file():
            log.info("EfficientNet-Lite0 ImageNet weights: converting them once into %s",
                     default_weights_path())
        try:
            convert_weights()
        except (ImportError, OSError, ValueError) as exc:
            log.error("EfficientNet-Lite0 ImageNet weights could not be made: %s (python -m "
                      "train.convert_weights says more; or --weights none)", exc)
            return 2

    import keras
    import numpy as np
    import tensorflow as tf

    from train import data, report
    from train.model import build_model, set_trainable

    keras.utils.set_random_seed(args.seed)
    gpus = tf.config.list_physical_devices("GPU")
    if args.mixed_precision:
        if not gpus:
            log.warning("--mixed-precision without a GPU is slower on a CPU; ignoring it")
        else:
            keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    log.info("devices: %s", ", ".join(d.name for d in gpus) or "CPU only")

    try:
        exclude = excluded_photos(args.exclude_photos)
        dataset = data.load_dataset(args.data, args.input_size, exclude_photos=exclude)
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s (give --data one folder per dataset, each with one sub-folder per class; "
                  "README: Data)", exc)
        return 2
    audit = dataset.audit_summary()
    for item in dataset.skipped:
        log.warning("skipped %s: %s", item["path"], item["reason"])
    for name in dataset.empty_classes:
        log.warning("class folder '%s' is empty: skipped", name)
    log.info("%d images in %d classes; %d exact and %d near duplicates in %d groups",
             audit["images"], len(dataset.classes), audit["exact_duplicates"],
             audit["near_duplicates"], audit["duplicate_groups"])

    try:
        train_all, test_idx = data.split_indices(dataset.labels, dataset.groups, args.test_size,
                                                 args.seed)
        sub_train, sub_val = data.split_indices(dataset.labels[train_all],
                                                dataset.groups[train_all], args.val_size, args.seed)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    train_idx, val_idx = train_all[sub_train], train_all[sub_val]
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings["augment"] = list(args.augment)
    for key in ("data", "exclude_photos"):
        settings[key] = [str(d) for d in getattr(args, key)]
    args.out.mkdir(parents=True, exist_ok=True)
    data.write_split(args.out / "split.json", dataset,
                     {"train": train_idx, "val": val_idx, "test": test_idx}, settings)
    (args.out / "labels.txt").write_text("\n".join(dataset.classes) + "\n")
    log.info("split: %d train, %d validation, %d held out", len(train_idx), len(val_idx), len(test_idx))

    try:
        with strategy.scope():
            model = build_model(len(dataset.classes), args.input_size, args.backbone, args.weights,
                                args.pooling, args.dense, args.dropout)
    except WeightsUnavailable as exc:
        log.error("%s", exc)
        return 2

    if args.oversample:
        shown = oversampled(train_idx, dataset.paths, args.data, args.oversample)
        log.info("oversampling %s: %d training faces shown %d times an epoch",
                 args.oversample, len(train_idx), len(shown))
    else:
        shown = train_idx
    train_ds, val_ds = make_pipelines(dataset.images, dataset.labels, shown, val_idx,
                                      args.batch_size * strategy.num_replicas_in_sync, args.seed,
                                      args.augment)
    weights = class_weights(dataset.labels[shown], len(dataset.classes))
    model_path = args.out / "model.keras"
    # One checkpoint across both phases: it keeps the best validation loss of the run.
    checkpoint = keras.callbacks.ModelCheckpoint(model_path, monitor="val_loss", save_best_only=True)
    steps = int(np.ceil(len(shown) / args.batch_size))
    histories, timings = {}, {}
    phases = [("head", args.epochs_head), ("finetune", args.epochs_finetune)]
    for phase, epochs in phases:
        if not epochs:
            continue
        set_trainable(model, phase, args.unfreeze_from, pretrained=args.weights is not None)
        with strategy.scope():
            if phase == "head":
                # The seed's Adam(lr, decay=lr/epochs), as a schedule.
                lr = keras.optimizers.schedules.InverseTimeDecay(
                    args.lr_head, decay_steps=1, decay_rate=args.lr_head / max(1, epochs))
                optimizer = keras.optimizers.Adam(lr)
            elif args.optimizer_finetune == "sgd":
                optimizer = keras.optimizers.SGD(args.lr_finetune, momentum=0.9, nesterov=True)
            else:
                optimizer = keras.optimizers.Adam(args.lr_finetune)
            model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
        log.info("phase %s: %d epochs, %d trainable weights", phase, epochs,
                 len(model.trainable_weights))
        start = time.perf_counter()
        # shuffle=False: the dataset shuffles itself (make_pipelines); Keras would only warn.
        hist = model.fit(train_ds, validation_data=val_ds, epochs=epochs, class_weight=weights,
                         callbacks=[checkpoint], shuffle=False,
                         verbose=2 if not sys.stdout.isatty() else 1)
        elapsed = time.perf_counter() - start
        histories[phase] = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        timings[phase] = {"epochs": epochs, "seconds": round(elapsed, 1),
                          "seconds_per_epoch": round(elapsed / epochs, 1), "steps_per_epoch": steps}

    best = keras.models.load_model(model_path)
    x_test, y_test = dataset.images[test_idx], dataset.labels[test_idx]
    probs = best.predict(x_test.astype(np.float32), batch_size=args.batch_size, verbose=0)
    metrics = report.held_out_metrics(y_test, probs, dataset.classes)
    (args.out / "classification_report.txt").write_text(
        report.classification_text(y_test, probs, dataset.classes))
    report.plot_history(histories, args.out / "training.png")
    report.plot_confusion(metrics["confusion_matrix"], dataset.classes, args.out / "confusion.png")
    doc = {
        "held_out": metrics,
        "classes": dataset.classes,
        "audit": audit,
        "sizes": {"train": len(train_idx), "val": len(val_idx), "test": len(test_idx)},
        "class_weights": weights,
        "settings": settings,
        "timings": timings,
        "history": histories,
        "versions": versions(),
        "devices": [d.name for d in gpus] or ["CPU"],
    }
    (args.out / "metrics.json").write_text(json.dumps(doc, indent=1))
    print(f"\nheld-out accuracy {metrics['accuracy']:.4f} on {metrics['count']} images "
          f"(none of them duplicates of a training image)")
    print(report.classification_text(y_test, probs, dataset.classes))
    print(f"wrote {args.out}/: model.keras labels.txt split.json metrics.json "
          "classification_report.txt training.png confusion.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
