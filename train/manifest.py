"""``manifest.csv``: what a prepared or synthetic face folder knows about each of its files.

One row per file, ``file`` relative to the folder. ``group`` names what files must stay on
one side of a split (the photo a crop came from, the person of a pasted-mask twin); a
synthetic face carries its source's group. ``box`` and ``landmarks`` are the detector's, in
the file's own pixels (``x y w h`` and five ``x y`` pairs), so the mask step needs no second
detection. A synthetic mask also names its ``template``, ``style`` and ``wear`` (how it is
worn: ``facedata.masks.WEAR``). ``train.data`` reads the groups; ``train.synth`` the boxes
and landmarks.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

NAME = "manifest.csv"
FIELDS = ("file", "label", "group", "source", "photo", "box", "landmarks", "template", "style",
          "wear")


def write(folder: Path, rows: list[dict]) -> Path:
    """Write ``folder/manifest.csv`` (atomically: a crash leaves the old one or none)."""
    path = Path(folder) / NAME
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS, extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _text(row.get(k)) for k in FIELDS})
    os.replace(tmp, path)
    return path


def read(folder: Path) -> dict[Path, dict]:
    """The rows of ``folder/manifest.csv`` by the file's resolved path ({} without one);
    ``box`` and ``landmarks`` parsed to numbers, ``source`` resolved."""
    path = Path(folder) / NAME
    if not path.is_file():
        return {}
    rows = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            row["box"] = tuple(int(v) for v in row["box"].split()) if row.get("box") else None
            pts = [float(v) for v in row["landmarks"].split()] if row.get("landmarks") else []
            row["landmarks"] = tuple(zip(pts[0::2], pts[1::2])) if pts else None
            if row.get("source"):
                row["source"] = str((Path(folder) / row["source"]).resolve())
            rows[(Path(folder) / row["file"]).resolve()] = row
    return rows


def relative(path: Path | str, folder: Path) -> str:
    """``path`` as the manifest in ``folder`` stores it."""
    return os.path.relpath(Path(path).resolve(), Path(folder).resolve())


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):
        flat = [v for item in value for v in (item if isinstance(item, (tuple, list)) else (item,))]
        return " ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in flat)
    return str(value)
