"""Export a trained model to TFLite and publish only the files that pass the parity gate.

    python -m export --model models/NAME/model.keras

Writes ``models/NAME/NAME-<format>.tflite`` for each accepted format and
``models/NAME/card.json``, the contract the edge runtime reads. Exits 1 if any format
was refused (after trying all of them), 2 if the inputs are missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import logging
import sys
from pathlib import Path

import numpy as np

from edge.alarm import AlarmRule
from edge.shared.card import (
    SCHEMA_VERSION,
    ModelError,
    ModelFile,
    alarm_labels,
    sha256_of,
    validate_card,
)
from edge.shared.classifier import Classifier
from export.convert import FLAVOURS, convert
from export.parity import DEFAULT_GATES, failures, measure, median_latency_ms

log = logging.getLogger("export")
THREADS = 2
# What this TF version's files are known to load in besides ai-edge-litert (checked with
# TF 2.21): tflite-runtime 2.14 lacks FULLY_CONNECTED v12, which the dynamic file uses.
KNOWN_RUNTIMES = {
    "float32": ["tflite-runtime 2.14 (Python <= 3.11, numpy < 2)"],
    "float16": ["tflite-runtime 2.14 (Python <= 3.11, numpy < 2)"],
    "dynamic": [],
    "int8": ["tflite-runtime 2.14 (Python <= 3.11, numpy < 2)"],
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="models/NAME/model.keras")
    p.add_argument("--formats", default=",".join(FLAVOURS),
                   help=f"comma-separated, from {','.join(FLAVOURS)}")
    p.add_argument("--calibration", type=int, default=200,
                   help="training-split images used to calibrate int8")
    p.add_argument("--min-agreement", type=float, default=None,
                   help="override every format's minimum top-1 agreement (0..1)")
    p.add_argument("--max-drop", type=float, default=None,
                   help="override the maximum accuracy drop in points (dynamic, int8)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--alarm-labels", type=lambda t: t.split(","), default=None,
                   help="comma-separated classes that raise a violation, written into the "
                        "card (default: every class but with_mask)")
    p.add_argument("--masked-labels", type=lambda t: t.split(","), default=None,
                   help="comma-separated classes that count as masked (default: with_mask)")
    args = p.parse_args(argv)
    args.formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(args.formats) - set(FLAVOURS))
    if unknown or not args.formats:
        p.error(f"--formats: unknown {', '.join(unknown) or '(none given)'}; choose from {','.join(FLAVOURS)}")
    return args


def gate_for(fmt: str, args: argparse.Namespace) -> dict:
    gate = dict(DEFAULT_GATES[fmt])
    if args.min_agreement is not None:
        gate["min_agreement"] = args.min_agreement
    if args.max_drop is not None and gate["max_drop"] is not None:
        gate["max_drop"] = args.max_drop
    return gate


def quant(detail: dict) -> dict:
    scale, zero = detail["quantization"]
    return {"dtype": np.dtype(detail["dtype"]).name, "shape": [int(d) for d in detail["shape"]],
            "scale": float(scale), "zero_point": int(zero)}


def export_format(model, fmt: str, name: str, out_dir: Path, classes: list[str], size: int,
                  data: dict, gate: dict) -> dict:
    """Convert, gate and (if it passes) publish one format; return its card entry."""
    final = out_dir / f"{name}-{fmt}.tflite"
    partial = out_dir / f".{final.name}.partial"
    entry = {"file": final.name, "accepted": False, "gate": gate}
    final.unlink(missing_ok=True)  # a refused format must leave no file under its name
    try:
        blob = convert(model, fmt, data["calibration"] if fmt == "int8" else None)
        partial.write_bytes(blob)
        candidate = ModelFile(partial, fmt, tuple(classes), size, card={})
        classifier = Classifier(candidate, threads=THREADS, runtime="ai-edge-litert")
        parity = measure(classifier, data["test_x"], data["test_y"], data["keras_probs"], desc=f"parity {fmt}")
        entry.update(bytes=partial.stat().st_size, sha256=sha256_of(partial), parity=parity.as_dict(),
                     input=quant(classifier.input_details), output=quant(classifier.output_details),
                     latency_ms_per_face=round(median_latency_ms(classifier, data["test_x"][0]), 3),
                     threads=THREADS, loaded_by=classifier.runtime,
                     runtimes=[classifier.runtime] + KNOWN_RUNTIMES[fmt])
        why = failures(parity, gate)
    except (ModelError, RuntimeError, ValueError) as exc:
        why = [f"{type(exc).__name__}: {exc}"]
    if why:
        partial.unlink(missing_ok=True)
        entry["refused"] = "; ".join(why)
        log.error("%s refused: %s", fmt, entry["refused"])
    else:
        partial.replace(final)
        entry["accepted"] = True
    return entry


def summary_table(formats: dict) -> str:
    rows = [f"{'format':8s} {'MB':>7s} {'agree':>8s} {'acc':>7s} {'drop':>6s} {'ms/face':>8s}  accepted"]
    for fmt, e in formats.items():
        p = e.get("parity", {})
        rows.append(f"{fmt:8s} {e.get('bytes', 0) / 1e6:7.2f} {p.get('agreement', 0):8.2%} "
                    f"{p.get('accuracy', 0):7.2%} {p.get('drop_points', 0):6.2f} "
                    f"{e.get('latency_ms_per_face', float('nan')):8.2f}  "
                    f"{'yes' if e['accepted'] else 'NO: ' + e.get('refused', '')}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out_dir = args.model.parent
    missing = [p for p in (args.model, out_dir / "labels.txt", out_dir / "split.json") if not p.is_file()]
    if missing:
        if (out_dir / "card.json").is_file():
            # An exported model (the bundled one, say): training into it would replace it.
            log.error("missing %s: %s holds an exported model without its training run; train "
                      "into a new folder (python -m train --out models/NAME, or make train "
                      "NAME=NAME) and export that", ", ".join(map(str, missing)), out_dir)
        else:
            log.error("missing %s: run 'python -m train --out %s' first",
                      ", ".join(map(str, missing)), out_dir)
        return 2

    import keras

    from train.data import read_items, read_split_images

    model = keras.models.load_model(args.model)
    classes = out_dir.joinpath("labels.txt").read_text().split()
    size = int(model.input_shape[1])
    name = out_dir.name
    split = json.loads((out_dir / "split.json").read_text())
    if split["classes"] != classes:
        log.error("labels.txt and split.json disagree on the classes; re-run training")
        return 2
    alarm, masked = alarm_labels({"classes": classes, **(
        {"masked_labels": args.masked_labels} if args.masked_labels is not None else {})})
    try:
        rule = AlarmRule(tuple(classes), tuple(args.alarm_labels or alarm), masked)
    except ValueError as exc:
        log.error("--%s", exc.args[0].replace("_", "-", 1))
        return 2
    test_x, test_y, _ = read_split_images(out_dir / "split.json", "test", size)
    # Calibrate on the training split only, never on what the gate measures.
    rng = np.random.default_rng(args.seed)
    pick = rng.permutation(len(split["train"]))[:args.calibration]
    calibration, _ = read_items([split["train"][i] for i in pick], classes, size, "load calibration")
    keras_probs = model.predict(test_x.astype(np.float32), batch_size=32, verbose=0)
    data = {"test_x": test_x, "test_y": test_y, "keras_probs": keras_probs, "calibration": calibration}

    metrics_path = out_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    formats = {fmt: export_format(model, fmt, name, out_dir, classes, size, data, gate_for(fmt, args))
               for fmt in args.formats}
    card = {
        "schema": SCHEMA_VERSION,
        "name": name,
        "classes": classes,
        "alarm_labels": list(rule.alarm),
        "masked_labels": list(rule.masked),
        "input": {"size": size, "dtype": "uint8 RGB pixels 0..255 (float32 files take the same "
                  "values as float)", "color": "RGB",
                  "preprocessing": "in the graph (first layer of the model)",
                  "crop": "edge.shared.crop: square, margin 0.2 of the longer side, clipped"},
        "backbone": metrics.get("settings", {}).get("backbone", "unknown"),
        "training": {"data": metrics.get("settings", {}).get("data"), "sizes": metrics.get("sizes"),
                     "audit": {k: v for k, v in metrics.get("audit", {}).items() if k != "skipped"},
                     "settings": metrics.get("settings")},
        "held_out_keras": metrics.get("held_out"),
        "calibration_images": int(len(calibration)),
        "formats": formats,
        "versions": {d: importlib.metadata.version(d) for d in ("tensorflow", "keras", "ai-edge-litert")},
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    validate_card(card)
    (out_dir / "card.json").write_text(json.dumps(card, indent=1))
    print("\n" + summary_table(formats))
    print(f"\nwrote {out_dir / 'card.json'}")
    refused = [f for f, e in formats.items() if not e["accepted"]]
    if refused:
        print(f"refused: {', '.join(refused)} (see 'refused' in card.json)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
