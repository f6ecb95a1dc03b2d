"""OpenCV's Haar frontal-face cascade, on a grayscale, equalised, optionally downscaled frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.detectors import Detector, DetectorParamError, Found

CASCADE = "haarcascade_frontalface_default.xml"
# The seed's settings, kept for the seed-style baseline in `edge bench`.
SEED_PARAMS = {"scale_factor": 1.1, "min_neighbors": 4, "min_size": 30, "detect_width": 0,
               "equalize": False}


class HaarDetector(Detector):
    """Frontal faces with a Haar cascade.

    :param scale_factor: image-pyramid step; smaller finds more sizes but is slower.
    :param min_neighbors: overlapping hits a face needs; higher means fewer false faces.
    :param min_size: smallest face, in pixels of the original frame.
    :param detect_width: downscale frames wider than this before detecting (0 = never);
        boxes are mapped back to the original frame.
    :param equalize: histogram-equalise the grayscale image (helps in backlight).
    """

    # Defaults from `python -m edge.measure.tune_haar` on the 406 shared scenes (faces >= 32 px, IoU
    # >= 0.5): the fastest setting tied within noise for the best recall at >= 90% precision
    # on both halves of the scenes. Recall 0.168 at precision 0.942 (worse half 0.166 / 0.922),
    # against the seed's 1.1 / 4 / 30: 0.276 at 0.669. A frontal cascade misses most masked
    # faces; precision only holds at settings that also drop many real ones.
    def __init__(self, scale_factor: float = 1.3, min_neighbors: int = 5, min_size: int = 32,
                 detect_width: int = 0, equalize: bool = False, cascade: str | None = None):
        if scale_factor <= 1.0:
            raise DetectorParamError("scale_factor", f"must be greater than 1, got {scale_factor}")
        path = Path(cascade) if cascade else Path(cv2.data.haarcascades) / CASCADE
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise DetectorParamError("cascade", f"Haar cascade {path} could not be loaded; "
                                                "install opencv-python-headless 4.x (5.x "
                                                "dropped the cascades)")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.detect_width = detect_width
        self.equalize = equalize

    def find(self, frame: np.ndarray) -> list[Found]:
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        scale = 1.0
        if self.detect_width and gray.shape[1] > self.detect_width:
            scale = self.detect_width / gray.shape[1]
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
