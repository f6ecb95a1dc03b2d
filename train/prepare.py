"""Turn Pascal-VOC annotated photos into class folders of face crops.

    python -m train.prepare --voc ../shared/data/scenes --out /tmp/scene-faces

Each box is cut with the edge runtime's own crop rule (square, margin, clipped), so the
model trains on faces framed exactly as the detector will frame them on the Pi.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from edge.crop import DEFAULT_MARGIN, crop_face
from edge.voc import load_scenes
from train.data import decode_rgb


def prepare(voc_dir: Path, out_dir: Path, margin: float = DEFAULT_MARGIN, min_size: int = 32,
            labels: set[str] | None = None, progress: bool = True) -> dict:
    """Write ``out_dir/<label>/<image>_<n>.png`` crops; return counts of what was kept and why not.

    ``labels`` keeps only those classes (None: all of them).
    """
    kept, too_small, other, unreadable = Counter(), Counter(), Counter(), []
    for scene in tqdm(load_scenes(voc_dir), desc="crop", unit="photo", disable=not progress):
        try:
            frame, _ = decode_rgb(scene.image)
        except ValueError as exc:
            unreadable.append({"path": str(scene.image), "reason": str(exc)})
            continue
        for n, face in enumerate(scene.faces):
            if labels is not None and face.label not in labels:
                other[face.label] += 1
                continue
            if min(face.box[2:]) < min_size:
                too_small[face.label] += 1
                continue
            crop = crop_face(frame, face.box, margin)
            target = out_dir / face.label / f"{scene.image.stem}_{n}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(crop).save(target)  # PNG: no second round of JPEG loss
            kept[face.label] += 1
    summary = {"voc": str(voc_dir), "margin": margin, "min_size": min_size,
               "kept": dict(kept), "too_small": dict(too_small), "other_labels": dict(other), "unreadable": unreadable}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "prepare.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.prepare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--voc", required=True, type=Path, help="folder with images/ and annotations/")
    p.add_argument("--out", required=True, type=Path, help="where the class folders go")
    p.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                   help="grown on every side, as a fraction of the box's longer side")
    p.add_argument("--min-size", type=int, default=32, help="skip faces narrower or shorter than this")
    p.add_argument("--labels", default=None,
                   help="comma-separated classes to keep, e.g. with_mask,without_mask (default: all)")
    args = p.parse_args(argv)
    labels = set(args.labels.split(",")) if args.labels else None
    try:
        summary = prepare(args.voc, args.out, args.margin, args.min_size, labels)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for label in sorted(set(summary["kept"]) | set(summary["too_small"])):
        print(f"{label:24s} kept {summary['kept'].get(label, 0):5d}   "
              f"smaller than {args.min_size}px {summary['too_small'].get(label, 0):5d}")
    for label, count in summary["other_labels"].items():
        print(f"{label:24s} left out {count:5d} (not in --labels)")
    for item in summary["unreadable"]:
        print(f"unreadable: {item['path']}: {item['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
