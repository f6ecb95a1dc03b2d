"""Save the (annotated) frame of each violation as a JPEG, keeping a bounded archive.

Files are ``violation-YYYYmmdd-HHMMSS-mmm-trackN.jpg``, mode 0640 whatever the umask (they
show people's faces). A file is whole or absent: it is written under a temporary name
(``….jpg.tmp``), every byte checked (a full disk raises, it never truncates silently),
fsynced, renamed into place and the folder fsynced, so neither a reader nor a power cut
sees half a file; a failed write removes its temporary file, and temporary files left by a
crash are removed when the sink starts. After each save the folder is pruned to
``max_count`` files and ``max_age_days``.

The sink's own files are the regular files of this naming; only they are ever pruned or
erased (:func:`files`). Anything else in the folder — a link (dangling or not), a folder
named like a snapshot, an entry that vanishes while it is looked at — is passed over.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edge.checks import folder_problem
from edge.plugins import Plugin
from edge.shared.params import Params, param

log = logging.getLogger(__name__)

TEMPORARY = "violation-*.tmp"
NAME = re.compile(r"violation-\d{8}-\d{6}-\d{3}-track\d+\.jpg")


def snapshot_name(wall: float, track_id: int) -> str:
    """The file name of a violation's snapshot: local time to the millisecond, and track."""
    stamp = datetime.fromtimestamp(wall)
    return (f"violation-{stamp:%Y%m%d-%H%M%S}-{stamp.microsecond // 1000:03d}"
            f"-track{track_id}.jpg")


def _regular(paths) -> list[tuple[Path, os.stat_result]]:
    """Those of ``paths`` that are regular files (not links, not folders), with their
    status; one that can't be looked at (gone meanwhile) is passed over."""
    found = []
    for path in paths:
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            found.append((path, info))
    return found


def _snapshots(folder: Path) -> list[tuple[Path, os.stat_result]]:
    return _regular(p for p in folder.iterdir() if NAME.fullmatch(p.name))


def _unfinished(folder: Path) -> list[Path]:
    return sorted(p for p, _ in _regular(folder.glob(TEMPORARY)))


def files(folder: Path) -> list[Path]:
    """The sink's files in ``folder``, snapshots and unfinished ones: what erase deletes."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p, _ in _snapshots(folder)) + _unfinished(folder)


@dataclass(frozen=True)
class SnapshotParams(Params):
    enabled: bool = param(False, help="save the frame of each violation as a JPEG (mode 0640)")
    dir: str = param("/var/lib/maskwatch/snapshots", path="file", help="where they go")
    max_count: int = param(500, min=1, max=10_000_000, help="keep at most this many …")
    max_age_days: float = param(7.0, gt=0.0, max=36500.0, help="… and none older than this")

    @classmethod
    def problems(cls, values):
        if values.get("dir") == "":
            return [("dir", "must not be empty (it would be the working folder)")]
        problem = folder_problem(values["dir"]) if "dir" in values else None
        return [("dir", problem)] if problem else []


class SnapshotSink:
    def __init__(self, params: SnapshotParams):
        self.folder = Path(params.dir)
        self.folder.mkdir(mode=0o750, parents=True, exist_ok=True)
        self.max_count = params.max_count
        self.max_age_days = params.max_age_days
        leftovers = _unfinished(self.folder)
        for path in leftovers:
            path.unlink(missing_ok=True)
        if leftovers:
            log.warning("snapshot: removed %d unfinished files left by an earlier run",
                        len(leftovers))

    def handle(self, result) -> bool:
        violations = [e for e in result.events if e.kind == "violation"]
        if result.image is None or not violations:
            return False
        jpeg = result.annotated_jpeg()
        for event in violations:
            self._write(self.folder / snapshot_name(result.wall, event.track_id), jpeg)
        self.prune(now=result.wall)
        return True

    def _write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.fchmod(fd, 0o640)  # the umask may have taken bits away; set them exactly
            view = memoryview(data)
            while view:  # os.write may write less than asked, e.g. as the disk fills
                written = os.write(fd, view)
                if written <= 0:
                    raise OSError(errno.ENOSPC, f"no space left writing {tmp}")
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, path)
        folder = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)  # the rename itself, through a power cut
        finally:
            os.close(folder)

    def prune(self, now: float | None = None) -> list[Path]:
        """Delete snapshots past the age limit, then the oldest past the count limit."""
        now = time.time() if now is None else now
        oldest = now - self.max_age_days * 86400
        found = sorted(_snapshots(self.folder), key=lambda found: found[1].st_mtime)
        too_old = [p for p, info in found if info.st_mtime < oldest]
        rest = [p for p, info in found if info.st_mtime >= oldest]
        doomed = too_old + rest[:max(0, len(rest) - self.max_count)]
        for path in doomed:
            path.unlink(missing_ok=True)
        if doomed:
            log.debug("snapshot: pruned %d old files", len(doomed))
        return doomed

    def close(self) -> None:
        pass


PLUGIN = Plugin("sink", "snapshot", SnapshotParams,
                lambda params, context: SnapshotSink(params),
                "each violation's annotated frame as a JPEG, a bounded archive", order=30)
