"""The event store's file: its tables, how it is opened for writing (:func:`connect`) and
for reading (:class:`History`), and which files are its own (:func:`files`).

- ``events``: each violation and clear — time, track, kind, label, p, and the name of its
  snapshot when the snapshot sink saves one. No images;
- ``minutes``: per minute, the people judged, the people unmasked and the violations
  (``edge.counts`` says what counts as a person);
- ``minute_labels``: per minute and alarm label ("no mask", "mask worn wrong"), the people
  who raised a violation of that label and those violations.

A file is the store's if it is an SQLite database (it begins ``SQLite format 3\\0``) with
these two tables, or with no tables yet (a new or empty file). Anything else at the path
is someone else's (:class:`NotAStore`): the store never writes, moves or erases it. Paths
go to SQLite as escaped ``file:`` URIs, so '#', '?' and '%' in them are just characters;
readers open the file read-only and never create one.
"""

from __future__ import annotations

import bisect
import glob
import os
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from edge.counts import Counts, Today, day_start, local_day

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
CREATE TABLE IF NOT EXISTS minute_labels (
    minute INTEGER NOT NULL,       -- as in minutes
    label TEXT NOT NULL,           -- an alarm label of the model
    people INTEGER NOT NULL,
    violations INTEGER NOT NULL,
    PRIMARY KEY (minute, label)
);
"""
TABLES = {"events", "minutes"}
SUFFIXES = ("", "-wal", "-shm")   # the database, SQLite's write-ahead log and shared memory
MAGIC = b"SQLite format 3\0"     # how every SQLite database file begins
# SQLite's codes for a file that is not (or no longer) a sound database.
CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


class NotAStore(Exception):
    """The file at the store's path isn't the store's: the store neither writes, moves nor
    erases it. The message names the file and why, in one line."""


def uri(path: str | Path, **query) -> str:
    """``path`` as an SQLite ``file:`` URI, with '#', '?' and '%' in it escaped."""
    return Path(path).absolute().as_uri() + (f"?{urlencode(query)}" if query else "")


def _foreign(path: Path, tables: set[str] | None = None) -> str | None:
    """Why the file at ``path`` is someone else's — not an SQLite database, or one whose
    ``tables`` (read by the caller) are not the store's; None if it may be ours."""
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
    if head and head != MAGIC:
        return f"{path} is not an event store (not an SQLite database)"
    if tables and not TABLES <= tables:
        return (f"{path} is not an event store (an SQLite database of other tables: "
                f"{', '.join(sorted(tables))})")
    return None


def _tables(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _create(path: Path) -> bool:
    """Create ``path`` empty, mode 0640 whatever the umask, if it doesn't exist (SQLite
    gives its -wal and -shm files the database's mode); whether it did."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, 0o640)
    finally:
        os.close(fd)
    return True


def connect(path: Path) -> sqlite3.Connection:
    """The store's file, opened for writing, WAL mode. A file without tables (new, or left
    empty) gets incremental auto-vacuum and the tables. :class:`NotAStore` if it is someone
    else's; a file this call created is removed again if it can't be set up."""
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    created = _create(path)
    db = None
    try:
        problem = _foreign(path)
        if problem:
            raise NotAStore(problem)
        db = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
        tables = _tables(db)
        problem = _foreign(path, tables)
        if problem:
            raise NotAStore(problem)
        if not tables:
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")   # only takes effect before tables
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(SCHEMA)
        return db
    except BaseException:
        if db is not None:
            db.close()
        if created:
            for suffix in SUFFIXES:
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        raise


def files(path: str | Path) -> list[Path]:
    """What ``edge erase`` deletes: the store's files at ``path`` — the database, its -wal
    and -shm, and damaged copies moved aside; regular files only. :class:`NotAStore` if one
    of them is a symbolic link (deleting it would leave the rows where it points) or the
    database is someone else's file."""
    path = Path(path)
    parts = [Path(f"{path}{suffix}") for suffix in SUFFIXES]
    for part in parts:
        if part.is_symlink():
            raise NotAStore(f"{part} is a symbolic link to {os.path.realpath(part)}")
    if path.is_file():
        problem = _foreign(path) or _foreign(path, _readable_tables(path))
        if problem:
            raise NotAStore(problem)
    aside = path.parent.glob(f"{glob.escape(path.name)}.corrupt-*")
    return [p for p in parts if p.is_file()] + sorted(
        p for p in aside if p.is_file() and not p.is_symlink())


def _readable_tables(path: Path) -> set[str] | None:
    """The tables of the SQLite file at ``path``, read-only; None if it is damaged."""
    try:
        db = sqlite3.connect(uri(path, mode="ro"), uri=True, timeout=5.0)
        try:
            return _tables(db)
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        if not is_corrupt(exc):
            raise
        return None


def is_corrupt(exc: sqlite3.Error) -> bool:
    """Whether SQLite says the file is not (or no longer) a sound database."""
    return getattr(exc, "sqlite_errorcode", None) in CORRUPT


# --- reading: the status page, /api/*, python -m edge events ---------------------------------
class History:
    """Read-only queries on the store's file, safe from any thread (each opens its own
    connection, read-only: it never creates a file). A file that doesn't exist yet reads
    as empty."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        if not self.path.exists():
            return []
        db = sqlite3.connect(uri(self.path, mode="ro"), uri=True, timeout=2.0)
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
        return [{"time": iso(t), "track": track, "kind": kind, "label": label, "p": p,
                 "snapshot": snapshot} for t, track, kind, label, p, snapshot in rows]

    def buckets(self, starts: list[datetime]) -> list[dict]:
        """Counts between consecutive local times ``starts`` (the last one ends the last
        bucket): ``[{"start": ISO-8601, "people", "unmasked", "violations", "labels":
        {alarm label: {"people", "violations"}}}, …]``."""
        edges = [s.timestamp() for s in starts]
        span = (int(edges[0] // 60), int(-(-edges[-1] // 60)))
        totals = self._rows("SELECT minute, people, unmasked, violations, '', 0 FROM minutes "
                            "WHERE minute >= ? AND minute < ?", span)
        labelled = self._rows("SELECT minute, 0, 0, 0, label, people, violations FROM "
                              "minute_labels WHERE minute >= ? AND minute < ?", span) \
            if self._has("minute_labels") else []
        sums = [Counts() for _ in edges[:-1]]
        for minute, people, unmasked, violations, label, *of_label in sorted(totals + labelled):
            i = bisect.bisect_right(edges, minute * 60) - 1
            if 0 <= i < len(sums):
                sums[i] += Counts(people, unmasked, violations,
                                  ((label, *of_label),) if label else ())
        return [{"start": start.isoformat(), "people": c.people, "unmasked": c.unmasked,
                 "violations": c.violations,
                 "labels": {label: {"people": p, "violations": v} for label, p, v in c.labels}}
                for start, c in zip(starts, sums)]

    def _has(self, table: str) -> bool:
        """Whether the file has ``table`` (a store written before it was added may not)."""
        return bool(self._rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (table,)))

    def hours(self, count: int, now: float | None = None) -> list[dict]:
        """The last ``count`` hours, the current one last, by local time."""
        top = datetime.fromtimestamp(now if now is not None else time.time()).astimezone()
        top = top.replace(minute=0, second=0, microsecond=0)
        return self.buckets([(top - timedelta(hours=count - 1 - i)).astimezone()
                             for i in range(count + 1)])

    def days(self, count: int, now: float | None = None) -> list[dict]:
        """The last ``count`` local calendar dates, today last, each from its first local
        instant to the next one's (``edge.counts.day_start``)."""
        today = local_day(now if now is not None else time.time())
        return self.buckets([day_start(today - timedelta(days=count - 1 - i))
                             for i in range(count + 1)])

    def today(self, now: float | None = None) -> Today:
        """Today's counts as written (for a restart to go on from)."""
        now = now if now is not None else time.time()
        (bucket,) = self.days(1, now)
        labels = tuple((label, c["people"], c["violations"])
                       for label, c in sorted(bucket["labels"].items()))
        return Today(local_day(now), Counts(bucket["people"], bucket["unmasked"],
                                            bucket["violations"], labels))


def iso(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds")
