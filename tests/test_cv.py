"""Cross-validation by photo: folds, and the choices made from per-detection records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.alarm import AlarmRule
from edge.quality import Gate
from facedata.scoring import Observed, Truth, scene_metrics
from facedata.split import make_folds
from facedata.voc import Annotation, Scene
from train import cv

LABELS = ("with_mask", "without_mask")
RULE = AlarmRule(LABELS, ("without_mask",), ("with_mask",))


def record(truths, detections):
    """A photo's record: truths as (label, width); detections as (truth index, p, yaw)."""
    return {"photo": "x.jpg", "truths": [list(t) for t in truths],
            "detections": [{"width": 60, "truth": t, "probs": [1 - p, p],
                            "video": [[1 - p, p]] * cv.VIDEO_FRAMES,
                            "quality": {"width": 60, "sharpness": 20.0, "yaw": yaw,
                                        "outside": 0.0}}
                           for t, p, yaw in detections]}


def fold(*photos):
    return {"labels": list(LABELS), "photos": list(photos)}


def video(*ps):
    return [[1 - p, p] for p in ps]


def test_folds_are_by_photo_disjoint_and_share_the_unmasked_faces():
    scenes = [Scene(Path(f"{n}.jpg"), tuple(
        [Annotation("without_mask", (0, 0, 40, 40))] * (n % 3) + [Annotation("with_mask",
                                                                            (0, 0, 40, 40))]))
              for n in range(50)]
    names = [s.image.name for s in scenes][:45]
    folds = make_folds(scenes, names, 5, seed=1)
    assert sorted(n for f in folds for n in f) == sorted(names)
    assert {len(f) for f in folds} == {9}
    unmasked = [sum(int(n[:-4]) % 3 for n in f) for f in folds]
    assert max(unmasked) - min(unmasked) <= 3
    assert make_folds(scenes, names, 5, seed=1) == folds != make_folds(scenes, names, 5, seed=2)
    with pytest.raises(ValueError):
        make_folds(scenes, names, 1)


def test_an_unjudged_face_is_found_but_neither_right_wrong_nor_flagged():
    unmasked, masked = Truth("without_mask", 50), Truth("with_mask", 50)
    a = Observed(50, 0.9, "without_mask", "turned", truth=unmasked)
    b = Observed(50, 0.2, "with_mask", None, truth=masked)
    unmasked.detection, masked.detection = a, b
    m = scene_metrics([unmasked, masked], [a, b], RULE, threshold=0.7)
    assert m["detection_recall"] == 1.0 and m["unjudged"] == 1
    assert m["classified"] == 1 and m["classification_accuracy"] == 1.0
    assert m["alarm_recall"] == 0.0 and m["alarm_recall_judged"] is None
    assert m["flagged"] == 0
    assert m["per_label"]["without_mask"] == {"faces": 1, "found": 1, "judged": 0, "alarmed": 0,
                                              "alarmed_share": 0.0}
    assert m["confusion"] == {"labels": list(LABELS), "rows": [[1, 0], [0, 0]]}


def test_an_alarm_is_right_for_either_alarm_label_and_a_label_the_model_lacks_is_neither():
    three = AlarmRule(("mask_weared_incorrect", "with_mask", "without_mask"),
                      ("without_mask", "mask_weared_incorrect"), ("with_mask",))
    truths = [Truth("without_mask", 50), Truth("mask_weared_incorrect", 50),
              Truth("with_mask", 50)]
    dets = [Observed(50, p, label, truth=t) for p, label, t in
            ((0.9, "without_mask", truths[0]), (0.8, "mask_weared_incorrect", truths[1]),
             (0.7, "with_mask", truths[2]))]
    for t, d in zip(truths, dets):
        t.detection = d
    m = scene_metrics(truths, dets, three, threshold=0.6)
    assert m["alarm_faces"] == 2 and m["alarm_recall"] == 1.0
    assert m["flagged"] == 3 and m["alarm_precision"] == pytest.approx(2 / 3)
    assert m["per_label"]["with_mask"]["alarmed_share"] == 1.0
    # A two-class model: the worn-wrong face is in neither recall nor precision.
    two = scene_metrics(truths, dets, RULE, threshold=0.6)
    assert two["alarm_faces"] == 1 and two["flagged"] == 2 and two["alarm_precision"] == 0.5
    assert two["per_label"]["mask_weared_incorrect"]["alarmed"] == 1


def test_the_threshold_is_the_lowest_that_reaches_the_precision():
    # Five unmasked faces at p 0.6-1.0; masked faces at 0.55 and 0.75 (a false alarm below
    # 0.75, two below 0.55).
    truths = [("without_mask", 50)] * 5 + [("with_mask", 50)] * 2
    dets = [(i, 0.6 + 0.1 * i, 0.0) for i in range(5)] + [(5, 0.55, 0.0), (6, 0.75, 0.0)]
    folds = [fold(record(truths, dets))]
    chosen = cv.choose(folds, precision=0.95, rule=RULE)
    assert chosen["threshold"] == 0.76                # above the masked 0.75
    at = chosen["sweep"]["0.76"]
    assert at["alarm_precision"] == 1.0 and at["alarm_recall"] == 0.6
    assert chosen["sweep"]["0.5"]["alarm_precision"] == pytest.approx(5 / 7)


def test_a_gate_is_kept_only_when_it_pays():
    # The false alarm is a turned face: a yaw limit removes it and keeps every true one.
    truths = [("without_mask", 50)] * 4 + [("with_mask", 50)]
    dets = [(i, 0.9, 0.1) for i in range(4)] + [(4, 0.95, 0.9)]
    chosen = cv.choose([fold(record(truths, dets))], precision=0.99, rule=RULE)
    assert chosen["gate"]["max_yaw"] in (0.4, 0.6, 0.8)
    assert chosen["gate"]["min_width"] == 0 and chosen["gate"]["min_sharpness"] == 0.0
    # A true alarm on a turned face: the limit would cost recall, so it is not kept.
    dets = [(i, 0.9, 0.9 if i == 0 else 0.1) for i in range(4)] + [(4, 0.1, 0.1)]
    assert cv.choose([fold(record(truths, dets))], precision=0.99,
                     rule=RULE)["gate"]["max_yaw"] == 0.0


def test_k_of_n_plays_each_pseudo_video_through_the_tracker():
    truths = [("without_mask", 50), ("with_mask", 50)]
    rec = record(truths, [(0, 0.9, 0.0), (1, 0.2, 0.0)])
    rec["detections"][1]["video"] = video(0.9, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1)  # two bad frames
    one = cv.video_metrics([rec], Gate(), 1, 1, 0.7, RULE)
    three = cv.video_metrics([rec], Gate(), 3, 5, 0.7, RULE)
    assert one["alarm_recall"] == 1.0 and one["alarm_precision"] == 0.5
    assert three["alarm_recall"] == 1.0 and three["alarm_precision"] == 1.0
    gated = cv.video_metrics([rec], Gate(min_width=100), 1, 1, 0.7, RULE)
    assert gated["flagged"] == 0 and gated["alarm_recall"] == 0.0


def test_the_k_of_n_choice_is_the_best_f1_and_then_the_quickest():
    truths = [("without_mask", 50), ("with_mask", 50)]
    rec = record(truths, [(0, 0.9, 0.0), (1, 0.2, 0.0)])
    rec["detections"][1]["video"] = video(0.9, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1)
    chosen = cv.choose([fold(rec)], precision=0.9, rule=RULE)
    # 1 of 1 and 2 of 3 both raise the masked face's two bad frames; 3 of 3 is perfect.
    assert (chosen["k"], chosen["n"]) == (3, 3)
    assert chosen["k_of_n"]["1 of 1"]["alarm_precision"] == 0.5


def test_a_folds_recipe_is_what_it_was_trained_with_not_its_own_folder(tmp_path):
    for fold, augment in ((0, ["flip", "jpeg"]), (1, ["flip"])):
        folder = tmp_path / f"fold{fold}"
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({"settings": {
            "augment": augment, "epochs_head": 3, "out": str(folder),
            "exclude_photos": [str(folder / "exclude.json"), "splits/prajna.json"]}}))
    first, second = (cv.fold_recipe(tmp_path / f"fold{k}") for k in (0, 1))
    assert first == {"augment": ["flip", "jpeg"], "epochs_head": 3,
                     "exclude_photos": ["splits/prajna.json"]}
    cv.same_recipe([first, first], tmp_path)
    with pytest.raises(SystemExit, match="trained with different settings"):
        cv.same_recipe([first, second], tmp_path)
