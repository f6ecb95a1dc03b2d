"""The event store: every event, and people counted per minute, in a SQLite file.

``[sinks.store]`` (on by default) keeps, in ``path`` (``/var/lib/maskwatch/events.db``):

- ``events``: each violation and clear — time, track, kind, label, p, and the name of its
  snapshot when the snapshot sink saves one. No images;
- ``minutes``: per minute, the people judged, the people unmasked and the violations
  (``edge.counts`` says what counts as a person).

What the status page's chart, ``/api/counts``, ``/api/events`` and ``python -m edge events``
read, through :class:`History`.

The camera loop never waits for the disk: ``handle`` only appends to memory; a writer
thread writes what has gathered every ``flush_seconds``, in one transaction (WAL mode,
``synchronous = NORMAL``). So a crash or SIGKILL loses at most the last unflushed batch —
up to ``flush_seconds`` of events and counts — and the file stays whole: SQLite commits a
transaction entirely or not at all.

Built to run for months:

- **Retention.** Each hour, events and counts older than ``keep_days`` are deleted, and
  while the file is over ``max_mb`` the oldest events go too; freed pages return to the
  file system (``auto_vacuum = INCREMENTAL``).
- **A full disk.** A write that fails (the disk is full, or any I/O error) keeps its
  batch: counting goes on in memory and everything is written once space returns; one log
  line when it starts failing, one when it writes again. Held events are bounded by
  ``max_pending``; beyond that the oldest are dropped and counted (``store_dropped``); the
  per-minute counts are never dropped.
- **A corrupt file** (it isn't a database, or ``PRAGMA quick_check`` finds damage, at start
  or while writing) is moved aside to ``events.db.corrupt-YYYYmmdd-HHMMSS`` with one log
  line, and a new file is started; nothing crashes.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from edge.counts import Counts, Today
from edge.plugins import Plugin
from edge.shared.params import Params, param
from edge.sinks import SinkUnavailable
from edge.sinks.snapshot import snapshot_name

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,            -- seconds since 1970 (UTC)
    track INTEGER NOT NULL,
    kind TEXT NOT NULL,            -- violation | clear
    label TEXT NOT NULL,
    p REAL NOT NULL,               -- the label's probability
    snapshot TEXT                  -- the snapshot's file name, if one was saved
);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE TABLE IF NOT EXISTS minutes (
    minute INTEGER PRIMARY KEY,    -- seconds since 1970 // 60
    people INTEGER NOT NULL,
    unmasked INTEGER NOT NULL,
    violations INTEGER NOT NULL
);
"""
ADD_MINUTE = ("INSERT INTO minutes (minute, people, unmasked, violations) VALUES (?, ?, ?, ?) "
              "ON CONFLICT (minute) DO UPDATE SET people = people + excluded.people, "
              "unmasked = unmasked + excluded.unmasked, "
              "violations = violations + excluded.violations")
ADD_EVENT = "INSERT INTO events (time, track, kind, label, p, snapshot) VALUES (?, ?, ?, ?, ?, ?)"
PRUNE_EVERY = 3600.0    # seconds between retention passes
# SQLite's codes for a file that is not (or no longer) a sound database.
CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


@dataclass(frozen=True)
class StoreParams(Params):
    enabled: bool = param(True, help="every event and people counted per minute in a SQLite "
                                     "file (no images): the chart, /api/counts, edge events")
    path: str = param("/var/lib/maskwatch/events.db", path="file", help="the database file")
    keep_days: float = param(90.0, gt=0.0, max=36500.0,
                             help="events and counts older than this are deleted …")
    max_mb: float = param(50.0, min=1.0, max=100_000.0,
                          help="… and the oldest events too while the file is bigger")
    flush_seconds: float = param(2.0, gt=0.0, max=60.0,
                                 help="writes are batched this often: what a crash may lose")
    max_pending: int = param(100_000, min=100, max=10_000_000,
                             help="events held in memory while the disk can't take them; "
                                  "then the oldest are dropped (counted)")

    @classmethod
    def problems(cls, values):
        if values.get("path") == "":
            return [("path", "must not be empty")]
        return []


def connect(path: Path) -> sqlite3.Connection:
    """The store's file, opened for writing: created with its tables if new, WAL mode."""
    new = not path.exists()
    db = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
    if new:
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")   # only takes effect before tables
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(SCHEMA)
    if new:
        os.chmod(path, 0o640)
    return db


def files(path: Path) -> list[Path]:
    """The store's files at ``path``: the database, its WAL and shared-memory files, and
    corrupt copies moved aside."""
    path = Path(path)
    parts = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")]
    return [p for p in parts if p.exists()] + sorted(path.parent.glob(f"{path.name}.corrupt-*"))


def _is_corrupt(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in CORRUPT


class EventStore:
    """The sink: ``handle`` gathers, a writer thread writes (see the module docstring)."""

    def __init__(self, params: StoreParams, snapshots: bool = False, stats=None):
        self.params = params
        self.path = Path(params.path)
        self.snapshots = snapshots         # the snapshot sink is on: events name their file
        self._lock = threading.Lock()
        self._events: deque[tuple] = deque()     # rows not yet written, oldest first
        self._minutes: dict[int, Counts] = {}    # per-minute increments not yet written
        self.written = 0                   # events written since start
        self.dropped = 0                   # events given up while the disk was full
        self.moved_aside: list[Path] = []  # corrupt files moved aside since start
        self._failing: str | None = None   # why writing fails, as last logged
        try:
            self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            self._db = self._open()
        except (OSError, sqlite3.Error) as exc:
            raise SinkUnavailable(f"cannot open {self.path} ({exc}); set [sinks.store] path to "
                                  "a writable file, or enabled = false") from exc
        self._pruned_at = float("-inf")
        self._closing = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="store", daemon=True)
        self._writer.start()
        if stats is not None:
            stats.gauge("store_pending", "Events waiting to be written", lambda: len(self._events))
            stats.gauge("store_written", "Events written to the store", lambda: self.written,
                        "counter")
            stats.gauge("store_dropped", "Events dropped: the disk was full too long",
                        lambda: self.dropped, "counter")

    # --- the camera loop's side: never touches the disk -----------------------------------
    def handle(self, result) -> bool:
        counted = getattr(result, "counted", None)
        if not result.events and not counted:
            return False
        rows = [(result.wall, e.track_id, e.kind, e.label, round(float(e.confidence), 4),
                 snapshot_name(result.wall, e.track_id)
                 if self.snapshots and e.kind == "violation" else None)
                for e in result.events]
        with self._lock:
            self._events.extend(rows)
            self._drop_beyond_limit()
            if counted:
                minute = int(result.wall // 60)
                self._minutes[minute] = self._minutes.get(minute, Counts()) + counted
        return True

    def _drop_beyond_limit(self) -> None:
        excess = len(self._events) - self.params.max_pending
        for _ in range(max(0, excess)):
            self._events.popleft()
        if excess > 0:
            if self.dropped == 0:
                log.warning("store: %d events wait for the disk; dropping the oldest (counted)",
                            self.params.max_pending)
            self.dropped += excess

    # --- the writer thread ----------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            closing = self._closing.wait(self.params.flush_seconds)
            self.flush()
            if time.monotonic() - self._pruned_at >= PRUNE_EVERY and not self._failing:
                self._prune()
            if closing:
                return

    def flush(self) -> bool:
        """Write what has gathered in one transaction; False (and kept for the next try)
        if the disk can't take it."""
        with self._lock:
            events, self._events = list(self._events), deque()
            minutes, self._minutes = self._minutes, {}
        if not events and not minutes:
            return True
        try:
            with self._db:
                self._db.executemany(ADD_EVENT, events)
                self._db.executemany(ADD_MINUTE, [(m, c.people, c.unmasked, c.violations)
                                                  for m, c in sorted(minutes.items())])
        except sqlite3.Error as exc:
            self._keep(events, minutes)
            if _is_corrupt(exc):
                self._replace(exc)
            else:
                self._say(f"cannot write {self.path} ({exc}); counting in memory until it can")
            return False
        self.written += len(events)
        if self._failing:
            log.info("store: writing to %s again (%d events caught up)", self.path, len(events))
            self._failing = None
        return True

    def _keep(self, events: list, minutes: dict) -> None:
        """Put a batch that could not be written back in front of what came since."""
        with self._lock:
            self._events.extendleft(reversed(events))
            for minute, counts in minutes.items():
                self._minutes[minute] = counts + self._minutes.get(minute, Counts())
            self._drop_beyond_limit()

    def _say(self, problem: str) -> None:
        if problem != self._failing:
            log.warning("store: %s", problem)
        self._failing = problem

    def _open(self) -> sqlite3.Connection:
        """Open the file; a corrupt one is moved aside and a new one started."""
        try:
            db = connect(self.path)
            found = db.execute("PRAGMA quick_check").fetchone()[0]
            if found != "ok":
                db.close()
                raise sqlite3.DatabaseError(f"quick_check: {found}")
            return db
        except sqlite3.DatabaseError as exc:
            if not (_is_corrupt(exc) or str(exc).startswith("quick_check")):
                raise
            self._move_aside(exc)
            return connect(self.path)

    def _replace(self, exc: sqlite3.Error) -> None:
        """The file went bad while running: move it aside and carry on in a new one."""
        try:
            self._db.close()
        except sqlite3.Error:
            pass
        try:
            self._move_aside(exc)
            self._db = connect(self.path)
        except (OSError, sqlite3.Error) as again:
            self._say(f"cannot start a new {self.path} ({again}); counting in memory")

    def _move_aside(self, exc: Exception) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{datetime.now():%Y%m%d-%H%M%S}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                part.rename(f"{aside}{suffix}")
        self.moved_aside.append(aside)
        log.warning("store: %s is damaged (%s); moved it to %s and started a new one",
                    self.path, exc, aside.name)

    def _prune(self) -> None:
        """Retention: by age, then by size (the oldest events first)."""
        self._pruned_at = time.monotonic()
        cutoff = time.time() - self.params.keep_days * 86400
        limit = self.params.max_mb * 1e6
        try:
            with self._db:
                self._db.execute("DELETE FROM events WHERE time < ?", (cutoff,))
                self._db.execute("DELETE FROM minutes WHERE minute < ?", (int(cutoff // 60),))
            while self._used_bytes() > limit:
                with self._db:
                    gone = self._db.execute(
                        "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id "
                        "LIMIT MAX(100, (SELECT COUNT(*) FROM events) / 10))").rowcount
                if not gone:
                    break
                log.info("store: %s over %g MB: deleted the oldest %d events", self.path,
                         self.params.max_mb, gone)
            # executescript steps it to the end (execute frees a single page)
            self._db.executescript("PRAGMA incremental_vacuum;")
        except sqlite3.Error as exc:
            log.warning("store: retention pass failed (%s); trying again in an hour", exc)

    def _used_bytes(self) -> int:
        page = self._db.execute("PRAGMA page_size").fetchone()[0]
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return page * (pages - free)

    def close(self) -> None:
        self._closing.set()
        self._writer.join(timeout=10.0)
        if self._events or self._minutes:
            log.warning("store: %d events could not be written before stopping", len(self._events))
        try:
            self._db.close()
        except sqlite3.Error:
            pass


# --- reading: the status page, /api/*, python -m edge events ---------------------------------
class History:
    """Read-only queries on the store's file, safe from any thread (each opens its own
    connection). A file that doesn't exist yet reads as empty."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        if not self.path.exists():
            return []
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=2.0)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def events(self, since: float = 0.0, until: float | None = None,
               limit: int | None = None) -> list[dict]:
        """Events from ``since`` (seconds since 1970) to ``until``, oldest first."""
        rows = self._rows("SELECT time, track, kind, label, p, snapshot FROM events "
                          "WHERE time >= ? AND time < ? ORDER BY time, id LIMIT ?",
                          (since, until if until is not None else float("inf"),
                           -1 if limit is None else limit))
        return [{"time": _iso(t), "track": track, "kind": kind, "label": label, "p": p,
                 "snapshot": snapshot} for t, track, kind, label, p, snapshot in rows]

    def buckets(self, starts: list[datetime]) -> list[dict]:
        """Counts between consecutive local times ``starts`` (the last one ends the last
        bucket): ``[{"start": ISO-8601, "people", "unmasked", "violations"}, …]``."""
        edges = [s.timestamp() for s in starts]
        rows = self._rows("SELECT minute, people, unmasked, violations FROM minutes "
                          "WHERE minute >= ? AND minute < ? ORDER BY minute",
                          (int(edges[0] // 60), int(-(-edges[-1] // 60))))
        sums = [[0, 0, 0] for _ in edges[:-1]]
        i = 0
        for minute, *counts in rows:
            while i < len(sums) and minute * 60 >= edges[i + 1]:
                i += 1
            if i == len(sums):
                break
            if minute * 60 >= edges[i]:
                sums[i] = [a + b for a, b in zip(sums[i], counts)]
        return [{"start": start.isoformat(), "people": p, "unmasked": u, "violations": v}
                for start, (p, u, v) in zip(starts, sums)]

    def hours(self, count: int, now: float | None = None) -> list[dict]:
        """The last ``count`` hours, the current one last, by local time."""
        top = datetime.fromtimestamp(now if now is not None else time.time()).astimezone()
        top = top.replace(minute=0, second=0, microsecond=0)
        return self.buckets([(top - timedelta(hours=count - 1 - i)).astimezone()
                             for i in range(count + 1)])

    def days(self, count: int, now: float | None = None) -> list[dict]:
        """The last ``count`` days, today last, from local midnight to local midnight."""
        today = datetime.fromtimestamp(now if now is not None else time.time()).date()
        return self.buckets([datetime.combine(today - timedelta(days=count - 1 - i),
                                              datetime.min.time()).astimezone()
                             for i in range(count + 1)])

    def today(self, now: float | None = None) -> Today:
        """Today's counts as written (for a restart to go on from)."""
        (bucket,) = self.days(1, now)
        day = datetime.fromisoformat(bucket["start"]).date()
        return Today(day, Counts(bucket["people"], bucket["unmasked"], bucket["violations"]))


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds")


PLUGIN = Plugin("sink", "store", StoreParams,
                lambda params, context: EventStore(params, context.snapshots, context.stats),
                "every event and the people counted, in a SQLite file", order=35)
