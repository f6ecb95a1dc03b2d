"""Reading an image file, whatever a stranger put in the folder: the one image reader of the
runtime, the measurement tools and training's preparation.

Before anything is decoded, the file must be a regular file (not a FIFO, a device, a
dangling or looping link), at most ``MAX_FILE_BYTES`` long, and say in its header that it
is a JPEG, PNG, BMP or WebP picture of at most ``MAX_PIXELS`` pixels: a 1 MB PNG of
20000x20000 zeros would otherwise cost 1.2 GB to decode. The file is opened without
blocking and checked on the open descriptor, so what is checked is what is read. Anything
else raises :class:`UnreadableImage`, whose message says why, and never anything else.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import cv2
import numpy as np

from edge.shared.opencv import log_errors_only

MAX_FILE_BYTES = 64 * 1024 * 1024
# 50 megapixels: a 8660x5773 photo, 150 MB decoded; a camera frame is a few.
MAX_PIXELS = 50_000_000
SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}
# JPEG start-of-frame markers (the ones holding the picture's size).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


log_errors_only()


class UnreadableImage(ValueError):
    """A file that is not a readable, sanely sized picture; the message says why."""


def dimensions(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` from a picture's header, without decoding it."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return "PNG", width, height
        if data[:2] == b"\xff\xd8":
            return ("JPEG", *_jpeg_size(data))
        if data[:2] == b"BM":
            header = struct.unpack("<I", data[14:18])[0]
            if header == 12:
                width, height = struct.unpack("<HH", data[18:22])
            else:
                width, height = struct.unpack("<ii", data[18:26])
            return "BMP", abs(width), abs(height)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8 ":
                width, height = struct.unpack("<HH", data[26:30])
                return "WebP", width & 0x3FFF, height & 0x3FFF
            if chunk == b"VP8L":
                bits = struct.unpack("<I", data[21:25])[0]
                return "WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8X":
                return ("WebP", 1 + int.from_bytes(data[24:27], "little"),
                        1 + int.from_bytes(data[27:30], "little"))
    except struct.error:
        raise UnreadableImage("its header is cut short") from None
    raise UnreadableImage("not a JPEG, PNG, BMP or WebP picture")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise UnreadableImage("a broken JPEG header")
        marker = data[i + 1]
        if marker == 0xFF:                         # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):   # markers without a length
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        if marker == 0xDA or length < 2:           # image data before any size: broken
            break
        i += 2 + length
    raise UnreadableImage("a JPEG header without the picture's size")


def read_bytes(path: Path | str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, opened without blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UnreadableImage("missing (deleted, or a link to nothing)") from None
    except OSError as exc:
        raise UnreadableImage(f"cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else \
                "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise UnreadableImage(f"{kind}, not a picture file")
        if info.st_size > limit:
            raise UnreadableImage(f"{info.st_size} bytes, over the {limit}-byte limit")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise UnreadableImage(f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UnreadableImage(f"over the {limit}-byte limit")
    if not data:
        raise UnreadableImage("empty")
    return data


def read_bgr(path: Path | str, max_side: int | None = None) -> np.ndarray:
    """Decode ``path`` as a BGR uint8 image, checked first (module docstring). With
    ``max_side``, a JPEG far bigger than that is decoded at a half, a quarter or an eighth
    of its size, never below ``max_side``: it never costs its full size in memory."""
    data = read_bytes(path)
    kind, width, height = dimensions(data)
    if width < 1 or height < 1:
        raise UnreadableImage(f"{kind} of {width}x{height} px")
    if width * height > MAX_PIXELS:
        raise UnreadableImage(f"{kind} of {width}x{height} px, over the {MAX_PIXELS:,}-pixel "
                              "budget")
    flags = cv2.IMREAD_COLOR
    side = max(width, height)
    if max_side and kind == "JPEG" and side >= 2 * max_side:
        flags = _REDUCED[max(f for f in _REDUCED if side / f >= max_side)]
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None or image.ndim != 3 or image.shape[2] != 3:
        raise UnreadableImage(f"a {kind} header, but not a picture OpenCV can decode")
    return image


def read_rgb(path: Path | str) -> np.ndarray:
    """Decode ``path`` as an RGB uint8 image at its full size, checked first."""
    return cv2.cvtColor(read_bgr(path), cv2.COLOR_BGR2RGB)
