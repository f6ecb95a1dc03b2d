"""One JSON line per event on stdout; under systemd, journald keeps and timestamps them.

    {"time": "2025-03-01T08:15:02.113+01:00", "event": "violation", "track": 7,
     "label": "without_mask", "confidence": 0.93, "box": [212, 80, 96, 96], "fps": 9.8}
"""

from __future__ import annotations

import json
import sys
from datetime import datetime


class LogSink:
    def __init__(self, stream=None):
        self._stream = stream  # None: whatever sys.stdout is when writing

    def handle(self, result) -> None:
        if not result.events:
            return
        stream = self._stream or sys.stdout
        stamp = datetime.fromtimestamp(result.wall).astimezone().isoformat(timespec="milliseconds")
        for event in result.events:
            stream.write(json.dumps({
                "time": stamp, "event": event.kind, "track": event.track_id,
                "label": event.label, "confidence": round(event.confidence, 3),
                "box": [int(v) for v in event.box], "fps": round(result.fps, 1),
            }) + "\n")
        stream.flush()

    def close(self) -> None:
        pass
