"""The event store: every event, and people counted per minute, in a SQLite file.

``[sinks.store]`` (on by default) keeps, in ``path`` (``/var/lib/maskwatch/events.db``),
each violation and clear and the people counted per minute (the file and its tables:
``edge.sinks.eventdb``). What the status page's chart, ``/api/counts``, ``/api/events`` and
``python -m edge events`` read, through :class:`History`.

The camera loop never waits for the disk: ``handle`` only appends to memory; a writer
thread writes what has gathered every ``flush_seconds``, in one transaction (WAL mode,
``synchronous = NORMAL``). So a crash or SIGKILL loses at most the last unflushed batch —
up to ``flush_seconds`` of events and counts — and the file stays whole: SQLite commits a
transaction entirely or not at all. A stopped store leaves no WAL (it closes in rollback
mode), so whoever may read the file can, without writing beside it.

Built to run for months:

- **Retention.** Each hour, events and counts older than ``keep_days`` are deleted, and
  while the file is over ``max_mb`` the oldest rows of both go too, a tenth of the time
  the file covers at a time; freed pages return to the file system
  (``auto_vacuum = INCREMENTAL``, set on every file that has no tables yet).
- **A disk that can't take it** (full, or any I/O error, at start or while running):
  events and counts are held in memory and written once it can; one log line when it
  starts failing, one when it writes again; tried again after ``flush_seconds``, the wait
  doubling to ``RETRY_MAX``. Held events are bounded by ``max_pending``; beyond that the
  oldest are dropped and counted (``store_dropped``); the per-minute counts are never
  dropped. A file the store created and could not set up is removed, not left empty.
- **The file deleted or replaced while running** (``rm``, ``edge erase``): each write
  checks that the path still names the file it has open; if not, one log line, and what
  is held — and what comes after — goes to a new file at the path.
- **One bad row** (a value its table refuses, such as p = NaN) is refused, logged and
  counted (``store_refused``); the rest of its batch is written.
- **A damaged file of ours** (an SQLite file SQLite finds damaged, at start or while
  writing) is moved aside to ``events.db.corrupt-YYYYmmdd-HHMMSS`` with one log line, and
  a new file is started; nothing crashes. **Someone else's file** at the path (not SQLite,
  or a database without the store's tables) is never written, moved or erased: the store
  doesn't start, saying so in one line.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edge.counts import Counts
from edge.checks import store_path_problem
from edge.plugins import Plugin
from edge.shared.params import Params, param
from edge.sinks import SinkUnavailable
from edge.sinks.outbox import Outbox, Said
from edge.sinks.eventdb import SUFFIXES, NotAStore, connect, is_corrupt, iso
from edge.sinks.eventdb import History  # noqa: F401  (the page and the pipeline read it here)
from edge.sinks.snapshot import snapshot_name

log = logging.getLogger(__name__)

ADD_MINUTE = ("INSERT INTO minutes (minute, people, unmasked, violations) VALUES (?, ?, ?, ?) "
              "ON CONFLICT (minute) DO UPDATE SET people = people + excluded.people, "
              "unmasked = unmasked + excluded.unmasked, "
              "violations = violations + excluded.violations")
ADD_MINUTE_LABEL = ("INSERT INTO minute_labels (minute, label, people, violations) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (minute, label) DO UPDATE SET "
                    "people = people + excluded.people, "
                    "violations = violations + excluded.violations")
ADD_EVENT = "INSERT INTO events (time, track, kind, label, p, snapshot) VALUES (?, ?, ?, ?, ?, ?)"
# The oldest and newest times the file holds, events and minutes alike (indexed: cheap).
SPAN = ("SELECT MIN(t), MAX(t) FROM (SELECT MIN(time) AS t FROM events UNION ALL "
        "SELECT MAX(time) FROM events UNION ALL SELECT MIN(minute) * 60 FROM minutes "
        "UNION ALL SELECT MAX(minute) * 60 FROM minutes)")
PRUNE_EVERY = 3600.0    # seconds between retention passes
RETRY_MAX = 10.0        # seconds: the longest wait between tries while writing fails


@dataclass(frozen=True)
class StoreParams(Params):
    enabled: bool = param(True, help="every event and people counted per minute in a SQLite "
                                     "file (no images): the chart, /api/counts, edge events")
    path: str = param("/var/lib/maskwatch/events.db", path="file", help="the database file")
    keep_days: float = param(90.0, gt=0.0, max=36500.0,
                             help="events and counts older than this are deleted …")
    max_mb: float = param(50.0, min=1.0, max=100_000.0,
                          help="… and the oldest of both too while the file is bigger")
    flush_seconds: float = param(2.0, min=0.1, max=60.0,
                                 help="writes are batched this often: what a crash may lose")
    max_pending: int = param(100_000, min=100, max=10_000_000,
                             help="events held in memory while the disk can't take them; "
                                  "then the oldest are dropped (counted)")

    @classmethod
    def problems(cls, values):
        problem = store_path_problem(values["path"]) if "path" in values else None
        return [("path", problem)] if problem else []


class EventStore:
    """The sink: ``handle`` gathers, a writer thread writes (see the module docstring)."""

    def __init__(self, params: StoreParams, snapshots: bool = False, stats=None):
        self.params = params
        self.path = Path(params.path)
        self.snapshots = snapshots         # the snapshot sink is on: events name their file
        self._lock = threading.Lock()
        self.outbox = Outbox("store", params.max_pending, what="events")  # rows to write
        self._minutes: dict[int, Counts] = {}    # per-minute increments not yet written
        self.written = 0                   # events written since start
        self.refused = 0                   # events the database refused (a bad value)
        self.moved_aside: list[Path] = []  # damaged files moved aside since start
        self._failing = Said("store", log)  # why writing fails, as last logged
        self._db: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None   # (device, inode) of the open file
        self._wait = params.flush_seconds  # until the next write
        try:
            self._ready(starting=True)
        except NotAStore as exc:
            raise SinkUnavailable(f"{exc}; the store leaves it as it is and writes nothing: "
                                  "set [sinks.store] path to another file") from exc
        self._pruned_at = float("-inf")
        self._closing = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="store", daemon=True)
        self._writer.start()
        if stats is not None:
            stats.gauge("store_pending", "Events waiting to be written", lambda: len(self.outbox))
            stats.gauge("store_written", "Events written to the store", lambda: self.written,
                        "counter")
            stats.gauge("store_dropped", "Events dropped: the disk was full too long",
                        lambda: self.outbox.dropped, "counter")
            stats.gauge("store_refused", "Events the database refused (a bad value)",
                        lambda: self.refused, "counter")

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
            for row in rows:
                self.outbox.put(row)
            if counted:
                minute = int(result.wall // 60)
                self._minutes[minute] = self._minutes.get(minute, Counts()) + counted
        return True

    # --- the writer thread ----------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            closing = self._closing.wait(self._wait)
            if self.flush():
                self._wait = self.params.flush_seconds
                if time.monotonic() - self._pruned_at >= PRUNE_EVERY and self._db is not None:
                    self._prune()
            else:
                self._wait = min(2 * self._wait, max(RETRY_MAX, self.params.flush_seconds))
            if closing:
                return

    def flush(self) -> bool:
        """Write what has gathered in one transaction; False (and kept for the next try)
        if the file can't take it."""
        with self._lock:
            events = self.outbox.take()
            minutes, self._minutes = self._minutes, {}
        if not events and not minutes:
            return True
        if not self._ready():
            self._keep(events, minutes)
            return False
        try:
            refused = self._write(events, minutes)
        except sqlite3.Error as exc:
            self._keep(events, minutes)
            if is_corrupt(exc):
                self._replace(exc)
            else:
                self._failing(f"cannot write {self.path} ({exc}); holding events and counts in "
                          "memory until it can")
            return False
        if not self._same_file():
            # Deleted or replaced while this batch was written: it went with the old file.
            self._keep(events, minutes)
            return False
        self.written += len(events) - refused
        self._failing.over(f"writing to {self.path} again ({len(events) - refused} events "
                           "caught up)")
        return True

    def _write(self, events: list, minutes: dict) -> int:
        """One transaction; an event the table refuses is set aside, row by row: the
        events refused."""
        try:
            with self._db:
                self._db.executemany(ADD_EVENT, events)
                self._add_minutes(minutes)
            return 0
        except sqlite3.IntegrityError:
            pass
        refused = 0
        with self._db:
            for row in events:
                try:
                    self._db.execute(ADD_EVENT, row)
                except sqlite3.IntegrityError as exc:   # only this statement is undone
                    refused += 1
                    (log.warning if self.refused + refused == 1 else log.debug)(
                        "store: refused an event the database won't take (%s): %r; refused "
                        "events are counted (store_refused)", exc, row)
            self._add_minutes(minutes)
        self.refused += refused
        return refused

    def _add_minutes(self, minutes: dict) -> None:
        """Add each minute's counts, and its counts per alarm label, to the tables."""
        ordered = sorted(minutes.items())
        self._db.executemany(ADD_MINUTE, [(m, c.people, c.unmasked, c.violations)
                                          for m, c in ordered])
        self._db.executemany(ADD_MINUTE_LABEL, [(m, *row) for m, c in ordered
                                                for row in c.labels])

    def _keep(self, events: list, minutes: dict) -> None:
        """Put a batch that could not be written back in front of what came since."""
        with self._lock:
            self.outbox.put_back(events)
            for minute, counts in minutes.items():
                self._minutes[minute] = counts + self._minutes.get(minute, Counts())

    # --- the file -------------------------------------------------------------------------
    def _ready(self, starting: bool = False) -> bool:
        """The file at the path is open, and the one it was: else open it (a new one, if it
        was deleted); False if it can't be. Someone else's file there raises
        :class:`NotAStore` when ``starting``."""
        if self._db is not None:
            if self._same_file():
                return True
            log.warning("store: %s was deleted or replaced while running; what is held, and "
                        "what comes after, goes to a new file there", self.path)
            self._close_db()
        try:
            self._db = self._open()
            info = os.stat(self.path)
            self._file = (info.st_dev, info.st_ino)
            return True
        except NotAStore as exc:
            if starting:
                raise
            self._failing(f"{exc}; holding events and counts in memory (set [sinks.store] path "
                      "to another file)")
        except (OSError, sqlite3.Error) as exc:
            self._failing(f"cannot write {self.path} ({exc}); holding events and counts in memory "
                      "until it can")
        return False

    def _same_file(self) -> bool:
        """Whether the path still names the file that is open (not deleted, not replaced)."""
        try:
            info = os.stat(self.path)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) == self._file

    def _open(self) -> sqlite3.Connection:
        """Open the file; a damaged one is moved aside and a new one started."""
        try:
            db = connect(self.path)
            found = db.execute("PRAGMA quick_check").fetchone()[0]
            if found != "ok":
                db.close()
                raise sqlite3.DatabaseError(f"quick_check: {found}")
            return db
        except sqlite3.DatabaseError as exc:
            if not (is_corrupt(exc) or str(exc).startswith("quick_check")):
                raise
            self._move_aside(exc)
            return connect(self.path)

    def _replace(self, exc: sqlite3.Error) -> None:
        """The file went bad while running: move it aside; the next write starts a new one."""
        self._close_db()
        try:
            self._move_aside(exc)
        except OSError as again:
            self._failing(f"cannot move the damaged {self.path} aside ({again}); holding events "
                      "and counts in memory")

    def _move_aside(self, exc: Exception) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{datetime.now():%Y%m%d-%H%M%S}")
        for suffix in SUFFIXES:
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                part.rename(f"{aside}{suffix}")
        self.moved_aside.append(aside)
        log.warning("store: %s is damaged (%s); moved it to %s and started a new one",
                    self.path, exc, aside.name)

    def _close_db(self, stopping: bool = False) -> None:
        db, self._db = self._db, None
        if db is None:
            return
        try:
            if stopping:   # no WAL left: a reader who can't write the folder can read it
                db.execute("PRAGMA journal_mode = DELETE")
        except sqlite3.Error as exc:
            log.debug("store: %s stays in WAL mode (%s)", self.path, exc)
        finally:
            db.close()

    def _prune(self) -> None:
        """Retention: by age, then, while the file is too big, the oldest tenth of the time
        it covers, events and minutes alike."""
        self._pruned_at = time.monotonic()
        limit = self.params.max_mb * 1e6
        try:
            with self._db:
                self._delete_before(time.time() - self.params.keep_days * 86400)
            while self._used_bytes() > limit:
                oldest, newest = self._db.execute(SPAN).fetchone()
                if oldest is None:
                    break
                cutoff = oldest + max((newest - oldest) / 10, 60.0)
                with self._db:
                    gone = self._delete_before(cutoff)
                if not gone:
                    break
                log.info("store: %s over %g MB: deleted %d events and minutes before %s",
                         self.path, self.params.max_mb, gone, iso(cutoff))
            # executescript steps it to the end (execute frees a single page)
            self._db.executescript("PRAGMA incremental_vacuum;")
        except sqlite3.Error as exc:
            log.warning("store: retention pass failed (%s); trying again in an hour", exc)

    def _delete_before(self, cutoff: float) -> int:
        """Delete events and minutes before ``cutoff`` (seconds since 1970): the rows gone."""
        minute = int(cutoff // 60)
        return (self._db.execute("DELETE FROM events WHERE time < ?", (cutoff,)).rowcount
                + self._db.execute("DELETE FROM minutes WHERE minute < ?", (minute,)).rowcount
                + self._db.execute("DELETE FROM minute_labels WHERE minute < ?",
                                   (minute,)).rowcount)

    def _used_bytes(self) -> int:
        page = self._db.execute("PRAGMA page_size").fetchone()[0]
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return page * (pages - free)

    def close(self) -> None:
        self._closing.set()
        self._writer.join(timeout=10.0)
        if self.outbox or self._minutes:
            log.warning("store: %d events and the counts of %d minutes could not be written "
                        "before stopping", len(self.outbox), len(self._minutes))
        self._close_db(stopping=True)


PLUGIN = Plugin("sink", "store", StoreParams,
                lambda params, context: EventStore(params, context.snapshots, context.stats),
                "every event and the people counted, in a SQLite file", order=35)
