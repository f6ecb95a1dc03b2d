"""``python -m edge bench``: where a frame's time goes, on the machine it runs on.

After ``--warmup`` unmeasured frames (the interpreter allocates and caches on its first
calls), ``--frames`` frames go through the real pipeline code with no frame-rate cap, and
each stage is timed: capture/decode, detect, crop, classify (also per face), track, and
sinks (the log sink, writing to /dev/null — GPIO and snapshots are left out, they need
hardware or a disk policy). Also reported: frames/s, peak RSS, and CPU use (100% = one
core busy).

Then each detector (``haar``, ``blazeface`` and ``yunet``, with its ``[detector.NAME]`` table
from the config) is timed alone on the measured frames resized to 640x480
(``edge.measure.detection.frame_ms``), so the detectors can be compared whichever one the
pipeline runs.

The seed-style loop it is compared with needs TensorFlow, which the Pi never has:
``python -m train.seed_loop --bench FILE`` times it on the same frames and adds the
speed-up to this command's JSON (``make bench`` runs both).

A folder or video file source is replayed from the start when it runs out. A benchmark,
not a test: it prints what it measured and asserts nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import resource
import statistics
import time
from pathlib import Path

from edge.measure.detection import frame_ms
from edge.pipeline import STAGES, Pipeline
from edge.plugins import plugins
from edge.shared.params import ParamError
from edge.sinks import SafeSink
from edge.sinks.log import LogSink
from edge.sources import make_source

log = logging.getLogger(__name__)

BASELINE_FRAMES = 20   # frames kept for the seed-style loop: it is slow, the ratio settles fast


def _summary(values: list[float]) -> dict:
    ms = sorted(v * 1000.0 for v in values)
    if not ms:
        return {"mean_ms": None, "p50_ms": None, "p95_ms": None, "n": 0}
    return {"mean_ms": statistics.fmean(ms), "p50_ms": statistics.median(ms),
            "p95_ms": ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))], "n": len(ms)}


def measure(config, frames: int = 100, warmup: int = 10) -> tuple[dict, list]:
    """Run the pipeline; return the results and the measured frames' images (for the
    detectors and the seed-style loop)."""
    source = make_source(dataclasses.replace(config.source, loop=True))
    devnull = open(os.devnull, "w")
    pipeline = Pipeline(config, source=source, sinks=[SafeSink("log", lambda: LogSink(devnull))])
    samples = {name: [] for name in ("capture", *STAGES, "classify_per_face", "frame")}
    faces, kept = [], []
    try:
        source.open()
        for i in range(warmup + frames):
            t0 = time.perf_counter()
            if i == warmup:
                cpu0, wall0 = os.times(), time.perf_counter()
            frame = source.read()
            t1 = time.perf_counter()
            result = pipeline.process(frame)
            t2 = time.perf_counter()
            if i < warmup or result is None:   # a refused frame is counted, not timed
                continue
            samples["capture"].append(t1 - t0)
            samples["frame"].append(t2 - t0)
            timings = pipeline.stats.timings
            for stage in STAGES:
                samples[stage].append(timings[stage])
            n = timings["faces"]
            faces.append(n)
            if n:
                samples["classify_per_face"].append(timings["classify"] / n)
            if len(kept) < BASELINE_FRAMES:
                kept.append(frame.image)
        wall = time.perf_counter() - wall0
        cpu1 = os.times()
    finally:
        pipeline.close()
        devnull.close()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    shape = kept[0].shape if kept else (0, 0)
    result = {
        "frames": frames, "warmup": warmup, "frame_size": [int(shape[1]), int(shape[0])],
        "faces_per_frame": statistics.fmean(faces) if faces else 0.0,
        "source": dataclasses.asdict(config.source), "detector": config.detector.name,
        "detector_params": dataclasses.asdict(config.detector.params),
        "model": str(pipeline.classifier.model.path),
        "format": pipeline.classifier.model.format, "runtime": pipeline.classifier.runtime,
        "threads": config.model.threads, "refused_frames": pipeline.stats.refused,
        "stages": {name: _summary(values) for name, values in samples.items()},
        "fps": frames / wall if wall > 0 else None,
        "cpu_percent": 100.0 * cpu / wall if wall > 0 else None,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    return result, kept


DETECT_SIZE = (640, 480)


def detector_times(config, images: list) -> dict:
    """Mean ``detect`` ms of each detector on ``images`` resized to 640x480.

    Each detector gets its own parameter table from the config. A table the detector
    rejects (only the configured one is checked at start-up) is reported, not raised.
    """
    times = {}
    for name, found in plugins("detector").items():
        params = getattr(config.detector, name)
        entry = {"params": dataclasses.asdict(params)}
        if not images:
            entry["skipped"] = "no frames measured"
        else:
            try:
                detector = found.make(params)
            except (ParamError, ImportError) as exc:
                entry["skipped"] = f"detector.{name}: {exc}"
            else:
                entry["ms"] = frame_ms(detector, images, DETECT_SIZE)
                entry["frames"] = len(images)
        times[name] = entry
    return times


def table(r: dict) -> str:
    w, h = r["frame_size"]
    lines = [f"{r['frames']} frames of {w}x{h} after {r['warmup']} warm-up, "
             f"{r['faces_per_frame']:.2f} faces/frame; {r['detector']} detector, "
             f"{Path(r['model']).name} ({r['format']}, {r['runtime']}, {r['threads']} threads)",
             "", f"{'stage':<22}{'mean ms':>10}{'p50 ms':>10}{'p95 ms':>10}"]
    names = {"capture": "capture/decode", "classify_per_face": "classify, per face",
             "sinks": "sinks (log)", "frame": "whole frame"}
    for stage, s in r["stages"].items():
        cells = "".join(f"{s[k]:>10.2f}" if s[k] is not None else f"{'-':>10}"
                        for k in ("mean_ms", "p50_ms", "p95_ms"))
        lines.append(f"{names.get(stage, stage):<22}{cells}")
    lines += ["", f"frames/s      {r['fps']:.1f}", f"CPU           {r['cpu_percent']:.0f}% "
              "(100% = one core)", f"peak RSS      {r['peak_rss_mib']:.0f} MiB"]
    detectors = r.get("detectors")
    if detectors:
        size = "x".join(str(v) for v in DETECT_SIZE)
        lines += ["", f"{'detection alone at ' + size:<30}{'mean ms':>10}  [detector.NAME] table"]
        for name, d in detectors.items():
            mark = " (configured)" if name == r["detector"] else ""
            if "skipped" in d:
                lines.append(f"{name + mark:<30}{'-':>10}  skipped: {d['skipped']}")
            else:
                params = ", ".join(f"{k}={v}" for k, v in d["params"].items()) or "defaults"
                lines.append(f"{name + mark:<30}{d['ms']:>10.2f}  {params}")
    return "\n".join(lines)


def main(config, args) -> int:
    result, images = measure(config, args.frames, args.warmup)
    result["detectors"] = detector_times(config, images)
    result["baseline_frames"] = len(images)
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0
