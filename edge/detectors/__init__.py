"""Face detectors: each takes an RGB uint8 frame and returns ``Face`` boxes in its pixels.

A detector is a class with ``detect(frame) -> list[Face]``, registered in DETECTORS by
the name the config uses. Its contract: every box lies inside the frame and is at least one
pixel wide and high, so the pipeline, eval, bench and ``train.prepare`` can crop every face
without checking (a face cut by the frame's edge is clipped, one wholly outside is dropped).

A constructor that rejects one of its parameters raises :class:`DetectorParamError` naming
it, so the config can report the dotted key (``detector.yunet.model: …``).
"""

from __future__ import annotations

from dataclasses import dataclass

DETECTORS = ("haar", "blazeface", "yunet")


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


class DetectorParamError(ValueError):
    """A detector parameter can't be used; ``param`` is its name in the detector's table."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


def clip_box(x0: float, y0: float, x1: float, y1: float, width: int,
             height: int) -> tuple[int, int, int, int] | None:
    """Corner coordinates rounded and clipped to a ``width`` x ``height`` frame, as
    ``(x, y, w, h)``; None when less than one pixel of the box is left inside."""
    x0, x1 = (int(round(min(max(v, 0), width))) for v in (x0, x1))
    y0, y1 = (int(round(min(max(v, 0), height))) for v in (y0, y1))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return x0, y0, x1 - x0, y1 - y0


def detector_class(name: str):
    """The class registered as ``name``, imported on demand (each may pull in a runtime)."""
    if name == "haar":
        from edge.detectors.haar import HaarDetector
        return HaarDetector
    if name == "blazeface":
        from edge.detectors.blazeface import BlazeFaceDetector
        return BlazeFaceDetector
    if name == "yunet":
        from edge.detectors.yunet import YuNetDetector
        return YuNetDetector
    raise ValueError(f"unknown detector '{name}' (known: {', '.join(DETECTORS)})")


def make_detector(name: str, **params):
    """Build the detector registered as ``name`` with its config ``params``."""
    return detector_class(name)(**params)
