"""Frames with their faces drawn on: as JPEGs in a folder, or as one video file.

Green box: masked; orange: not masked (yet); red, thick: a raised violation; grey: not
judged in this frame (the reason instead of a label). Each box is labelled with its track
id, label and confidence. A cyan outline is the zone, grey shading a motion mask.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.privacy import blurred

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv"}
GREEN, ORANGE, RED, GREY = (0, 200, 0), (255, 150, 0), (230, 0, 0), (128, 128, 128)
ZONE, MASK = (0, 220, 255), (90, 90, 90)


def draw(image: np.ndarray, tracks, overlays=(), blur: str = "none") -> np.ndarray:
    """A copy of the RGB ``image`` with the faces ``blur`` says blurred (``edge.privacy``),
    the zone (cyan outline) and the motion masks (grey, shaded) of ``overlays``, then each
    track's box and label drawn on."""
    out = blurred(image, tracks, blur)
    for kind, points in overlays:
        polygon = np.array(points, np.int32)
        if kind == "mask":
            shade = out.copy()
            cv2.fillPoly(shade, [polygon], MASK)
            out = cv2.addWeighted(shade, 0.4, out, 0.6, 0)
        cv2.polylines(out, [polygon], True, ZONE if kind == "zone" else MASK, 2, cv2.LINE_AA)
    for tr in tracks:
        x, y, w, h = tr.box
        color = (RED if tr.violating else GREY if tr.unjudged else GREEN if tr.masked
                 else ORANGE)
        cv2.rectangle(out, (x, y), (x + w, y + h), color, 4 if tr.violating else 2)
        text = (f"#{tr.id} unjudged: {tr.unjudged}" if tr.unjudged
                else f"#{tr.id} {tr.label} {tr.confidence:.2f}")
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y - th - base - 4)
        cv2.rectangle(out, (x, top), (x + tw + 4, top + th + base + 4), color, cv2.FILLED)
        cv2.putText(out, text, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return out


class AnnotateSink:
    """Write annotated frames to ``out``: a folder of JPEGs, or a video for .mp4/.avi/.mkv."""

    def __init__(self, out: Path | str, fps: float = 10.0):
        self.out = Path(out)
        self.fps = fps
        self.is_video = self.out.suffix.lower() in VIDEO_SUFFIXES
        (self.out.parent if self.is_video else self.out).mkdir(parents=True, exist_ok=True)
        self._writer = None
        self._count = 0

    def handle(self, result) -> bool:
        if result.image is None:
            return False
        bgr = result.annotated()
        self._count += 1
        if self.is_video:
            if self._writer is None:
                fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.out.suffix == ".mp4" else "MJPG"))
                self._writer = cv2.VideoWriter(str(self.out), fourcc, self.fps,
                                               (bgr.shape[1], bgr.shape[0]))
                if not self._writer.isOpened():
                    raise OSError(f"OpenCV cannot write video {self.out}")
            self._writer.write(bgr)
            return True
        name = Path(result.name).stem if result.name else f"frame-{self._count:06d}"
        path = self.out / f"{name}.jpg"
        path.write_bytes(result.annotated_jpeg())
        return True

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
