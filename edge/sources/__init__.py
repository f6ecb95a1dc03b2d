"""Frame sources: each delivers RGB uint8 frames with timestamps, one at a time.

A source is a class with three methods::

    open()          # acquire the camera / stream / folder; raise SourceError if it can't
    read() -> Frame | None   # the next frame; None at the end of a file or folder;
                             # raise SourceError when the camera or stream fails
    close()         # release it; safe to call twice, or after a failed open()
    live: bool      # True for cameras and streams, which are worth reopening after a failure

The pipeline owns retries: after a SourceError from a live source it closes it, waits with
backoff and opens it again, so a source itself never loops or sleeps. A folder or a video
file that fails is not live: waiting won't fix it, so the pipeline stops with the error.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# A file or stream frame bigger than this on its longer side is shrunk as it is read: an
# 8000x6000 photo in a folder would otherwise cost 144 MB a copy in every stage after it.
MAX_FRAME_SIDE = 1920


class SourceError(Exception):
    """The camera, stream or folder failed; the pipeline will close and reopen the source."""


class SourceUnusable(SourceError):
    """The source can never work as configured (say, picamera2 is not installed): no retry."""


@dataclass(frozen=True)
class Frame:
    """An RGB uint8 image ``(H, W, 3)`` and the time it was taken.

    ``t`` is in seconds on a monotonic clock (for a video file, its own timeline), for the
    tracker; wall-clock time is added where events are written.
    """

    image: np.ndarray
    t: float
    name: str = ""      # where it came from, for images: the file name


def bgr_to_frame_rgb(bgr: np.ndarray) -> np.ndarray:
    """A decoded BGR image as the RGB frame the pipeline takes: shrunk (area averaging) to
    ``MAX_FRAME_SIDE`` first if it is bigger, so only the small copy is converted."""
    side = max(bgr.shape[:2])
    if side > MAX_FRAME_SIDE:
        scale = MAX_FRAME_SIDE / side
        size = (max(1, round(bgr.shape[1] * scale)), max(1, round(bgr.shape[0] * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def make_source(config):
    """Build the source that ``config`` (a ``SourceConfig``) names."""
    if config.kind == "picamera2":
        from edge.sources.picamera import PiCameraSource
        return PiCameraSource(config.width, config.height)
    if config.kind == "opencv":
        from edge.sources.opencv import OpenCVSource
        return OpenCVSource(config.url or config.device, config.width, config.height)
    if config.kind == "images":
        from edge.sources.images import ImageFolderSource
        return ImageFolderSource(config.path)
    raise ValueError(f"unknown source kind '{config.kind}'")
