"""Every face detector side by side on VOC photos: recall, precision and time, in one run.

    python -m edge.measure.compare_detectors --scenes ../shared/data/scenes \\
        --split splits/scenes.json --json build/detectors.json

Rows: YuNet n and s at several ``detect_width`` and ``score`` settings, BlazeFace full and
short, and Haar at its tuned defaults (each otherwise at its own defaults). Each photo is
shown in a 640x480 frame at its own pixel size (``facedata.voc.in_frame``), so
``detect_width`` and BlazeFace's letterbox shrink faces as much as they would on a
640x480 camera. Figures as in ``edge.measure.detection``: IoU >= 0.5, for all faces and for
faces >= ``--min-face`` px. With ``--split``, one table per part: choose a setting on the
``train`` photos, and read what it does on photos the choice never saw in ``eval``.

Time: the mean ``detect`` ms per 640x480 frame (real photos resized to it, so Haar's
content-dependent time is fair), with ``--threads`` for OpenCV and LiteRT alike.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import cv2

from edge.detectors import make_detector
from edge.measure.detection import evaluate_detector, format_table, frame_ms
from edge.shared.images import read_rgb
from facedata import DataError
from facedata.voc import PARTS, framed, load_scenes, parse_frame_size, select_part

YUNET_GRID = {"model": ("n", "s"), "detect_width": (320, 480, 640), "score": (0.5, 0.6, 0.7, 0.8)}
TIMING_FRAMES = 40


def candidates(threads: int) -> dict[str, tuple[str, dict]]:
    """Row name → (detector name, its parameters)."""
    rows = {}
    for values in itertools.product(*YUNET_GRID.values()):
        params = dict(zip(YUNET_GRID, values))
        rows[f"yunet {params['model']} w{params['detect_width']} s{params['score']}"] = ("yunet", params)
    for model in ("full", "short"):
        rows[f"blazeface {model}"] = ("blazeface", {"model": model, "threads": threads})
    rows["haar tuned"] = ("haar", {})
    return rows


def compare(scenes_dir: Path, split: Path | None, frame: tuple[int, int] | None,
            min_face: int = 32, threads: int = 2) -> dict:
    """Figures of every candidate on each part (or on all photos), and ms per 640x480 frame."""
    cv2.setNumThreads(threads)
    scenes = load_scenes(scenes_dir)
    parts = ({part: select_part(scenes, split, part) for part in PARTS} if split
             else {"all": scenes})
    # Every photo read and framed once; the parts pick from it.
    placed = {scene.image: (scene, image) for scene, image in framed(scenes, frame)}
    # Timed on whole photos stretched to 640x480, not on the black-bordered frames: Haar's
    # time depends on the content.
    timing = [cv2.resize(read_rgb(scene.image), (640, 480), interpolation=cv2.INTER_LINEAR)
              for scene, _ in list(placed.values())[:TIMING_FRAMES]]
    rows = candidates(threads)
    results = {part: {} for part in parts}
    ms_640 = {}
    for name, (kind, params) in rows.items():
        detector = make_detector(kind, **params)
        for part, chosen in parts.items():
            pairs = [placed[s.image] for s in chosen if s.image in placed]
            results[part][name] = evaluate_detector(detector, [p[0] for p in pairs], min_face,
                                                    [p[1] for p in pairs])
        ms_640[name] = frame_ms(detector, timing)
        print(f"{name}: {ms_640[name]:.1f} ms/frame", file=sys.stderr, flush=True)
    return {"scenes": str(scenes_dir), "split": str(split) if split else None,
            "frame": list(frame) if frame else "native", "min_face": min_face,
            "threads": threads, "rows": {name: {"detector": kind, "params": params}
                                         for name, (kind, params) in rows.items()},
            "results": results, "ms_640x480": ms_640}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge.measure.compare_detectors",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenes", required=True, type=Path, help="VOC folder: images/, annotations/")
    p.add_argument("--split", type=Path, help="a photo split file: one table per part")
    p.add_argument("--frame", type=parse_frame_size, default="640x480", metavar="WxH",
                   help="show each photo in a frame of this size (default 640x480); native: as is")
    p.add_argument("--min-face", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="OpenCV and LiteRT threads")
    p.add_argument("--json", type=Path, help="also write every figure to this file")
    args = p.parse_args(argv)
    try:
        summary = compare(args.scenes, args.split, args.frame, args.min_face, args.threads)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for part, results in summary["results"].items():
        photos = next(iter(results.values()))["scenes"]
        print(f"\n{part}: {photos} photos; ms@640x480 at {args.threads} threads")
        print(format_table(results, summary["ms_640x480"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
