"""Doorway scenarios, with the motion gate on and off: what an empty door, a poster and a
passer-by cost the loop.

    python -m edge.measure.scenarios [--frames 1000] [--json FILE]

Built from the demo material (``edge.samples``) at 640x480, 10 frames/s on the frames'
clock, each frame with a camera's sensor noise (so that "still" is never bit-identical):

- *empty door*: the sample photo with the person painted out (``cv2.inpaint``), no face;
- *poster*: the same, with the astronaut's bare face pasted in one place, for good;
- *passer-by*: her bare face walks in from the left, stops in the doorway, walks out to the
  right, and the door stays empty long enough for the violation to clear; again and again.

Each runs through the real pipeline (the log sink to /dev/null) as fast as it goes, once
with ``[motion] enabled`` and once without. Reported per scenario and gate: CPU seconds per
1,000 frames (``resource.getrusage`` around each frame, so making the frames and any idle
wait don't count), frames/s, the violation and clear events, the frames from a face's entry
to its first judgement, and the gate's own ms per frame. A benchmark: it prints what it
measured and asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edge.config import load_config, with_overrides
from edge.pipeline import Pipeline
from edge.samples import FACE, SIZE, _astronaut
from edge.sinks import SafeSink
from edge.sinks.log import LogSink
from edge.sources import Frame

FPS = 10.0
# passer-by: frames walking in, standing, walking out, and the empty door after.
ENTER, STAND, LEAVE, EMPTY = 15, 40, 15, 80


def material() -> tuple[np.ndarray, np.ndarray]:
    """The empty door (the photo with the person painted out) and her head, at 640x480."""
    photo = cv2.resize(_astronaut()[:384], SIZE, interpolation=cv2.INTER_AREA)
    scale = SIZE[0] / 512
    x, y, w, h = (int(v * scale) for v in FACE)
    mask = np.zeros(photo.shape[:2], np.uint8)
    cv2.ellipse(mask, (x + w // 2, y + h // 2 + h // 4), (int(w * 0.95), int(h * 1.3)), 0, 0,
                360, 255, -1)
    cv2.rectangle(mask, (x - w // 2, y + h), (x + w + w // 2, SIZE[1]), 255, -1)
    door = cv2.inpaint(photo, mask, 9, cv2.INPAINT_TELEA)
    head = photo[max(0, y - h // 3):y + h + h // 3, max(0, x - w // 3):x + w + w // 3].copy()
    return door, head


def frames(kind: str, count: int, seed: int = 0):
    """``(frame, face_in_view)`` for the scenario ``kind``."""
    door, head = material()
    rng = np.random.default_rng(seed)
    hh, hw = head.shape[:2]
    top = 60
    stand_x = (SIZE[0] - hw) // 2
    cycle = ENTER + STAND + LEAVE + EMPTY
    for i in range(count):
        frame = door.copy()
        x = None
        if kind == "poster":
            x = stand_x
        elif kind == "passer-by":
            step = i % cycle
            if step < ENTER:
                x = int(-hw + (stand_x + hw) * (step + 1) / ENTER)
            elif step < ENTER + STAND:
                x = stand_x
            elif step < ENTER + STAND + LEAVE:
                x = int(stand_x + (SIZE[0] - stand_x) * (step - ENTER - STAND + 1) / LEAVE)
        if x is not None:
            x0, x1 = max(0, x), min(SIZE[0], x + hw)
            if x1 > x0:
                frame[top:top + hh, x0:x1] = head[:, x0 - x:x1 - x]
        noisy = frame + rng.normal(0, 2.0, frame.shape)
        visible = x is not None and x >= 0 and x + hw <= SIZE[0]
        yield np.clip(noisy, 0, 255).astype(np.uint8), visible


def run(config, kind: str, count: int) -> dict:
    devnull = open(os.devnull, "w")
    pipeline = Pipeline(config, sinks=[SafeSink("log", lambda: LogSink(devnull))])
    cpu = wall = 0.0
    gate_ms, events, latencies = [], {"violation": 0, "clear": 0}, []
    entered = None
    try:
        for i, (image, visible) in enumerate(frames(kind, count)):
            before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            result = pipeline.process(Frame(image, i / FPS))
            after = resource.getrusage(resource.RUSAGE_SELF)
            wall += time.perf_counter() - start
            cpu += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            gate_ms.append(1000 * pipeline.stats.timings.get("motion", 0.0))
            for event in result.events:
                events[event.kind] += 1
            if visible and entered is None:
                entered = i                        # in view: the clock starts
            if entered is not None and entered >= 0 and any(
                    t.unjudged is None and t.label for t in result.tracks):
                latencies.append(i - entered)
                entered = -1                       # judged: wait until it has left
            if not visible and entered == -1:
                entered = None
    finally:
        pipeline.close()
        devnull.close()
    return {"frames": count, "cpu_s_per_1000": round(1000 * cpu / count, 2),
            "fps": round(count / wall, 1), "events": events,
            "entry_to_judgement_frames": latencies,
            "gate_ms_per_frame": round(statistics.fmean(gate_ms), 3) if gate_ms else None}


def measure(config, count: int) -> dict:
    results = {}
    for kind in ("empty door", "poster", "passer-by"):
        for gate in (True, False):
            gated = dataclasses.replace(config, motion=dataclasses.replace(config.motion,
                                                                           enabled=gate))
            results[f"{kind}, gate {'on' if gate else 'off'}"] = run(gated, kind, count)
    return results


def table(results: dict) -> str:
    lines = [f"{'scenario':<24}{'CPU s/1000':>11}{'frames/s':>10}{'violations':>11}"
             f"{'clears':>8}{'entry→judged':>14}{'gate ms':>9}"]
    for name, r in results.items():
        lat = r["entry_to_judgement_frames"]
        latency = f"{max(lat)} max" if lat else "-"
        gate = f"{r['gate_ms_per_frame']:.2f}" if "gate on" in name else "-"
        lines.append(f"{name:<24}{r['cpu_s_per_1000']:>11.2f}{r['fps']:>10.1f}"
                     f"{r['events']['violation']:>11}{r['events']['clear']:>8}{latency:>14}"
                     f"{gate:>9}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge.measure.scenarios", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=1000, help="frames per scenario and gate")
    p.add_argument("--config", type=Path, help="TOML config laid over the defaults")
    p.add_argument("--model", help="model folder with card.json (default: models/default)")
    p.add_argument("--json", type=Path, help="write the results as JSON")
    args = p.parse_args(argv)
    config = with_overrides(load_config(args.config), model=args.model)
    results = measure(config, args.frames)
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
