"""Turn Pascal-VOC annotated photos into class folders of face crops.

    python -m train.prepare --voc ../shared/data/scenes --split splits/scenes.json \\
        --out build/scene-faces

Each face is cut with the edge runtime's own crop rule (square, margin, clipped), from the
photo shown as the camera would frame it (``edge.measure.voc.in_frame``), exactly as
``edge eval --scenes`` cuts it. Which box is cut (``--boxes``):

- ``detector`` (default): the configured detector (``--config``, else the shipped one) runs
  on the photo, and each detection that matches an annotated face at IoU >= 0.5 is cut
  with that face's class. The classifier then learns from the boxes the Pi will hand it —
  the detector's own framing, offsets and all — and faces the detector misses are not
  trained on (they never reach the classifier on the Pi either).
- ``annotations``: the annotated box itself.

With ``--split`` only the photos of the split's ``train`` part are used, so ``edge eval
--split`` scores photos none of whose faces were trained on.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from edge.boxes import match
from edge.config import ConfigError, load_config
from edge.crop import crop_face
from edge.measure import MeasureError
from edge.measure.detection import IOU
from edge.measure.voc import framed, load_scenes, parse_frame_size


def prepare(voc_dir: Path, out_dir: Path, margin: float, min_size: int = 32,
            labels: set[str] | None = None, progress: bool = True, *, detector=None,
            split: Path | None = None, frame: tuple[int, int] | None = (640, 480)) -> dict:
    """Write ``out_dir/<label>/<image>_<n>.png`` crops (``n``: the face's index in its
    annotation); return counts of what was kept and why not.

    ``detector`` None cuts the annotated boxes; otherwise its matched detections.
    ``labels`` keeps only those classes (None: all of them); ``split`` only its train photos.
    """
    scenes = load_scenes(voc_dir, split, "train" if split else None)
    kept, too_small, other, missed = Counter(), Counter(), Counter(), Counter()
    unmatched = photos = 0
    for scene, image in framed(tqdm(scenes, desc="crop", unit="photo", disable=not progress),
                               frame):
        photos += 1
        boxes = {n: face.box for n, face in enumerate(scene.faces)}
        if detector is not None:
            found = [face.box for face in detector.detect(image)]
            pairs = match(found, [face.box for face in scene.faces], IOU)
            unmatched += len(found) - len(pairs)
            boxes = {n: found[d] for d, n in pairs}
        for n, face in enumerate(scene.faces):
            if labels is not None and face.label not in labels:
                other[face.label] += 1
            elif min(face.box[2:]) < min_size:
                too_small[face.label] += 1
            elif n not in boxes:
                missed[face.label] += 1
            else:
                target = out_dir / face.label / f"{scene.image.stem}_{n}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                # PNG: no second round of JPEG loss.
                Image.fromarray(crop_face(image, boxes[n], margin)).save(target)
                kept[face.label] += 1
    summary = {"voc": str(voc_dir), "split": str(split) if split else None,
               "part": "train" if split else "all", "photos": photos,
               "unreadable": len(scenes) - photos,
               "boxes": "annotations" if detector is None else "detector",
               "frame": list(frame) if frame else "native", "margin": margin,
               "min_size": min_size, "kept": dict(kept), "too_small": dict(too_small),
               "missed_by_detector": dict(missed), "unmatched_detections": unmatched,
               "other_labels": dict(other)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "prepare.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.prepare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--voc", required=True, type=Path, help="folder with images/ and annotations/")
    p.add_argument("--out", required=True, type=Path, help="where the class folders go")
    p.add_argument("--split", type=Path,
                   help="a photo split (splits/scenes.json): cut only its train photos")
    p.add_argument("--boxes", choices=("detector", "annotations"), default="detector",
                   help="cut the configured detector's matched boxes (default) or the annotated ones")
    p.add_argument("--config", type=Path,
                   help="edge config whose detector and model.margin are used (default: shipped)")
    p.add_argument("--margin", type=float, default=None,
                   help="grown on every side, as a fraction of the box's longer side "
                        "(default: the config's model.margin)")
    p.add_argument("--frame", type=parse_frame_size, default="640x480", metavar="WxH",
                   help="show each photo in a frame of this size, as edge eval does; native: as is")
    p.add_argument("--min-size", type=int, default=32, help="skip faces narrower or shorter than this")
    p.add_argument("--labels", default=None,
                   help="comma-separated classes to keep, e.g. with_mask,without_mask (default: all)")
    args = p.parse_args(argv)
    labels = set(args.labels.split(",")) if args.labels else None
    try:
        config = load_config(args.config)
        detector = None
        if args.boxes == "detector":
            from edge.pipeline import build_detector
            detector = build_detector(config)
        margin = config.model.margin if args.margin is None else args.margin
        summary = prepare(args.voc, args.out, margin, args.min_size, labels, detector=detector,
                          split=args.split, frame=args.frame)
    except (ConfigError, MeasureError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.split:
        print("note: crops from every photo; edge eval --scenes on these photos would score "
              "faces the model trained on (give --split)", file=sys.stderr)
    what = "annotated boxes" if detector is None else f"{config.detector.name} detections"
    print(f"{summary['photos']} photos ({summary['part']}), {what}, margin {margin}")
    seen = set(summary["kept"]) | set(summary["too_small"]) | set(summary["missed_by_detector"])
    for label in sorted(seen):
        line = (f"{label:24s} kept {summary['kept'].get(label, 0):5d}   "
                f"smaller than {args.min_size}px {summary['too_small'].get(label, 0):5d}")
        if detector is not None:
            line += f"   missed by the detector {summary['missed_by_detector'].get(label, 0):5d}"
        print(line)
    for label, count in summary["other_labels"].items():
        print(f"{label:24s} left out {count:5d} (not in --labels)")
    if detector is not None:
        print(f"detections matching no annotated face (not cut): {summary['unmatched_detections']}")
    if summary["unreadable"]:
        print(f"unreadable photos skipped: {summary['unreadable']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
