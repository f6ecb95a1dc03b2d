"""Hold out a part of a one-person picture set, by person, once: ``splits/prajna.json``.

    python -m train.holdout --folders ../shared/data/prajna --out splits/prajna.json

Like the photo split of the scenes (``facedata.split``), this fixes which pictures no
shipped model trains on, so that ``edge eval --zoo`` can put masks on unmasked faces the
model never saw. A person is a group: exact and near duplicates (``train.data``) and
pasted-mask twins (``train.prepare.twin_groups``) stay on one side. The split is
stratified by class and seeded (``train.data.split_indices``). Names are ``<class>/<file>``,
as ``train.prepare --folders`` records them in its manifest's ``photo`` column, so that
``python -m train --exclude-photos splits/prajna.json`` leaves them out, synthetic masks on
them included.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from edge.shared.images import UnreadableImage, read_rgb
from facedata import DataError
from train import data
from train.prepare import class_files, twin_groups, twin_key


def make_holdout(folder: Path, fraction: float = 0.25, seed: int = 42) -> dict:
    files = class_files(folder)
    keys = []
    for path, label in files:
        try:
            keys.append((path, label, twin_key(read_rgb(path))))
        except UnreadableImage:
            continue
    twins = {p.resolve(): g for p, g in twin_groups(keys).items()}
    dataset = data.load_dataset([folder], 32, progress=False, groups=twins)
    train, held = data.split_indices(dataset.labels, dataset.groups, fraction, seed)

    def names(idx):
        return sorted(f"{dataset.classes[dataset.labels[i]]}/{dataset.paths[i].name}" for i in idx)

    parts = {"train": names(train), "eval": names(held)}
    return {"about": "One-person pictures held out by person (twins and duplicates together): "
                     "no shipped model trains on 'eval'; edge eval --zoo masks its unmasked "
                     "faces. Made by python -m train.holdout.",
            "folders": Path(folder).name, "fraction": fraction, "seed": seed,
            "counts": {part: dict(Counter(n.split("/")[0] for n in names_))
                       for part, names_ in parts.items()},
            **parts}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.holdout", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--folders", required=True, type=Path, help="class folders of pictures")
    p.add_argument("--out", required=True, type=Path, help="the split file to write")
    p.add_argument("--fraction", type=float, default=0.25, help="share held out")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    try:
        doc = make_holdout(args.folders, args.fraction, args.seed)
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    for part in ("train", "eval"):
        print(f"{part:<6} " + ", ".join(f"{k} {v}" for k, v in sorted(doc["counts"][part].items())))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
