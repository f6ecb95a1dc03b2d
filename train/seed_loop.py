"""The seed project's loop, timed on the frames ``edge bench`` timed: the speed-up.

    python -m edge bench --source DIR --json build/bench.json
    python -m train.seed_loop --bench build/bench.json

The seed ran Haar on the full-size frame with its 1.1 / 4 settings, then Keras
``model.predict`` once per face. This runs that loop on the first frames of the bench's own
source (``BASELINE_FRAMES``), with the bench's model folder's own Keras model (``*.keras``)
where there is one, else the seed's network itself: InceptionV3 at the seed's 224 px with
the seed's head and random weights (time doesn't depend on the weights), as the bundled
model ships no ``.keras``. It says which it timed, and writes the baseline and the speed-up
(seed-style ms per frame over the pipeline's, capture excluded from both) into the bench
JSON. It lives here, not in ``edge``, because it needs TensorFlow, which the Pi never has.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from edge.config import load_config, with_overrides
from edge.detectors.haar import SEED_HAAR, HaarDetector
from edge.shared.card import resolve_model
from edge.shared.crop import crop_face, resize_face
from edge.sources import make_source

BASELINE_FRAMES = 20   # it is slow, and the ratio settles fast
SEED_INPUT_SIZE = 224  # the seed's InceptionV3 input (train's default)


def _keras_model(model_file) -> Path | None:
    folder = model_file.path.parent
    named = model_file.card.get("keras")
    if isinstance(named, str) and (folder / named).is_file():
        return folder / named
    return next(iter(sorted(folder.glob("*.keras"))), None)


def frames_of(config, count: int) -> list[np.ndarray]:
    source = make_source(dataclasses.replace(config.source, loop=True))
    source.open()
    try:
        return [source.read().image for _ in range(count)]
    finally:
        source.close()


def seed_loop(model_file, images: list, margin: float) -> dict:
    """The seed's loop on ``images``: full-frame Haar (1.1, 4), Keras predict per face."""
    import keras

    keras_path = _keras_model(model_file)
    if keras_path is not None:
        model = keras.models.load_model(keras_path, compile=False)
        size, network = model_file.input_size, str(keras_path)
    else:
        from train.model import build_model

        size = SEED_INPUT_SIZE
        model = build_model(len(model_file.classes), size, "inception_v3", weights=None)
        network = (f"the seed's network (InceptionV3 {size} px, random weights: no *.keras "
                   f"in {model_file.path.parent})")
    detector = HaarDetector(SEED_HAAR)

    def one_frame(image):
        for face in detector.detect(image):
            crop = resize_face(crop_face(image, face.box, margin), size)
            model.predict(crop[np.newaxis].astype(np.float32), verbose=0)

    for image in images[:2]:
        one_frame(image)  # warm-up: Keras traces its predict function on the first call
    times = []
    for image in images:
        t0 = time.perf_counter()
        one_frame(image)
        times.append(time.perf_counter() - t0)
    ms = [t * 1000 for t in times]
    return {"keras_model": network, "frames": len(images), "mean_ms": statistics.fmean(ms),
            "p50_ms": statistics.median(ms), "fps": len(times) / sum(times)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.seed_loop", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", type=Path, required=True,
                   help="the JSON of python -m edge bench (read, and the speed-up added)")
    args = p.parse_args(argv)
    try:
        bench = json.loads(args.bench.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: {args.bench}: run python -m edge bench --json {args.bench} first ({exc})",
              file=sys.stderr)
        return 2
    config = load_config(None)
    source = bench["source"]
    config = with_overrides(config, model=bench["model"])
    config = dataclasses.replace(config, source=dataclasses.replace(
        config.source, kind=source["kind"], **{source["kind"]: type(
            getattr(config.source, source["kind"]))(**source[source["kind"]])}))
    images = frames_of(config, min(BASELINE_FRAMES, bench["frames"]))
    base = seed_loop(resolve_model(config.model_path, None), images, config.model.margin)
    ours = bench["stages"]["frame"]["mean_ms"] - bench["stages"]["capture"]["mean_ms"]
    bench["baseline"], bench["speedup"] = base, base["mean_ms"] / ours
    args.bench.write_text(json.dumps(bench, indent=2) + "\n")
    print(f"seed-style    {base['mean_ms']:.1f} ms/frame without capture ({base['fps']:.1f} "
          f"frames/s) on {base['frames']} of the same frames,\n"
          f"              Keras: {base['keras_model']}\n"
          f"speed-up      {bench['speedup']:.1f}x (seed-style ms/frame ÷ this pipeline's "
          f"{ours:.1f}, capture excluded from both)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
