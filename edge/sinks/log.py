"""One JSON line per event on stdout; under systemd, journald keeps and timestamps them.

    {"time": "2025-03-01T08:15:02.113+01:00", "event": "violation", "track": 7,
     "label": "without_mask", "confidence": 0.93, "box": [212, 80, 96, 96], "fps": 9.8}

Writing never blocks the loop. A line goes out only when stdout can take it now (``poll``
with no wait; a line shorter than ``PIPE_BUF`` then goes into a pipe whole, without
waiting). Lines it can't take yet — a stdout pipe nobody reads, a stalled journald — wait
in a queue of ``max_pending`` lines and go out, in order, when it drains; past that the
oldest are dropped and counted, and the count is logged. A stream without a file
descriptor (a test's ``StringIO``) is simply written to.
"""

from __future__ import annotations

import io
import json
import logging
import os
import select
import sys
import time
from dataclasses import dataclass
from datetime import datetime

from edge.plugins import Plugin
from edge.shared.params import Params, param
from edge.sinks.outbox import Outbox

log = logging.getLogger(__name__)

CLOSE_WAIT = 1.0  # seconds close() gives a slow reader before counting what is left


def event_json(event, wall: float, fps: float) -> dict:
    """An event as every sink reports it: the log line, the MQTT message, the status page."""
    stamp = datetime.fromtimestamp(wall).astimezone().isoformat(timespec="milliseconds")
    return {"time": stamp, "event": event.kind, "track": event.track_id, "label": event.label,
            "confidence": round(event.confidence, 3), "box": [int(v) for v in event.box],
            "fps": round(fps, 1)}


@dataclass(frozen=True)
class LogParams(Params):
    enabled: bool = param(True, help="one JSON line per event on stdout (journald keeps it)")


class LogSink:
    def __init__(self, stream=None, max_pending: int = 1000):
        self._stream = stream  # None: whatever sys.stdout is when writing
        self.outbox = Outbox("log", max_pending, what="event lines", to="stdout")
        self._rest = b""       # the part of a line stdout took only half of

    @property
    def dropped(self) -> int:
        return self.outbox.dropped

    def handle(self, result) -> bool:
        for event in result.events:
            self.outbox.put((json.dumps(event_json(event, result.wall, result.fps)) + "\n").encode())
        if not result.events and not (self.outbox or self._rest):
            return False
        return self._flush()

    def _flush(self, wait: float = 0.0) -> bool:
        """Write what stdout takes without blocking (up to ``wait`` seconds); True if any."""
        stream = self._stream or sys.stdout
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            stream.write(b"".join([self._rest, *self.outbox.take()]).decode())
            stream.flush()
            self._rest = b""
            return True
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        deadline = time.monotonic() + wait
        wrote = False
        while self._rest or self.outbox:
            timeout_ms = max(0.0, deadline - time.monotonic()) * 1000
            if not poller.poll(timeout_ms):
                break
            line = self._rest or self.outbox.peek()
            try:
                written = os.write(fd, line)
            except BlockingIOError:  # someone made stdout non-blocking: the same as "full"
                break
            wrote = True
            if line is not self._rest:
                self.outbox.pop(line)
            self._rest = line[written:]
        return wrote

    def close(self) -> None:
        if self._rest or self.outbox:
            self._flush(wait=CLOSE_WAIT)
        self.outbox.close()


PLUGIN = Plugin("sink", "log", LogParams, lambda params, context: LogSink(context.log_stream),
                "events as JSON lines on stdout", order=10)
