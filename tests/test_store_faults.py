"""The event store under faults, each against a real SQLite file (and, for the deleted file
and the full disk, the real ``python -m edge run`` process and a real tmpfs): its file
deleted while running, a full disk at start, counts that fill the file, a bad row, a path
with URI characters, a reader who can't write the folder, a skipped midnight, its files'
modes, and ``flush_seconds`` that would spin."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import date, datetime

import pytest

from edge.counts import Counts, Tally
from edge.samples import write_frames
from edge.sinks import FrameResult
from edge.sinks.store import EventStore, History, StoreParams
from edge.stats import Stats
from edge.tracker import Event
from tests.edge_process import CYCLE, ROOT, config_file, finish, start
from tests.test_store import NOON, result, store


def stored(path) -> set[tuple]:
    return {(e["time"], e["track"], e["kind"]) for e in History(path).events()}


def logged(events) -> set[tuple]:
    return {(e["time"], e["track"], e["event"]) for e in events}


def wait_for(condition, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return False


def violations_from(proc, count: int) -> list[dict]:
    """Event lines from the running process, up to its ``count``-th violation."""
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if sum(e["event"] == "violation" for e in events) == count:
            return events
    raise AssertionError("the run ended before its violations")


# --- the file deleted while running ---------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("how", ["rm", "erase"])
def test_every_event_after_the_file_is_deleted_is_in_a_new_file_there(model, tmp_path, how):
    frames = tmp_path / "frames"
    write_frames(frames, sequence=CYCLE)
    db = tmp_path / "events.db"
    config = config_file(tmp_path, model, frames,
                         extra=f'[sinks.store]\npath = "{db}"\nflush_seconds = 0.2\n')
    proc = start(["run", "--config", str(config), "--loop"])
    try:
        first = violations_from(proc, 1)
        assert wait_for(lambda: logged(first[-1:]) <= stored(db), 5.0), "never written"
        if how == "rm":
            for path in tmp_path.glob("events.db*"):
                path.unlink()
        else:
            erased = start(["erase", "--config", str(config), "--yes"])
            _, err = finish(erased, 30)
            assert erased.returncode == 0, err
        # Gone, with what it held (the store may start a new file within flush_seconds).
        assert not logged(first) & stored(db)
        after = violations_from(proc, 2)                 # two violations and their clears
        proc.send_signal(signal.SIGTERM)
        _, err = finish(proc, 30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert logged(after) <= stored(db)
    assert err.count("was deleted or replaced") == 1, err


# --- a full disk at start -------------------------------------------------------------------
def fill(disk):
    with open(disk / "filler", "wb", buffering=0) as f:   # every byte the disk has left
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return disk / "filler"


def mode(path) -> int | None:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return None


@pytest.mark.slow
@pytest.mark.root
def test_a_full_disk_at_start_holds_events_and_counts_until_space_returns(model, tmp_path,
                                                                         small_disk):
    disk = small_disk("1m")
    filler = fill(disk)
    db = disk / "events.db"
    frames = tmp_path / "frames"
    write_frames(frames, sequence=CYCLE)
    config = config_file(tmp_path, model, frames,
                         extra=f'[sinks.store]\npath = "{db}"\nflush_seconds = 0.5\n')
    proc = start(["run", "--config", str(config), "--loop"])
    try:
        events = violations_from(proc, 2)                # the disk is full for two violations
        assert mode(db) in (None, 0o640)                 # no empty file readable by others
        filler.unlink()
        # Written while it runs: retried within seconds, not once in 300 s.
        assert wait_for(lambda: db.exists() and logged(events) <= stored(db), 10.0)
        proc.send_signal(signal.SIGTERM)
        out, err = finish(proc, 30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    events += [json.loads(line) for line in out.splitlines()]
    violations = [e for e in events if e["event"] == "violation"]
    assert logged(events) <= stored(db)
    with closing(sqlite3.connect(db)) as con:
        people, unmasked, counted = con.execute(
            "SELECT TOTAL(people), TOTAL(unmasked), TOTAL(violations) FROM minutes").fetchone()
        assert con.execute("PRAGMA auto_vacuum").fetchone()[0] == 2    # INCREMENTAL
    # A person is counted on a frame before their violation, with no event: held too.
    tracks = {e["track"] for e in violations}
    assert (people, unmasked, counted) == (len(tracks), len(tracks), len(violations))
    assert mode(db) == 0o640
    assert err.count("holding events and counts in memory") == 1, err
    assert err.count(f"writing to {db} again") == 1, err
    assert "Traceback" not in err


def test_a_file_left_empty_by_a_full_disk_gets_the_schema_and_incremental_vacuum(tmp_path):
    (tmp_path / "events.db").write_bytes(b"")
    s = store(tmp_path)
    s.handle(result(NOON))
    s.close()
    with closing(sqlite3.connect(tmp_path / "events.db")) as con:
        assert con.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    assert len(History(tmp_path / "events.db").events()) == 1


# --- retention: what takes the space --------------------------------------------------------
def test_retention_trims_the_oldest_minutes_too_when_counts_fill_the_file(tmp_path):
    now = time.time()
    s = store(tmp_path, max_mb=1.0, flush_seconds=60.0)
    first = now - 80_000 * 60
    for i in range(80_000):                                   # 80,000 minutes: over 1 MB
        s.handle(result(first + i * 60, kinds=(), counted=Counts(150 + i % 100, i % 9, 1)))
    for i in range(200):                                      # 200 events over the same time
        s.handle(result(first + i * 400 * 60 + 1, track=i))
    assert s.flush()
    s._prune()
    s.close()
    path = tmp_path / "events.db"
    with closing(sqlite3.connect(path)) as con:
        minutes = con.execute("SELECT COUNT(*), MAX(minute) FROM minutes").fetchone()
    kept = History(path).events()
    assert path.stat().st_size <= 1e6
    assert 0 < minutes[0] < 80_000 and minutes[1] == int((first + 79_999 * 60) // 60)
    assert 0 < len(kept) < 200 and kept[-1]["track"] == 199       # the newest stay


# --- a bad row ------------------------------------------------------------------------------
def test_one_bad_row_is_refused_and_counted_and_the_rest_are_written(tmp_path, caplog):
    stats = Stats()
    s = EventStore(StoreParams(path=str(tmp_path / "events.db"), flush_seconds=60.0),
                   stats=stats)
    for i in range(22):
        p = math.nan if i == 1 else 0.9                       # NaN fails NOT NULL
        event = Event("violation", i, "without_mask", p, (10, 10, 50, 50), 0.0)
        s.handle(FrameResult(0.0, NOON + i, None, events=(event,), counted=Counts(1, 1, 1)))
    assert s.flush()
    s.close()
    history = History(tmp_path / "events.db")
    assert [e["track"] for e in history.events()] == [i for i in range(22) if i != 1]
    assert history.today(now=NOON).counts == Counts(22, 22, 22)
    assert stats.gauges["store_refused"][1]() == 1
    assert caplog.text.count("refused an event") == 1
    assert "could not be written" not in caplog.text


# --- paths and readers ----------------------------------------------------------------------
def test_a_path_with_hash_question_mark_and_percent_is_written_and_read(tmp_path, capsys):
    import dataclasses

    from edge.__main__ import main
    from edge.config import load_config
    from edge.pipeline import today_so_far

    folder = tmp_path / "a#b?c%41d"
    folder.mkdir()
    path = folder / "events#1?%.db"
    s = EventStore(StoreParams(path=str(path)))
    s.handle(result(time.time(), counted=Counts(2, 1, 1)))
    s.close()
    before = sorted(tmp_path.rglob("*"))
    assert len(History(path).events()) == 1
    assert main(["events", "--db", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "violation"
    config = load_config(None)
    config = dataclasses.replace(config, sinks=dataclasses.replace(
        config.sinks, store=StoreParams(path=str(path))))
    assert today_so_far(config).counts == Counts(2, 1, 1)
    assert sorted(tmp_path.rglob("*")) == before               # no stray file
    assert main(["events", "--db", str(folder / "none#.db")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.root
def test_edge_events_reads_a_stopped_store_as_a_user_who_cannot_write_its_folder(tmp_path):
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv (util-linux) to run as another user")
    s = store(tmp_path)
    s.handle(result(NOON, kinds=("violation", "clear")))
    s.close()
    # nobody, able to read everything (CAP_DAC_READ_SEARCH) but to write nothing of ours
    proc = subprocess.run(
        ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
         "--inh-caps", "+dac_read_search", "--ambient-caps", "+dac_read_search",
         sys.executable,
         "-m", "edge", "events", "--db", str(tmp_path / "events.db")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["kind"] for line in proc.stdout.splitlines()] == ["violation",
                                                                              "clear"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.db"]


def test_the_wal_and_shm_files_are_0640_like_the_database_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        s = store(tmp_path, flush_seconds=60.0)
        s.handle(result(NOON))
        assert s.flush()
        modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.glob("events.db*")}
        s.close()
    finally:
        os.umask(old)
    assert modes == {"events.db": 0o640, "events.db-wal": 0o640, "events.db-shm": 0o640}


def test_a_flush_interval_that_would_spin_is_refused_naming_the_key(tmp_path, capsys):
    from edge.__main__ import main

    config = tmp_path / "maskwatch.toml"
    config.write_text("[sinks.store]\nflush_seconds = 1e-9\n")
    assert main(["check-config", str(config)]) == 2
    assert "sinks.store.flush_seconds: must be at least 0.1" in capsys.readouterr().err


# --- a day whose midnight is skipped ---------------------------------------------------------
@pytest.fixture
def santiago(monkeypatch):
    """Local time is Chile's, where 2026-09-06 starts at 01:00 (00:00 is skipped)."""
    monkeypatch.setenv("TZ", "America/Santiago")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_day_whose_midnight_is_skipped_starts_at_its_first_instant(tmp_path, santiago):
    first = datetime(2026, 9, 6, 1, 0).timestamp()           # 01:00 -03: the day's first
    assert datetime.fromtimestamp(first - 1).isoformat() == "2026-09-05T23:59:59"
    s = store(tmp_path, keep_days=36500.0)
    s.handle(result(first - 60, kinds=(), counted=Counts(5, 0, 0)))      # the 5th, 23:59
    s.handle(result(first + 1800, counted=Counts(3, 1, 1)))              # the 6th, 01:30
    s.close()
    history = History(tmp_path / "events.db")
    (day,) = history.days(1, now=first + 3600)
    assert day["start"] == "2026-09-06T01:00:00-03:00" and day["people"] == 3
    today = history.today(now=first + 3600)
    assert today.day == date(2026, 9, 6) and today.counts == Counts(3, 1, 1)
    # A restart that day goes on from the stored counts (Tally agrees on the day).
    assert Tally(today).step(first + 3600, Counts())[1] == today

