"""Face detectors: each takes an RGB uint8 frame and returns ``Face`` boxes in its pixels.

A detector is a class with ``detect(frame) -> list[Face]``, registered in DETECTORS by
the name the config uses. Its contract: every box lies inside the frame and is at least one
pixel wide and high, so the pipeline, eval, bench and ``train.prepare`` can crop every face
without checking (a face cut by the frame's edge is clipped, one wholly outside is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Face:
    """A detected face: top-left corner, size in frame pixels, and a score in 0..1."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.w, self.h


def make_detector(name: str, **params):
    """Build the detector registered as ``name`` with its config ``params``."""
    if name == "haar":
        from edge.detectors.haar import HaarDetector
        return HaarDetector(**params)
    if name == "blazeface":
        from edge.detectors.blazeface import BlazeFaceDetector
        return BlazeFaceDetector(**params)
    raise ValueError(f"unknown detector '{name}' (known: haar, blazeface)")
