"""``python -m edge demo``: the whole pipeline on sample frames, with no camera and no data.

The frames are ``edge.samples``' astronaut, bare and masked. A short sequence — masked, then plain, then masked again — runs through detection,
classification and tracking, and the demo writes annotated frames plus the event log
(a ``violation`` when the mask comes off, a ``clear`` after it is back on).

scikit-image is a workstation (dev) dependency only; the Pi never runs this.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

from edge.pipeline import Pipeline, with_source
from edge.samples import write_frames
from edge.sinks import SafeSink, make_sinks
from edge.sinks.eventdb import SUFFIXES
from edge.sinks.log import LogSink

log = logging.getLogger(__name__)

# The 24 frames last 2.4 s at 10 frames/s: with the 5 s default cooldown a violation could
# never clear before they end, so the demo (and `make run` on its frames) uses this.
COOLDOWN = 0.5
RUN_CONFIG = """\
# Written by `python -m edge demo --frames-only` for `make run` on the demo frames. They last
# 2.4 s at 10 frames/s, so the tracker's cooldown is {cooldown} s instead of 5 s: the violation
# raised when the mask comes off clears after it is back on, before the frames end. Events
# and counts go to a store beside the frames, not to /var/lib/maskwatch.
[tracker]
cooldown = {cooldown}

[sinks.store]
path = "{store}"
"""


def demo_config(config, frames: Path, store: Path):
    """The config for the demo: the frame folder at 10 frames/s, a short cooldown, no GPIO,
    the event store in ``store``."""
    config = with_source(config, kind="images", table={"path": str(frames)}, fps=10.0)
    sinks = dataclasses.replace(
        config.sinks, gpio=dataclasses.replace(config.sinks.gpio, enabled=False),
        snapshot=dataclasses.replace(config.sinks.snapshot, enabled=False),
        store=dataclasses.replace(config.sinks.store, path=str(store)))
    tracker = dataclasses.replace(config.tracker, cooldown=COOLDOWN)
    return dataclasses.replace(config, sinks=sinks, tracker=tracker)


def run_demo(config, out: Path, frames_only: bool = False) -> int:
    """Write the frames under ``out/frames`` and, for ``make run``, ``out/run.toml``; unless
    ``frames_only``, run the pipeline on them, writing ``out/annotated/`` and
    ``out/events.jsonl`` (the events also go to stdout) and a fresh event store,
    ``out/events.db``."""
    frames = out / "frames"
    write_frames(frames)
    (out / "run.toml").write_text(RUN_CONFIG.format(cooldown=COOLDOWN,
                                                    store=(out / "run-events.db").resolve()))
    print(f"demo frames: {frames}/", file=sys.stderr)
    if frames_only:
        return 0
    store = out / "events.db"
    for suffix in SUFFIXES:
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    config = demo_config(config, frames, store)
    annotated = out / "annotated"
    with open(out / "events.jsonl", "w") as events:
        sinks = make_sinks(config.sinks, annotate=annotated)
        sinks.append(SafeSink("events.jsonl", lambda: LogSink(events)))
        pipeline = Pipeline(config, sinks=sinks)
        count = pipeline.run()
    print(f"demo: {count} frames, annotated in {annotated}/, events in {out / 'events.jsonl'}",
          file=sys.stderr)
    return 0
