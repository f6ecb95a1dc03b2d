"""Frame sources: each delivers RGB uint8 frames with timestamps, one at a time.

A source is a plugin (``edge.plugins``): one file of this package with its parameters
dataclass (its ``[source.NAME]`` table) and a class with three methods::

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

from edge.shared.params import Params, param

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


@dataclass(frozen=True)
class SourceSettings(Params):
    """The ``[source]`` table's own keys; each source's table hangs below it."""

    kind: str = param("picamera2", help="which of the tables below is used")
    fps: float = param(10.0, min=0.0, max=1000.0,
                       help="frame-rate cap, frames/s; 0 = as fast as the Pi can go")
    reconnect_min: float = param(1.0, gt=0.0, max=3600.0,
                                 help="seconds before the first retry of a failed camera or "
                                      "stream…")
    reconnect_max: float = param(30.0, gt=0.0, max=3600.0, help="…doubling up to this")
    loop: bool = param(False, help="a folder or video file starts again at its end "
                                   "(tryouts: the status page on the demo frames)")

    @classmethod
    def problems(cls, values):
        low, high = values.get("reconnect_min"), values.get("reconnect_max")
        if low is not None and high is not None and low > high:
            return [("reconnect_min", f"must be at most source.reconnect_max ({high}), got {low}")]
        return []

    @property
    def params(self):
        """The chosen source's own table."""
        return getattr(self, self.kind)


class Looping:
    """A folder or a video file that starts again from its top when it runs out; a camera
    or stream simply goes on. ``source.loop`` in the config, and what the measurement tools
    read for as long as they like."""

    live = True

    def __init__(self, source):
        self.source = source

    def open(self) -> None:
        self.source.open()

    def read(self) -> Frame:
        frame = self.source.read()
        if frame is None and not getattr(self.source, "live", True):
            self.source.close()
            self.source.open()
            frame = self.source.read()
        if frame is None:
            raise SourceUnusable("the source gave no frames: give --source a folder of "
                                 "images, a video or a camera that has some")
        return frame

    def close(self) -> None:
        self.source.close()


def make_source(config: SourceSettings):
    """The source ``config.kind`` names, built from its table; looping if ``config.loop``."""
    from edge.plugins import plugin

    chosen = plugin("source", config.kind)
    source = chosen.make(config.params)
    return Looping(source) if config.loop else source
