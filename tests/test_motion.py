"""The motion gate, detection in regions, the zone and its masks, and the still face."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from edge.detectors import make_detector
from edge.motion import MotionGate, MotionParams, regions
from edge.shared.boxes import match
from edge.zone import Zone, ZoneParams, polygon_problem

RNG = np.random.default_rng(0)


def noisy(base: np.ndarray) -> np.ndarray:
    """The same scene again, with a camera's sensor noise."""
    return np.clip(base + RNG.normal(0, 3, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def door() -> np.ndarray:
    """An empty doorway: a grey wall, a darker door frame, some texture."""
    frame = np.full((480, 640, 3), 150, np.uint8)
    cv2.rectangle(frame, (200, 40), (440, 480), (90, 70, 60), 25)
    return noisy(frame)


def test_a_still_scene_with_sensor_noise_has_no_motion(door):
    gate = MotionGate()
    assert all(gate.boxes(noisy(door)) == [] for _ in range(30))


def test_something_that_moves_is_a_box_where_it_moves(door):
    gate = MotionGate()
    for _ in range(5):
        gate.boxes(noisy(door))
    frame = noisy(door)
    frame[200:300, 100:180] = 30                       # someone dark steps in
    (box,) = gate.boxes(frame)
    x, y, w, h = box
    assert x <= 100 and y <= 200 and x + w >= 180 and y + h >= 300
    assert w < 140 and h < 160                         # where it moved, not the whole frame


def test_the_lights_coming_on_are_not_motion(door):
    gate = MotionGate()
    for _ in range(5):
        gate.boxes(noisy(door))
    brighter = np.clip(door.astype(int) + 70, 0, 255).astype(np.uint8)
    assert gate.boxes(brighter) == [] and gate.recalibrations == 1
    assert gate.boxes(noisy(brighter)) == []          # the new light is the new background


def test_motion_under_a_mask_is_ignored(door):
    params = ZoneParams(masks=[[[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]])
    zone = Zone(params, door.shape)
    gate = MotionGate(MotionParams(), zone.motion_mask)
    for _ in range(3):
        gate.boxes(noisy(door))
    frame = noisy(door)
    frame[200:300, 60:140] = 30                        # in the masked left half: a TV
    assert gate.boxes(frame) == []
    frame[200:300, 460:540] = 30                       # in the doorway
    (box,) = gate.boxes(frame)
    assert box[0] >= 400


def test_regions_grow_clip_and_merge():
    shape = (480, 640, 3)
    assert regions([(10, 10, 20, 20)], 0.5, shape) == [(0, 0, 52, 52)]
    merged = regions([(100, 100, 40, 40), (150, 100, 40, 40)], 0.5, shape)
    assert len(merged) == 1 and merged[0][0] <= 80 and merged[0][0] + merged[0][2] >= 210
    assert len(regions([(0, 0, 20, 20), (500, 400, 20, 20)], 0.5, shape)) == 2


@pytest.mark.parametrize("name", ["yunet", "blazeface"])
def test_a_region_gives_the_faces_the_whole_frame_gives(name, scenes_dir):
    """For the faces inside the regions: the same, box and all. Checked on the shared crowd
    photos (many faces, small ones among them) at the regions the pipeline makes around
    faces (tracker boxes grown by region_margin). A face scored within a hair of the
    threshold can fall either side of it in a region (the detector sees less around it):
    the faces compared are those the detector is sure of (0.05 over its threshold)."""
    from facedata.voc import framed, load_scenes

    detector = make_detector(name)
    sure = (detector.params.score if name == "yunet" else detector.score_threshold) + 0.05
    margin = MotionParams().region_margin
    same = total = 0
    for _, frame in framed(load_scenes(scenes_dir)[:60], (640, 480)):
        whole = detector.detect(frame)
        parts = detector.detect(frame, regions([f.box for f in whole], margin, frame.shape))
        for a, b in ((whole, parts), (parts, whole)):
            pairs = dict(match([f.box for f in a], [f.box for f in b], 0.7))
            for i, face in enumerate(a):
                if face.score >= sure:
                    total += 1
                    same += i in pairs
    assert total > 100
    assert same / total >= (1.0 if name == "blazeface" else 0.99), (same, total)


def test_a_region_of_the_astronaut_is_her_face_as_the_whole_frame_has_it():
    from edge.samples import sample_frames

    frame = sample_frames()["plain"]
    for name in ("yunet", "blazeface"):
        detector = make_detector(name)
        (whole,) = detector.detect(frame)
        (part,) = detector.detect(frame, [(150, 20, 300, 300)])
        assert np.abs(np.subtract(whole.box, part.box)).max() <= 6, name
        assert detector.detect(frame, [(0, 300, 200, 180)]) == []    # her face is not there


@pytest.mark.parametrize("points, problem", [
    ([[0, 0], [1, 0]], "at least 3"),
    ([[0, 0], [1.5, 0], [1, 1]], "0 to 1"),
    ([[0, 0], [1, 1], [1, 0], [0, 1]], "cross"),
    ([[0, 0], [1, 0], "x"], "two numbers"),
])
def test_bad_polygons_are_refused(points, problem):
    assert problem in polygon_problem(points)


def test_check_config_refuses_a_bad_zone(tmp_path):
    from edge.config import ConfigError, load_config

    path = tmp_path / "c.toml"
    path.write_text("[zone]\npolygon = [[0, 0], [1, 1], [1, 0], [0, 1]]\n"
                    "masks = [[[0, 0], [0.2, 0]]]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "zone.polygon: its edges cross" in str(info.value)
    assert "zone.masks[0]: needs at least 3" in str(info.value)


def test_faces_outside_the_zone_are_not_judged_and_it_is_drawn(model, tmp_path):
    from edge.config import load_config
    from edge.pipeline import Pipeline
    from edge.samples import sample_frames
    from edge.sinks.annotate import ZONE
    from edge.sources import Frame

    config = load_config(None)
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, path=str(model)),
        tracker=dataclasses.replace(config.tracker, k=1, n=1),
        zone=ZoneParams(polygon=[[0.6, 0.0], [1.0, 0.0], [1.0, 1.0], [0.6, 1.0]]))
    pipeline = Pipeline(config, sinks=[])
    result = pipeline.process(Frame(sample_frames()["plain"], t=0.0))
    pipeline.close()
    (track,) = result.tracks                            # her face is left of x = 0.6
    assert track.unjudged == "outside" and not result.events
    drawn = result.annotated()[:, :, ::-1]              # back to RGB
    assert tuple(drawn[240, 384]) == ZONE


def test_a_still_face_alarms_once_then_not_while_it_stays_put(caplog):
    import logging

    from edge.alarm import AlarmRule
    from edge.tracker import Tracker, TrackerParams

    caplog.set_level(logging.INFO, logger="edge.tracker")
    rule = AlarmRule(("with_mask", "without_mask"), ("without_mask",), ("with_mask",))
    tracker = Tracker(rule, TrackerParams(static_seconds=3.0))
    events = []
    for i in range(100):                                # 10 s still, jittering a pixel
        jitter = (i % 3) - 1
        events += [(i, e.kind) for e in tracker.update(0.1 * i, [(100 + jitter, 100, 80, 80)],
                                                       [[0.05, 0.95]])]
    assert [k for _, k in events] == ["violation", "clear"]
    assert events[1][0] == 30 and "has not moved for 3s" in caplog.text
    moved = [e.kind for i in range(5)
             for e in tracker.update(10 + 0.1 * i, [(115 + 15 * i, 100, 80, 80)], [[0.05, 0.95]])]
    assert moved == ["violation"] and "moved: it counts again" in caplog.text


def test_the_pipeline_looks_nowhere_in_an_empty_door_and_everywhere_every_few_seconds(
        model, door):
    from edge.config import load_config
    from edge.pipeline import Pipeline
    from edge.sources import Frame

    config = load_config(None)
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, path=str(model)),
        motion=dataclasses.replace(config.motion, full_frame_seconds=5.0))
    pipeline = Pipeline(config, sinks=[])
    asked = []
    real = pipeline.detector.detect
    pipeline.detector.detect = lambda image, where=None: (asked.append(where),
                                                          real(image, where))[1]
    try:
        for i in range(120):                             # 12 s of an empty door at 10 frames/s
            pipeline.process(Frame(noisy(door), t=0.1 * i))
    finally:
        pipeline.close()
    assert asked == [None, None, None]                   # at 0, 5 and 10 s: whole frames only


def test_a_passer_by_gives_the_same_events_with_the_gate_on_and_off(model):
    from edge.config import load_config
    from edge.measure import scenarios

    config = load_config(None)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, path=str(model)))
    frames = 2 * (scenarios.ENTER + scenarios.STAND + scenarios.LEAVE + scenarios.EMPTY)
    on, off = (scenarios.run(dataclasses.replace(
        config, motion=dataclasses.replace(config.motion, enabled=gate)), "passer-by", frames)
        for gate in (True, False))
    assert on["events"] == off["events"] == {"violation": 2, "clear": 2}
    assert len(on["entry_to_judgement_frames"]) == 2
    assert max(on["entry_to_judgement_frames"]) <= max(off["entry_to_judgement_frames"]) + 2
