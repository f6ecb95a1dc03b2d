"""OpenCV ``VideoCapture``: a camera index, a video file, or a network stream.

OpenCV decodes to BGR; frames are converted to RGB here. A camera or stream that stops
delivering raises SourceError (the pipeline reconnects with backoff); a video *file*
simply ends. File frames are stamped with the file's own timeline, so tracking a
recording does not depend on how fast this machine decodes it.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from edge.sources import Frame, SourceError


class OpenCVSource:
    def __init__(self, target: int | str, width: int = 640, height: int = 480):
        self.target = target
        self.width, self.height = width, height
        self.is_file = isinstance(target, str) and "://" not in target
        self.live = not self.is_file
        self._cap = None

    def open(self) -> None:
        if self.is_file and not Path(self.target).is_file():
            raise SourceError(f"{self.target}: no such video file")
        cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"could not open {self.target!r} with OpenCV")
        if not self.is_file:
            # A request: cameras pick their nearest mode, streams ignore it.
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        self._cap = cap

    def read(self) -> Frame | None:
        if self._cap is None:
            raise SourceError("read() before open()")
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            if self.is_file:
                return None
            raise SourceError(f"{self.target!r} stopped delivering frames")
        t = (self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if self.is_file
             else time.monotonic())
        return Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
