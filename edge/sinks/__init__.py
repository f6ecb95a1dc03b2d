"""Sinks: where the pipeline's results go — the log, the GPIO pins, snapshots, MQTT.

A sink is a plugin (``edge.plugins``): one file of this package with its parameters
dataclass (its ``[sinks.NAME]`` table, with ``enabled``) and a class with two methods::

    handle(result: FrameResult) -> bool   # once per frame, and while the camera is down;
                                          # True when it delivered something (wrote an
                                          # event, a file, set the pins), False if it had
                                          # nothing to do with this result
    close()                               # release what it holds (GPIO: everything off)

Each sink runs inside a :class:`SafeSink`: a sink that raises — a full disk, a pin
another program grabbed — never stops the loop, and loses no event without counting it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edge.counts import Counts, Today
from edge.tracker import Event, TrackView

# Not "log": that name is the edge.sinks.log submodule once it is imported.
logger = logging.getLogger(__name__)


JPEG_QUALITY = 85   # the annotated frame, as snapshots, MQTT and the live view get it


@dataclass(frozen=True)
class FrameResult:
    """What one frame produced, and nothing that changes after: sinks on other threads
    (the web page, MQTT's publisher) read it while the loop goes on. Its image is made
    read-only, its tracks are frozen views, and its annotated picture is drawn and encoded
    at most once, by whichever sink asks first (:meth:`annotated_jpeg`).

    While the source is down: no image, no tracks, no events."""

    t: float                              # the tracker's clock (seconds, monotonic)
    wall: float                           # wall-clock time.time(), for humans
    image: np.ndarray | None              # the RGB frame
    tracks: tuple[TrackView, ...] = ()    # faces seen in this frame
    events: tuple[Event, ...] = ()
    fps: float = 0.0
    name: str = ""                        # the frame's file name, for image folders
    # Seconds per stage of this frame (detect, crop, classify, track) and the sinks of the
    # frame before: what a status page or /metrics reports.
    timings: dict = field(default_factory=dict)
    # What annotated frames draw besides the faces: ("zone" | "mask", points in pixels).
    overlays: tuple = ()
    counted: Counts = Counts()            # people counted in this frame (edge.counts)
    today: Today | None = None            # today's counts so far
    blur: str = "none"                    # which faces pictures blur ([privacy] blur)
    _drawn: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False,
                                  compare=False)

    def __post_init__(self):
        if self.image is not None:
            self.image.flags.writeable = False
        object.__setattr__(self, "tracks", tuple(self.tracks))
        object.__setattr__(self, "events", tuple(self.events))

    def annotated(self) -> np.ndarray | None:
        """The frame with its faces drawn on (and blurred as ``blur`` says), BGR (for
        OpenCV's writers); drawn once."""
        if self.image is None:
            return None
        with self._lock:
            if "bgr" not in self._drawn:
                import cv2

                from edge.sinks.annotate import draw
                bgr = cv2.cvtColor(draw(self.image, self.tracks, self.overlays, self.blur),
                                   cv2.COLOR_RGB2BGR)
                bgr.flags.writeable = False
                self._drawn["bgr"] = bgr
            return self._drawn["bgr"]

    def annotated_jpeg(self) -> bytes | None:
        """:meth:`annotated` as JPEG bytes; encoded once, for every sink that wants it."""
        bgr = self.annotated()
        if bgr is None:
            return None
        with self._lock:
            if "jpeg" not in self._drawn:
                import cv2

                ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise OSError("JPEG encoding failed")
                self._drawn["jpeg"] = data.tobytes()
            return self._drawn["jpeg"]


class SinkUnavailable(Exception):
    """A sink that can't work on this machine at all (no GPIO pins off a Pi); the message
    says so in one line, with how to switch it off."""


class SafeSink:
    """Runs a sink built by ``factory``; failures are logged and retried, never raised.

    - A failure is logged with its traceback once; the sink is closed and built again after
      ``retry_seconds``, the wait doubling up to ``max_retry_seconds`` while it keeps
      failing (a pin factory that is gone for good costs a line, not one every 5 s).
    - Results that carry events and were not delivered — the sink raised on them, or was
      down waiting for its retry — are held, up to ``max_pending``, and delivered in order
      once it works again; past that the oldest are dropped and counted (``dropped``).
    - "Works again" means a delivery succeeded: a frame the sink had nothing to do with
      (no event for the snapshot sink) proves nothing.
    - A sink that can't work on this machine (:class:`SinkUnavailable`) is one warning line,
      no traceback, and is tried again only every ``max_retry_seconds``.
    """

    def __init__(self, name: str, factory: Callable[[], object], retry_seconds: float = 5.0,
                 max_retry_seconds: float = 300.0, max_pending: int = 16):
        self.name = name
        self._factory = factory
        self._sink = None
        self._retry_seconds = retry_seconds
        self._max_retry_seconds = max(retry_seconds, max_retry_seconds)
        self._wait = retry_seconds
        self._retry_at = float("-inf")
        self._pending: deque[FrameResult] = deque()
        self.max_pending = max_pending
        self.failing = False
        self.dropped = 0              # results with events given up on, since start
        self._dropped_while_failing = 0

    @property
    def sink(self):
        """The running sink, or None while it is down (for status pages)."""
        return self._sink

    @property
    def pending(self) -> int:
        """Results with events held for delivery."""
        return len(self._pending)

    def handle(self, result: FrameResult) -> None:
        if result.events:
            if len(self._pending) >= self.max_pending:
                self._pending.popleft()
                self.dropped += 1
                self._dropped_while_failing += 1
                if self._dropped_while_failing == 1:
                    logger.warning("sink %s: %d undelivered results held; dropping the oldest "
                                   "(counted)", self.name, self.max_pending)
            self._pending.append(result)
        if self._sink is None:
            if time.monotonic() < self._retry_at:
                return
            try:
                self._sink = self._factory()
            except SinkUnavailable as exc:
                self._unavailable(exc)
                return
            except Exception:
                self._failed("could not start")
                return
        # Held results first, in order (the current one is the last of them if it has events).
        while self._pending:
            if not self._deliver(self._pending[0]):
                return
            self._pending.popleft()
        if not result.events:
            self._deliver(result)

    def _deliver(self, result: FrameResult) -> bool:
        """Hand ``result`` to the sink; False (and the sink dropped) if it raised."""
        try:
            delivered = self._sink.handle(result)
        except Exception:
            self._failed("failed")
            self._drop()
            return False
        if delivered:
            self._recovered()
        return True

    def close(self) -> None:
        self._drop()
        if self._pending:
            logger.warning("sink %s: %d results with events were never delivered",
                           self.name, len(self._pending))

    def _recovered(self) -> None:
        if self.failing:
            logger.info("sink %s works again (%d results dropped while it failed)", self.name,
                        self._dropped_while_failing)
        self.failing = False
        self._wait = self._retry_seconds
        self._dropped_while_failing = 0

    def _unavailable(self, exc: SinkUnavailable) -> None:
        if not self.failing:
            logger.warning("sink %s: %s", self.name, exc)
        self.failing = True
        self._wait = self._max_retry_seconds
        self._retry_at = time.monotonic() + self._wait

    def _failed(self, what: str) -> None:
        if not self.failing:
            logger.exception("sink %s %s; the loop goes on, holds its events and retries it "
                             "in %gs (then less often)", self.name, what, self._wait)
        else:
            logger.debug("sink %s %s again; next try in %gs", self.name, what, self._wait)
        self.failing = True
        self._retry_at = time.monotonic() + self._wait
        self._wait = min(self._wait * 2, self._max_retry_seconds)

    def _drop(self) -> None:
        sink, self._sink = self._sink, None
        if sink is not None:
            try:
                sink.close()
            except Exception as exc:
                logger.warning("sink %s did not close cleanly: %s", self.name, exc)


@dataclass(frozen=True)
class SinkContext:
    """What a sink may need from the run besides its own table."""

    log_stream: object = None       # where the log sink writes (None: stdout)
    status_seconds: float = 5.0     # how often state is repeated when nothing changes
    stats: object = None            # edge.stats.Stats: where a sink adds its gauges
    snapshots: bool = False         # the snapshot sink is on (events can name their file)
    alarm_labels: tuple = ()        # the model's classes that raise a violation (edge.alarm)


def make_sinks(config, annotate: Path | None = None, retry_seconds: float = 5.0,
               context: SinkContext = SinkContext()) -> list[SafeSink]:
    """The sinks a config's ``sinks`` tables enable, in their plugins' order, plus an
    annotated-frame writer for ``annotate`` (``--annotate``)."""
    from edge.plugins import plugins

    sinks = []
    for name, found in plugins("sink").items():
        params = getattr(config, name)
        if params.enabled:
            sinks.append(SafeSink(name, lambda f=found, p=params: f.make(p, context),
                                  retry_seconds))
    if annotate is not None:
        from edge.sinks.annotate import AnnotateSink
        sinks.append(SafeSink("annotate", lambda: AnnotateSink(annotate), retry_seconds))
    return sinks
