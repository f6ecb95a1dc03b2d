"""The one face-crop rule, shared by training data preparation and the edge runtime.

A detector box becomes a square around the face's centre, grown by ``margin`` of the
box's longer side on every side, then clipped to the frame. Images are indexed rows
first (``frame[y0:y1, x0:x1]``): the seed swapped x and y here.
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_MARGIN = 0.2


def square_box(box: tuple[int, int, int, int], frame_shape: tuple[int, ...],
               margin: float = DEFAULT_MARGIN) -> tuple[int, int, int, int]:
    """Return ``(x0, y0, x1, y1)``: the square crop for an ``(x, y, w, h)`` box, clipped."""
    x, y, w, h = box
    height, width = frame_shape[:2]
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0 = int(round(max(0.0, cx - side / 2.0)))
    y0 = int(round(max(0.0, cy - side / 2.0)))
    x1 = int(round(min(float(width), cx + side / 2.0)))
    y1 = int(round(min(float(height), cy + side / 2.0)))
    return x0, y0, x1, y1


def crop_face(frame: np.ndarray, box: tuple[int, int, int, int],
              margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Cut the face for ``box`` out of ``frame`` (a view, not a copy)."""
    x0, y0, x1, y1 = square_box(box, frame.shape, margin)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {box} lies outside a frame of shape {frame.shape[:2]}")
    return frame[y0:y1, x0:x1]


def resize_face(face: np.ndarray, size: int) -> np.ndarray:
    """Resize a face crop to the model's ``size`` x ``size`` input, as training does.

    Area interpolation when shrinking avoids aliasing; linear when enlarging.
    """
    h, w = face.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(face)
    interpolation = cv2.INTER_AREA if min(h, w) >= size else cv2.INTER_LINEAR
    return cv2.resize(face, (size, size), interpolation=interpolation)
