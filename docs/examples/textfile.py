"""A toy sink: each violation appended to a text file, one line each (docs/plugins.md).

A sender is its table and its ``send()``: the camera loop only puts the line into an
outbox (``edge.sinks.outbox``), whose own thread appends it to the file, in order, and
holds, counts and retries what the file can't take yet. The loop never waits for the disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.plugins import Plugin
from edge.shared.params import Params, param
from edge.sinks.outbox import Outbox


@dataclass(frozen=True)
class TextFileParams(Params):
    enabled: bool = param(False, help="each violation as a line in a text file (a toy)")
    path: str = param("violations.txt", path="file", help="the file lines are appended to")
    queue: int = param(100, min=1, max=100_000, help="lines held while the file can't take them")


class TextFileSink:
    def __init__(self, params: TextFileParams):
        self.path = params.path
        self.outbox = Outbox("textfile", params.queue, send=self.send, what="lines",
                             to=self.path)

    def handle(self, result) -> bool:
        """The loop's side: never touches the disk."""
        for event in result.events:
            if event.kind == "violation":
                self.outbox.put(f"{result.wall:.3f} track {event.track_id} {event.label}\n")
        return bool(result.events)

    def send(self, line: str) -> bool:
        """The outbox thread's side: True once the line is in the file."""
        with open(self.path, "a") as f:
            f.write(line)
        return True

    def close(self) -> None:
        self.outbox.close(wait=1.0)


PLUGIN = Plugin("sink", "textfile", TextFileParams,
                lambda params, context: TextFileSink(params),
                "a toy: each violation a line in a text file (docs/plugins.md)", order=90)
