"""The run loop: source → detector → crop → classifier → tracker → sinks, all day.

Built to be impossible to wedge:

* everything that can be checked is checked before the camera opens — config, model,
  detector, tracker — and a problem there is a :class:`StartupError` (exit 2, with the fix);
* a live source (camera, stream) that fails is closed and reopened with doubling backoff,
  for ever, in this process. The loop is alive while it waits, so WATCHDOG pings go on
  (with ``STATUS=source down: …``): the watchdog restarts a hung loop, not a missing
  camera, and systemd's start limit can't give up on a device whose camera is unplugged;
* a sink that fails is isolated by :class:`edge.sinks.SafeSink`;
* SIGTERM, SIGINT and SIGHUP only set a flag: the current frame finishes, the camera and
  GPIO are released (all off) and :meth:`Pipeline.run` returns. Every blocking call of the
  loop is bounded (stream timeouts, a log that never waits for stdout); should one hang
  anyway, ``STOP_GRACE`` seconds after the signal the outputs are switched off from
  another thread and the process exits, inside systemd's ``TimeoutStopSec``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from edge.alarm import AlarmRule
from edge.config import ConfigError
from edge.counts import Tally
from edge.detectors import frame_problem
from edge.motion import MotionGate, regions
from edge.notify import Notifier
from edge.plugins import plugin
from edge.quality import measure
from edge.shared.card import ModelError, alarm_labels
from edge.shared.classifier import Classifier
from edge.shared.crop import crop_face
from edge.shared.params import ParamError
from edge.sinks import FrameResult, SafeSink, SinkContext, make_sinks
from edge.sources import Frame, SourceError, SourceUnusable, make_source
from edge.stats import Stats
from edge.tracker import Tracker
from edge.zone import Zone

log = logging.getLogger(__name__)

# "motion" is the motion gate's own time; "crop" includes the quality gate's measures.
STAGES = ("motion", "detect", "crop", "classify", "track", "sinks")
# Seconds a stop may take before the outputs are forced off and the process exits: under
# the unit's TimeoutStopSec=15s, after which systemd would SIGKILL with the LEDs left on.
STOP_GRACE = 10.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# A source that keeps giving unusable frames costs a journal line a minute, with the count.
REFUSED_LOG_EVERY = 60.0


class StartupError(Exception):
    """The runtime can't start as configured; the message says what to fix (exit code 2)."""


def build_detector(config):
    """The configured detector; a value it rejects is reported under its config key."""
    name = config.detector.name
    try:
        return plugin("detector", name).make(config.detector.params)
    except ParamError as exc:
        raise ConfigError(f"detector.{name}.{exc.key}: {exc.message}") from exc


def build_classifier(config) -> Classifier:
    return Classifier(config.model_path, config.model.format or None, config.model.threads)


def today_so_far(config):
    """Today's counts as the event store has them, so that a restart goes on counting
    from there; None without a store (or a file it can't read yet)."""
    store = config.sinks.store
    if not store.enabled:
        return None
    from edge.sinks.store import History
    try:
        return History(store.path).today()
    except (OSError, sqlite3.Error) as exc:
        log.info("store: today's counts start at 0 (%s could not be read: %s)", store.path, exc)
        return None


def build_alarm(config, model) -> AlarmRule:
    """Which of the model's classes raise the alarm and which are masked: ``[tracker]``'s
    lists, or where they are empty the model card's (``edge.alarm``); a label the model
    lacks is a ConfigError naming the key and the model's classes."""
    alarm, masked = alarm_labels(model.card)
    tracker = config.tracker
    try:
        return AlarmRule(model.classes, tuple(tracker.alarm_labels or alarm),
                         tuple(tracker.masked_labels or masked))
    except ValueError as exc:
        raise ConfigError(f"tracker.{exc}") from exc


def build_tracker(config, model) -> Tracker:
    return Tracker(build_alarm(config, model), config.tracker)


class Pipeline:
    """One source, one detector, one classifier, one tracker and the sinks, wired together.

    The parts can be passed in (tests, bench); otherwise they are built from ``config``.
    """

    def __init__(self, config, *, annotate: Path | None = None, source=None,
                 detector=None, classifier=None, sinks: list[SafeSink] | None = None,
                 notifier: Notifier | None = None, log_stream=None):
        self.config = config
        try:
            self.classifier = classifier or build_classifier(config)
            self.detector = detector or build_detector(config)
            self.tracker = build_tracker(config, self.classifier.model)
        except (ModelError, ConfigError) as exc:
            raise StartupError(str(exc)) from exc
        self.stats = Stats(str(self.classifier.model.path), self.classifier.model.format,
                           config.detector.name, dataclasses.asdict(config.detector.params))
        context = SinkContext(log_stream, config.service.status_seconds, self.stats,
                              config.sinks.snapshot.enabled, self.tracker.rule.alarm)
        self.tally = Tally(today_so_far(config) if sinks is None else None)
        self.sinks = sinks if sinks is not None else make_sinks(
            config.sinks, annotate=annotate, context=context)
        self.source = source or make_source(config.source)
        self.notifier = notifier or Notifier()
        self._nothing = np.zeros(len(self.classifier.labels), np.float32)  # an unjudged face's row
        self._refused_said = float("-inf")
        self._zone: Zone | None = None
        self._zone_shape = None
        self._motion: MotionGate | None = None
        self._last_full = float("-inf")
        self.web = None
        if config.web.enabled:
            from edge.sinks.store import History
            from edge.web import StatusServer
            snapshots, store = config.sinks.snapshot, config.sinks.store
            try:
                self.web = StatusServer(config.web, self.stats,
                                        snapshots.dir if snapshots.enabled else None,
                                        History(store.path) if store.enabled else None)
            except (OSError, ValueError) as exc:
                raise StartupError(f"web: cannot serve on {config.web.bind}:{config.web.port} "
                                   f"({exc})") from exc
            self.sinks.append(SafeSink("web", lambda: self.web.sink))
        self._last_frame_at: float | None = None
        self._interval: float | None = None
        self._last_ping = float("-inf")
        self._last_status = float("-inf")
        self._watchdog_interval = _watchdog_interval() if config.service.watchdog else None

    # --- one frame -------------------------------------------------------------------
    def process(self, frame: Frame) -> FrameResult | None:
        """Run one frame through the motion gate, detection, classification, tracking and
        the sinks; None (counted in ``refused``) for a frame no detector should see."""
        clock = time.perf_counter
        t_start = clock()
        problem = frame_problem(frame.image)
        if problem:
            self._refuse(frame, problem)
            return None
        zone = self._zone_for(frame.image.shape)
        where = self._where(frame, zone)
        t0 = clock()
        faces = [] if where == () else self.detector.detect(frame.image, where)
        t1 = clock()
        margin = self.config.model.margin
        unjudged = self._judge(frame.image, faces, zone)
        crops = [crop_face(frame.image, f.box, margin)
                 for f, why in zip(faces, unjudged) if why is None]
        t2 = clock()
        judged = iter(self.classifier.classify(crops))
        probs = [next(judged) if why is None else self._nothing for why in unjudged]
        t3 = clock()
        events = self.tracker.update(frame.t, [f.box for f in faces], probs, unjudged)
        self._count_frame()
        t4 = clock()
        # This frame's stages; the sinks' time is the frame before's (this one's isn't known yet).
        stats = self.stats
        timings = dict(zip(STAGES, (t0 - t_start, t1 - t0, t2 - t1, t3 - t2, t4 - t3,
                                    stats.timings.get("sinks", 0.0))))
        wall = time.time()
        counted, today = self.tally.step(wall, self.tracker.counts)
        result = FrameResult(frame.t, wall, frame.image, self.tracker.visible(frame.t),
                             events, stats.fps, frame.name, timings, zone.overlays(),
                             counted, today, self.config.privacy.blur)
        for sink in self.sinks:
            sink.handle(result)
        stats.timings = {**timings, "sinks": clock() - t4, "faces": len(faces)}
        return result

    def _zone_for(self, shape) -> Zone:
        """The zone and masks in this frame size's pixels; the motion gate follows them."""
        if self._zone is None or self._zone_shape != shape[:2]:
            self._zone, self._zone_shape = Zone(self.config.zone, shape), shape[:2]
            self._motion = MotionGate(self.config.motion, self._zone.motion_mask)
        return self._zone

    def _where(self, frame: Frame, zone: Zone):
        """Where to look for faces: None (the whole frame), a list of regions, or () for
        nowhere — no motion and no live track. A whole-frame pass at least every
        ``motion.full_frame_seconds`` finds a person who stands still."""
        motion = self.config.motion
        if not motion.enabled:
            return None
        moving = self._motion.boxes(frame.image)
        if frame.t - self._last_full >= motion.full_frame_seconds:
            self._last_full = frame.t
            return None
        boxes = moving + [track.box for track in self.tracker.tracks]
        if not boxes:
            return ()
        return regions(boxes, motion.region_margin, frame.image.shape)

    def _refuse(self, frame: Frame, why) -> None:
        self.stats.refused += 1
        now = time.monotonic()
        if now - self._refused_said >= REFUSED_LOG_EVERY:
            log.warning("skipping frame %s: %s (%d refused so far)", frame.name or "", why,
                        self.stats.refused)
            self._refused_said = now

    def _judge(self, image, faces, zone: Zone) -> list[str | None]:
        """Why each face is not to be judged — outside the zone, or the ``[judge]`` gate —
        or None."""
        gate = self.config.judge
        return ["outside" if not zone.contains(f.box) else
                gate.reason(measure(image, f, self.config.model.margin)) if gate.active else None
                for f in faces]

    def _count_frame(self) -> None:
        now = time.monotonic()
        if self._last_frame_at is not None:
            dt = max(now - self._last_frame_at, 1e-6)
            # A moving average of the frame interval over roughly the last ten frames (of the
            # interval, not the rate: averaging rates would overweight the fast frames).
            self._interval = dt if self._interval is None else 0.9 * self._interval + 0.1 * dt
            self.stats.fps = 1.0 / self._interval
        self._last_frame_at = now
        self.stats.frames += 1

    # --- the loop --------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, max_frames: int | None = None) -> int:
        """Process frames until the source ends, ``stop`` is set, or ``max_frames``.

        Returns the number of frames processed. Always releases the source and sinks.
        """
        stop = stop or threading.Event()
        cfg = self.config.source
        live = getattr(self.source, "live", True)
        backoff, down_since, is_open = cfg.reconnect_min, None, False
        try:
            while not stop.is_set() and (max_frames is None or self.stats.frames < max_frames):
                started = time.monotonic()
                try:
                    if not is_open:
                        self.source.open()
                        is_open = True
                    frame = self.source.read()
                except SourceError as exc:
                    self._close_source()
                    is_open = False
                    if not live or isinstance(exc, SourceUnusable):
                        # A missing folder, a broken file or package won't heal by waiting.
                        raise StartupError(f"source: {exc}") from exc
                    if down_since is None:
                        down_since = time.monotonic()
                        log.warning("source down: %s; retrying with backoff up to %gs",
                                    exc, cfg.reconnect_max)
                    else:
                        log.debug("source still down: %s", exc)
                    self.notifier.status(f"source down: {exc}")
                    self._idle(backoff, stop)
                    backoff = min(backoff * 2, cfg.reconnect_max)
                    continue
                if frame is None:
                    log.info("source ended after %d frames", self.stats.frames)
                    break
                if down_since is not None:
                    log.info("source back after %.1fs", time.monotonic() - down_since)
                    down_since, backoff = None, cfg.reconnect_min
                    self.stats.reconnects += 1
                self.process(frame)
                self._after_frame()
                if cfg.fps > 0:
                    stop.wait(max(0.0, started + 1.0 / cfg.fps - time.monotonic()))
        finally:
            self.close()
        return self.stats.frames

    def _after_frame(self) -> None:
        now = time.monotonic()
        if self.stats.frames == 1:
            self.notifier.ready(f"first frame processed ({self.classifier.runtime})")
            log.info("running: first frame processed")
        self._ping(now)
        if now - self._last_status >= self.config.service.status_seconds:
            self.notifier.status(f"{self.stats.fps:.1f} frames/s, "
                                 f"{len(self.tracker.tracks)} tracked")
            self._last_status = now

    def _ping(self, now: float) -> None:
        if self._watchdog_interval is not None and now - self._last_ping >= self._watchdog_interval:
            self.notifier.watchdog()
            self._last_ping = now

    def _idle(self, seconds: float, stop: threading.Event) -> None:
        """Wait while the source is down, still giving the sinks their clock (LED timers)
        and systemd its WATCHDOG pings: the loop is alive, only the camera is missing."""
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            now = time.monotonic()
            self._ping(now)
            result = FrameResult(now, time.time(), None, fps=0.0)
            for sink in self.sinks:
                sink.handle(result)
            if now >= deadline:
                return
            stop.wait(min(1.0, deadline - now))

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception as exc:  # a dying camera may fail to close too; go on regardless
            log.warning("source did not close cleanly: %s", exc)

    def close(self) -> None:
        """Release the camera and the sinks (GPIO all off); say STOPPING to systemd."""
        self._close_source()
        for sink in self.sinks:
            sink.close()
        if self.web is not None:
            self.web.close()
        self.notifier.stopping()
        self.notifier.close()


def _watchdog_interval() -> float | None:
    """Ping at half systemd's WatchdogSec; None when the unit has no watchdog for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None


def run_service(config, annotate: Path | None = None) -> int:
    """``python -m edge run``: build the pipeline, stop cleanly on SIGTERM, SIGINT or SIGHUP
    (a closed terminal or ``kill -HUP``: to re-read the config, restart the service); the
    exit code."""
    pipeline = Pipeline(config, annotate=annotate)
    stop = threading.Event()
    finished = threading.Event()

    def force_stop():
        if finished.is_set():
            return
        log.error("stop: the loop is still blocked %gs after the signal; switching the "
                  "outputs off and exiting without it", STOP_GRACE)
        for sink in pipeline.sinks:
            sink.close()  # GPIO: everything off
        pipeline.notifier.stopping()
        os._exit(0)

    def on_signal(signum, _frame):
        log.info("%s: stopping after this frame", signal.Signals(signum).name)
        if not stop.is_set():
            guard = threading.Timer(STOP_GRACE, force_stop)
            guard.daemon = True
            guard.start()
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        frames = pipeline.run(stop)
    finally:
        finished.set()
        for s, handler in previous.items():
            signal.signal(s, handler)
    log.info("stopped after %d frames", frames)
    return 0


def with_source(config, kind: str | None = None, table: dict | None = None, **changes):
    """``config`` with some ``[source]`` keys changed, and some of the ``kind`` source's own
    table (demo, bench, tests)."""
    source = config.source
    if kind is not None:
        changes["kind"] = kind
        if table:
            changes[kind] = dataclasses.replace(getattr(source, kind), **table)
    return dataclasses.replace(config, source=dataclasses.replace(source, **changes))
