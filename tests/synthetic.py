"""A deterministic, learnable image task for tests: horizontal versus vertical bars.

Random-init networks give ~0.5 everywhere and prove nothing; a model trained on this
task is confident and right, so parity between Keras and TFLite means something.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("horizontal", "vertical")


def bars(orientation: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """An RGB uint8 image of random-coloured bars with noise, in one orientation."""
    period = int(rng.integers(6, 12))
    phase = int(rng.integers(0, period))
    wave = ((np.arange(size) + phase) % period) < period // 2
    mask = np.tile(wave[:, None], (1, size)) if orientation == "horizontal" else np.tile(wave[None, :], (size, 1))
    fg, bg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    while np.abs(fg.astype(int) - bg).sum() < 200:  # keep the bars visible
        fg = rng.integers(0, 256, 3)
    image = np.where(mask[..., None], fg, bg).astype(np.float32)
    image += rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_class_folders(root: Path, per_class: int, size: int = 64, seed: int = 0) -> Path:
    """``root/<class>/<n>.png`` for both classes; returns ``root``."""
    rng = np.random.default_rng(seed)
    for label in CLASSES:
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            Image.fromarray(bars(label, size, rng)).save(folder / f"{n:03d}.png")
    return root


# The demo astronaut's face in a 400x300 photo (the 640x480 demo frame scaled by 0.625), as an
# annotator would box it: YuNet's box overlaps it at IoU ~0.8.
VOC_SIZE = (400, 300)
VOC_FACE = (144, 53, 69, 88)
VOC_SMALL = (10, 10, 20, 20)   # an annotated face too small to count (< 32 px)


def write_voc(root: Path, photos: int = 6) -> Path:
    """A Pascal-VOC folder of ``photos`` 400x300 photos of the demo astronaut, alternately
    bare (without_mask) and masked (with_mask), each also with one tiny annotated face."""
    import cv2

    from edge.samples import sample_frames

    frames = sample_frames()
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for n in range(photos):
        kind, label = (("plain", "without_mask"), ("masked", "with_mask"))[n % 2]
        photo = cv2.resize(frames[kind], VOC_SIZE, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(root / "images" / f"photo{n}.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
        objects = "".join(
            f"<object><name>{name}</name><bndbox><xmin>{x}</xmin><ymin>{y}</ymin>"
            f"<xmax>{x + w}</xmax><ymax>{y + h}</ymax></bndbox></object>"
            for name, (x, y, w, h) in ((label, VOC_FACE), ("with_mask", VOC_SMALL)))
        (root / "annotations" / f"photo{n}.xml").write_text(
            f"<annotation><filename>photo{n}.jpg</filename><size><width>{VOC_SIZE[0]}</width>"
            f"<height>{VOC_SIZE[1]}</height><depth>3</depth></size>{objects}</annotation>")
    return root
