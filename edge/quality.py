"""Can this face be judged? Size, sharpness, turn and the frame's edge, from the detector's
box and landmarks, before any classification.

A face can be too small, too blurred, turned too far or cut by the frame's edge for its
mouth to be seen; the classifier then guesses, and a confident guess is a false alarm. Such
a face is *unjudged*: the tracker follows it but neither raises nor clears anything for it,
and ``edge eval`` counts it apart. In a doorway the same person gives a better frame a
moment later.

Each measure is cheap next to the classifier (a 64x64 grey copy of the face, the five
landmarks), and a gate that is all zeros judges every face.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import cv2
import numpy as np

from edge.shared.crop import crop_face, outside_fraction
from edge.shared.params import Params, param

SHARPNESS_SIZE = 64


@dataclass(frozen=True)
class Quality:
    """What the gate looks at, for one face in one frame."""

    width: int               # the box's width, frame pixels
    sharpness: float         # Laplacian standard deviation of the face at 64x64, grey levels
    yaw: float | None        # nose offset along the eye line, in eye distances (None: no landmarks)
    outside: float           # share of the square crop past the frame's edge
    score: float = 1.0       # the detector's confidence that this is a face


@dataclass(frozen=True)
class Gate(Params):
    """Limits a face must meet to be judged (``[judge]`` in the config); 0 switches a limit
    off, and all zeros judge every face. The shipped limits were chosen by cross-validation
    by photo (``train.cv``; the bundled model's card): only ``min_score`` paid; width,
    sharpness, turn and edge limits each cost more unmasked faces than false alarms."""

    min_width: int = param(0, min=0, max=4096,
                           help="faces narrower than this (frame pixels) are not judged")
    min_sharpness: float = param(0.0, min=0.0, max=255.0,
                                 help="faces less sharp than this are not judged (Laplacian "
                                      "sd at 64x64; a blurred background face is ~5-8)")
    max_yaw: float = param(0.0, min=0.0, max=10.0,
                           help="faces turned further than this are not judged (nose offset "
                                "in eye distances; ~0.5 at 45 degrees)")
    max_outside: float = param(0.0, min=0.0, max=1.0,
                               help="faces whose crop lies more than this share past the "
                                    "frame's edge are not judged")
    min_score: float = param(0.85, min=0.0, max=1.0,
                             help="faces the detector is less sure of than this are tracked "
                                  "but not judged (above the detector's own score limit)",
                             note="5-fold cross-validation by photo: most false alarms were "
                                  "faces YuNet doubted; 0.85 took without_mask precision "
                                  "from 0.81 to 0.96, recall from 0.91 to 0.875")

    def reason(self, q: Quality) -> str | None:
        """Why a face of quality ``q`` is not judged, or None when it is."""
        if self.min_width and q.width < self.min_width:
            return "small"
        if self.max_outside and q.outside > self.max_outside:
            return "cut"
        if self.max_yaw and q.yaw is not None and abs(q.yaw) > self.max_yaw:
            return "turned"
        if self.min_sharpness and q.sharpness < self.min_sharpness:
            return "blurred"
        if self.min_score and q.score < self.min_score:
            return "unsure"
        return None

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


def yaw(landmarks) -> float:
    """How far a face is turned: the nose tip's offset from the eye midpoint along the eye
    line, in eye distances. About 0 facing the camera, ±0.5 at roughly 45°; negative when
    the nose is towards the image's left. Landmarks: right eye, left eye, nose tip, right
    and left mouth corner (YuNet's order)."""
    pts = np.asarray(landmarks, np.float32).reshape(5, 2)
    eye_line = pts[1] - pts[0]
    iod = float(np.linalg.norm(eye_line))
    if iod < 1e-3:
        return 0.0
    return float(np.dot(pts[2] - (pts[0] + pts[1]) / 2, eye_line) / iod ** 2)


def measure(frame: np.ndarray, face, margin: float) -> Quality:
    """The quality of ``face`` (a detector ``Face``) in ``frame`` (RGB uint8)."""
    x, y, w, h = face.box
    inner = frame[max(0, y):y + h, max(0, x):x + w]
    grey = cv2.cvtColor(inner if inner.size else crop_face(frame, face.box, margin),
                        cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (SHARPNESS_SIZE, SHARPNESS_SIZE), interpolation=cv2.INTER_AREA)
    sharpness = float(cv2.Laplacian(small, cv2.CV_32F).std())
    landmarks = getattr(face, "landmarks", None)
    return Quality(int(w), sharpness, yaw(landmarks) if landmarks else None,
                   outside_fraction(face.box, frame.shape, margin), float(face.score))
