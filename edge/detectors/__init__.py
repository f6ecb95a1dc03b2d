"""Face detectors: each takes an RGB uint8 frame and returns ``Face`` boxes in its pixels.

A detector is a plugin (``edge.plugins``): one file of this package with a parameters
dataclass, a :class:`Detector` subclass built from it, and ``PLUGIN`` naming both. The
subclass implements ``find(frame)``: the faces it sees, as ``Found`` corners in frame
pixels. :meth:`Detector.detect` keeps the contract for all of them, so the pipeline, eval,
bench and ``train.prepare`` can crop every face without checking:

- a frame that is not an RGB uint8 image of a sane shape (``frame_problem``: at least
  ``MIN_FRAME_SIDE`` px a side, at most ``MAX_FRAME_ASPECT`` to 1) raises
  :class:`FrameRefused` before the detector sees it (a 2x20000 frame makes YuNet return NaN);
- every box is finite, lies inside the frame and is at least one pixel wide and high (a face
  cut by the frame's edge is clipped, one wholly outside is dropped); a score is in 0..1;
  landmarks are finite or absent.

A constructor that rejects one of its parameters (a model file that isn't there) raises
``edge.shared.params.ParamError`` naming it, so the config can report the dotted key
(``detector.yunet.model: …``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from edge.shared.params import Params, param

MIN_FRAME_SIDE = 16
MAX_FRAME_ASPECT = 16.0


@dataclass(frozen=True)
class Face:
    """A detected face: top-left corner, size in frame pixels, and a score in 0..1.

    ``landmarks``, where the detector gives them (YuNet), are five ``(x, y)`` points in frame
    pixels: right eye, left eye, nose tip, right and left mouth corner (the person's right).
    """

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] | None = None

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.w, self.h


class Found(NamedTuple):
    """A face as a detector's ``find`` reports it, before the contract is applied."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    landmarks: tuple | None = None


class FrameRefused(ValueError):
    """A frame no detector should be given; the message says what is wrong with it."""


def frame_problem(frame) -> str | None:
    """What makes ``frame`` unusable for detection, or None when it is a sane RGB image."""
    shape = getattr(frame, "shape", None)
    if shape is None or len(shape) != 3 or shape[2] != 3 or str(frame.dtype) != "uint8":
        return f"not an RGB uint8 image (shape {shape}, {getattr(frame, 'dtype', type(frame))})"
    height, width = shape[:2]
    if min(height, width) < MIN_FRAME_SIDE:
        return f"{width}x{height} px: under {MIN_FRAME_SIDE} px on a side"
    if max(height, width) > MAX_FRAME_ASPECT * min(height, width):
        return f"{width}x{height} px: longer than {MAX_FRAME_ASPECT:g} to 1"
    return None


class Detector:
    """The base of every face detector: ``detect`` checks the frame, calls ``find`` and
    keeps the contract (module docstring) on what comes back.

    Looking only at regions of a frame pays for a detector whose time grows with the pixels
    (YuNet, Haar). Such a detector says the grid its network strides over (``grid``, in its
    own pixels): a region is snapped to it, so that the region's pixels fall on the cells the
    whole frame's do, and a face in it is seen exactly as in the whole frame. A detector
    whose input has a fixed size (BlazeFace: ``regions_pay = False``) costs the same for a
    region as for the frame: it looks at the whole frame and keeps the faces in the regions.
    """

    grid = 1
    regions_pay = True

    def find(self, frame, scale: float | None = None) -> Iterable[Found]:
        """The faces in ``frame`` as ``Found`` corners in its pixels. ``scale``: shrink the
        frame by this before looking (None: as this detector chooses for the frame's size)."""
        raise NotImplementedError

    def input_scale(self, shape) -> float:
        """How much this detector shrinks a frame of ``shape`` before looking (1: not at
        all). A region is looked at with the whole frame's scale, so that it gives the faces
        the whole frame gives."""
        return 1.0

    def detect(self, frame, regions=None) -> list[Face]:
        """The faces in ``frame``; with ``regions`` (``(x, y, w, h)`` boxes, which must not
        overlap), only those found inside them, in frame pixels. A face that reaches a
        region's edge inside the frame is only partly in it: it is left for a pass that
        sees all of it."""
        problem = frame_problem(frame)
        if problem:
            raise FrameRefused(problem)
        height, width = frame.shape[:2]
        if regions is None:
            found = list(self.find(frame))
        elif not self.regions_pay:
            found = [f for f in self.find(frame)
                     if any(x <= (f.x0 + f.x1) / 2 < x + w and y <= (f.y0 + f.y1) / 2 < y + h
                            for x, y, w, h in regions)]
        else:
            found, scale = [], self.input_scale(frame.shape)
            for x, y, w, h in _snapped(regions, self.grid / scale, width, height):
                part = frame[y:y + h, x:x + w]
                if frame_problem(part):
                    continue
                for f in self.find(part, scale):
                    if (x > 0 and f.x0 < 1) or (y > 0 and f.y0 < 1) or \
                            (x + w < width and f.x1 > w - 1) or (y + h < height and f.y1 > h - 1):
                        continue
                    landmarks = None if f.landmarks is None else tuple(
                        (px + x, py + y) for px, py in f.landmarks)
                    found.append(Found(f.x0 + x, f.y0 + y, f.x1 + x, f.y1 + y, f.score,
                                       landmarks))
        faces = []
        for found_face in found:
            if not all(math.isfinite(float(v)) for v in found_face[:5]):
                continue
            box = clip_box(found_face.x0, found_face.y0, found_face.x1, found_face.y1, width,
                           height)
            if box is None:
                continue
            landmarks = found_face.landmarks
            if landmarks is not None and not all(math.isfinite(float(v))
                                                 for point in landmarks for v in point):
                landmarks = None
            faces.append(Face(*box, score=min(max(float(found_face.score), 0.0), 1.0),
                              landmarks=landmarks))
        return faces


def _snapped(regions, step: float, width: int, height: int):
    """``regions`` grown out to the nearest multiples of ``step`` pixels (within the frame),
    then merged where growing made them overlap."""
    step = max(1, int(round(step)))
    boxes = []
    for x, y, w, h in regions:
        x0, y0 = x // step * step, y // step * step
        x1 = min(width, -(-(x + w) // step) * step)
        y1 = min(height, -(-(y + h) // step) * step)
        boxes.append([x0, y0, x1, y1])
    merged = True
    while merged:
        merged = False
        for i, a in enumerate(boxes):
            for j in range(i + 1, len(boxes)):
                b = boxes[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return [(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in boxes]


def clip_box(x0: float, y0: float, x1: float, y1: float, width: int,
             height: int) -> tuple[int, int, int, int] | None:
    """Corner coordinates rounded and clipped to a ``width`` x ``height`` frame, as
    ``(x, y, w, h)``; None when less than one pixel of the box is left inside."""
    x0, x1 = (int(round(min(max(v, 0), width))) for v in (x0, x1))
    y0, y1 = (int(round(min(max(v, 0), height))) for v in (y0, y1))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return x0, y0, x1 - x0, y1 - y0


@dataclass(frozen=True)
class DetectorSettings(Params):
    """The ``[detector]`` table's own key; each detector's table hangs below it."""

    name: str = param("yunet", help="which of the tables below is used", note=(
        "yunet (n, full width, score 0.7): on the shared scenes' training photos in 640x480\n"
        "frames, faces >= 32 px, recall 0.890 at precision 0.907 and 17 ms per frame (2\n"
        "threads, x86), where BlazeFace full finds 0.588 at 0.650 (3 ms) and tuned Haar 0.147\n"
        "at 0.857 (18 ms). Held-out photos: 0.895 / 0.944. Why: the best recall at precision\n"
        ">= 0.9 on the training photos, bar score 0.6, which finds 4 more of 408 faces but\n"
        "many more false ones (each can raise an alarm); the n model finds more than s; full\n"
        "width fits 20 frames/s. The table: docs/detectors.md."))

    @property
    def params(self):
        """The chosen detector's own table."""
        return getattr(self, self.name)


def make_detector(name: str, **params):
    """The detector plugin ``name``, with its defaults but for ``params``."""
    from edge.plugins import plugin

    found = plugin("detector", name)
    return found.make(found.params(**params))
