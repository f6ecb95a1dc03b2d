"""What the running loop counts, for those who report it: the status page, /metrics and
systemd's STATUS line. The loop writes it; readers on other threads only read it, so they
need nothing else of the pipeline. A sink that has something to report (the MQTT queue's
depth) adds a gauge: a name and a function that reads it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Stats:
    model: str = ""                      # the classifier's file, and its format
    model_format: str = ""
    detector: str = ""                   # the detector's name and its table
    detector_params: dict = field(default_factory=dict)
    frames: int = 0                      # frames processed since start
    fps: float = 0.0                     # frames/s, recent average
    reconnects: int = 0                  # times a lost source was opened again
    refused: int = 0                     # frames of a degenerate shape, skipped
    timings: dict = field(default_factory=dict)   # seconds per stage, last frame
    # name: (help, read, "gauge" or "counter"), from sinks
    gauges: dict[str, tuple[str, Callable[[], float], str]] = field(default_factory=dict)

    def gauge(self, name: str, help_: str, read: Callable[[], float],
              kind: str = "gauge") -> None:
        """Report ``read()`` as the metric ``maskwatch_<name>`` (help text ``help_``); a
        ``counter`` only goes up."""
        self.gauges[name] = (help_, read, kind)
