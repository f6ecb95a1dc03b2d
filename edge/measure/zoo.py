"""``edge eval --zoo MASKS``: masks of every family on unmasked faces no model trained on.

The faces: the unmasked faces (at least ``--min-face`` px) of the held-out photos of the
scene split, found by YuNet in 640x480 frames, and the unmasked pictures of the held-out
part of the one-person set (``splits/prajna.json``), each at its own size. Each face gets
one mask of each family below, fitted from YuNet's landmarks (``facedata.masks``), then is
cut with the edge's crop rule and classified. A family's row: with_mask recall (the
classifier's top class) and the share of faces that would still raise an alarm (p of
without_mask at or above the threshold). The patterned row uses only the textures training
never sees (``facedata.masks.zoo_textures``); the others share their templates with
training, not their faces. The first row is the faces bare: without_mask recall.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.detectors import FrameRefused
from edge.shared.boxes import match
from edge.shared.crop import crop_face
from edge.shared.images import UnreadableImage, read_rgb
from edge.tracker import MASKED_LABEL, VIOLATION_LABEL
from facedata import DataError
from facedata.scoring import IOU
from facedata.voc import framed, load_scenes

# name: (template family, None for each face's own random one; style kind of
# facedata.masks.random_style)
FAMILIES = {
    "surgical white": ("surgical", "own"), "surgical blue": ("surgical_blue", "own"),
    "surgical green": ("surgical_green", "own"), "N95": ("N95", "own"), "KN95": ("KN95", "own"),
    "cloth (black)": ("cloth", "own"), "gas": ("gas", "own"),
    "black": (None, "black"), "navy": (None, "navy"), "grey": (None, "grey"),
    "pink": (None, "pink"), "plain colour": (None, "plain"),
    "patterned (unseen)": (None, "patterned"),
}


@dataclass
class ZooFace:
    image: np.ndarray
    box: tuple[int, int, int, int]
    landmarks: tuple
    source: str                  # the photo's or the picture's name
    kind: str                    # "photo" (held-out scene photos) or "picture" (one-person set)


def held_out_faces(yunet, scenes_dir: Path, split: Path, min_face: int,
                   prajna_dir: Path | None = None, prajna_split: Path | None = None
                   ) -> list[ZooFace]:
    """The unmasked faces of the held-out photos and held-out one-person pictures."""
    faces = []
    scenes = load_scenes(scenes_dir, split, "eval")
    for scene, frame in framed(scenes, (640, 480)):
        found = [f for f in yunet.detect(frame) if f.landmarks]
        for d, t in match([f.box for f in found], [a.box for a in scene.faces], IOU):
            truth = scene.faces[t]
            if truth.label == VIOLATION_LABEL and truth.box[2] >= min_face:
                faces.append(ZooFace(frame, found[d].box, found[d].landmarks, scene.image.name,
                                     "photo"))
    if prajna_dir is not None and prajna_split is not None:
        try:
            names = json.loads(Path(prajna_split).read_text())["eval"]
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{prajna_split}: not a split file with an 'eval' list ({exc})") \
                from None
        for name in names:
            if not name.startswith(VIOLATION_LABEL + "/"):
                continue
            try:
                image = read_rgb(Path(prajna_dir) / name)
                found = [f for f in yunet.detect(image) if f.landmarks]
            except (UnreadableImage, FrameRefused):
                continue
            if found:
                face = max(found, key=lambda f: f.w * f.h)
                faces.append(ZooFace(image, face.box, face.landmarks, name, "picture"))
    return faces


def run_zoo(classifier, faces: list[ZooFace], masks_dir: Path, margin: float,
            threshold: float, seed: int = 7) -> dict:
    """The zoo's rows (see the module doc): ``{family: {faces, with_mask_recall, alarms}}``."""
    from facedata import masks as fm

    templates = fm.load_templates(masks_dir)
    textures = fm.zoo_textures(fm.list_textures(masks_dir))
    families = sorted({t.family for t in templates})
    labels = list(classifier.labels)
    masked, violation = labels.index(MASKED_LABEL), labels.index(VIOLATION_LABEL)
    rng = np.random.default_rng(seed)
    bare = classifier.classify([crop_face(f.image, f.box, margin) for f in faces])
    rows = {"bare (no mask)": {"faces": len(faces),
                               "without_mask_recall": _share(bare.argmax(1) == violation),
                               "alarms": _share(bare[:, violation] >= threshold)}}
    for name, (family, kind) in FAMILIES.items():
        if family is not None and family not in families:
            continue  # a masks folder without this template
        crops = []
        for f in faces:
            template = fm.choose_template(templates, family or str(rng.choice(families)),
                                          f.landmarks)
            style = fm.random_style(rng, textures, kind)
            crops.append(crop_face(fm.put_mask(f.image, f.box, f.landmarks, template, style, rng),
                                   f.box, margin))
        probs = classifier.classify(crops)
        rows[name] = {"faces": len(faces), "with_mask_recall": _share(probs.argmax(1) == masked),
                      "alarms": _share(probs[:, violation] >= threshold)}
    return rows


def _share(flags) -> float | None:
    flags = np.asarray(flags)
    return float(flags.mean()) if flags.size else None


def zoo_table(rows: dict, sources: dict) -> str:
    lines = [f"mask zoo: {rows['bare (no mask)']['faces']} held-out unmasked faces "
             + ", ".join(f"{v} {k}" for k, v in sources.items()),
             f"{'family':<22}{'with_mask recall':>18}{'still alarms':>14}"]
    for name, r in rows.items():
        if name == "bare (no mask)":
            lines.append(f"{name:<22}{'(w/o recall ' + _fmt(r['without_mask_recall']) + ')':>18}"
                         f"{_fmt(r['alarms']):>14}")
        else:
            lines.append(f"{name:<22}{_fmt(r['with_mask_recall']):>18}{_fmt(r['alarms']):>14}")
    return "\n".join(lines)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}"
