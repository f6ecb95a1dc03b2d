"""Split VOC photos once, by photo, into a training part and a held-out evaluation part.

    python -m facedata.split --scenes ../shared/data/scenes --out splits/scenes.json

Faces from one photo share its people, light and camera, so a split of face crops lets the
evaluation photos leak into training. This split is by photo: ``train.prepare --split``
cuts training crops only from the ``train`` photos and ``edge eval --split`` scores only the
``eval`` ones.

Stratified so that unmasked faces — the few that raise alarms — land on both sides in about
the split's proportion: photos are ordered by how many unmasked faces at least ``--min-face``
px wide they hold, then by their unmasked and their large faces (ties broken by the seeded
shuffle), and every photo where the running total of ``--eval-fraction`` crosses a whole
number goes to ``eval`` (systematic sampling from a seeded start).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

from facedata import DataError
from facedata.voc import PARTS, UNMASKED, WORN_WRONG, Scene, load_scenes


def make_split(scenes: list[Scene], eval_fraction: float = 0.3, seed: int = 42,
               min_face: int = 32) -> dict[str, list[str]]:
    """Photo file names per part, ``{"train": [...], "eval": [...]}``, each sorted."""
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be between 0 and 1, got {eval_fraction}")
    rng = random.Random(seed)
    order = list(scenes)
    rng.shuffle(order)

    order.sort(key=lambda s: _weight(s, min_face), reverse=True)  # stable: the shuffle breaks ties
    parts = {part: [] for part in PARTS}
    total = rng.random()
    for scene in order:
        before = total
        total += eval_fraction
        parts["eval" if int(total) > int(before) else "train"].append(scene.image.name)
    return {part: sorted(names) for part, names in parts.items()}


def make_folds(scenes: list[Scene], photos: list[str], folds: int = 5, seed: int = 42,
               min_face: int = 32) -> list[list[str]]:
    """``photos`` (file names of ``scenes``) dealt into ``folds`` lists for cross-validation
    by photo, stratified as :func:`make_split` is, and first by their faces with a mask worn
    wrong (the rarest alarm: 25 faces of at least 32 px in the shared training photos): each
    run of ``folds`` photos so ordered is shuffled and dealt one to each fold."""
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    wanted = set(photos)
    order = [s for s in scenes if s.image.name in wanted]
    rng = random.Random(seed)
    rng.shuffle(order)
    order.sort(key=lambda s: (_weight(s, min_face, WORN_WRONG), _weight(s, min_face)),
               reverse=True)
    dealt: list[list[str]] = [[] for _ in range(folds)]
    for start in range(0, len(order), folds):
        targets = list(range(folds))
        rng.shuffle(targets)
        for scene, fold in zip(order[start:start + folds], targets):
            dealt[fold].append(scene.image.name)
    return [sorted(names) for names in dealt]


def _weight(scene: Scene, min_face: int, label: str = UNMASKED) -> tuple[int, int, int]:
    """How much of ``label`` a photo holds: its faces of that label at least ``min_face``
    wide, all of them, then its large faces of any label."""
    chosen = [f for f in scene.faces if f.label == label]
    return (sum(f.box[2] >= min_face for f in chosen), len(chosen),
            sum(f.box[2] >= min_face for f in scene.faces))


def counts(scenes: list[Scene], names: list[str], min_face: int = 32) -> dict:
    """Photos and faces per label (all, and at least ``min_face`` px wide) of one part."""
    chosen = [s for s in scenes if s.image.name in set(names)]
    faces = Counter(f.label for s in chosen for f in s.faces)
    large = Counter(f.label for s in chosen for f in s.faces if f.box[2] >= min_face)
    return {"photos": len(chosen), "faces": dict(sorted(faces.items())),
            f"faces_min{min_face}": dict(sorted(large.items()))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m facedata.split", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenes", required=True, type=Path, help="VOC folder: images/, annotations/")
    p.add_argument("--out", required=True, type=Path, help="the split file to write")
    p.add_argument("--eval-fraction", type=float, default=0.3, help="share of photos held out")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--min-face", type=int, default=32,
                   help="unmasked faces at least this wide are the ones balanced first")
    args = p.parse_args(argv)
    try:
        scenes = load_scenes(args.scenes)
        parts = make_split(scenes, args.eval_fraction, args.seed, args.min_face)
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    doc = {
        "about": "VOC photos split by photo: train.prepare --split cuts training crops from "
                 "'train' only, edge eval --split scores 'eval' (held out). Made by "
                 "python -m facedata.split.",
        "scenes": args.scenes.name, "seed": args.seed, "eval_fraction": args.eval_fraction,
        "min_face": args.min_face,
        "counts": {part: counts(scenes, names, args.min_face) for part, names in parts.items()},
        **parts,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    for part in PARTS:
        c = doc["counts"][part]
        large = ", ".join(f"{k} {v}" for k, v in c[f"faces_min{args.min_face}"].items())
        print(f"{part:<6} {c['photos']:4d} photos; faces >= {args.min_face} px: {large}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
