"""Files a stranger can drop into an image folder: a decompression bomb, odd pictures."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A valid PNG of ``side`` x ``side`` black RGB pixels: about 1.2 MB of file for
    20000 (1.2 GB decoded), written row by row so that making it costs no memory."""
    deflate = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * side)               # filter byte "none", then the pixels
    parts = [deflate.compress(row) for _ in range(side)]
    parts.append(deflate.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
                     + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b""))
    return path
