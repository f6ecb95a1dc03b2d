"""A toy face detector: the doorway camera is aimed so that a face is always in the middle.

Copy this file to ``edge/detectors/centre.py`` and it is a detector: the registry finds its
``PLUGIN``, ``python -m edge config`` lists its ``[detector.centre]`` table, and a config
with ``[detector] name = "centre"`` runs it. Nothing else in the tree changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.detectors import Detector, Found
from edge.plugins import Plugin
from edge.shared.params import Params, param


@dataclass(frozen=True)
class CentreParams(Params):
    size: float = param(0.4, gt=0.0, max=1.0,
                        help="the face's side, as a share of the frame's height")
    drift: float = param(0.0, min=-1.0, max=1.0,
                         help="how far right of the centre it is, as a share of the width")
    score: float = param(0.9, min=0.0, max=1.0, help="the score every face gets")


class CentreDetector(Detector):
    """One square face in the middle of every frame, ``size`` of its height across."""

    def __init__(self, params: CentreParams = CentreParams()):
        self.params = params

    def find(self, frame, scale=None):
        # Corners in frame pixels; Detector.detect clips them to the frame and drops what
        # is left outside, so a face pushed past the edge by `drift` is cut, as a real one is.
        height, width = frame.shape[:2]
        side = self.params.size * height
        cx = width / 2 + self.params.drift * width
        cy = height / 2
        yield Found(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2,
                    self.params.score)


PLUGIN = Plugin("detector", "centre", CentreParams, CentreDetector,
                "a toy: one face in the middle of the frame (docs/plugins.md)", order=90)
