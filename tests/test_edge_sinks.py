"""Sinks: GPIO under gpiozero's MockFactory, the JSON log, snapshots, and failure isolation."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import time
from datetime import datetime

import numpy as np
import pytest

from edge.sinks import FrameResult, SafeSink
from edge.sinks.annotate import AnnotateSink
from edge.sinks.gpio import GpioParams, GpioSink
from edge.sinks.log import LogSink
from edge.sinks.snapshot import SnapshotParams, SnapshotSink
from edge.tracker import Event, Track

GREEN, RED, BUZZER = 17, 27, 22
IMAGE = np.zeros((48, 64, 3), np.uint8)


def track(masked: bool, violating: bool = False) -> Track:
    label = "with_mask" if masked else "without_mask"
    return Track(1, (5, 5, 20, 20), label, 0.9, 0.1 if masked else 0.9, 0.0,
                 violating=violating, masked=masked).view()


def result(t, tracks=(), events=(), image=IMAGE) -> FrameResult:
    return FrameResult(t, 1_700_000_000.0 + t, image, list(tracks), list(events), 9.5)


def violation(t) -> Event:
    return Event("violation", 1, "without_mask", 0.93, (5, 5, 20, 20), t)


def levels(pins) -> tuple[bool, bool, bool]:
    return tuple(bool(pins.pin(n).state) for n in (GREEN, RED, BUZZER))


@pytest.mark.parametrize("active_high", [True, False])
def test_a_violation_sequence_drives_leds_and_buzzer(pins, active_high):
    sink = GpioSink(GpioParams(green=GREEN, red=RED, buzzer=BUZZER, active_high=active_high,
                               violation_seconds=3.0, buzzer_seconds=1.0))
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
    sink = GpioSink(GpioParams(green=GREEN, red=-1, buzzer=-1))
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
        return True

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
        sink = SnapshotSink(SnapshotParams(dir=str(tmp_path), max_count=3, max_age_days=1.0))
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


class EventsOnly:
    """Like the snapshot sink: delivers only results with events; fails while ``broken``."""

    def __init__(self, delivered, state):
        self.delivered, self.state = delivered, state

    def handle(self, result):
        if not result.events:
            return False
        if self.state["broken"]:
            raise OSError("No space left on device")
        self.delivered.append(result.t)
        return True

    def close(self):
        pass


def test_events_a_failing_sink_could_not_take_are_held_and_delivered_in_order(caplog):
    delivered, state = [], {"broken": True}
    sink = SafeSink("snapshot", lambda: EventsOnly(delivered, state), retry_seconds=0.0,
                    max_pending=3)
    with caplog.at_level(logging.INFO, logger="edge.sinks"):
        for t in range(5):                        # 5 violations while the disk is full
            sink.handle(result(float(t), events=[violation(float(t))]))
        sink.handle(result(5.0))                  # a quiet frame proves nothing
        assert not any("works again" in r.getMessage() for r in caplog.records)
        assert sink.failing and sink.pending == 3 and sink.dropped == 2
        state["broken"] = False
        sink.handle(result(6.0))
    # The oldest two were dropped (and counted, and said); the rest arrive in order.
    assert delivered == [2.0, 3.0, 4.0] and sink.pending == 0 and not sink.failing
    messages = [r.getMessage() for r in caplog.records]
    assert sum("dropping the oldest" in m for m in messages) == 1
    assert any("works again (2 results dropped while it failed)" in m for m in messages)
    assert sum(r.levelno >= logging.ERROR for r in caplog.records) == 1   # one traceback


def test_a_sink_that_keeps_failing_is_retried_less_and_less_often(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("edge.sinks.time.monotonic", lambda: clock[0])
    attempts = []

    def factory():
        attempts.append(clock[0])
        raise RuntimeError("no pin factory")

    sink = SafeSink("gpio", factory, retry_seconds=5.0, max_retry_seconds=40.0)
    while clock[0] < 1200.0:
        sink.handle(result(clock[0]))
        clock[0] += 1.0
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[:4] == [5.0, 10.0, 20.0, 40.0] and set(gaps[4:]) == {40.0}


def test_a_snapshot_on_a_full_disk_is_absent_not_truncated(tmp_path, monkeypatch):
    sink = SnapshotSink(SnapshotParams(dir=str(tmp_path)))
    real_write = os.write

    def full_disk(fd, data):        # the first call writes half, the next finds no space
        if len(data) > 100:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("edge.sinks.snapshot.os.write", full_disk)
    with pytest.raises(OSError, match="No space"):
        sink.handle(result(0.0, [track(False, True)], [violation(0.0)]))
    assert list(tmp_path.iterdir()) == []     # no half JPEG under its name, no .tmp left
    monkeypatch.setattr("edge.sinks.snapshot.os.write", real_write)
    assert sink.handle(result(1.0, [track(False, True)], [violation(1.0)]))
    (saved,) = tmp_path.glob("violation-*.jpg")
    assert saved.read_bytes().endswith(b"\xff\xd9")   # a whole JPEG: its end marker


def test_unfinished_snapshots_of_an_earlier_run_are_removed_at_start(tmp_path, caplog):
    (tmp_path / "violation-20260101-000000-000-track1.tmp").write_bytes(b"")
    (tmp_path / "violation-20260101-000000-001-track2.jpg.tmp").write_bytes(b"half")
    (tmp_path / "notes.tmp").write_bytes(b"not ours")
    SnapshotSink(SnapshotParams(dir=str(tmp_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp"]
    assert "removed 2 unfinished files" in caplog.text


def test_the_log_never_blocks_on_a_stdout_nobody_reads():
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    while True:                                # fill the pipe to the brim
        try:
            os.write(write_end, b"x" * 4096)
        except BlockingIOError:
            break
    os.set_blocking(write_end, True)           # as stdout is: a blocking descriptor
    stream = os.fdopen(write_end, "w")
    sink = LogSink(stream, max_pending=4)
    for t in range(6):      # a blocking write would hang here; these return, writing nothing
        assert sink.handle(result(float(t), events=[violation(float(t))])) is False
    assert sink.dropped == 2
    drained = b""                              # the reader comes back
    os.set_blocking(read_end, False)
    try:
        while True:
            drained += os.read(read_end, 65536)
    except BlockingIOError:
        pass
    assert set(drained) == {ord("x")}
    assert sink.handle(result(6.0)) is True    # and the held lines go out, in order
    lines = os.read(read_end, 65536).decode().splitlines()
    stamps = [datetime.fromisoformat(json.loads(line)["time"]).timestamp() for line in lines]
    assert [round(s - 1_700_000_000.0) for s in stamps] == [2, 3, 4, 5]   # oldest two dropped
    sink.close()
    stream.close()
    os.close(read_end)


def test_gpio_that_never_started_says_nothing_when_closed(pins, caplog):
    sink = GpioSink(GpioParams(green=-1, red=-1, buzzer=-1))
    with caplog.at_level(logging.INFO):
        sink.close()
    assert "GPIO off" not in caplog.text
