"""``edge eval --zoo MASKS``: masks of every family, worn right and worn wrong, on unmasked
faces no model trained on.

The faces: the unmasked faces (at least ``--min-face`` px) of the held-out photos of the
scene split, found by YuNet in 640x480 frames, and the unmasked pictures of the held-out
part of the one-person set (``splits/prajna.json``), each at its own size. Each face gets
one mask of each family below, fitted from YuNet's landmarks (``facedata.masks``), then is
cut with the edge's crop rule and classified. A family's row: with_mask recall (the
classifier's top class is a masked label) and the share of faces that would still raise an
alarm (the alarm rule's probability at or above the threshold, ``edge.alarm``). The
patterned row uses only the textures training never sees (``facedata.masks.zoo_textures``);
the others share their templates with training, not their faces. The first row is the faces
bare: the share that raises the alarm.

The **wear zoo**: each way of wearing a mask wrong (``facedata.masks.WRONG``: under the
nose, under the lower lip, on the chin) put on the same faces, a random family and style
each (unseen textures for the patterned ones): the share that raises the alarm, which
should be all of them, and the share whose top class is the worn-wrong label.
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
from facedata import DataError
from facedata.scoring import IOU
from facedata.voc import UNMASKED, WORN_WRONG, framed, load_scenes

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
            if truth.label == UNMASKED and truth.box[2] >= min_face:
                faces.append(ZooFace(frame, found[d].box, found[d].landmarks, scene.image.name,
                                     "photo"))
    if prajna_dir is not None and prajna_split is not None:
        try:
            names = json.loads(Path(prajna_split).read_text())["eval"]
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{prajna_split}: not a split file with an 'eval' list ({exc})") \
                from None
        for name in names:
            if not name.startswith(UNMASKED + "/"):
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


def run_zoo(classifier, rule, faces: list[ZooFace], masks_dir: Path, margin: float,
            threshold: float, seed: int = 7) -> dict:
    """The zoo's rows (see the module doc): ``{"masks": {family: {faces, with_mask_recall,
    alarms}}, "wear": {way: {faces, alarms, worn_wrong_top}}}``; ``rule`` the alarm rule
    (``edge.alarm.AlarmRule``)."""
    from facedata import masks as fm

    templates = fm.load_templates(masks_dir)
    textures = fm.zoo_textures(fm.list_textures(masks_dir))
    families = sorted({t.family for t in templates})
    rng = np.random.default_rng(seed)

    def masked(family, kind, wear="right") -> np.ndarray:
        crops = []
        for f in faces:
            template = fm.choose_template(templates, family or str(rng.choice(families)),
                                          f.landmarks)
            style = fm.random_style(rng, textures, kind)
            crops.append(crop_face(fm.put_mask(f.image, f.box, f.landmarks, template, style, rng,
                                               wear), f.box, margin))
        return classifier.classify(crops)

    def alarms(probs) -> float | None:
        return _share([rule.p(p) >= threshold for p in probs])

    def top(probs) -> list[str]:
        return [rule.labels[int(np.argmax(p))] for p in probs]

    bare = classifier.classify([crop_face(f.image, f.box, margin) for f in faces])
    rows = {"bare (no mask)": {"faces": len(faces), "alarms": alarms(bare)}}
    for name, (family, kind) in FAMILIES.items():
        if family is not None and family not in families:
            continue  # a masks folder without this template
        probs = masked(family, kind)
        rows[name] = {"faces": len(faces),
                      "with_mask_recall": _share([rule.is_masked(t) for t in top(probs)]),
                      "alarms": alarms(probs)}
    wear = {}
    for way in fm.WRONG:
        probs = masked(None, None, way)
        wear[way] = {"faces": len(faces), "alarms": alarms(probs),
                     "worn_wrong_top": _share([t == WORN_WRONG for t in top(probs)])}
    return {"masks": rows, "wear": wear}


def _share(flags) -> float | None:
    flags = np.asarray(flags)
    return float(flags.mean()) if flags.size else None


# How each way of wearing it wrong reads in the table.
WAYS = {"nose": "under the nose", "mouth": "under the lower lip", "chin": "on the chin"}


def zoo_table(zoo: dict, sources: dict) -> str:
    rows = zoo["masks"]
    lines = [f"mask zoo: {rows['bare (no mask)']['faces']} held-out unmasked faces "
             + ", ".join(f"{v} {k}" for k, v in sources.items()),
             f"{'family':<22}{'with_mask recall':>18}{'still alarms':>14}"]
    for name, r in rows.items():
        recall = _fmt(r.get("with_mask_recall")) if "with_mask_recall" in r else ""
        lines.append(f"{name:<22}{recall:>18}{_fmt(r['alarms']):>14}")
    lines += ["", "wear zoo: the same faces, a mask worn wrong (any family)",
              f"{'worn':<22}{'raise the alarm':>18}{'top: worn wrong':>17}"]
    for way, r in zoo["wear"].items():
        lines.append(f"{WAYS.get(way, way):<22}{_fmt(r['alarms']):>18}"
                     f"{_fmt(r['worn_wrong_top']):>17}")
    return "\n".join(lines)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}"
