"""``python -m edge demo``: the whole pipeline on sample frames, with no camera and no data.

The frames are built from ``skimage.data.astronaut()`` (Eileen Collins, public domain):
one plain, one with a surgical-style mask drawn over her nose and mouth. A short
sequence — masked, then plain, then masked again — runs through detection,
classification and tracking, and the demo writes annotated frames plus the event log
(a ``violation`` when the mask comes off, a ``clear`` after it is back on).

scikit-image is a workstation (dev) dependency only; the Pi never runs this.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from edge.config import Config
from edge.pipeline import Pipeline, with_source
from edge.sinks import SafeSink, make_sinks
from edge.sinks.log import LogSink

log = logging.getLogger(__name__)

SIZE = (640, 480)
# The astronaut's face in the 512x512 original, as OpenCV's Haar cascade finds it.
FACE = (177, 67, 93, 93)
MASK_RGB = (120, 175, 230)     # a surgical-mask blue
SEQUENCE = (("masked", 6), ("plain", 8), ("masked", 10))
# The 24 frames last 2.4 s at 10 frames/s: with the 5 s default cooldown a violation could
# never clear before they end, so the demo (and `make run` on its frames) uses this.
COOLDOWN = 0.5
RUN_CONFIG = f"""\
# Written by `python -m edge demo --frames-only` for `make run` on the demo frames. They last
# 2.4 s at 10 frames/s, so the tracker's cooldown is {COOLDOWN} s instead of 5 s: the violation
# raised when the mask comes off clears after it is back on, before the frames end.
[tracker]
cooldown = {COOLDOWN}
"""


def _astronaut() -> np.ndarray:
    try:
        from skimage import data
    except ImportError as exc:
        raise SystemExit("the demo builds its frames with scikit-image, a workstation "
                         "dependency: pip install -e '.[dev]' (or make setup)") from exc
    return data.astronaut()


def draw_mask(image: np.ndarray, face: tuple[int, int, int, int]) -> np.ndarray:
    """A copy of ``image`` with a mask over the lower face of ``face`` (x, y, w, h)."""
    out = image.copy()
    x, y, w, h = face
    top, bottom = y + 0.60 * h, y + 1.02 * h
    left, right = x + 0.10 * w, x + 0.90 * w
    outline = np.array([(left, top), (right, top), (right - 0.04 * w, bottom - 0.12 * h),
                        (x + 0.5 * w, bottom), (left + 0.04 * w, bottom - 0.12 * h)],
                       dtype=np.int32)
    cv2.fillPoly(out, [outline], MASK_RGB, cv2.LINE_AA)
    pleat = tuple(int(c * 0.85) for c in MASK_RGB)
    for frac in (0.25, 0.45, 0.65):
        yy = int(top + frac * (bottom - top))
        cv2.line(out, (int(left + 0.03 * w), yy), (int(right - 0.03 * w), yy), pleat, 1,
                 cv2.LINE_AA)
    # Ear loops, from the mask's corners towards the ears.
    for side, edge in ((-1, left), (1, right)):
        cv2.line(out, (int(edge), int(top)), (int(edge + side * 0.08 * w), int(y + 0.38 * h)),
                 (235, 235, 235), 2, cv2.LINE_AA)
    return out


def sample_frames(size: tuple[int, int] = SIZE) -> dict[str, np.ndarray]:
    """``{"plain": rgb, "masked": rgb}`` at ``size`` (width, height), 4:3 crops of the photo."""
    photo = _astronaut()
    masked = draw_mask(photo, FACE)
    # The top 512x384 of the photo is 4:3 and holds the face; scale it to the frame size.
    return {name: cv2.resize(img[:384], size, interpolation=cv2.INTER_AREA)
            for name, img in (("plain", photo), ("masked", masked))}


def write_frames(folder: Path, sequence=SEQUENCE, size: tuple[int, int] = SIZE) -> list[Path]:
    """Write the demo sequence as numbered PNGs (lossless: the pixels stay as drawn)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    frames = sample_frames(size)
    paths, index = [], 0
    for name, count in sequence:
        for _ in range(count):
            path = folder / f"{index:03d}-{name}.png"
            cv2.imwrite(str(path), cv2.cvtColor(frames[name], cv2.COLOR_RGB2BGR))
            paths.append(path)
            index += 1
    return paths


def demo_config(config: Config, frames: Path) -> Config:
    """The config for the demo: the frame folder at 10 frames/s, a short cooldown, no GPIO."""
    config = with_source(config, kind="images", path=str(frames), fps=10.0)
    sinks = dataclasses.replace(
        config.sinks, gpio=dataclasses.replace(config.sinks.gpio, enabled=False),
        snapshot=dataclasses.replace(config.sinks.snapshot, enabled=False))
    tracker = dataclasses.replace(config.tracker, cooldown=COOLDOWN)
    return dataclasses.replace(config, sinks=sinks, tracker=tracker)


def run_demo(config: Config, out: Path, frames_only: bool = False) -> int:
    """Write the frames under ``out/frames`` and, for ``make run``, ``out/run.toml``; unless
    ``frames_only``, run the pipeline on them, writing ``out/annotated/`` and
    ``out/events.jsonl`` (the events also go to stdout)."""
    frames = out / "frames"
    write_frames(frames)
    (out / "run.toml").write_text(RUN_CONFIG)
    print(f"demo frames: {frames}/", file=sys.stderr)
    if frames_only:
        return 0
    config = demo_config(config, frames)
    annotated = out / "annotated"
    with open(out / "events.jsonl", "w") as events:
        sinks = make_sinks(config.sinks, annotate=annotated)
        sinks.append(SafeSink("events.jsonl", lambda: LogSink(events)))
        pipeline = Pipeline(config, sinks=sinks)
        count = pipeline.run()
    print(f"demo: {count} frames, annotated in {annotated}/, events in {out / 'events.jsonl'}",
          file=sys.stderr)
    return 0
