"""Choose settings on photos the model never trained on: cross-validation by photo.

    python -m train.cv --name camera --data build/faces/prajna --data build/faces/scenes \\
        --data build/faces/synth -- --augment camera
    python -m train.cv --report camera seed-aug ...

The training photos of the scene split (``splits/scenes.json``, part ``train``) are dealt
into ``--folds`` folds by photo (``facedata.split.make_folds``). For each fold, one
model is trained with ``python -m train`` on everything else: the faces of the other
folds' photos, their synthetic masks, and the one-person pictures (``--exclude-photos``
leaves a fold's photos out through the manifests). Then the whole pipeline runs on the
fold's photos as ``edge eval --scenes`` runs it: the shipped detector in 640x480 frames,
the crop rule, the model (its Keras file: the int8 file agrees with it on >= 99.5% of
faces), the quality measures of each face. The held-out photos (part ``eval``) are never
read here.

Recorded per detection (``records.json``, with the model's labels): its true face, the
classifier's probabilities, its quality, and the probabilities for ``VIDEO_FRAMES``
slightly moved copies of it (the box jittered as YuNet's boxes jitter, a little light and
noise): a short pseudo-video in which the tracker's K-of-N vote can be played out. A face
raises the alarm by the runtime's own rule (``edge.alarm``): its alarm labels' probabilities
together at or over the threshold (``--alarm-labels``; by default those the card rule gives:
every class but with_mask). From those records, without retraining, the report chooses:

- the alarm threshold with the quality gate's detector-score and turn limits, searched
  together: of the settings whose pooled alarm precision meets ``--precision``, the one
  with the best alarm recall (else the most precise); each other limit is kept only if it
  betters that;
- K of N: on the pseudo-videos, the person-level figures of each K, N; the best F1, and of
  equals the shortest window (the quickest alarm).

Each figure is the mean ± sd over the folds (and pooled over all of them). Trained models
stay in ``build/cv/NAME/foldK`` so a run can be resumed or reported again.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from edge.alarm import AlarmRule
from edge.config import load_config
from edge.quality import Gate, Quality, measure
from edge.shared.boxes import match
from edge.shared.card import alarm_labels
from edge.shared.crop import crop_face, resize_face
from edge.tracker import Tracker, TrackerParams
from facedata.scoring import IOU, Observed, Truth, scene_metrics
from facedata.voc import UNMASKED, WORN_WRONG
from facedata.split import make_folds
from facedata.voc import framed, load_scenes, read_split

log = logging.getLogger("train.cv")

VIDEO_FRAMES = 8
MIN_FACE = 32
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.10, 0.991, 0.01))
FIGURES = ("detection_recall", "detection_precision", "classification_accuracy",
           "alarm_recall", "alarm_precision")
# Per true label, the share of its faces that raised the alarm: the targets.
SHARES = (UNMASKED, WORN_WRONG, "with_mask")
# Quality limits tried one at a time on the records.
GATES = {"min_width": (36, 40, 48), "min_sharpness": (4.0, 6.0, 8.0, 10.0),
         "max_yaw": (0.4, 0.6, 0.8, 1.0), "max_outside": (0.1, 0.25, 0.4),
         "min_score": (0.75, 0.8, 0.85, 0.9)}
KN = ((1, 1), (2, 3), (3, 3), (2, 5), (3, 5), (4, 5), (3, 7), (4, 7), (5, 7))


class KerasFaces:
    """The classifier interface of ``edge.shared.classifier.Classifier`` over a Keras model."""

    def __init__(self, model_dir: Path):
        import keras

        self.model = keras.models.load_model(model_dir / "model.keras")
        self.labels = tuple((model_dir / "labels.txt").read_text().split())
        self.size = int(self.model.input_shape[1])

    def classify(self, crops: list[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.empty((0, len(self.labels)), np.float32)
        batch = np.stack([resize_face(c, self.size) for c in crops]).astype(np.float32)
        return np.asarray(self.model.predict(batch, batch_size=64, verbose=0))


def video_copies(frame: np.ndarray, box, margin: float, rng: np.random.Generator,
                 count: int = VIDEO_FRAMES) -> list[np.ndarray]:
    """``count`` crops of the face at ``box`` as the next frames of a video might cut it:
    the box moved by ~2% and scaled by ~3% of its size (sd), light ±5%, sensor noise."""
    x, y, w, h = box
    crops = []
    for _ in range(count):
        s = 1.0 + rng.normal(0, 0.03)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        nx = round(x + w / 2 + rng.normal(0, 0.02) * w - nw / 2)
        ny = round(y + h / 2 + rng.normal(0, 0.02) * h - nh / 2)
        crop = crop_face(frame, (nx, ny, nw, nh), margin).astype(np.float32)
        crop = crop * rng.uniform(0.95, 1.05) + rng.normal(0, 2.0, crop.shape)
        crops.append(np.clip(crop, 0, 255).astype(np.uint8))
    return crops


def evaluate_fold(model_dir: Path, scenes, detections: dict, margin: float, seed: int) -> dict:
    """Per photo of ``scenes``: its faces, the detections with their probabilities, quality
    and pseudo-video; with the model's labels."""
    clf = KerasFaces(model_dir)
    rng = np.random.default_rng(seed)
    photos = []
    for scene, frame in framed(scenes, (640, 480)):
        faces = detections[scene.image.name]
        crops = [crop_face(frame, f.box, margin) for f in faces]
        videos = [video_copies(frame, f.box, margin, rng) for f in faces]
        flat = clf.classify(crops + [c for v in videos for c in v])
        single = flat[:len(faces)]
        video = flat[len(faces):].reshape(len(faces), VIDEO_FRAMES, len(clf.labels))
        pairs = dict(match([f.box for f in faces], [a.box for a in scene.faces], IOU))
        photos.append({
            "photo": scene.image.name,
            "truths": [[a.label, a.box[2]] for a in scene.faces],
            "detections": [{"width": f.w, "truth": pairs.get(i),
                            "probs": [round(float(v), 5) for v in single[i]],
                            "video": [[round(float(v), 5) for v in row] for row in video[i]],
                            "quality": dataclasses.asdict(measure(frame, f, margin))}
                           for i, f in enumerate(faces)]})
    return {"labels": list(clf.labels), "photos": photos}


def rule_for(records: list[dict], alarm: list[str] | None = None) -> AlarmRule:
    """The alarm rule for the folds' model: their labels (all the same), ``alarm`` or the
    card rule's alarm labels."""
    labels = tuple(records[0]["labels"])
    if any(tuple(r["labels"]) != labels for r in records):
        raise SystemExit("the folds' models have different labels; they can't be pooled")
    default, masked = alarm_labels({"classes": list(labels)})
    return AlarmRule(labels, tuple(alarm or default), tuple(m for m in masked
                                                             if m not in (alarm or ())))


def as_observed(photos: list, gate: Gate, rule: AlarmRule) -> tuple[list[Truth], list[Observed]]:
    """Records back into the scoring objects of ``edge eval``, under ``gate``."""
    truths, detections = [], []
    for photo in photos:
        here = [Truth(label, width) for label, width in photo["truths"]]
        for d in photo["detections"]:
            quality = Quality(**d["quality"])
            o = Observed(d["width"], rule.p(d["probs"]),
                         rule.labels[int(np.argmax(d["probs"]))], gate.reason(quality), quality)
            if d["truth"] is not None:
                o.truth, here[d["truth"]].detection = here[d["truth"]], o
            detections.append(o)
        truths += here
    return truths, detections


def video_metrics(photos: list, gate: Gate, k: int, n: int, threshold: float,
                  rule: AlarmRule) -> dict:
    """Person-level alarm recall and precision when each detection's pseudo-video goes
    through the tracker: a person is flagged when the tracker raises a violation."""
    should = flagged = right = 0
    for photo in photos:
        for d in photo["detections"]:
            truth = photo["truths"][d["truth"]] if d["truth"] is not None else None
            width = truth[1] if truth else d["width"]
            if width < MIN_FACE or (truth and truth[0] not in rule.labels):
                continue
            raised = False
            if gate.reason(Quality(**d["quality"])) is None:
                tracker = Tracker(rule, TrackerParams(k=k, n=n, threshold=threshold))
                for i, probs in enumerate(d["video"]):
                    raised |= any(e.kind == "violation" for e in
                                  tracker.update(0.1 * i, [(0, 0, 10, 10)], [probs]))
            flagged += raised
            right += raised and truth is not None and truth[0] in rule.alarm
        should += sum(1 for label, width in photo["truths"]
                      if label in rule.alarm and width >= MIN_FACE)
    return {"alarm_recall": right / should if should else None,
            "alarm_precision": right / flagged if flagged else None, "flagged": flagged}


def _mean_sd(values) -> dict:
    values = [v for v in values if v is not None]
    return {"mean": float(np.mean(values)) if values else None,
            "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None}


def shares(m: dict) -> dict:
    """The share of each label's faces that raised the alarm (None: no such face)."""
    return {label: m["per_label"].get(label, {}).get("alarmed_share") for label in SHARES}


def summarise(folds: list[dict], threshold: float, gate: Gate, rule: AlarmRule) -> dict:
    """Mean ± sd over folds and pooled figures at ``threshold`` under ``gate``."""
    per_fold = [scene_metrics(*as_observed(f["photos"], gate, rule), rule, threshold, MIN_FACE)
                for f in folds]
    pooled = scene_metrics(*as_observed([p for f in folds for p in f["photos"]], gate, rule),
                           rule, threshold, MIN_FACE)
    fold_shares = [shares(m) for m in per_fold]
    return {"threshold": threshold, "gate": dataclasses.asdict(gate),
            "alarm_labels": list(rule.alarm),
            "folds": {**{k: _mean_sd(m[k] for m in per_fold) for k in FIGURES + ("unjudged",)},
                      **{f"alarmed_{label}": _mean_sd(s[label] for s in fold_shares)
                         for label in SHARES}},
            "pooled": pooled, "per_fold": per_fold}


def _f1(m: dict) -> float:
    p, r = m["alarm_precision"] or 0.0, m["alarm_recall"] or 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def choose(folds: list[dict], precision: float, rule: AlarmRule) -> dict:
    """Threshold, gate and K of N from the records of every fold, pooled (module doc).

    The threshold and the two gates that trade most (the detector's score, the turn) are
    searched together: of the settings whose alarm precision reaches ``precision``, the one
    with the best alarm recall (then precision, then fewer faces unjudged); if none does,
    the most precise. Each other limit is then kept only if it betters that."""
    photos = [p for f in folds for p in f["photos"]]

    def rank(m: dict) -> tuple:
        p, r = m["alarm_precision"] or 0.0, m["alarm_recall"] or 0.0
        return (p >= precision, r if p >= precision else p, p if p >= precision else r,
                -m["unjudged"])

    def brief(m: dict) -> dict:
        return {"alarm_recall": m["alarm_recall"], "alarm_precision": m["alarm_precision"],
                "flagged": m["flagged"], **{f"alarmed_{k}": v for k, v in shares(m).items()}}

    trials = []
    for score, turn in itertools.product((0.0, *GATES["min_score"]), (0.0, *GATES["max_yaw"])):
        gate = Gate(min_score=score, max_yaw=turn)
        observed = as_observed(photos, gate, rule)
        trials += [(t, gate, scene_metrics(*observed, rule, t, MIN_FACE)) for t in THRESHOLDS]
    threshold, gate, best = max(trials, key=lambda trial: rank(trial[2]))
    others = {}
    for key in ("min_width", "min_sharpness", "max_outside"):
        for value in GATES[key]:
            tried = dataclasses.replace(gate, **{key: value})
            m = scene_metrics(*as_observed(photos, tried, rule), rule, threshold, MIN_FACE)
            others[f"{key}={value}"] = {k: m[k] for k in FIGURES + ("unjudged", "flagged")}
            if rank(m) > rank(best):
                gate, best = tried, m
    kn = {(k, n): video_metrics(photos, gate, k, n, threshold, rule) for k, n in KN}
    # The best person-level F1; of equals, the shortest window (the quickest alarm).
    k, n = max(KN, key=lambda kn_: (round(_f1(kn[kn_]), 6), -kn_[1], -kn_[0]))
    at_gate = [trial for trial in trials if trial[1] == Gate(min_score=gate.min_score,
                                                             max_yaw=gate.max_yaw)]
    return {"precision_target": precision, "threshold": threshold,
            "gate": dataclasses.asdict(gate), "k": k, "n": n,
            "sweep": {str(t): brief(m) for t, _, m in at_gate},
            "no_gate": {str(t): brief(m) for t, g, m in trials if not g.active},
            "other_limits": others,
            "k_of_n": {f"{k_} of {n_}": m for (k_, n_), m in kn.items()}}


def train_fold(name: str, fold: int, photos: list[str], args, out: Path) -> Path:
    """Train (or find, when a finished run is there) the model that never saw ``photos``."""
    model_dir = out / name / f"fold{fold}"
    if (model_dir / "metrics.json").is_file():
        return model_dir
    model_dir.mkdir(parents=True, exist_ok=True)
    exclude = model_dir / "exclude.json"
    exclude.write_text(json.dumps(photos))
    cmd = [sys.executable, "-m", "train", "--out", str(model_dir), "--exclude-photos", str(exclude)]
    for d in args.data:
        cmd += ["--data", str(d)]
    cmd += args.train_args
    log.info("fold %d: %s", fold, " ".join(cmd))
    with open(model_dir / "train.log", "w") as logfile:
        subprocess.run(cmd, check=True, stdout=logfile, stderr=subprocess.STDOUT,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return model_dir


def fold_recipe(model_dir: Path) -> dict:
    """How a fold's model was trained, from its own metrics.json (a resumed run reports the
    settings its folds were trained with, not the ones given this time), less its folder and
    the fold's own exclusion list."""
    settings = json.loads((model_dir / "metrics.json").read_text())["settings"]
    own = str(model_dir / "exclude.json")
    return {**{k: v for k, v in settings.items() if k != "out"},
            "exclude_photos": [e for e in settings["exclude_photos"] if e != own]}


def same_recipe(recipes: list[dict], out: Path) -> None:
    """Folds trained differently (a run resumed with other settings) must not be pooled."""
    if any(r != recipes[0] for r in recipes):
        raise SystemExit(f"the folds of {out} were trained with different settings; "
                         f"remove the odd ones (or the run) and run again")


def run(args) -> dict:
    config = load_config(None)
    from edge.pipeline import build_detector

    detector = build_detector(config)
    scenes = load_scenes(args.scenes)
    train_photos = read_split(args.split)["train"]
    folds = make_folds(scenes, train_photos, args.folds, args.seed)
    by_name = {s.image.name: s for s in scenes}
    detections = {scene.image.name: detector.detect(frame)
                  for scene, frame in framed([by_name[n] for n in train_photos], (640, 480))}
    out = args.out / args.name
    records, recipes = [], []
    for k, photos in enumerate(folds):
        model_dir = train_fold(args.name, k, photos, args, args.out)
        recipes.append(fold_recipe(model_dir))
        same_recipe(recipes, out)                       # before evaluating the fold
        cached = model_dir / "records.json"
        if cached.is_file() and not args.fresh_records:
            records.append(json.loads(cached.read_text()))
            continue
        fold_records = evaluate_fold(model_dir, [by_name[n] for n in photos], detections,
                                     config.model.margin, args.seed + k)
        cached.write_text(json.dumps(fold_records))
        records.append(fold_records)
    rule = rule_for(records, args.alarm_labels)
    chosen = choose(records, args.precision, rule)
    doc = {"name": args.name, "train_args": args.train_args, "recipe": recipes[0],
           "data": [str(d) for d in args.data], "labels": list(rule.labels),
           "alarm_labels": list(rule.alarm),
           "folds": args.folds, "seed": args.seed, "photos": [len(f) for f in folds],
           "at_shipped": summarise(records, config.tracker.threshold, config.judge, rule),
           "chosen": chosen,
           "at_chosen": summarise(records, chosen["threshold"], Gate(**chosen["gate"]), rule)}
    (out / "cv.json").write_text(json.dumps(doc, indent=1))
    return doc


def _fmt(m: dict | None) -> str:
    if m is None or m.get("mean") is None:
        return "-"
    sd = f" ± {m['sd']:.3f}" if m.get("sd") is not None else ""
    return f"{m['mean']:.3f}{sd}"


def report(docs: list[dict]) -> str:
    """One row per run at its chosen threshold: the five figures (mean ± sd over folds), the
    share of unmasked, worn-wrong and masked faces that raised the alarm (mean ± sd), and
    pooled alarm recall / precision."""
    head = (f"{'run':<16}{'thr':>5}  {'det recall':>14}{'det prec':>14}{'class acc':>14}"
            f"{'alarm recall':>14}{'alarm prec':>14}{'w/o alarmed':>14}{'wrong alarmed':>14}"
            f"{'masked alarmed':>15}  {'pooled r/p':>14}{'unjudged':>9}")
    lines = [head]
    for doc in docs:
        s = doc["at_chosen"]
        f, p = s["folds"], s["pooled"]
        lines.append(f"{doc['name']:<16}{s['threshold']:>5.2f}  "
                     + "".join(f"{_fmt(f[k]):>14}" for k in FIGURES)
                     + "".join(f"{_fmt(f['alarmed_' + label]):>14}" for label in SHARES[:2])
                     + f"{_fmt(f['alarmed_' + SHARES[2]]):>15}"
                     + f"  {p['alarm_recall'] or 0:.3f} / {p['alarm_precision'] or 0:.3f}"
                     + f"{p['unjudged']:>9}")
        pooled = "; ".join(f"{label} {m['alarmed']}/{m['faces']}"
                           for label, m in p["per_label"].items())
        lines.append(f"{'':<16}pooled, faces alarmed of faces: {pooled}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    train_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(prog="python -m train.cv", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", help="this run's name: build/cv/NAME")
    p.add_argument("--data", action="append", type=Path, default=[],
                   help="prepared face folders (with manifest.csv), as for python -m train")
    p.add_argument("--scenes", type=Path, default=Path(os.environ.get(
        "MASKWATCH_DATA", "../shared/data")) / "scenes")
    p.add_argument("--split", type=Path, default=Path("splits/scenes.json"))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--precision", type=float, default=0.95,
                   help="alarm precision the threshold must reach (pooled over folds)")
    p.add_argument("--alarm-labels", type=lambda t: t.split(","), default=None,
                   help="comma-separated classes that raise the alarm (default: every class "
                        "but with_mask, as the model card says)")
    p.add_argument("--out", type=Path, default=Path("build/cv"))
    p.add_argument("--report", nargs="+", metavar="NAME", help="print finished runs side by side")
    p.add_argument("--fresh-records", action="store_true",
                   help="evaluate the folds' models again instead of reading their records")
    args = p.parse_args(argv)
    args.train_args = train_args
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.report:
        docs = [json.loads((args.out / n / "cv.json").read_text()) for n in args.report]
        print(report(docs))
        return 0
    if not args.name or not args.data:
        p.error("give --name and --data (or --report NAME ...)")
    doc = run(args)
    print(report([doc]))
    c = doc["chosen"]
    print(f"\nchosen: threshold {c['threshold']}, gate {c['gate']}, {c['k']} of {c['n']}")
    for kn, m in c["k_of_n"].items():
        print(f"  {kn}: person-level alarm recall {m['alarm_recall'] or 0:.3f}, "
              f"precision {m['alarm_precision'] or 0:.3f} ({m['flagged']} flagged)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
