"""OpenCV's Haar frontal-face cascade, on a grayscale, equalised, optionally downscaled frame."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.detectors import Detector, Found
from edge.plugins import Plugin
from edge.shared.params import ParamError, Params, param

CASCADE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class HaarParams(Params):
    # Defaults from `python -m edge.measure.tune_haar` on the 406 shared scenes (faces >= 32
    # px, IoU >= 0.5): the fastest setting tied within noise for the best recall at >= 90%
    # precision on both halves of the scenes. Recall 0.168 at precision 0.942 (worse half
    # 0.166 / 0.922), against the seed's 1.1 / 4 / 30: 0.276 at 0.669. A frontal cascade
    # misses most masked faces; precision only holds at settings that also drop many real ones.
    scale_factor: float = param(1.3, gt=1.0, max=4.0,
                                help="image-pyramid step; smaller finds more sizes, slower")
    min_neighbors: int = param(5, min=0, max=100,
                               help="overlapping hits a face needs; higher = fewer false faces")
    min_size: int = param(32, min=1, max=8192, help="smallest face, pixels of the camera frame")
    detect_width: int = param(0, min=0, max=8192,
                              help="frames wider than this are shrunk before detection; "
                                   "0 = never")
    equalize: bool = param(False, help="histogram-equalise (can help with backlight in doorways)")
    cascade: str = param("", path="file", help="a cascade XML file; empty = OpenCV's frontal face")


# The seed project's settings: the comparison row of tune_haar and the seed-style loop.
SEED_HAAR = HaarParams(scale_factor=1.1, min_neighbors=4, min_size=30)


class HaarDetector(Detector):
    """Frontal faces with a Haar cascade (``HaarParams``); boxes of a shrunk frame are
    mapped back to the original."""

    def __init__(self, params: HaarParams = HaarParams()):
        path = Path(params.cascade) if params.cascade else Path(cv2.data.haarcascades) / CASCADE
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise ParamError("cascade", f"Haar cascade {path} could not be loaded; install "
                                        "opencv-python-headless 4.x (5.x dropped the cascades)")
        self.scale_factor = params.scale_factor
        self.min_neighbors = params.min_neighbors
        self.min_size = params.min_size
        self.detect_width = params.detect_width
        self.equalize = params.equalize

    def input_scale(self, shape) -> float:
        width = shape[1]
        return self.detect_width / width if self.detect_width and width > self.detect_width else 1.0

    def find(self, frame: np.ndarray, scale: float | None = None) -> list[Found]:
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        scale = self.input_scale(frame.shape) if scale is None else scale
        if scale < 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if self.equalize:
            gray = cv2.equalizeHist(gray)
        min_side = max(1, int(round(self.min_size * scale)))
        boxes, _, weights = self.cascade.detectMultiScale3(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(min_side, min_side), outputRejectLevels=True)
        faces = []
        for (x, y, w, h), weight in zip(boxes, np.ravel(weights) if len(boxes) else []):
            # Level weights are unbounded; squash to 0..1 so all detectors share a scale.
            score = float(1.0 / (1.0 + np.exp(-float(weight))))
            faces.append(Found(x / scale, y / scale, (x + w) / scale, (y + h) / scale, score))
        return faces


PLUGIN = Plugin("detector", "haar", HaarParams, HaarDetector,
                "OpenCV's Haar frontal-face cascade (python -m edge.measure.tune_haar)", order=30)
