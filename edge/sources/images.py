"""A folder of images, read in name order: for demos, evaluation and benchmarks."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2

from edge.sources import Frame, SourceError

log = logging.getLogger(__name__)

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class ImageFolderSource:
    live = False

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self._files: list[Path] = []
        self._next = 0

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder} is not a folder of images")
        self._files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in EXTENSIONS)
        self._next = 0
        if not self._files:
            raise SourceError(f"{self.folder} holds no images ({', '.join(sorted(EXTENSIONS))})")

    def read(self) -> Frame | None:
        while self._next < len(self._files):
            path = self._files[self._next]
            self._next += 1
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                # One unreadable file in a folder is not worth stopping for.
                log.warning("skipping %s: not a readable image", path)
                continue
            return Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time.monotonic(), path.name)
        return None

    def close(self) -> None:
        self._files = []
