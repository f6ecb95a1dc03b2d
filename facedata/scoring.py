"""Scoring detections and judgements against annotated faces: the one set of rules that
``edge eval``, the detector table and cross-validation (``train.cv``) all count by.

A detection is a true positive when greedy one-to-one matching (``edge.shared.boxes.match``)
pairs it with an annotated face at IoU >= ``IOU``.

Two populations: all faces, and the faces at least ``min_face`` px wide — the ones big
enough to classify and the size a doorway camera sees. Recall over the large ones counts
those faces only. For precision, a detection is a false positive only if it matched no face
at all *and* is itself that wide: a detection matched to a smaller face is a real face, and
a small unmatched one belongs to the population not scored, so neither is counted either
way. Without this rule a detector that also finds small faces would be charged for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge.alarm import AlarmRule
from edge.quality import Quality
from edge.shared.boxes import match
from facedata.voc import Scene

IOU = 0.5


def _summary(faces: int, tp: int, fp: int) -> dict:
    return {"faces": faces, "tp": tp, "fp": fp,
            "recall": tp / faces if faces else 0.0,
            "precision": tp / (tp + fp) if tp + fp else 0.0}


def score(predictions: Sequence[Sequence[tuple[int, int, int, int]]], scenes: Sequence[Scene],
          min_face: int = 32) -> dict:
    """Recall and precision of predicted ``(x, y, w, h)`` boxes, one list per scene.

    :returns: ``{"all": {...}, "large": {...}}``, each ``faces, tp, fp, recall, precision``
        (see the module docstring for what counts in ``large``).
    """
    faces = tp = fp = faces_large = tp_large = fp_large = 0
    for pred, scene in zip(predictions, scenes, strict=True):
        truth = [ann.box for ann in scene.faces]
        truth_of = dict(match(list(pred), truth, IOU))
        faces += len(truth)
        faces_large += sum(t[2] >= min_face for t in truth)
        tp += len(truth_of)
        fp += len(pred) - len(truth_of)
        for i, box in enumerate(pred):
            if i in truth_of:
                tp_large += truth[truth_of[i]][2] >= min_face
            else:
                fp_large += box[2] >= min_face
    return {"all": _summary(faces, tp, fp), "large": _summary(faces_large, tp_large, fp_large)}


def ratio(num: int, den: int) -> float | None:
    return num / den if den else None


@dataclass
class Observed:
    """One detection in one photo, as the pipeline sees it."""

    width: int
    p: float = 0.0                   # the alarm's probability (edge.alarm.AlarmRule.p)
    label: str | None = None         # its top class
    unjudged: str | None = None      # why the quality gate left it unjudged (None: judged)
    quality: Quality | None = None
    truth: Truth | None = None


@dataclass
class Truth:
    """One annotated face."""

    label: str
    width: int
    detection: Observed | None = None


def scene_metrics(truths: list[Truth], detections: list[Observed], rule: AlarmRule,
                  threshold: float, min_width: int = 0) -> dict:
    """Detection, classification and end-to-end numbers when a face raises the alarm at
    ``threshold`` of ``rule``'s alarm probability, ignoring faces under ``min_width``.

    ``per_label`` says, for each true label, how many faces there were, how many the
    detector found, how many the gate let be judged and how many raised the alarm. The alarm's
    recall is over the faces whose true label is one of ``rule.alarm``; its precision over the
    alarms raised, an alarm being right when its face's true label is an alarm label. A face
    whose true label the model lacks (``mask_weared_incorrect`` for a two-class model) is in
    neither: flagging one is arguably right. ``confusion`` counts the judged faces of the
    model's labels by true (rows) and top (columns) label, in ``rule.labels``' order.

    An unjudged face is found (detection) but neither right nor wrong (classification), and
    never flagged: it counts against the alarm's recall, which is what a still photo loses
    by abstaining."""
    labels = rule.labels
    faces = [t for t in truths if t.width >= min_width]
    found = [t for t in faces if t.detection is not None]
    judged = [t for t in found if t.detection.unjudged is None]
    counted = [d for d in detections
               if (d.truth.width if d.truth else d.width) >= min_width]
    known = [t for t in judged if t.label in labels]
    should = [t for t in faces if t.label in rule.alarm]

    def flagged(d: Observed | None) -> bool:
        return d is not None and d.unjudged is None and d.p >= threshold

    alarms = [d for d in counted if flagged(d) and not (d.truth and d.truth.label not in labels)]
    per_label = {}
    for label in sorted({t.label for t in faces}):
        mine = [t for t in faces if t.label == label]
        per_label[label] = {
            "faces": len(mine), "found": sum(t.detection is not None for t in mine),
            "judged": sum(t.detection is not None and t.detection.unjudged is None for t in mine),
            "alarmed": sum(flagged(t.detection) for t in mine)}
        per_label[label]["alarmed_share"] = ratio(per_label[label]["alarmed"], len(mine))
    confusion = [[sum(t.label == truth and t.detection.label == top for t in known)
                  for top in labels] for truth in labels]
    return {
        "faces": len(faces), "detections": len(counted), "matched": len(found),
        "detection_recall": ratio(len(found), len(faces)),
        "detection_precision": ratio(len(found), len(counted)),
        "unjudged": len(found) - len(judged),
        "unjudged_detections": sum(d.unjudged is not None for d in counted),
        "classification_accuracy": ratio(sum(t.detection.label == t.label for t in known),
                                          len(known)),
        "classified": len(known),
        "alarm_labels": list(rule.alarm),
        "alarm_faces": len(should),
        "alarm_recall": ratio(sum(flagged(t.detection) for t in should), len(should)),
        "alarm_recall_judged": ratio(
            sum(flagged(t.detection) for t in should),
            sum(t.detection is not None and t.detection.unjudged is None for t in should)),
        "flagged": len(alarms),
        "alarm_precision": ratio(sum(d.truth is not None and d.truth.label in rule.alarm
                                     for d in alarms), len(alarms)),
        "per_label": per_label,
        "confusion": {"labels": list(labels), "rows": confusion},
    }
