"""Compare exported models on their own held-out splits, as the Pi would run them.

    python -m export.compare models/a models/b … [--json FILE]

Per model: held-out accuracy of the int8 file (float32 where int8 was refused) through the
edge classifier, split by the
``--data`` folder each test image came from; without_mask recall; int8 parity with Keras;
int8 size; ms per face for int8 and float32 at 2 threads, timed here (a refused int8 file no
longer exists, so its time is the one export measured, marked ``*``); GMACs of one face.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge.shared.card import load_card
from edge.shared.classifier import Classifier
from export.parity import median_latency_ms
from train.data import read_split_images


def source_of(path: str, data_dirs: list[str]) -> str:
    resolved = [str(Path(d).resolve()) for d in data_dirs]
    return next((Path(d).name for d, r in zip(data_dirs, resolved) if path.startswith(r + "/")), "other")


def compare_one(model_dir: Path) -> dict:
    import keras

    from train.efficientnet_lite import count_macs

    card = load_card(model_dir)
    split = json.loads((model_dir / "split.json").read_text())
    size = card["input"]["size"]
    x, y, classes = read_split_images(model_dir / "split.json", "test", size, progress=False)
    sources = np.array([source_of(item["path"], split["settings"].get("data", [])) for item in split["test"]])
    # The file the Pi would run: int8 when its gate passed, else the float32 file.
    fmt = "int8" if card["formats"].get("int8", {}).get("accepted") else "float32"
    clf = Classifier(model_dir, fmt=fmt)
    pred = clf.predict(x).argmax(1)
    row = {"model": card["name"], "backbone": card["backbone"], "size": size, "format": fmt,
           "weights": split["settings"].get("weights"),
           "accuracy": float((pred == y).mean()), "test_images": int(len(y))}
    for source in sorted(set(sources)):
        sel = sources == source
        row[f"accuracy_{source}"] = float((pred[sel] == y[sel]).mean())
        row[f"count_{source}"] = int(sel.sum())
    if "without_mask" in classes:
        k = classes.index("without_mask")
        row["without_mask_recall"] = float((pred[y == k] == k).mean())
    int8 = card["formats"]["int8"]
    row["int8_agreement"] = int8["parity"]["agreement"]
    row["int8_accepted"] = int8["accepted"]
    row["int8_mb"] = int8["bytes"] / 1e6
    # Time both files here, back to back, so rows compare under the same load. A refused int8
    # file was deleted by export, so only its export-time figure (same 2 threads) remains.
    row["ms_int8"] = median_latency_ms(clf, x[0]) if fmt == "int8" else int8["latency_ms_per_face"]
    if card["formats"].get("float32", {}).get("accepted"):
        row["ms_float32"] = median_latency_ms(Classifier(model_dir, fmt="float32"), x[0])
    row["gmacs"] = count_macs(keras.models.load_model(model_dir / "model.keras")) / 1e9
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    rows = [compare_one(m) for m in args.models]
    sources = sorted({k[len("accuracy_"):] for r in rows for k in r if k.startswith("accuracy_")})
    head = (f"{'model':14s} {'backbone':18s} {'size':>4s} {'acc':>6s} "
            + " ".join(f"{s[:10]:>10s}" for s in sources)
            + f" {'fmt':>7s} {'noMaskRec':>9s} {'int8agr':>8s} {'MB':>5s} {'ms int8':>7s} {'ms f32':>7s} {'GMAC':>5s}")
    print(head)
    for r in rows:
        print(f"{r['model']:14s} {r['backbone'] + ('' if r['weights'] else ' (none)'):18s} {r['size']:4d} "
              f"{r['accuracy']:6.1%} " + " ".join(f"{r.get('accuracy_' + s, float('nan')):10.1%}" for s in sources)
              + f" {r['format']:>7s} {r.get('without_mask_recall', float('nan')):9.1%}"
              f" {r['int8_agreement']:7.1%}{'' if r['int8_accepted'] else '!'}"
              f" {r['int8_mb']:5.1f} {r['ms_int8']:6.2f}{' ' if r['int8_accepted'] else '*'}"
              f" {r.get('ms_float32', float('nan')):7.2f} {r['gmacs']:5.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
