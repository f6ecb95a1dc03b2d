"""Pascal-VOC face annotations, and matching detections to them by IoU."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Annotation:
    label: str
    box: tuple[int, int, int, int]  # x, y, w, h


@dataclass(frozen=True)
class Scene:
    image: Path
    faces: tuple[Annotation, ...]


def read_annotation(xml_path: Path) -> list[Annotation]:
    root = ET.parse(xml_path).getroot()
    faces = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        x0, y0, x1, y1 = (int(round(float(bb.findtext(k)))) for k in ("xmin", "ymin", "xmax", "ymax"))
        faces.append(Annotation(obj.findtext("name").strip(), (x0, y0, x1 - x0, y1 - y0)))
    return faces


def load_scenes(voc_dir: Path) -> list[Scene]:
    """Scenes of a VOC folder with ``images/`` and ``annotations/``, sorted by name.

    An annotation names its image in ``<filename>``; images without one are skipped.
    """
    voc_dir = Path(voc_dir)
    ann_dir, img_dir = voc_dir / "annotations", voc_dir / "images"
    if not ann_dir.is_dir() or not img_dir.is_dir():
        raise FileNotFoundError(f"{voc_dir} must hold images/ and annotations/ (Pascal VOC)")
    scenes = []
    for xml_path in sorted(ann_dir.glob("*.xml")):
        name = ET.parse(xml_path).getroot().findtext("filename") or xml_path.stem + ".jpg"
        image = img_dir / name.strip()
        if not image.is_file():
            image = next(iter(sorted(img_dir.glob(xml_path.stem + ".*"))), image)
        if image.is_file():
            scenes.append(Scene(image, tuple(read_annotation(xml_path))))
    return scenes


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def match(pred: list[tuple[int, int, int, int]], truth: list[tuple[int, int, int, int]],
          threshold: float = 0.5) -> list[tuple[int, int]]:
    """Greedy one-to-one matching, best IoU first: ``[(pred_index, truth_index), ...]``."""
    pairs = sorted(((iou(p, t), i, j) for i, p in enumerate(pred) for j, t in enumerate(truth)),
                   reverse=True)
    used_p, used_t, matches = set(), set(), []
    for score, i, j in pairs:
        if score < threshold:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            matches.append((i, j))
    return matches
