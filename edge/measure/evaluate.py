"""``python -m edge eval``: how good is a model, through the code that runs on the Pi.

``--faces DIR`` — face crops in one sub-folder per class (``DIR/with_mask/*.jpg`` …), through
the same :class:`~edge.classifier.Classifier`: accuracy, per-class precision / recall / F1
and the confusion matrix.

``--scenes DIR`` — whole photos with Pascal-VOC face boxes, through the whole pipeline
(configured detector, crop margin, classifier and the tracker's without_mask threshold).
With ``--split FILE`` only the photos of one part (``--part``, by default ``eval``: the
photos held out from training). Each photo is shown in a ``--frame`` (640x480) at its own
pixel size, as the camera would give it (``edge.measure.voc.in_frame``). Reported:

* detection recall and precision at IoU ≥ 0.5 — for all faces, and for faces at least
  ``--min-face`` px wide. In the second column small faces are *ignored*, not counted
  against the detector: a detection matched to a small face is neither right nor wrong,
  and an unmatched detection counts as a false face only if it is that wide itself;
* classification accuracy on the matched faces whose true class the model knows;
* end-to-end without_mask recall (of the unmasked faces, how many were found *and*
  flagged, p ≥ threshold) and precision (of the flagged detections, how many are
  unmasked faces). A flagged ``mask_weared_incorrect`` face is left out of precision —
  the model has no such class, and flagging one is arguably right.

Both print a table and, with ``--json FILE``, write the numbers.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.boxes import match
from edge.config import Config
from edge.crop import crop_face
from edge.measure import MeasureError
from edge.measure.detection import IOU
from edge.measure.voc import Scene, framed, load_scenes, read_rgb
from edge.sources.images import EXTENSIONS
from edge.tracker import VIOLATION_LABEL


def _progress(items, desc: str):
    """A progress bar on a terminal (tqdm is in the edge extras); plain iteration otherwise."""
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, disable=None, file=sys.stderr, leave=False)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


# --- face crops -----------------------------------------------------------------------
def evaluate_faces(classifier, folder: Path, limit: int | None = None) -> dict:
    """Classify every image under ``folder/<class>/``; return counts and metrics."""
    labels = list(classifier.labels)
    if not Path(folder).is_dir():
        raise MeasureError(f"{folder} is not a folder: give --faces a folder with one sub-folder "
                           f"of face crops per class of the model ({', '.join(labels)})")
    class_dirs = sorted(p for p in Path(folder).iterdir() if p.is_dir())
    unknown = [p.name for p in class_dirs if p.name not in labels]
    if not class_dirs or unknown:
        raise MeasureError(f"{folder}: needs one sub-folder per class of the model "
                           f"({', '.join(labels)})"
                           + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    items = [(p, labels.index(d.name)) for d in class_dirs for p in sorted(d.iterdir())
             if p.suffix.lower() in EXTENSIONS]
    items = items[:limit] if limit else items
    if not items:
        raise MeasureError(f"{folder}: no images ({', '.join(sorted(EXTENSIONS))}) in its class "
                           "folders")
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    skipped = 0
    for path, truth in _progress(items, "faces"):
        try:
            face = read_rgb(path)
        except FileNotFoundError:
            skipped += 1
            continue
        confusion[truth, int(np.argmax(classifier.classify([face])[0]))] += 1
    if skipped == len(items):
        raise MeasureError(f"{folder}: none of its {skipped} images could be read")
    per_class = {}
    for i, label in enumerate(labels):
        tp, predicted, actual = confusion[i, i], confusion[:, i].sum(), confusion[i, :].sum()
        precision, recall = _ratio(tp, predicted), _ratio(tp, actual)
        f1 = (2 * precision * recall / (precision + recall)
              if precision and recall else (0.0 if actual else None))
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1,
                            "support": int(actual)}
    total = int(confusion.sum())
    return {"kind": "faces", "dir": str(folder), "model": str(classifier.model.path),
            "images": total, "unreadable": skipped, "labels": labels,
            "accuracy": _ratio(int(np.trace(confusion)), total),
            "per_class": per_class, "confusion": confusion.tolist()}


def faces_table(r: dict) -> str:
    width = max(len(label) for label in r["labels"]) + 2
    lines = [f"{r['images']} faces from {r['dir']}, model {r['model']}",
             f"accuracy {_fmt(r['accuracy'])}", "",
             f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for label, m in r["per_class"].items():
        lines.append(f"{label:<{width}}{_fmt(m['precision']):>10}{_fmt(m['recall']):>10}"
                     f"{_fmt(m['f1']):>10}{m['support']:>10}")
    lines += ["", "confusion (rows: true, columns: predicted)",
              " " * width + "".join(f"{label[:14]:>15}" for label in r["labels"])]
    for label, row in zip(r["labels"], r["confusion"]):
        lines.append(f"{label:<{width}}" + "".join(f"{v:>15}" for v in row))
    return "\n".join(lines)


# --- whole photos ---------------------------------------------------------------------
@dataclass
class _Truth:
    label: str
    width: int
    predicted: str | None = None     # the classifier's label for the matched detection
    flagged: bool = False            # that detection's p(without_mask) >= threshold


@dataclass
class _Detection:
    width: int
    flagged: bool
    truth: _Truth | None = None


def collect_scenes(config: Config, detector, classifier, scenes: list[Scene],
                   frame: tuple[int, int] | None) -> tuple[list[_Truth], list[_Detection], int]:
    """Run detector and classifier on every photo, each shown ``in_frame``; pair detections
    with true faces. Returns them and the number of photos read."""
    violation = list(classifier.labels).index(VIOLATION_LABEL)
    truths, detections, images = [], [], 0
    for scene, image in framed(_progress(scenes, "scenes"), frame):
        images += 1
        faces = detector.detect(image)
        probs = classifier.classify([crop_face(image, f.box, config.model.margin)
                                     for f in faces])
        scene_truths = [_Truth(a.label, a.box[2]) for a in scene.faces]
        scene_dets = [_Detection(f.w, bool(p[violation] >= config.tracker.threshold))
                      for f, p in zip(faces, probs)]
        for d, t in match([f.box for f in faces], [a.box for a in scene.faces], IOU):
            det, truth = scene_dets[d], scene_truths[t]
            det.truth = truth
            truth.predicted = classifier.labels[int(np.argmax(probs[d]))]
            truth.flagged = det.flagged
        truths += scene_truths
        detections += scene_dets
    return truths, detections, images


def scene_metrics(truths: list[_Truth], detections: list[_Detection], labels,
                  min_width: int = 0) -> dict:
    """Detection, classification and end-to-end numbers, ignoring faces under ``min_width``."""
    faces = [t for t in truths if t.width >= min_width]
    found = [t for t in faces if t.predicted is not None]
    counted = [d for d in detections
               if (d.truth.width if d.truth else d.width) >= min_width]
    known = [t for t in found if t.label in labels]
    unmasked = [t for t in faces if t.label == VIOLATION_LABEL]
    flagged = [d for d in counted if d.flagged
               and not (d.truth and d.truth.label not in labels)]
    return {
        "faces": len(faces), "detections": len(counted), "matched": len(found),
        "detection_recall": _ratio(len(found), len(faces)),
        "detection_precision": _ratio(len(found), len(counted)),
        "classification_accuracy": _ratio(sum(t.predicted == t.label for t in known), len(known)),
        "classified": len(known),
        "without_mask_faces": len(unmasked),
        "without_mask_recall": _ratio(sum(t.flagged for t in unmasked), len(unmasked)),
        "flagged": len(flagged),
        "without_mask_precision": _ratio(sum(d.truth is not None and d.truth.label == VIOLATION_LABEL
                                             for d in flagged), len(flagged)),
    }


def evaluate_scenes(config: Config, detector, classifier, folder: Path, min_face: int = 32,
                    limit: int | None = None, split: Path | None = None, part: str = "eval",
                    frame: tuple[int, int] | None = (640, 480)) -> dict:
    """The whole pipeline on the photos of ``folder`` (with ``split``: those of ``part``),
    each shown in a ``frame`` as the camera would give it (None: as the photo is)."""
    scenes = load_scenes(folder, split, part if split else None)
    scenes = scenes[:limit] if limit else scenes
    truths, detections, images = collect_scenes(config, detector, classifier, scenes, frame)
    if not images:
        raise MeasureError(f"{folder}: none of its {len(scenes)} photos could be read")
    labels = tuple(classifier.labels)
    return {"kind": "scenes", "dir": str(folder), "model": str(classifier.model.path),
            "split": str(split) if split else None, "part": part if split else "all",
            "frame": list(frame) if frame else "native",
            "detector": config.detector.name, "detector_params": config.detector.params,
            "threshold": config.tracker.threshold, "iou": IOU, "images": images,
            "unreadable": len(scenes) - images, "min_face": min_face,
            "all": scene_metrics(truths, detections, labels),
            f"min{min_face}": scene_metrics(truths, detections, labels, min_face)}


_SCENE_ROWS = (("faces (true boxes)", "faces"), ("detections", "detections"),
               ("detection recall", "detection_recall"),
               ("detection precision", "detection_precision"),
               ("classification accuracy", "classification_accuracy"),
               ("without_mask faces", "without_mask_faces"),
               ("without_mask recall", "without_mask_recall"),
               ("without_mask precision", "without_mask_precision"))


def scenes_table(r: dict) -> str:
    big = f"min{r['min_face']}"
    which = f"the {r['part']} part ({r['split']}) of " if r["split"] else ""
    frame = "x".join(map(str, r["frame"])) + " frames" if r["frame"] != "native" else "as they are"
    lines = [f"{r['images']} photos, {which}{r['dir']}, in {frame}; detector {r['detector']}, "
             f"model {r['model']}, IoU >= {r['iou']}, without_mask when p >= {r['threshold']}",
             "",
             f"{'':<26}{'all faces':>12}{'>= ' + str(r['min_face']) + ' px':>12}"]
    for title, key in _SCENE_ROWS:
        lines.append(f"{title:<26}{_fmt(r['all'][key]):>12}{_fmt(r[big][key]):>12}")
    return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main(config: Config, args) -> int:
    from edge.pipeline import build_classifier, build_detector
    classifier = build_classifier(config)
    if args.faces:
        result = evaluate_faces(classifier, args.faces, args.limit)
        print(faces_table(result))
    else:
        result = evaluate_scenes(config, build_detector(config), classifier, args.scenes,
                                 args.min_face, args.limit, args.split, args.part, args.frame)
        print(scenes_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0
