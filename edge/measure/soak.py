"""``python -m edge.measure.soak``: run the pipeline for many frames; does anything creep?

    python -m edge.measure.soak --frames 50000 [--source DIR|VIDEO] [--model M] [--json FILE]

The real pipeline — source, detector, classifier, tracker, and the log (to /dev/null),
GPIO and snapshot sinks — runs over a looping source as fast as it goes: the demo frames
by default, with a 0.1 s cooldown so that every 24-frame loop raises a violation, writes
a snapshot (into a temporary folder, pruned as on the Pi) and clears it. GPIO uses
gpiozero's mock pins unless ``GPIOZERO_PIN_FACTORY`` names real ones.

After ``--warmup`` frames (allocators and caches settle) it reads the resident set (VmRSS)
and the open file descriptors, and again at the end. RSS is read after each of
``WINDOW`` frames and the lowest reading kept: each frame's buffers are mapped and unmapped
as it goes, so a single reading lands anywhere on a 2 MB saw-tooth. It fails (exit 1) if RSS grew by more
than 1 MB per 10,000 measured frames (1 MB at least, for shorter runs), or if descriptors
grew. Prints a table and, with ``--json FILE``, writes the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from edge.config import ConfigError, load_config, with_overrides
from edge.pipeline import Pipeline, StartupError
from edge.sinks import SinkContext, make_sinks
from edge.sources import SourceError, make_source
from facedata import DataError

MB_PER_10K_FRAMES = 1.0
SOAK_COOLDOWN = 0.1
WINDOW = 50                 # frames whose lowest RSS reading stands for "now"


def rss_mb() -> float:
    """This process's resident set now (not its peak), in MiB."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def soak(config, frames: int, warmup: int, snapshots: Path) -> dict:
    sinks = config.sinks
    sinks = dataclasses.replace(
        sinks, log=dataclasses.replace(sinks.log, enabled=True),
        gpio=dataclasses.replace(sinks.gpio, enabled=True),
        snapshot=dataclasses.replace(sinks.snapshot, enabled=True, dir=str(snapshots)),
        store=dataclasses.replace(sinks.store, enabled=True, path=str(snapshots / "events.db")))
    devnull = open(os.devnull, "w")
    pipeline = Pipeline(config, source=make_source(dataclasses.replace(config.source, loop=True)),
                        sinks=make_sinks(sinks, context=SinkContext(log_stream=devnull)))
    events = {"violation": 0, "clear": 0}
    window = min(WINDOW, frames)
    low_start = low_end = float("inf")
    try:
        pipeline.source.open()
        for i in range(warmup + frames):
            if i == warmup:
                start = {"fds": open_fds(), "t": time.perf_counter()}
            frame = pipeline.source.read()
            result = pipeline.process(frame)
            for event in result.events if result else ():
                events[event.kind] = events.get(event.kind, 0) + 1
            if warmup <= i < warmup + window:
                low_start = min(low_start, rss_mb())
            if i >= warmup + frames - window:
                low_end = min(low_end, rss_mb())
        start["rss_mb"] = low_start
        end = {"rss_mb": low_end, "fds": open_fds(), "t": time.perf_counter()}
    finally:
        pipeline.close()
        devnull.close()
    growth = end["rss_mb"] - start["rss_mb"]
    budget = max(MB_PER_10K_FRAMES, MB_PER_10K_FRAMES * frames / 10_000)
    return {
        "frames": frames, "warmup": warmup, "seconds": round(end["t"] - start["t"], 1),
        "fps": frames / (end["t"] - start["t"]),
        "rss_start_mb": round(start["rss_mb"], 2), "rss_end_mb": round(end["rss_mb"], 2),
        "rss_growth_mb": round(growth, 2), "rss_budget_mb": round(budget, 2),
        "fds_start": start["fds"], "fds_end": end["fds"], "events": events,
        "snapshots_kept": len(list(snapshots.glob("violation-*.jpg"))),
        "detector": config.detector.name, "model": str(config.model_path),
        "ok": growth <= budget and end["fds"] <= start["fds"],
    }


def table(r: dict) -> str:
    return "\n".join([
        f"{r['frames']} frames after {r['warmup']} warm-up, {r['seconds']} s, "
        f"{r['fps']:.1f} frames/s; {r['detector']} detector",
        f"RSS           {r['rss_start_mb']:.1f} -> {r['rss_end_mb']:.1f} MiB "
        f"({r['rss_growth_mb']:+.2f}, budget {r['rss_budget_mb']:.1f})",
        f"open fds      {r['fds_start']} -> {r['fds_end']}",
        f"events        {r['events']}, {r['snapshots_kept']} snapshots kept",
        "ok" if r["ok"] else "FAIL: memory or file descriptors grew"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge.measure.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=20_000, help="frames to measure")
    p.add_argument("--warmup", type=int, default=500, help="frames to run first, unmeasured")
    p.add_argument("--config", type=Path)
    p.add_argument("--source", help="a folder of images or a video file (default: demo frames)")
    p.add_argument("--model", help="model folder (default: models/default)")
    p.add_argument("--detector", help="face detector instead of the config's")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
    with tempfile.TemporaryDirectory(prefix="maskwatch-soak-") as tmp:
        try:
            source = args.source
            config = load_config(args.config)
            if source is None:
                from edge.samples import write_frames
                source = str(Path(tmp) / "frames")
                write_frames(Path(source))
                config = dataclasses.replace(config, tracker=dataclasses.replace(
                    config.tracker, cooldown=SOAK_COOLDOWN))
            config = with_overrides(config, source=source, model=args.model,
                                    detector=args.detector)
            config = dataclasses.replace(config, source=dataclasses.replace(config.source,
                                                                            fps=0.0))
            result = soak(config, args.frames, args.warmup, Path(tmp) / "snapshots")
        except (ConfigError, StartupError, SourceError, DataError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
