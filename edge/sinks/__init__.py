"""Sinks: where the pipeline's results go — the log, the GPIO pins, snapshots, annotated frames.

A sink is a class with two methods::

    handle(result: FrameResult)   # called once per frame, and while the camera is down
    close()                       # release what it holds (GPIO: everything off)

Each sink runs inside a :class:`SafeSink`: a sink that raises — a full disk, a pin
another program grabbed — never stops the loop. Its first failure is logged with the
traceback, repeats are not; the sink is closed and built again after ``retry_seconds``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edge.tracker import Event, Track

# Not "log": that name is the edge.sinks.log submodule once it is imported.
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameResult:
    """What one frame produced. While the source is down: no image, no tracks, no events."""

    t: float                              # the tracker's clock (seconds, monotonic)
    wall: float                           # wall-clock time.time(), for humans
    image: np.ndarray | None              # the RGB frame
    tracks: list[Track] = field(default_factory=list)   # faces seen in this frame
    events: list[Event] = field(default_factory=list)
    fps: float = 0.0
    name: str = ""                        # the frame's file name, for image folders


class SafeSink:
    """Runs a sink built by ``factory``; failures are logged once and retried, never raised."""

    def __init__(self, name: str, factory: Callable[[], object], retry_seconds: float = 5.0):
        self.name = name
        self._factory = factory
        self._sink = None
        self._retry_seconds = retry_seconds
        self._retry_at = float("-inf")
        self.failing = False

    def handle(self, result: FrameResult) -> None:
        if self._sink is None:
            if time.monotonic() < self._retry_at:
                return
            try:
                self._sink = self._factory()
            except Exception:
                self._failed("could not start")
                return
        try:
            self._sink.handle(result)
        except Exception:
            self._failed("failed")
            self._drop()
            return
        if self.failing:
            logger.info("sink %s works again", self.name)
            self.failing = False

    def close(self) -> None:
        self._drop()

    def _failed(self, what: str) -> None:
        if not self.failing:
            logger.exception("sink %s %s; the loop goes on and retries it every %gs",
                          self.name, what, self._retry_seconds)
        self.failing = True
        self._retry_at = time.monotonic() + self._retry_seconds

    def _drop(self) -> None:
        sink, self._sink = self._sink, None
        if sink is not None:
            try:
                sink.close()
            except Exception as exc:
                logger.warning("sink %s did not close cleanly: %s", self.name, exc)


def make_sinks(config, annotate: Path | None = None, retry_seconds: float = 5.0,
               log_stream=None) -> list[SafeSink]:
    """The sinks a ``SinksConfig`` enables, plus an annotated-frame writer for ``annotate``."""
    sinks = []
    if config.log.enabled:
        from edge.sinks.log import LogSink
        sinks.append(SafeSink("log", lambda: LogSink(log_stream), retry_seconds))
    if config.gpio.enabled:
        from edge.sinks.gpio import GpioSink
        g = config.gpio
        sinks.append(SafeSink("gpio", lambda: GpioSink(
            g.green, g.red, g.buzzer, g.active_high, g.violation_seconds, g.buzzer_seconds),
            retry_seconds))
    if config.snapshot.enabled:
        from edge.sinks.snapshot import SnapshotSink
        s = config.snapshot
        sinks.append(SafeSink("snapshot", lambda: SnapshotSink(s.dir, s.max_count,
                                                               s.max_age_days), retry_seconds))
    if annotate is not None:
        from edge.sinks.annotate import AnnotateSink
        sinks.append(SafeSink("annotate", lambda: AnnotateSink(annotate), retry_seconds))
    return sinks
