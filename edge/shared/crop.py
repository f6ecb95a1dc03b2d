"""The one face-crop rule, shared by training data preparation and the edge runtime.

A detector box becomes a square around the face's centre, grown by ``margin`` of the
box's longer side on every side. Where the square reaches past the frame's edge, the
missing part is black: a face cut by the edge keeps its shape (stretching the part that is
left would give the classifier a face it never saw), and it looks the way training shows
such faces (``train.augment``'s edge cut) and the way ``edge eval`` frames small photos.
Images are indexed rows first (``frame[y0:y1, x0:x1]``): the seed swapped x and y here.
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_MARGIN = 0.2


def square_box(box: tuple[int, int, int, int],
               margin: float = DEFAULT_MARGIN) -> tuple[int, int, int, int]:
    """Return ``(x0, y0, x1, y1)``: the square crop for an ``(x, y, w, h)`` box. It may reach
    past the frame (negative, or beyond its size)."""
    x, y, w, h = box
    side = max(1, int(round(max(w, h) * (1.0 + 2.0 * margin))))
    x0 = int(round(x + w / 2.0 - side / 2.0))
    y0 = int(round(y + h / 2.0 - side / 2.0))
    return x0, y0, x0 + side, y0 + side


def outside_fraction(box: tuple[int, int, int, int], frame_shape: tuple[int, ...],
                     margin: float = DEFAULT_MARGIN) -> float:
    """The share of the square crop for ``box`` that lies outside the frame (0: none)."""
    x0, y0, x1, y1 = square_box(box, margin)
    height, width = frame_shape[:2]
    inside = max(0, min(x1, width) - max(x0, 0)) * max(0, min(y1, height) - max(y0, 0))
    return 1.0 - inside / float((x1 - x0) * (y1 - y0))


def crop_face(frame: np.ndarray, box: tuple[int, int, int, int],
              margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Cut the square face crop for ``box`` out of ``frame``: a view when it lies inside the
    frame, else a copy with black where it reaches past the edge."""
    x0, y0, x1, y1 = square_box(box, margin)
    height, width = frame.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if cx1 <= cx0 or cy1 <= cy0:
        raise ValueError(f"box {box} lies outside a frame of shape {frame.shape[:2]}")
    if (cx0, cy0, cx1, cy1) == (x0, y0, x1, y1):
        return frame[y0:y1, x0:x1]
    crop = np.zeros((y1 - y0, x1 - x0) + frame.shape[2:], frame.dtype)
    crop[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] = frame[cy0:cy1, cx0:cx1]
    return crop


def resize_face(face: np.ndarray, size: int) -> np.ndarray:
    """Resize a face crop to the model's ``size`` x ``size`` input, as training does.

    Area interpolation when shrinking avoids aliasing; linear when enlarging.
    """
    h, w = face.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(face)
    interpolation = cv2.INTER_AREA if min(h, w) >= size else cv2.INTER_LINEAR
    return cv2.resize(face, (size, size), interpolation=interpolation)
