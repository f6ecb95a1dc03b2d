"""Blurred faces can't be recognised as their source; the alarm's face stays sharp when
[privacy] blur = "others"."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from edge.privacy import MAX_FEATURE_CORRELATION, blur_box, blurred
from edge.samples import FACE, _astronaut, sample_frames
from edge.tracker import TrackView


def features(image: np.ndarray, box) -> np.ndarray:
    """What identifies a face, not its light: the 32x32 grey crop minus its own Gaussian
    blur at sigma 4 px (eyes, nose, mouth), as a unit vector."""
    x, y, w, h = box
    crop = cv2.resize(image[y:y + h, x:x + w], (32, 32), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    detail = (grey - cv2.GaussianBlur(grey, (0, 0), 4)).ravel()
    detail -= detail.mean()
    return detail / (np.linalg.norm(detail) + 1e-6)


def blur_copy(image: np.ndarray, box) -> np.ndarray:
    out = image.copy()
    blur_box(out, box)
    return out


def scene_faces(scenes_dir, count: int = 200, min_size: int = 48):
    from edge.shared.images import read_rgb
    from facedata.voc import load_scenes

    faces = []
    for scene in load_scenes(scenes_dir):
        big = [a.box for a in scene.faces if min(a.box[2:]) >= min_size]
        if big:
            image = read_rgb(scene.image)
            faces += [(image, box) for box in big]
        if len(faces) >= count:
            return faces[:count]
    return faces


def test_the_astronaut_blurred_is_not_her_face():
    image = _astronaut()
    original, after = features(image, FACE), features(blur_copy(image, FACE), FACE)
    assert float(original @ features(image, FACE)) == pytest.approx(1.0)
    assert float(original @ after) < MAX_FEATURE_CORRELATION


def test_no_blurred_scene_face_is_recognised_as_its_source(scenes_dir):
    faces = scene_faces(scenes_dir)
    assert len(faces) >= 100
    originals = np.array([features(image, box) for image, box in faces])
    after = np.array([features(blur_copy(image, box), box) for image, box in faces])
    own = (originals * after).sum(axis=1)
    assert own.max() < MAX_FEATURE_CORRELATION, f"max {own.max():.3f}"
    # Matched against every original, a blurred face is rarely closest to its own source
    # (unblurred: always; chance: 1 in 200).
    closest = (after @ originals.T).argmax(axis=1)
    assert (closest == np.arange(len(faces))).mean() <= 0.1


def view(box, violating: bool) -> TrackView:
    return TrackView(1, box, "without_mask" if violating else "with_mask", 0.9, 0.9, violating,
                     masked=not violating)


@pytest.mark.parametrize("policy, alarm_sharp, other_sharp",
                         [("others", True, False), ("all", False, False), ("none", True, True)])
def test_the_policy_chooses_the_faces(policy, alarm_sharp, other_sharp):
    image = np.hstack([_astronaut(), _astronaut()])
    alarm, other = FACE, (FACE[0] + 512, *FACE[1:])
    out = blurred(image, [view(alarm, True), view(other, False)], policy)
    for box, sharp in ((alarm, alarm_sharp), (other, other_sharp)):
        x, y, w, h = box
        same = np.array_equal(out[y:y + h, x:x + w], image[y:y + h, x:x + w])
        assert same == sharp, (policy, box)


def test_a_snapshot_keeps_the_alarms_face_and_blurs_the_bystander(model, tmp_path):
    from edge.config import load_config
    from edge.pipeline import Pipeline
    from edge.sinks import SafeSink
    from edge.sinks.snapshot import SnapshotParams, SnapshotSink
    from edge.sources import Frame

    frames = sample_frames()
    image = np.hstack([frames["plain"], frames["masked"]])      # bare left, masked right
    config = load_config(None)
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, path=str(model)),
        tracker=dataclasses.replace(config.tracker, k=1, n=1))
    assert config.privacy.blur == "others"                     # the default
    sink = SnapshotSink(SnapshotParams(enabled=True, dir=str(tmp_path)))
    pipeline = Pipeline(config, sinks=[SafeSink("snapshot", lambda: sink)])
    result = pipeline.process(Frame(image, t=0.0))
    pipeline.close()
    (event,) = result.events
    bare = next(t for t in result.tracks if t.id == event.track_id)
    masked = next(t for t in result.tracks if t.id != event.track_id)
    (snapshot,) = tmp_path.glob("violation-*.jpg")
    saved = cv2.cvtColor(cv2.imread(str(snapshot)), cv2.COLOR_BGR2RGB)
    inner = lambda b: (b[0] + b[2] // 6, b[1] + b[3] // 6, b[2] * 2 // 3, b[3] * 2 // 3)  # noqa: E731
    assert float(features(saved, inner(bare.box)) @ features(image, inner(bare.box))) > 0.8
    assert float(features(saved, inner(masked.box)) @ features(image, inner(masked.box))) \
        < MAX_FEATURE_CORRELATION
