"""A folder of images, read in name order: for demos, evaluation and benchmarks.

A file over ``BIG_FILE_BYTES`` may be a photo far bigger than a camera frame (8000x6000 is
144 MB decoded). It is first decoded at an eighth of its size to learn how big it is, then,
if it is bigger than ``MAX_FRAME_SIDE``, at the largest reduction that keeps it at least
that big (a JPEG decodes straight to 1/2, 1/4 or 1/8 size), so it never costs its full
size in memory.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2

from edge.sources import MAX_FRAME_SIDE, Frame, SourceError, bgr_to_frame_rgb

log = logging.getLogger(__name__)

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
BIG_FILE_BYTES = 2_000_000
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}


def read_bgr(path: Path):
    """``cv2.imread`` in colour, decoded no bigger than it needs to be; None if unreadable."""
    if path.stat().st_size > BIG_FILE_BYTES:
        probe = cv2.imread(str(path), _REDUCED[8])
        side = 8 * max(probe.shape[:2]) if probe is not None else 0
        if side > MAX_FRAME_SIDE:
            factor = max(f for f in (1, 2, 4, 8) if side / f >= MAX_FRAME_SIDE)
            if factor == 8:
                return probe
            return cv2.imread(str(path), _REDUCED.get(factor, cv2.IMREAD_COLOR))
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


class ImageFolderSource:
    live = False

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self._files: list[Path] = []
        self._next = 0
        self._read = 0   # frames delivered since open()

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder} is not a folder of images")
        self._files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in EXTENSIONS)
        self._next = 0
        self._read = 0
        if not self._files:
            raise SourceError(f"{self.folder} holds no images ({', '.join(sorted(EXTENSIONS))})")

    def read(self) -> Frame | None:
        while self._next < len(self._files):
            path = self._files[self._next]
            self._next += 1
            bgr = read_bgr(path)
            if bgr is None:
                # One unreadable file in a folder is not worth stopping for.
                log.warning("skipping %s: not a readable image", path)
                continue
            self._read += 1
            return Frame(bgr_to_frame_rgb(bgr), time.monotonic(), path.name)
        if not self._read:
            raise SourceError(f"none of the {len(self._files)} image files in {self.folder} "
                              "could be read")
        return None

    def close(self) -> None:
        self._files = []
