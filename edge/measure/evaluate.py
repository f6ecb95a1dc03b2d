"""``python -m edge eval``: how good is a model, through the code that runs on the Pi.

``--faces DIR`` — face crops in one sub-folder per class (``DIR/with_mask/*.jpg`` …), through
the same :class:`~edge.shared.classifier.Classifier`: accuracy, per-class precision / recall / F1
and the confusion matrix.

``--faces DIR`` may hold any of the model's classes (``with_mask/`` and
``mask_weared_incorrect/`` only, say): each folder's recall is reported, and precision over
the folders given.

``--scenes DIR`` — whole photos with Pascal-VOC face boxes, through the whole pipeline
(configured detector, quality gate, crop margin, classifier, and the alarm rule at the
tracker's threshold: ``edge.alarm``).
With ``--split FILE`` only the photos of one part (``--part``, by default ``eval``: the
photos held out from training). Each photo is shown in a ``--frame`` (640x480) at its own
pixel size, as the camera would give it (``facedata.voc.in_frame``). Reported:

* detection recall and precision at IoU ≥ 0.5 — for all faces, and for faces at least
  ``--min-face`` px wide. In the second column small faces are *ignored*, not counted
  against the detector: a detection matched to a small face is neither right nor wrong,
  and an unmatched detection counts as a false face only if it is that wide itself;
* classification accuracy on the matched faces whose true class the model knows, and their
  confusion matrix;
* per true label: faces, found, judged (past the gate) and alarmed;
* end-to-end alarm recall (of the faces whose true label is an alarm label, how many were
  found, judged *and* raised the alarm) and precision (of the alarms, how many are such
  faces). A face whose true label the model lacks (``mask_weared_incorrect`` for a
  two-class model) is left out of precision — flagging one is arguably right
  (``facedata.scoring.scene_metrics``).

Both print a table and, with ``--json FILE``, write the numbers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

import numpy as np

from edge.config import Config
from edge.detectors import FrameRefused
from edge.quality import Gate, measure
from edge.shared.boxes import match
from edge.shared.crop import crop_face
from edge.shared.images import UnreadableImage, read_rgb
from edge.sources.images import EXTENSIONS
from facedata import DataError
from facedata.scoring import IOU, Observed, Truth, ratio, scene_metrics
from facedata.voc import Scene, framed, load_scenes

log = logging.getLogger(__name__)


def _progress(items, desc: str):
    """A progress bar on a terminal (tqdm is in the edge extras); plain iteration otherwise."""
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, disable=None, file=sys.stderr, leave=False)


# --- face crops -----------------------------------------------------------------------
def evaluate_faces(classifier, folder: Path, limit: int | None = None) -> dict:
    """Classify every image under ``folder/<class>/``; return counts and metrics."""
    labels = list(classifier.labels)
    if not Path(folder).is_dir():
        raise DataError(f"{folder} is not a folder: give --faces a folder with one sub-folder "
                           f"of face crops per class of the model ({', '.join(labels)})")
    class_dirs = sorted(p for p in Path(folder).iterdir() if p.is_dir())
    unknown = [p.name for p in class_dirs if p.name not in labels]
    if not class_dirs or unknown:
        raise DataError(f"{folder}: needs sub-folders named after the model's classes, any "
                           f"of them ({', '.join(labels)})"
                           + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    items = [(p, labels.index(d.name)) for d in class_dirs for p in sorted(d.iterdir())
             if p.suffix.lower() in EXTENSIONS]
    items = items[:limit] if limit else items
    if not items:
        raise DataError(f"{folder}: no images ({', '.join(sorted(EXTENSIONS))}) in its class "
                           "folders")
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    skipped = 0
    for path, truth in _progress(items, "faces"):
        try:
            face = read_rgb(path)
        except UnreadableImage:
            skipped += 1
            continue
        confusion[truth, int(np.argmax(classifier.classify([face])[0]))] += 1
    if skipped == len(items):
        raise DataError(f"{folder}: none of its {skipped} images could be read")
    per_class = {}
    for i, label in enumerate(labels):
        tp, predicted, actual = confusion[i, i], confusion[:, i].sum(), confusion[i, :].sum()
        precision, recall = ratio(tp, predicted), ratio(tp, actual)
        f1 = (2 * precision * recall / (precision + recall)
              if precision and recall else (0.0 if actual else None))
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1,
                            "support": int(actual)}
    total = int(confusion.sum())
    return {"kind": "faces", "dir": str(folder), "model": str(classifier.model.path),
            "images": total, "unreadable": skipped, "labels": labels,
            "accuracy": ratio(int(np.trace(confusion)), total),
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
def collect_scenes(config: Config, detector, classifier, rule, scenes: list[Scene],
                   frame: tuple[int, int] | None, gate: Gate | None = None
                   ) -> tuple[list[Truth], list[Observed], int]:
    """Run detector, quality gate and classifier on every photo, each shown ``in_frame``;
    pair detections with true faces. Returns them and the number of photos read."""
    gate = gate or Gate()
    truths, detections, images = [], [], 0
    for scene, image in framed(_progress(scenes, "scenes"), frame):
        try:
            faces = detector.detect(image)
        except FrameRefused as exc:
            log.warning("skipping %s: %s", scene.image.name, exc)
            continue
        images += 1
        observed = []
        for face in faces:
            quality = measure(image, face, config.model.margin)
            observed.append(Observed(face.w, unjudged=gate.reason(quality), quality=quality))
        judged = [i for i, o in enumerate(observed) if o.unjudged is None]
        probs = classifier.classify([crop_face(image, faces[i].box, config.model.margin)
                                     for i in judged])
        for i, p in zip(judged, probs):
            observed[i].p = rule.p(p)
            observed[i].label = classifier.labels[int(np.argmax(p))]
        scene_truths = [Truth(a.label, a.box[2]) for a in scene.faces]
        for d, t in match([f.box for f in faces], [a.box for a in scene.faces], IOU):
            observed[d].truth, scene_truths[t].detection = scene_truths[t], observed[d]
        truths += scene_truths
        detections += observed
    return truths, detections, images


def evaluate_scenes(config: Config, detector, classifier, rule, folder: Path,
                    min_face: int = 32, limit: int | None = None, split: Path | None = None,
                    part: str = "eval", frame: tuple[int, int] | None = (640, 480)) -> dict:
    """The whole pipeline on the photos of ``folder`` (with ``split``: those of ``part``),
    each shown in a ``frame`` as the camera would give it (None: as the photo is); ``rule``
    the alarm rule (``edge.pipeline.build_alarm``)."""
    scenes = load_scenes(folder, split, part if split else None)
    scenes = scenes[:limit] if limit else scenes
    gate = config.judge
    truths, detections, images = collect_scenes(config, detector, classifier, rule, scenes,
                                                frame, gate)
    if not images:
        raise DataError(f"{folder}: none of its {len(scenes)} photos could be read")
    threshold = config.tracker.threshold
    return {"kind": "scenes", "dir": str(folder), "model": str(classifier.model.path),
            "split": str(split) if split else None, "part": part if split else "all",
            "frame": list(frame) if frame else "native",
            "detector": config.detector.name,
            "detector_params": dataclasses.asdict(config.detector.params),
            "threshold": threshold, "gate": dataclasses.asdict(gate), "iou": IOU,
            "images": images, "unreadable": len(scenes) - images, "min_face": min_face,
            "alarm_labels": list(rule.alarm),
            "all": scene_metrics(truths, detections, rule, threshold),
            f"min{min_face}": scene_metrics(truths, detections, rule, threshold, min_face)}


_SCENE_ROWS = (("faces (true boxes)", "faces"), ("detections", "detections"),
               ("detection recall", "detection_recall"),
               ("detection precision", "detection_precision"),
               ("unjudged (quality gate)", "unjudged"),
               ("classification accuracy", "classification_accuracy"),
               ("alarm faces (true)", "alarm_faces"),
               ("alarm recall", "alarm_recall"),
               ("alarm precision", "alarm_precision"))


def scenes_table(r: dict) -> str:
    big = f"min{r['min_face']}"
    which = f"the {r['part']} part ({r['split']}) of " if r["split"] else ""
    frame = "x".join(map(str, r["frame"])) + " frames" if r["frame"] != "native" else "as they are"
    lines = [f"{r['images']} photos, {which}{r['dir']}, in {frame}; detector {r['detector']}, "
             f"model {r['model']}, IoU >= {r['iou']}; an alarm when p({' + '.join(r['alarm_labels'])})"
             f" >= {r['threshold']}", "",
             f"{'':<26}{'all faces':>12}{'>= ' + str(r['min_face']) + ' px':>12}"]
    for title, key in _SCENE_ROWS:
        lines.append(f"{title:<26}{_fmt(r['all'][key]):>12}{_fmt(r[big][key]):>12}")
    lines += ["", f"per true label, faces >= {r['min_face']} px: faces, found, judged, alarmed",
              f"{'':<26}{'faces':>8}{'found':>8}{'judged':>8}{'alarmed':>9}{'share':>8}"]
    for label, m in r[big]["per_label"].items():
        lines.append(f"{label:<26}{m['faces']:>8}{m['found']:>8}{m['judged']:>8}"
                     f"{m['alarmed']:>9}{_fmt(m['alarmed_share']):>8}")
    confusion = r[big]["confusion"]
    lines += ["", f"judged faces >= {r['min_face']} px (rows: true, columns: top class)",
              " " * 26 + "".join(f"{label[:14]:>15}" for label in confusion["labels"])]
    for label, row in zip(confusion["labels"], confusion["rows"]):
        lines.append(f"{label:<26}" + "".join(f"{v:>15}" for v in row))
    return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def mask_zoo(config: Config, detector, classifier, rule, args) -> dict:
    """``--zoo``: the mask zoo on the held-out faces (``edge.measure.zoo``), printed."""
    from edge.measure import zoo
    from edge.plugins import plugin

    if not args.split:
        raise DataError("--zoo needs --split: it masks the faces of the held-out photos")
    yunet = detector if config.detector.name == "yunet" else plugin("detector", "yunet").make(
        config.detector.yunet)  # the zoo needs landmarks to fit a mask
    faces = zoo.held_out_faces(yunet, args.scenes, args.split, args.min_face, args.prajna,
                               args.prajna_split)
    if not faces:
        raise DataError("--zoo: no held-out unmasked face was found to put masks on")
    sources = {"from held-out photos": sum(f.kind == "photo" for f in faces),
               "held-out one-person pictures": sum(f.kind == "picture" for f in faces)}
    found = zoo.run_zoo(classifier, rule, faces, args.zoo, config.model.margin,
                        config.tracker.threshold)
    print("\n" + zoo.zoo_table(found, sources))
    return {"masks": str(args.zoo), "sources": sources, "rows": found["masks"],
            "wear": found["wear"]}


def cv_table(doc: dict) -> str:
    """The model folder's ``cv.json`` (``python -m train.cv``): its recipe's figures over
    folds of the training photos, for beside the held-out ones."""
    s = doc["at_chosen"]
    lines = [f"cross-validation of this model's recipe ({doc['folds']} folds of the training "
             f"photos, faces >= 32 px; threshold {s['threshold']}): mean ± sd over folds, pooled"]
    for key in ("detection_recall", "detection_precision", "classification_accuracy",
                "alarm_recall", "alarm_precision"):
        m = s["folds"][key]
        lines.append(f"  {key.replace('_', ' '):<30}{_fmt(m['mean'])} ± {_fmt(m['sd'])}"
                     f"{_fmt(s['pooled'][key]):>10}")
    for label, m in s["pooled"]["per_label"].items():
        fold = s["folds"].get(f"alarmed_{label}", {})
        lines.append(f"  {label + ' alarmed':<30}{_fmt(fold.get('mean'))} ± "
                     f"{_fmt(fold.get('sd'))}{_fmt(m['alarmed_share']):>10} "
                     f"({m['alarmed']}/{m['faces']})")
    return "\n".join(lines)


def card_table(card: dict, fmt: str) -> str:
    """What the model's card says of its own held-out face crops and of the file's parity
    gate (``python -m train`` and ``python -m export`` measured them)."""
    held, f = card.get("held_out_keras") or {}, card["formats"].get(fmt, {})
    parity = f.get("parity") or {}
    lines = [f"the model card ({card.get('name')}): its held-out face crops and the {fmt} gate"]
    if held:
        lines.append(f"  held-out crop accuracy, Keras   {held['accuracy']:.4f} "
                     f"({held['count']} crops)")
    if parity:
        lines.append(f"  held-out crop accuracy, {fmt:<6}  {parity['accuracy']:.4f}; agreement "
                     f"with Keras {parity['agreement']:.4f} (gate "
                     f"{f['gate']['min_agreement']}): {'passed' if f.get('accepted') else 'refused'}")
    return "\n".join(lines)


def main(config: Config, args) -> int:
    from edge.pipeline import build_alarm, build_classifier, build_detector
    classifier = build_classifier(config)
    rule = build_alarm(config, classifier.model)
    if args.faces:
        result = evaluate_faces(classifier, args.faces, args.limit)
        print(faces_table(result))
    else:
        detector = build_detector(config)
        result = evaluate_scenes(config, detector, classifier, rule, args.scenes,
                                 args.min_face, args.limit, args.split, args.part, args.frame)
        print(scenes_table(result))
        if args.zoo:
            result["zoo"] = mask_zoo(config, detector, classifier, rule, args)
        card = Path(classifier.model.path).parent / "card.json"
        if card.is_file():
            print("\n" + card_table(json.loads(card.read_text()), classifier.model.format))
        cross = Path(classifier.model.path).parent / "cv.json"
        if cross.is_file():
            result["cross_validation"] = json.loads(cross.read_text())
            print("\n" + cv_table(result["cross_validation"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0
