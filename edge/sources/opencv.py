"""OpenCV ``VideoCapture``: a camera index, a video file, or a network stream.

OpenCV decodes to BGR; frames are converted to RGB here. A camera or stream that stops
delivering raises SourceError (the pipeline reconnects with backoff). A video *file* ends
at its last frame; one that ends before the frame count in its header is truncated or
corrupt, which is a SourceError too (the run fails instead of ending "normally"). File
frames are stamped with the file's own timeline, so tracking a recording does not depend
on how fast this machine decodes it.

A stream (``rtsp://``, ``http://``) is opened through FFmpeg with open and read timeouts
of ``STREAM_TIMEOUT`` seconds: a server that accepts and then says nothing would otherwise
hold ``open()`` for 30 s, beyond systemd's stop timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2

from edge.plugins import Plugin
from edge.shared.params import Params, param
from edge.sources import Frame, SourceError, bgr_to_frame_rgb

STREAM_TIMEOUT = 5.0  # seconds; a stop waits for at most one of these
# A file may end this much short of its header's frame count (rounded durations).
FRAME_COUNT_SLACK = 0.01


@dataclass(frozen=True)
class OpenCVParams(Params):
    device: int = param(0, min=0, max=63, help="a camera index (used when url is empty)")
    url: str = param("", path="file", help="a video file or an rtsp://… / http://… stream")
    width: int = param(640, min=16, max=8192, help="the resolution asked of a camera")
    height: int = param(480, min=16, max=8192)


class OpenCVSource:
    def __init__(self, params: OpenCVParams = OpenCVParams()):
        target = params.url or params.device
        self.target = target
        self.width, self.height = params.width, params.height
        self.is_file = isinstance(target, str) and "://" not in target
        self.is_stream = isinstance(target, str) and "://" in target
        self.live = not self.is_file
        self._cap = None

    def open(self) -> None:
        if self.is_file and not Path(self.target).is_file():
            raise SourceError(f"{self.target}: no such video file")
        if self.is_stream:
            ms = int(STREAM_TIMEOUT * 1000)
            cap = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG,
                                   [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        else:
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
                self._check_complete()
                return None
            raise SourceError(f"{self.target!r} stopped delivering frames")
        t = (self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if self.is_file
             else time.monotonic())
        return Frame(bgr_to_frame_rgb(bgr), t)

    def _check_complete(self) -> None:
        """A file that stops short of its own frame count is truncated or corrupt."""
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        done = self._cap.get(cv2.CAP_PROP_POS_FRAMES)
        if count > 0 and done < count * (1 - FRAME_COUNT_SLACK) - 1:
            raise SourceError(f"{self.target} ended after {done:.0f} of its {count:.0f} frames: "
                              "the file is truncated or corrupt")

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


PLUGIN = Plugin("source", "opencv", OpenCVParams, OpenCVSource,
                "OpenCV: a USB camera, a video file or a network stream", order=20)
