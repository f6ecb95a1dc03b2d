"""Sinks: GPIO under gpiozero's MockFactory, the JSON log, snapshots, and failure isolation."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import time

import numpy as np
import pytest

from edge.sinks import FrameResult, SafeSink
from edge.sinks.annotate import AnnotateSink
from edge.sinks.gpio import GpioSink
from edge.sinks.log import LogSink
from edge.sinks.snapshot import SnapshotSink
from edge.tracker import Event, Track

GREEN, RED, BUZZER = 17, 27, 22
IMAGE = np.zeros((48, 64, 3), np.uint8)


def track(masked: bool, violating: bool = False) -> Track:
    label = "with_mask" if masked else "without_mask"
    return Track(1, (5, 5, 20, 20), label, 0.9, 0.1 if masked else 0.9, 0.0, violating=violating)


def result(t, tracks=(), events=(), image=IMAGE) -> FrameResult:
    return FrameResult(t, 1_700_000_000.0 + t, image, list(tracks), list(events), 9.5)


def violation(t) -> Event:
    return Event("violation", 1, "without_mask", 0.93, (5, 5, 20, 20), t)


def levels(pins) -> tuple[bool, bool, bool]:
    return tuple(bool(pins.pin(n).state) for n in (GREEN, RED, BUZZER))


@pytest.mark.parametrize("active_high", [True, False])
def test_a_violation_sequence_drives_leds_and_buzzer(pins, active_high):
    sink = GpioSink(GREEN, RED, BUZZER, active_high=active_high, violation_seconds=3.0,
                    buzzer_seconds=1.0)
    on = active_high          # the pin level that lights an LED
    off = not on
    sink.handle(result(0.0))
    assert levels(pins) == (off, off, off)
    sink.handle(result(0.1, [track(masked=True)]))
    assert levels(pins) == (on, off, off)                 # green: a masked face in view
    sink.handle(result(0.2, [track(masked=False)]))
    assert levels(pins) == (off, off, off)                # unmasked, but not yet a violation
    sink.handle(result(0.5, [track(False, violating=True)], [violation(0.5)]))
    assert levels(pins) == (off, on, on)                  # red + buzzer
    sink.handle(result(1.4, [track(False, violating=True)]))
    assert levels(pins) == (off, on, on)
    sink.handle(result(1.6, [track(False, violating=True)]))
    assert levels(pins) == (off, on, off)                 # buzzer done after 1 s
    sink.handle(result(3.6, [track(True)]))
    assert levels(pins) == (on, off, off)                 # red done after 3 s
    sink.handle(result(3.7, [track(False, violating=True)], [violation(3.7)]))
    sink.close()
    assert levels(pins) == (off, off, off)                # closing leaves everything off


def test_an_unfitted_pin_is_skipped(pins):
    sink = GpioSink(GREEN, -1, -1)
    sink.handle(result(0.0, [track(False, True)], [violation(0.0)]))
    assert set(sink.devices) == {"green"}
    sink.close()


def test_log_sink_writes_one_json_line_per_event():
    out = io.StringIO()
    sink = LogSink(out)
    sink.handle(result(0.0, [track(False)]))              # no event, no line
    sink.handle(result(1.0, [track(False, True)],
                       [violation(1.0), Event("clear", 2, "with_mask", 0.8, (1, 2, 3, 4), 1.0)]))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in lines] == ["violation", "clear"]
    first = lines[0]
    assert first["track"] == 1 and first["label"] == "without_mask"
    assert first["confidence"] == 0.93 and first["box"] == [5, 5, 20, 20] and first["fps"] == 9.5
    assert first["time"].startswith("2023-11-14T")


class Flaky:
    """A sink that fails its first ``failures`` calls, then works."""

    def __init__(self, failures, calls):
        self.failures, self.calls = failures, calls

    def handle(self, result):
        self.calls.append(result.t)
        if len(self.calls) <= self.failures:
            raise OSError("disk full")

    def close(self):
        pass


def test_a_failing_sink_is_logged_once_and_retried(caplog):
    calls = []
    sink = SafeSink("flaky", lambda: Flaky(3, calls), retry_seconds=0.0)
    with caplog.at_level(logging.INFO, logger="edge.sinks"):
        for t in range(6):
            sink.handle(result(float(t)))      # never raises
    assert calls == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "flaky failed" in errors[0].getMessage()
    assert any("works again" in r.getMessage() for r in caplog.records)


def test_a_sink_that_cannot_start_waits_before_retrying():
    attempts = []

    def factory():
        attempts.append(1)
        raise RuntimeError("GPIO busy")

    sink = SafeSink("gpio", factory, retry_seconds=3600.0)
    sink.handle(result(0.0))
    sink.handle(result(1.0))
    assert len(attempts) == 1 and sink.failing


def test_snapshots_are_0640_and_pruned_by_count_and_age(tmp_path):
    old_umask = os.umask(0o077)   # stricter than the unit's: the sink still sets 0640
    try:
        sink = SnapshotSink(tmp_path, max_count=3, max_age_days=1.0)
        stranger = tmp_path / "keep-me.jpg"
        stranger.write_bytes(b"x")
        ancient = tmp_path / "violation-20000101-000000-000-track9.jpg"
        ancient.write_bytes(b"x")
        os.utime(ancient, (time.time() - 3 * 86400,) * 2)
        now = time.time()
        for i in range(5):
            r = FrameResult(float(i), now + i, IMAGE, [track(False, True)], [violation(float(i))])
            sink.handle(r)
            time.sleep(0.01)   # distinct mtimes, so "oldest" is well defined
    finally:
        os.umask(old_umask)
    kept = sorted(tmp_path.glob("violation-*.jpg"))
    assert len(kept) == 3 and not ancient.exists() and stranger.exists()
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in kept)
    assert not list(tmp_path.glob("*.tmp"))


def test_annotate_writes_one_image_per_frame_and_skips_idle_ticks(tmp_path):
    sink = AnnotateSink(tmp_path / "out")
    sink.handle(FrameResult(0.0, 0.0, IMAGE, [track(True)], [], 0.0, "a.png"))
    sink.handle(FrameResult(0.1, 0.1, None))
    sink.close()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.jpg"]
