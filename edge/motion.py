"""A motion gate: look for faces only where something moves, and not at all in an empty
doorway.

Per frame, a small grey copy (``frame_height`` rows; about a millisecond) is compared with a
running average of the recent frames, the background. Pixels that differ by more than
``threshold`` grey levels, once dilated, make contours; each of at least ``contour_area``
pixels (of the small frame) is a motion box. The background then moves ``frame_alpha`` of the
way towards the frame. Parts of the picture covered by the zone's masks (``[zone] masks``:
a TV, the street behind the door) never count as motion. When more than ``light_change`` of the
picture changes at once (the lights switched on, the camera's exposure jumping), it is not
motion: the background is taken afresh from this frame.

The pipeline (``edge.pipeline``) uses the boxes: no motion and no live track, no detection;
otherwise detection only in regions around the motion and the live tracks, with a
full-frame pass every ``full_frame_seconds`` for a person who stands still.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from edge.shared.params import Params, param


@dataclass(frozen=True)
class MotionParams(Params):
    """a motion gate: detect faces only where something moves (Frigate's defaults)"""

    enabled: bool = param(True, help="off: the detector runs on every whole frame")
    frame_height: int = param(100, min=24, max=1080,
                              help="rows of the grey copy motion is looked for in")
    threshold: int = param(30, min=1, max=255,
                           help="grey levels a pixel must differ from the background by")
    contour_area: int = param(10, min=1, max=100_000,
                              help="pixels (of the grey copy) a moving area needs")
    frame_alpha: float = param(0.02, gt=0.0, max=1.0,
                               help="how fast the background follows the frames, per frame")
    light_change: float = param(0.8, gt=0.0, max=1.0,
                                help="a change over this share of the picture is the light, "
                                     "not motion: the background starts afresh")
    region_margin: float = param(0.5, min=0.0, max=4.0,
                                 help="detection regions: a motion or track box grown by this "
                                      "share of its size on every side")
    full_frame_seconds: float = param(5.0, min=0.0, max=3600.0,
                                      help="a whole-frame detection at least this often, for a "
                                           "person who stands still; 0 = every frame")


class MotionGate:
    """The motion boxes of each frame, in frame pixels (see the module docstring).

    ``mask`` is a boolean array of the frame's shape (``True``: ignore motion there), or
    None. ``seconds`` is the gate's own time on the last frame."""

    def __init__(self, params: MotionParams = MotionParams(), mask: np.ndarray | None = None):
        self.params = params
        self._mask = mask
        self._small_mask = None
        self._background: np.ndarray | None = None
        self._kernel = np.ones((3, 3), np.uint8)
        self.seconds = 0.0
        self.recalibrations = 0

    def boxes(self, frame: np.ndarray) -> list[tuple[int, int, int, int]]:
        start = time.perf_counter()
        try:
            return self._boxes(frame)
        finally:
            self.seconds = time.perf_counter() - start

    def _boxes(self, frame: np.ndarray) -> list[tuple[int, int, int, int]]:
        height, width = frame.shape[:2]
        # Every step-th pixel, then a blur: sensor noise is not motion, and averaging the
        # full frame would cost more than all the rest of the gate.
        step = max(1, height // self.params.frame_height)
        grey = cv2.cvtColor(np.ascontiguousarray(frame[::step, ::step]), cv2.COLOR_RGB2GRAY)
        grey = cv2.GaussianBlur(grey, (5, 5), 0).astype(np.float32)
        scale = grey.shape[0] / height
        size = (grey.shape[1], grey.shape[0])
        if self._background is None or self._background.shape != grey.shape:
            self._background = grey
            self._small_mask = None if self._mask is None else cv2.resize(
                self._mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
            return []
        moved = np.abs(grey - self._background) > self.params.threshold
        if self._small_mask is not None:
            moved &= ~self._small_mask
        if moved.mean() > self.params.light_change:
            self._background = grey
            self.recalibrations += 1
            return []
        cv2.accumulateWeighted(grey, self._background, self.params.frame_alpha)
        moved = cv2.dilate(moved.astype(np.uint8), self._kernel, iterations=2)
        contours, _ = cv2.findContours(moved, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = []
        for contour in contours:
            if cv2.contourArea(contour) < self.params.contour_area:
                continue
            x, y, w, h = cv2.boundingRect(contour)
            boxes.append((int(x / scale), int(y / scale), int(np.ceil(w / scale)),
                          int(np.ceil(h / scale))))
        return boxes


def regions(boxes: list[tuple[int, int, int, int]], margin: float,
            frame_shape: tuple[int, ...], min_side: int = 64) -> list[tuple[int, int, int, int]]:
    """``boxes`` grown by ``margin`` of their size on every side (at least ``min_side``
    across), clipped to the frame, and merged while any two overlap: the parts of the frame
    to detect faces in, as ``(x, y, w, h)``."""
    height, width = frame_shape[:2]
    grown = []
    for x, y, w, h in boxes:
        cx, cy = x + w / 2, y + h / 2
        gw = max(w * (1 + 2 * margin), min_side) / 2
        gh = max(h * (1 + 2 * margin), min_side) / 2
        grown.append([max(0, int(cx - gw)), max(0, int(cy - gh)),
                      min(width, int(np.ceil(cx + gw))), min(height, int(np.ceil(cy + gh)))])
    merged = True
    while merged:
        merged = False
        for i in range(len(grown)):
            for j in range(i + 1, len(grown)):
                a, b = grown[i], grown[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    grown[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]),
                                max(a[3], b[3])]
                    del grown[j]
                    merged = True
                    break
            if merged:
                break
    return [(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in grown if x1 > x0 and y1 > y0]
