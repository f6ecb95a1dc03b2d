"""The quality gate: what it measures on a face, and why it leaves one unjudged."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.detectors import Face
from edge.quality import Gate, Quality, measure, yaw
from edge.shared.crop import outside_fraction


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    from edge.detectors.yunet import YuNetDetector

    image = data.astronaut()
    (face,) = YuNetDetector().detect(image)
    return image, face


def test_a_frontal_sharp_face_passes_and_each_limit_names_its_reason(astronaut):
    image, face = astronaut
    q = measure(image, face, 0.2)
    assert q.width == face.w and q.outside == 0.0
    assert abs(q.yaw) < 0.3 and q.sharpness > 10
    assert Gate().reason(q) is None                          # the shipped limits
    off = Gate(min_score=0.0)
    assert off.reason(q) is None and not off.active
    assert Gate(min_score=q.score + 0.01).reason(q) == "unsure"
    assert Gate(min_width=face.w + 1).reason(q) == "small"
    assert Gate(max_yaw=abs(q.yaw) / 2).reason(q) == "turned"
    assert Gate(min_sharpness=q.sharpness + 1).reason(q) == "blurred"
    assert Gate(max_outside=0.1).reason(Quality(50, 20.0, 0.0, 0.3)) == "cut"
    blurred = measure(cv2.GaussianBlur(image, (0, 0), 4), face, 0.2)
    assert blurred.sharpness < q.sharpness / 3


def test_yaw_has_the_side_of_the_nose():
    assert yaw([(30, 40), (70, 40), (50, 60), (35, 80), (65, 80)]) == pytest.approx(0.0)
    assert yaw([(30, 40), (70, 40), (30, 60), (25, 80), (55, 80)]) == pytest.approx(-0.5)
    assert yaw([(30, 40), (70, 40), (70, 60), (45, 80), (75, 80)]) == pytest.approx(0.5)


def test_a_face_cut_by_the_frame_is_measured_by_its_crop():
    frame = np.zeros((100, 200, 3), np.uint8)
    assert outside_fraction((80, 30, 40, 40), frame.shape) == 0.0
    assert outside_fraction((-20, 30, 40, 40), frame.shape) == pytest.approx(0.5, abs=0.03)
    q = measure(frame, Face(0, 30, 20, 40), 0.2)
    assert q.outside == pytest.approx(18 / 56) and q.yaw is None   # a 56 px square from x=-18
