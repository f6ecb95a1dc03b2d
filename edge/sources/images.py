"""A folder of images, read in name order: for demos, evaluation and benchmarks.

Each file goes through ``edge.shared.images.read_bgr``: anything that is not a regular, readable,
sanely sized picture — a FIFO, a dangling or looping link, a file deleted since the folder
was listed, a decompression bomb, junk — is skipped with one log line and counted
(``skipped``), and the next file is read. A picture much bigger than ``MAX_FRAME_SIDE`` is
decoded at a reduced size (JPEG) and shrunk, so it never costs its full size in memory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from edge.plugins import Plugin
from edge.shared.images import SUFFIXES, UnreadableImage, read_bgr
from edge.shared.params import Params, param
from edge.sources import MAX_FRAME_SIDE, Frame, SourceError, bgr_to_frame_rgb

log = logging.getLogger(__name__)

EXTENSIONS = SUFFIXES


@dataclass(frozen=True)
class ImagesParams(Params):
    path: str = param("", path="file", help="a folder of images, read in name order")

    @classmethod
    def problems_when_chosen(cls, values):
        return [("path", "the images source needs a folder")] if not values.get("path") else []


class ImageFolderSource:
    live = False

    def __init__(self, params: ImagesParams):
        self.folder = Path(params.path)
        self._files: list[Path] = []
        self._next = 0
        self._read = 0       # frames delivered since open()
        self.skipped = 0     # files skipped since start: not readable pictures

    def open(self) -> None:
        try:
            self._files = sorted(p for p in self.folder.iterdir()
                                 if p.suffix.lower() in EXTENSIONS)
        except OSError as exc:
            raise SourceError(f"{self.folder} is not a folder of images ({exc.strerror})") from None
        self._next = 0
        self._read = 0
        if not self._files:
            raise SourceError(f"{self.folder} holds no images ({', '.join(sorted(EXTENSIONS))})")

    def read(self) -> Frame | None:
        while self._next < len(self._files):
            path = self._files[self._next]
            self._next += 1
            try:
                bgr = read_bgr(path, MAX_FRAME_SIDE)
            except UnreadableImage as exc:
                # One bad file in a folder is not worth stopping for.
                self.skipped += 1
                log.warning("skipping %s: %s (%d skipped so far)", path.name, exc, self.skipped)
                continue
            self._read += 1
            return Frame(bgr_to_frame_rgb(bgr), time.monotonic(), path.name)
        if not self._read:
            raise SourceError(f"none of the {len(self._files)} image files in {self.folder} "
                              "could be read")
        return None

    def close(self) -> None:
        self._files = []


PLUGIN = Plugin("source", "images", ImagesParams, ImageFolderSource,
                "a folder of images (demos, tests, replays)", order=30)
