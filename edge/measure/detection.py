"""Detection-only evaluation on Pascal-VOC scenes: recall and precision
(``facedata.scoring.score``) and time per frame."""

from __future__ import annotations

import time
from collections.abc import Sequence

import cv2
import numpy as np

from edge.detectors import FrameRefused
from edge.shared.images import read_rgb
from facedata.scoring import score
from facedata.voc import Scene


def evaluate_detector(detector, scenes: Sequence[Scene], min_face: int = 32,
                      frames: Sequence[np.ndarray] | None = None) -> dict:
    """Run ``detector.detect`` on every scene and ``score`` it.

    :param frames: the scenes' images already read with ``read_rgb``, to save re-reading
        them when evaluating many detectors; read from disk when omitted.
    :returns: ``{"scenes", "min_face", "ms_per_frame", "all": {...}, "large": {...}}`` where
        each of ``all``/``large`` holds ``faces, tp, fp, recall, precision``.
        ``ms_per_frame`` times ``detect`` alone, on the scenes at their own size.
    """
    predictions = []
    seconds = 0.0
    for k, scene in enumerate(scenes):
        frame = frames[k] if frames is not None else read_rgb(scene.image)
        start = time.perf_counter()
        try:
            faces = detector.detect(frame)
        except FrameRefused:       # as the runtime does: the frame is skipped, its faces missed
            faces = []
        seconds += time.perf_counter() - start
        predictions.append([face.box for face in faces])
    return {"scenes": len(scenes), "min_face": min_face,
            "ms_per_frame": 1000 * seconds / max(len(scenes), 1),
            **score(predictions, scenes, min_face)}


def frame_ms(detector, frames: Sequence[np.ndarray], size: tuple[int, int] = (640, 480)) -> float:
    """Mean ms of ``detect`` on ``frames`` resized to ``size`` (width, height).

    Real pictures rather than a blank frame, because Haar's time depends on the content.
    The first call is a warm-up and not timed (the interpreter allocates on first run).
    """
    resized = [cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames]
    detector.detect(resized[0])
    start = time.perf_counter()
    for frame in resized:
        detector.detect(frame)
    return 1000 * (time.perf_counter() - start) / len(resized)


def format_table(results: dict[str, dict], ms_640: dict[str, float] | None = None) -> str:
    """Results by detector name as a text table; ``ms_640`` adds a ms-per-640x480 column."""
    if not results:
        return "(no results)"
    min_face = next(iter(results.values()))["min_face"]
    head = (f"{'detector':<28} {'recall≥' + str(min_face):>10} {'prec≥' + str(min_face):>8} "
            f"{'recall':>7} {'prec':>6} {'ms/scene':>9}")
    if ms_640 is not None:
        head += f" {'ms@640x480':>11}"
    lines = [head]
    for name, r in results.items():
        line = (f"{name:<28} {r['large']['recall']:>10.3f} {r['large']['precision']:>8.3f} "
                f"{r['all']['recall']:>7.3f} {r['all']['precision']:>6.3f} "
                f"{r['ms_per_frame']:>9.1f}")
        if ms_640 is not None:
            line += f" {ms_640.get(name, float('nan')):>11.1f}"
        lines.append(line)
    return "\n".join(lines)
