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
