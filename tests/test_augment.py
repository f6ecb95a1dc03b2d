"""The camera-like augmentations: each one runs in tf.data, keeps the image's shape and
range, and does what it says; the names are checked before TensorFlow is imported."""

from __future__ import annotations

import numpy as np
import pytest

from train.augment import CAMERA, NAMES, parse

SIZE = 64


def run(names, image, times=16, seed=0):
    import keras
    import tensorflow as tf

    from train.augment import make_augment

    keras.utils.set_random_seed(seed)
    augment = make_augment(tuple(names), SIZE, seed)
    data = tf.data.Dataset.from_tensors(image.astype(np.float32)).repeat(times).map(augment)
    return np.stack([x.numpy() for x in data])


@pytest.fixture(scope="module")
def face():
    from skimage import data

    from edge.shared.crop import resize_face

    return resize_face(data.astronaut()[40:250, 150:360], SIZE)


def test_names_are_checked_and_camera_means_all_but_the_seeds():
    assert parse("camera") == CAMERA and "seed" not in CAMERA
    assert parse("none") == () and parse("jpeg,flip") == ("flip", "jpeg")
    with pytest.raises(ValueError, match="unknown augmentation zoom"):
        parse("flip,zoom")


@pytest.mark.parametrize("name", NAMES)
def test_each_augmentation_changes_the_face_and_keeps_shape_and_range(name, face):
    out = run([name], face)
    assert out.shape == (16, SIZE, SIZE, 3)
    assert out.min() >= 0 and out.max() <= 255
    changed = [np.abs(o - face).mean() > 0.5 for o in out]
    assert any(changed), name
    if name in ("edge", "occlusion", "blur", "jpeg"):      # sometimes, not always
        assert not all(changed), name


def test_edge_blacks_out_one_side(face):
    out = run(["edge"], face, times=40)
    cut = [o for o in out if np.abs(o - face).mean() > 0.5]
    assert cut
    for o in cut:
        sides = [o[:, :3].max(), o[:, -3:].max(), o[:3].max(), o[-3:].max()]
        assert min(sides) == 0.0                             # one side is black
        assert sum(s == 0.0 for s in sides) == 1


def test_jpeg_and_blur_remove_fine_detail(face):
    import cv2

    def detail(x):
        return cv2.Laplacian(x.astype(np.float32).mean(-1), cv2.CV_32F).std()

    for name in ("blur", "jpeg"):
        out = run([name], face, times=30)
        changed = [o for o in out if np.abs(o - face).mean() > 0.5]
        assert np.mean([detail(o) for o in changed]) < detail(face), name
