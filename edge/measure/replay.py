"""``python -m edge.measure.replay``: every number the runtime computes on some frames, as JSON.

    python -m edge.measure.replay --frames DIR --json FILE [--model M] [--fps 10]

For two machines to prove they compute the same thing (an x86 workstation and an arm64
Pi, or its emulation): per frame, the boxes and scores of *each* detector the config
offers (with its own table), the class probabilities of the model for each face the
configured detector found, and the events the tracker raises — on a simulated clock
(frame ``i`` at ``i / fps`` seconds), because its cooldown is in seconds and an emulated
Pi runs a hundred times slower than a real one. ``--compare A B`` prints every difference
between two such files and exits 1 if there is any: boxes, labels, tracks and events must
be equal, numbers within ``TOLERANCE`` — float32 arithmetic rounds differently on ARM and
x86 (a detector score moves in its fifth decimal), while an int8 model's probabilities
come in steps of 1/256, so they must still match exactly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge.config import load_config, with_overrides
from edge.plugins import plugins
from edge.shared.crop import crop_face
from edge.shared.images import read_rgb
from edge.sources.images import EXTENSIONS

TOLERANCE = 1e-4


def replay(config, frames_dir: Path, fps: float = 10.0) -> dict:
    from edge.pipeline import build_classifier, build_tracker

    paths = sorted(p for p in Path(frames_dir).iterdir() if p.suffix.lower() in EXTENSIONS)
    images = [read_rgb(p) for p in paths]
    detections = {}
    for name, found in plugins("detector").items():
        detector = found.make(getattr(config.detector, name))
        detections[name] = [[[*face.box, round(face.score, 6)] for face in detector.detect(im)]
                            for im in images]
    classifier = build_classifier(config)
    tracker = build_tracker(config, classifier.model)
    probabilities, events = [], []
    for i, image in enumerate(images):
        boxes = [tuple(d[:4]) for d in detections[config.detector.name][i]]
        probs = classifier.classify([crop_face(image, box, config.model.margin) for box in boxes])
        probabilities.append([[float(p) for p in row] for row in np.asarray(probs)])
        for event in tracker.update(i / fps, boxes, probs):
            events.append({"frame": i, "event": event.kind, "track": event.track_id,
                           "label": event.label, "confidence": round(event.confidence, 4),
                           "box": [int(v) for v in event.box]})
    return {"frames": [p.name for p in paths], "detector": config.detector.name,
            "model": classifier.model.path.name, "format": classifier.model.format,
            "runtime": classifier.runtime, "detections": detections,
            "probabilities": probabilities, "events": events}


def differences(a: dict, b: dict, where: str = "") -> list[str]:
    """Every place where two replays (or parts of them) differ, as readable lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b)):
            if key == "runtime":
                continue  # which LiteRT build ran is not a result
            if key not in a or key not in b:
                found.append(f"{where}{key}: only in {'the first' if key in a else 'the second'}")
            else:
                found += differences(a[key], b[key], f"{where}{key}.")
        return found
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where.rstrip('.')}: {len(a)} items against {len(b)}"]
        return [line for i, (x, y) in enumerate(zip(a, b))
                for line in differences(x, y, f"{where}{i}.")]
    if isinstance(a, float) and isinstance(b, float) and abs(a - b) <= TOLERANCE:
        return []
    return [] if a == b else [f"{where.rstrip('.')}: {a!r} != {b!r}"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge.measure.replay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=Path, help="a folder of frames, replayed in name order")
    p.add_argument("--json", type=Path, help="where to write the replay")
    p.add_argument("--config", type=Path)
    p.add_argument("--model")
    p.add_argument("--fps", type=float, default=10.0, help="the simulated frame rate")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"),
                   help="compare two replay files instead")
    args = p.parse_args(argv)
    if args.compare:
        a, b = (json.loads(path.read_text()) for path in args.compare)
        found = differences(a, b)
        for line in found:
            print(f"DIFFERENT {line}")
        frames = len(a.get("frames", []))
        print(f"{frames} frames, {len(plugins('detector'))} detectors, {len(a.get('events', []))} events: "
              f"{len(found)} differences")
        return 1 if found else 0
    if not args.frames or not args.json:
        p.error("give --frames and --json (or --compare A B)")
    config = with_overrides(load_config(args.config), model=args.model)
    result = replay(config, args.frames, args.fps)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"replayed {len(result['frames'])} frames into {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
