"""Pascal-VOC photos with annotated faces: the photos the measurement tools score against.

Three things a measurement needs besides the annotations themselves:

- **the photo split**: a JSON file (``splits/scenes.json``, made by
  ``python -m facedata.split``) naming which photos are for training and which are held
  out for evaluation. ``load_scenes(..., split=FILE, part="eval")`` keeps one part, so
  training crops and end-to-end figures never come from the same photo;
- **the camera's frame**: ``in_frame`` shows a photo as a camera giving 640x480 frames
  would: at its own pixel size, centred on black (shrunk to fit only if it is bigger), so
  that a detector sees each face at the pixel size the ">= 32 px" figures speak of, and a
  detector that rescales its whole input (BlazeFace's letterbox, YuNet's ``detect_width``)
  rescales it as much as it would on the Pi;
- ``framed``: each photo read (``edge.shared.images.read_rgb``, the one image reader) and put in
  its frame.
"""

from __future__ import annotations

import argparse
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.shared.images import UnreadableImage, read_rgb
from facedata import DataError

log = logging.getLogger(__name__)

PARTS = ("train", "eval")
# The scene set's own class names: a face without a mask, and one worn wrong (nose or mouth
# out, on the chin). The split and the folds balance photos by them.
UNMASKED, WORN_WRONG = "without_mask", "mask_weared_incorrect"


@dataclass(frozen=True)
class Annotation:
    label: str
    box: tuple[int, int, int, int]  # x, y, w, h


@dataclass(frozen=True)
class Scene:
    image: Path
    faces: tuple[Annotation, ...]


class SplitError(DataError):
    """A split file that can't be read, or that doesn't belong to the photos it is used with."""


def read_annotation(xml_path: Path) -> list[Annotation]:
    root = ET.parse(xml_path).getroot()
    faces = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        x0, y0, x1, y1 = (int(round(float(bb.findtext(k)))) for k in ("xmin", "ymin", "xmax", "ymax"))
        faces.append(Annotation(obj.findtext("name").strip(), (x0, y0, x1 - x0, y1 - y0)))
    return faces


def load_scenes(voc_dir: Path, split: Path | None = None, part: str | None = None) -> list[Scene]:
    """Scenes of a VOC folder with ``images/`` and ``annotations/``, sorted by name.

    An annotation names its image in ``<filename>``; images without one are skipped.
    With ``split`` (a split file) only the photos of its ``part`` (``train`` or ``eval``).
    """
    voc_dir = Path(voc_dir)
    ann_dir, img_dir = voc_dir / "annotations", voc_dir / "images"
    if not ann_dir.is_dir() or not img_dir.is_dir():
        raise DataError(f"{voc_dir} must hold images/ and annotations/ (Pascal VOC; "
                           "README: Data)")
    scenes = []
    for xml_path in sorted(ann_dir.glob("*.xml")):
        name = ET.parse(xml_path).getroot().findtext("filename") or xml_path.stem + ".jpg"
        image = img_dir / name.strip()
        if not image.is_file():
            image = next(iter(sorted(img_dir.glob(xml_path.stem + ".*"))), image)
        if image.is_file():
            scenes.append(Scene(image, tuple(read_annotation(xml_path))))
    if not scenes:
        raise DataError(f"{voc_dir} has no annotated photos (annotations/NAME.xml beside "
                           "images/NAME.jpg)")
    if split is None:
        return scenes
    return select_part(scenes, split, part)


def read_split(path: Path) -> dict:
    """A split file's contents, checked: two disjoint lists of photo file names."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SplitError(f"split file {path} not found (make one with python -m "
                         "facedata.split)") from None
    except (OSError, ValueError) as exc:
        raise SplitError(f"split file {path} is not readable JSON ({exc})") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(p), list) for p in PARTS):
        raise SplitError(f"split file {path} needs the lists {' and '.join(PARTS)}")
    both = set(doc["train"]) & set(doc["eval"])
    if both:
        raise SplitError(f"split file {path} puts {len(both)} photos in both parts, e.g. "
                         f"{sorted(both)[0]}")
    return doc


def select_part(scenes: list[Scene], split: Path, part: str | None) -> list[Scene]:
    """The scenes whose photos the split puts in ``part``; every one of them must be here."""
    if part not in PARTS:
        raise SplitError(f"a split part must be one of {', '.join(PARTS)}, got {part!r}")
    names = set(read_split(split)[part])
    here = {scene.image.name for scene in scenes}
    missing = sorted(names - here)
    if missing:
        raise SplitError(f"{len(missing)} of the {len(names)} {part} photos of {split} are not "
                         f"in this folder (e.g. {missing[0]}): the split was made for other photos")
    return [scene for scene in scenes if scene.image.name in names]


def in_frame(image: np.ndarray, scene: Scene, size: tuple[int, int] | None
             ) -> tuple[np.ndarray, Scene]:
    """The photo as a camera giving ``size`` (width, height) frames shows it, with its faces.

    A photo that fits is centred at its own pixel size on black; a bigger one is first
    shrunk to fit (area averaging, aspect kept). It is never enlarged: that would invent
    detail no camera gave. The face boxes move and scale with it. ``size`` None: unchanged.
    """
    if size is None:
        return image, scene
    width, height = size
    h, w = image.shape[:2]
    scale = min(1.0, width / w, height / h)
    if scale < 1.0:
        w, h = max(1, round(w * scale)), max(1, round(h * scale))
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    left, top = (width - w) // 2, (height - h) // 2
    frame = np.zeros((height, width, 3), np.uint8)
    frame[top:top + h, left:left + w] = image

    def moved(box):
        x, y, bw, bh = box
        x0, y0 = round(x * scale) + left, round(y * scale) + top
        return x0, y0, round((x + bw) * scale) + left - x0, round((y + bh) * scale) + top - y0

    faces = tuple(Annotation(face.label, moved(face.box)) for face in scene.faces)
    return frame, Scene(scene.image, faces)


def framed(scenes: Iterable[Scene], size: tuple[int, int] | None
           ) -> Iterator[tuple[Scene, np.ndarray]]:
    """Each scene read and put ``in_frame``; an unreadable photo is logged and skipped."""
    for scene in scenes:
        try:
            image = read_rgb(scene.image)
        except UnreadableImage as exc:
            log.warning("skipping unreadable %s: %s", scene.image, exc)
            continue
        frame, placed = in_frame(image, scene, size)
        yield placed, frame


def parse_frame_size(text: str) -> tuple[int, int] | None:
    """``"640x480"`` → (640, 480); ``"native"`` → None (photos as they are); an argparse type."""
    if text == "native":
        return None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x480, or native; "
                                         f"got {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"a frame must be at least 16x16, got {text}")
    return width, height
