"""Cut face crops, the way the Pi cuts them, into class folders for training.

    python -m train.prepare --voc ../shared/data/scenes --split splits/scenes.json \\
        --out build/faces/scenes
    python -m train.prepare --folders ../shared/data/prajna --out build/faces/prajna

Each face is cut with the edge runtime's own crop rule (square, margin, black past the
frame's edge), so the classifier trains on what it will be given. Beside the class folders,
``manifest.csv`` (``train.manifest``) records each crop's group, source, and the detector's
box and five landmarks in the crop's pixels (for ``train.synth``), and ``prepare.json``
counts what was kept and why not.

``--voc``: Pascal-VOC photos, each shown as the camera would frame it
(``facedata.voc.in_frame``), exactly as ``edge eval --scenes`` cuts it. Which box is
cut (``--boxes``):

- ``detector`` (default): the configured detector (``--config``, else the shipped one) runs
  on the photo, and each detection that matches an annotated face at IoU >= 0.5 is cut
  with that face's class. The classifier then learns from the boxes the Pi will hand it —
  the detector's own framing, offsets and all — and faces the detector misses are not
  trained on (they never reach the classifier on the Pi either).
- ``annotations``: the annotated box itself.

With ``--split`` only the photos of the split's ``train`` part are used, so ``edge eval
--split`` scores photos none of whose faces were trained on. Crops of one photo share a
group: a split never puts one photo's people on both sides.

``--folders``: class folders of one-person pictures (Prajna Bhandary's set): the detector's
largest face in each is cut, so these pictures are framed as the Pi frames a face too,
rather than fed whole. A picture whose masked and unmasked versions are both there (the
same photo with a mask pasted on: same size, same top third) is one person: both get the
same group. A crop's ``photo`` is its picture's ``<class>/<file>``, the name
``python -m train --exclude-photos`` and ``splits/prajna.json`` use.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from edge.config import ConfigError, load_config
from edge.detectors import FrameRefused
from edge.shared.boxes import match
from edge.shared.crop import crop_face, square_box
from edge.shared.images import UnreadableImage, read_rgb
from facedata import DataError
from facedata.scoring import IOU
from facedata.voc import framed, load_scenes, parse_frame_size
from train import manifest
from train.data import IMAGE_SUFFIXES

# Twins: a top-third hash (8x16 bits) this close between two same-sized pictures of
# different classes.
TWIN_BITS = 6


def _in_crop(face, box, margin: float) -> tuple[tuple, tuple | None]:
    """A detector face's box and landmarks moved into the pixels of its crop."""
    x0, y0, _, _ = square_box(box, margin)
    x, y, w, h = box
    landmarks = None
    if getattr(face, "landmarks", None):
        landmarks = tuple((px - x0, py - y0) for px, py in face.landmarks)
    return (x - x0, y - y0, w, h), landmarks


def _save(image: np.ndarray, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(target)  # PNG: no second round of JPEG loss


def prepare(voc_dir: Path, out_dir: Path, margin: float, min_size: int = 32,
            labels: set[str] | None = None, progress: bool = True, *, detector=None,
            split: Path | None = None, frame: tuple[int, int] | None = (640, 480)) -> dict:
    """Write ``out_dir/<label>/<image>_<n>.png`` crops (``n``: the face's index in its
    annotation) and their manifest; return counts of what was kept and why not.

    ``detector`` None cuts the annotated boxes; otherwise its matched detections.
    ``labels`` keeps only those classes (None: all of them); ``split`` only its train photos.
    """
    scenes = load_scenes(voc_dir, split, "train" if split else None)
    kept, too_small, other, missed = Counter(), Counter(), Counter(), Counter()
    unmatched = photos = 0
    rows = []
    for scene, image in framed(tqdm(scenes, desc="crop", unit="photo", disable=not progress),
                               frame):
        photos += 1
        found = {n: face for n, face in enumerate(scene.faces)}
        if detector is not None:
            try:
                faces = detector.detect(image)
            except FrameRefused:
                faces = []
            pairs = match([f.box for f in faces], [face.box for face in scene.faces], IOU)
            unmatched += len(faces) - len(pairs)
            found = {n: faces[d] for d, n in pairs}
        for n, face in enumerate(scene.faces):
            if labels is not None and face.label not in labels:
                other[face.label] += 1
            elif min(face.box[2:]) < min_size:
                too_small[face.label] += 1
            elif n not in found:
                missed[face.label] += 1
            else:
                target = out_dir / face.label / f"{scene.image.stem}_{n}.png"
                _save(crop_face(image, found[n].box, margin), target)
                box, landmarks = _in_crop(found[n], found[n].box, margin)
                rows.append({"file": manifest.relative(target, out_dir), "label": face.label,
                             "group": f"photo:{scene.image.name}",
                             "source": manifest.relative(scene.image, out_dir),
                             "photo": scene.image.name, "box": box, "landmarks": landmarks})
                kept[face.label] += 1
    summary = {"voc": str(voc_dir), "split": str(split) if split else None,
               "part": "train" if split else "all", "photos": photos,
               "unreadable": len(scenes) - photos,
               "boxes": "annotations" if detector is None else "detector",
               "frame": list(frame) if frame else "native", "margin": margin,
               "min_size": min_size, "kept": dict(kept), "too_small": dict(too_small),
               "missed_by_detector": dict(missed), "unmatched_detections": unmatched,
               "other_labels": dict(other)}
    _finish(out_dir, rows, summary)
    return summary


def twin_key(image: np.ndarray) -> tuple[tuple, np.ndarray]:
    """What tells a pasted-mask twin: the picture's size and a hash of its top third."""
    import cv2

    top = cv2.cvtColor(image[: max(1, image.shape[0] // 3)], cv2.COLOR_RGB2GRAY)
    small = cv2.resize(top, (16, 8), interpolation=cv2.INTER_AREA).astype(np.float32)
    return image.shape, (small > small.mean()).ravel()


def twin_groups(items: list[tuple[Path, str, tuple]]) -> dict[Path, str]:
    """``{path: "twin:<name of one of them>"}`` for pictures of different classes that are
    the same photo with the lower face changed (same size, top thirds within TWIN_BITS);
    ``items`` are ``(path, label, twin_key(image))``."""
    by_size: dict[tuple, list] = {}
    for path, label, (shape, key) in items:
        by_size.setdefault(shape, []).append((path, label, key))
    groups = {}
    for same in by_size.values():
        for i, (path, label, key) in enumerate(same):
            for other, other_label, other_key in same[:i]:
                if label != other_label and int((key != other_key).sum()) <= TWIN_BITS:
                    groups[path] = groups.setdefault(other, f"twin:{other.name}")
                    break
    return groups


def class_files(data_dir: Path) -> list[tuple[Path, str]]:
    """``(picture, class)`` for every picture of ``data_dir/<class>/``."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir} is not a folder of class folders (README: Data)")
    return [(p, d.name) for d in sorted(data_dir.iterdir()) if d.is_dir()
            for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]


def prepare_folders(data_dir: Path, out_dir: Path, margin: float, detector,
                    progress: bool = True) -> dict:
    """Write ``out_dir/<label>/<stem>.png``, the detector's largest face of each picture of
    ``data_dir/<label>/``, and the manifest; return counts."""
    files = class_files(data_dir)
    kept, no_face, unreadable = Counter(), Counter(), Counter()
    readable, keys, rows = [], [], []
    for path, label in files:
        try:
            keys.append((path, label, twin_key(read_rgb(path))))
            readable.append((path, label))
        except UnreadableImage:
            unreadable[label] += 1
    twins = twin_groups(keys)
    for path, label in tqdm(readable, desc="crop", unit="img", disable=not progress):
        image = read_rgb(path)
        try:
            faces = detector.detect(image)
        except FrameRefused:       # a picture no detector takes: it holds no face we can cut
            faces = []
        if not faces:
            no_face[label] += 1
            continue
        face = max(faces, key=lambda f: f.w * f.h)
        target = out_dir / label / f"{path.stem}.png"
        _save(crop_face(image, face.box, margin), target)
        box, landmarks = _in_crop(face, face.box, margin)
        name = f"{label}/{path.name}"
        rows.append({"file": manifest.relative(target, out_dir), "label": label,
                     "group": twins.get(path, f"picture:{name}"),
                     "source": manifest.relative(path, out_dir), "photo": name, "box": box,
                     "landmarks": landmarks})
        kept[label] += 1
    summary = {"folders": str(data_dir), "margin": margin, "kept": dict(kept),
               "no_face_found": dict(no_face), "unreadable": dict(unreadable),
               "twins": len(twins)}
    _finish(out_dir, rows, summary)
    return summary


def _finish(out_dir: Path, rows: list[dict], summary: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest.write(out_dir, rows)
    (out_dir / "prepare.json").write_text(json.dumps(summary, indent=1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.prepare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--voc", type=Path, help="folder with images/ and annotations/")
    what.add_argument("--folders", type=Path,
                      help="class folders of one-person pictures: cut each one's largest face")
    p.add_argument("--out", required=True, type=Path, help="where the class folders go")
    p.add_argument("--split", type=Path,
                   help="--voc: a photo split (splits/scenes.json): cut only its train photos")
    p.add_argument("--boxes", choices=("detector", "annotations"), default="detector",
                   help="--voc: cut the configured detector's matched boxes (default) or the "
                        "annotated ones")
    p.add_argument("--config", type=Path,
                   help="edge config whose detector and model.margin are used (default: shipped)")
    p.add_argument("--margin", type=float, default=None,
                   help="grown on every side, as a fraction of the box's longer side "
                        "(default: the config's model.margin)")
    p.add_argument("--frame", type=parse_frame_size, default="640x480", metavar="WxH",
                   help="--voc: show each photo in a frame of this size, as edge eval does; "
                        "native: as is")
    p.add_argument("--min-size", type=int, default=32,
                   help="--voc: skip faces narrower or shorter than this")
    p.add_argument("--labels", default=None,
                   help="--voc: comma-separated classes to keep, e.g. with_mask,without_mask "
                        "(default: all)")
    args = p.parse_args(argv)
    labels = set(args.labels.split(",")) if args.labels else None
    try:
        config = load_config(args.config)
        detector = None
        if args.boxes == "detector" or args.folders:
            from edge.pipeline import build_detector
            detector = build_detector(config)
        margin = config.model.margin if args.margin is None else args.margin
        if args.folders:
            summary = prepare_folders(args.folders, args.out, margin, detector)
        else:
            summary = prepare(args.voc, args.out, margin, args.min_size, labels,
                              detector=detector, split=args.split, frame=args.frame)
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.folders:
        print(f"{args.folders}: the largest {config.detector.name} face of each picture, "
              f"margin {margin}; {summary['twins']} pictures are twins of another class's")
        for label in sorted(set(summary["kept"]) | set(summary["no_face_found"])):
            print(f"{label:24s} kept {summary['kept'].get(label, 0):5d}   "
                  f"no face found {summary['no_face_found'].get(label, 0):5d}")
        return 0
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
