"""The event store against a real SQLite file: what it writes and reads back, SIGKILL during
heavy writes, a full disk, a corrupt file, retention, and counts that match the tracks."""

from __future__ import annotations

import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from edge.counts import Counts
from edge.sinks import FrameResult
from edge.sinks.store import EventStore, History, StoreParams
from edge.tracker import Event
from tests.conftest import ROOT

NOON = datetime(2026, 12, 1, 12, 0).timestamp()        # local time, like the store's buckets


def result(wall: float, kinds=("violation",), track: int = 1, counted=Counts()) -> FrameResult:
    events = [Event(kind, track, "without_mask" if kind == "violation" else "with_mask", 0.91,
                    (10, 10, 50, 50), 0.0) for kind in kinds]
    return FrameResult(0.0, wall, None, events=events, counted=counted)


def store(tmp_path, **params) -> EventStore:
    return EventStore(StoreParams(path=str(tmp_path / "events.db"), **params))


def test_events_and_counts_come_back_by_hour_and_day(tmp_path):
    s = store(tmp_path)
    s.handle(result(NOON - 86400, counted=Counts(1, 1, 1)))                  # yesterday
    s.handle(result(NOON, counted=Counts(2, 1, 1)))
    s.handle(result(NOON + 30, kinds=("clear",), counted=Counts(1, 0, 0)))
    s.handle(result(NOON + 3600, track=2, counted=Counts(3, 1, 1)))         # 13:00
    s.handle(result(NOON + 3601, kinds=()))             # nothing to store: not delivered
    s.close()
    history = History(tmp_path / "events.db")
    events = history.events(since=NOON - 1)
    assert [(e["kind"], e["track"], e["label"], e["p"]) for e in events] == [
        ("violation", 1, "without_mask", 0.91), ("clear", 1, "with_mask", 0.91),
        ("violation", 2, "without_mask", 0.91)]
    assert events[0]["time"].startswith("2026-12-01T12:00:00.000")
    hours = history.hours(3, now=NOON + 3700)
    assert [(h["start"][11:16], h["people"], h["unmasked"], h["violations"]) for h in hours] == [
        ("11:00", 0, 0, 0), ("12:00", 3, 1, 1), ("13:00", 3, 1, 1)]
    days = history.days(2, now=NOON)
    assert [(d["start"][:10], d["people"]) for d in days] == [("2026-11-30", 1),
                                                              ("2026-12-01", 6)]
    today = history.today(now=NOON + 7200)
    assert today.counts == Counts(6, 2, 2) and today.counts.compliance == pytest.approx(66.7)


def test_a_snapshot_is_named_when_the_snapshot_sink_saves_one(tmp_path):
    s = EventStore(StoreParams(path=str(tmp_path / "events.db")), snapshots=True)
    s.handle(result(NOON, kinds=("violation", "clear")))
    s.close()
    violation, clear = History(tmp_path / "events.db").events()
    assert violation["snapshot"] == "violation-20261201-120000-000-track1.jpg"
    assert clear["snapshot"] is None


def test_a_path_it_cannot_write_is_one_line_and_what_comes_is_held(tmp_path, caplog):
    (tmp_path / "file").write_text("")
    s = EventStore(StoreParams(path=str(tmp_path / "file" / "events.db"), flush_seconds=60.0))
    s.handle(result(NOON, counted=Counts(1, 1, 1)))
    assert not s.flush() and not s.flush()
    assert caplog.text.count("holding events and counts in memory until it can") == 1
    assert len(s.outbox) == 1 and s._minutes
    s.close()


# --- SIGKILL during heavy writes --------------------------------------------------------
WRITER = """
import sys, time
from edge.counts import Counts
from edge.sinks.store import EventStore, StoreParams
from tests.test_store import result
store = EventStore(StoreParams(path=sys.argv[1], flush_seconds=0.1))
handed, wall = 0, time.time()
while True:
    # 20 events a frame, 10 of them violations, each frame counting its 10 violations
    store.handle(result(wall, kinds=("violation", "clear") * 10, track=handed,
                        counted=Counts(1, 1, 10)))
    handed += 20
    wall += 0.001
    print(handed, store.written, flush=True)
"""


@pytest.mark.slow
def test_twenty_sigkills_during_heavy_writes_leave_a_whole_file_and_matching_counts(tmp_path):
    path = tmp_path / "events.db"
    rng = random.Random(1)
    before = 0
    for kill in range(20):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)},
                                 stdout=subprocess.PIPE, text=True)
        stop_after = rng.randint(200, 3000)               # lines: 4,000 to 60,000 events
        handed = written = 0
        for line in child.stdout:
            handed, written = map(int, line.split())
            if handed >= stop_after * 20 and written:      # killed mid-write, after some
                break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", f"kill {kill}"
        events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0] - before
        violations = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'violation'"
                                ).fetchone()[0]
        counted = db.execute("SELECT TOTAL(violations) FROM minutes").fetchone()[0]
        db.close()
        # What it had confirmed is there; at most the batch being gathered (one frame of
        # 20 events after the last line read) is not.
        assert written <= events <= handed + 20, f"kill {kill}"
        # Events and per-minute counts are written in one transaction: they always agree.
        assert counted == violations, f"kill {kill}"
        before += events
    assert not list(tmp_path.glob("events.db.corrupt-*"))


# --- a full disk ----------------------------------------------------------------------------
@pytest.mark.root
def test_a_full_disk_counts_in_memory_and_writes_when_space_returns(small_disk, caplog):
    disk = small_disk("1m")
    caplog.set_level(logging.INFO, logger="edge.sinks.store")
    s = None
    try:
        s = EventStore(StoreParams(path=str(disk / "events.db"), flush_seconds=60.0))
        s.handle(result(NOON, counted=Counts(1, 1, 1)))
        assert s.flush()
        filler = disk / "filler"
        with open(filler, "wb", buffering=0) as f:      # every byte the disk has left
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        for i in range(1, 2001):                         # 2,000 violations while it is full
            s.handle(result(NOON + i, track=i, counted=Counts(1, 1, 1)))
            if i % 500 == 0:
                assert not s.flush()
        assert "holding events and counts in memory until it can" in caplog.text
        assert caplog.text.count("cannot write") == 1      # one line, not one per try
        filler.unlink()
        assert s.flush()
        assert "writing to" in caplog.text and "again (2000 events caught up)" in caplog.text
        s.close()
        history = History(disk / "events.db")
        assert len(history.events()) == 2001
        assert history.today(now=NOON).counts == Counts(2001, 2001, 2001)
        assert s.outbox.dropped == 0
    finally:
        if s is not None:
            s.close()


def test_beyond_max_pending_the_oldest_events_are_dropped_and_counted(tmp_path, caplog):
    s = store(tmp_path, max_pending=100, flush_seconds=60.0)
    s._db.close()                                        # the disk is gone
    s._db = sqlite3.connect(":memory:")                  # no tables: every write fails
    for i in range(150):
        s.handle(result(NOON + i, track=i, counted=Counts(1, 1, 1)))
    assert not s.flush()
    assert s.outbox.dropped == 50 and len(s.outbox) == 100
    assert s.outbox.peek()[1] == 50                         # the oldest went first
    assert sum(c.people for c in s._minutes.values()) == 150   # counts are never dropped
    assert "dropping the oldest" in caplog.text and "counted" in caplog.text


# --- a damaged file (someone else's: tests/test_erase.py) -----------------------------------
def test_a_damaged_page_is_found_at_start_and_the_file_moved_aside(tmp_path, caplog):
    path = tmp_path / "events.db"
    s = store(tmp_path)
    for i in range(2000):
        s.handle(result(NOON + i, track=i))
    s.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 20 * page
    data[10 * page + 8: 10 * page + 308] = random.Random(0).randbytes(300)  # a table page
    path.write_bytes(bytes(data))
    s = store(tmp_path)
    s.handle(result(NOON + 5000))
    s.close()
    assert len(list(tmp_path.glob("events.db.corrupt-*"))) == 1
    assert [e["track"] for e in History(path).events()] == [1]
    assert "is damaged" in caplog.text


# --- retention ------------------------------------------------------------------------------
def test_retention_deletes_by_age_then_the_oldest_by_size(tmp_path):
    now = datetime.now().timestamp()
    s = store(tmp_path, keep_days=7.0, max_mb=1.0, flush_seconds=60.0)
    s.handle(result(now - 8 * 86400, counted=Counts(5, 0, 0)))             # too old
    for i in range(20_000):                                               # about 2 MB
        s.handle(result(now - 86400 + i, track=i, counted=Counts(1, 0, 0)))
    assert s.flush()
    s._prune()
    s.close()
    history = History(tmp_path / "events.db")
    kept = history.events()
    assert 0 < len(kept) < 20_000 and kept[-1]["track"] == 19_999           # the newest stay
    assert (tmp_path / "events.db").stat().st_size <= 1e6
    # The counts of the time the events were trimmed from went with them (the same minutes).
    people = sum(d["people"] for d in history.days(10, now=now))
    assert len(kept) <= people < len(kept) + 60


# --- counts you can trust -------------------------------------------------------------------
def test_counts_equal_the_tracks_of_passers_by_and_the_event_log_of_the_demo(model, tmp_path):
    import dataclasses

    from edge.config import load_config
    from edge.measure import scenarios
    from edge.pipeline import Pipeline
    from edge.sinks import SafeSink
    from edge.sources import Frame

    config = load_config(None)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, path=str(model)))
    path = tmp_path / "events.db"
    sink = EventStore(StoreParams(path=str(path)))
    pipeline = Pipeline(config, sinks=[SafeSink("store", lambda: sink)])
    cycle = scenarios.ENTER + scenarios.STAND + scenarios.LEAVE + scenarios.EMPTY
    tracks, violations = set(), 0
    start = datetime.now().timestamp()
    for i, (image, _) in enumerate(scenarios.frames("passer-by", 3 * cycle)):
        result = pipeline.process(Frame(image, i / scenarios.FPS))
        tracks |= {t.id for t in result.tracks if not t.unjudged}
        violations += sum(e.kind == "violation" for e in result.events)
    pipeline.close()
    history = History(path)
    (day,) = history.days(1, now=start)
    assert len(tracks) == 3 == violations                   # three walks past, one person each
    assert (day["people"], day["unmasked"], day["violations"]) == (3, 3, 3)
    assert len(history.events()) == 6                       # a violation and a clear each


def test_the_demo_stores_what_its_event_log_says(model, tmp_path):
    import dataclasses
    import json

    from edge.config import load_config
    from edge.demo import run_demo

    config = load_config(None)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, path=str(model)))
    assert run_demo(config, tmp_path) == 0
    logged = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    history = History(tmp_path / "events.db")
    stored = history.events()
    assert [(e["kind"], e["track"]) for e in stored] == [(e["event"], e["track"]) for e in logged]
    assert [e["time"] for e in stored] == [e["time"] for e in logged]
    (day,) = history.days(1)
    assert day["violations"] == sum(e["event"] == "violation" for e in logged)
    assert day["unmasked"] == len({e["track"] for e in logged if e["event"] == "violation"})


def test_a_restart_goes_on_counting_from_the_stored_day(model, tmp_path):
    import dataclasses

    from edge.config import load_config
    from edge.pipeline import today_so_far

    s = store(tmp_path)
    s.handle(result(datetime.now().timestamp(), counted=Counts(7, 2, 3)))
    s.close()
    config = load_config(None)
    config = dataclasses.replace(config, sinks=dataclasses.replace(
        config.sinks, store=StoreParams(path=str(tmp_path / "events.db"))))
    assert today_so_far(config).counts == Counts(7, 2, 3)
    assert today_so_far(dataclasses.replace(config, sinks=dataclasses.replace(
        config.sinks, store=StoreParams(enabled=False)))) is None


def test_hours_follow_local_time(tmp_path):
    s = store(tmp_path)
    midnight = datetime.combine(datetime.now().date(), datetime.min.time())
    s.handle(result((midnight - timedelta(minutes=1)).timestamp(), counted=Counts(1, 0, 0)))
    s.handle(result(midnight.timestamp(), counted=Counts(2, 0, 0)))
    s.close()
    history = History(tmp_path / "events.db")
    days = history.days(2, now=midnight.timestamp() + 60)
    assert [d["people"] for d in days] == [1, 2]


# --- the commands ---------------------------------------------------------------------------
def test_edge_events_exports_csv_from_a_date(tmp_path, capsys):
    import csv

    from edge.__main__ import main

    s = store(tmp_path)
    s.handle(result(NOON - 86400))
    s.handle(result(NOON, kinds=("violation", "clear"), track=7))
    s.close()
    assert main(["events", "--db", str(tmp_path / "events.db"), "--since", "2026-12-01",
                 "--csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [(r["kind"], r["track"], r["label"]) for r in rows] == [
        ("violation", "7", "without_mask"), ("clear", "7", "with_mask")]
    assert main(["events", "--db", str(tmp_path / "nothing.db")]) == 2
    assert "no event store at" in capsys.readouterr().err


def test_edge_erase_lists_then_deletes_only_what_the_runtime_stored(tmp_path, capsys):
    from edge.__main__ import main

    snaps = tmp_path / "snapshots"
    snaps.mkdir()
    (snaps / "violation-20261201-120000-000-track1.jpg").write_bytes(b"\xff\xd8")
    (snaps / "holiday.jpg").write_bytes(b"\xff\xd8")          # not ours: never touched
    s = store(tmp_path)
    s.handle(result(NOON))
    s.close()
    (tmp_path / "events.db.corrupt-20261130-100000").write_bytes(b"x")
    config = tmp_path / "maskwatch.toml"
    config.write_text(f'[sinks.store]\npath = "{tmp_path / "events.db"}"\n'
                      f'[sinks.snapshot]\ndir = "{snaps}"\n')
    assert main(["erase", "--config", str(config)]) == 1       # without --yes: a list
    out = capsys.readouterr().out
    assert "would delete 3 files" in out and "holiday" not in out
    assert (tmp_path / "events.db").exists()
    assert main(["erase", "--config", str(config), "--yes"]) == 0
    assert not list(tmp_path.glob("events.db*")) and not list(snaps.glob("violation-*"))
    assert (snaps / "holiday.jpg").exists()
    assert main(["erase", "--config", str(config), "--yes"]) == 0
    assert "nothing stored" in capsys.readouterr().out


def test_counts_per_alarm_label_come_back_apart(tmp_path):
    s = store(tmp_path)
    s.handle(result(NOON, counted=Counts(2, 1, 1, (("without_mask", 1, 1),))))
    s.handle(result(NOON + 60, counted=Counts(1, 1, 2, (("mask_weared_incorrect", 1, 1),
                                                        ("without_mask", 0, 1)))))
    s.close()
    history = History(tmp_path / "events.db")
    (day,) = history.days(1, now=NOON)
    assert day["labels"] == {"mask_weared_incorrect": {"people": 1, "violations": 1},
                             "without_mask": {"people": 1, "violations": 2}}
    today = history.today(now=NOON + 120).counts
    assert (today.people, today.unmasked, today.violations) == (3, 2, 3)
    assert today.of("without_mask") == (1, 2) and today.of("mask_weared_incorrect") == (1, 1)
