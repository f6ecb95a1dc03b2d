"""Put masks of every kind on the unmasked faces of a training set, worn right and worn wrong.

    python -m train.synth --data build/faces/prajna --data build/faces/scenes \\
        --masks ../shared/masks --out build/faces/synth --per-face 2 --wrong-per-face 3

Each ``without_mask`` face of a ``--data`` folder (as ``train.prepare`` writes them: crops
plus ``manifest.csv`` with the detector's box and landmarks) gets ``--per-face`` masks:
a template family at random (surgical white, blue or green, N95, KN95, cloth, gas), its
left- or right-turned picture when the landmarks show the face turned
(``facedata.masks.choose_template``), fitted by a homography to six points of the face,
painted in its own colours, a plain colour (black, navy, grey, pink, any) or a pattern,
with the photo's light. Faces without landmarks are found again by the shipped detector.

``--wrong-per-face`` more masks, drawn the same way, are worn wrong
(``facedata.masks.WRONG``, in turn): under the nose, under the lower lip, on the chin. The
face's own masks worn right are their hard negatives: the same face, the same kinds of mask,
only the nose and mouth tell them apart.

Written: ``OUT/with_mask/<source>__<n>.png``, ``OUT/mask_weared_incorrect/<source>__<wear><n>.png``
(the scene set's name for the class) and ``OUT/manifest.csv``, where each synthetic face
keeps its source's group (its photo, its person), so a split never puts a face on one side
and its masked copies on the other; and ``synth.json`` with the counts. The templates
and textures are read from ``--masks`` (never copied); the textures ``edge eval --zoo``
keeps for itself (``facedata.masks.zoo_textures``) are not used here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from edge.detectors import FrameRefused
from edge.shared.images import UnreadableImage, read_rgb
from facedata import masks as fm
from train import manifest

# How often each family is drawn (others: 1): gas masks are rare at a door, surgical common.
# The class of a mask worn wrong: the shared scenes' name for it.
WRONG_LABEL = "mask_weared_incorrect"
FAMILY_WEIGHTS = {"surgical": 2.0, "surgical_blue": 2.0, "surgical_green": 1.0, "N95": 1.0,
                  "KN95": 1.5, "cloth": 2.0, "gas": 0.3}
DEFAULT_MASKS = Path(os.environ.get("MASKWATCH_MASKS", "../shared/masks"))


def _landmarks(row: dict, image: np.ndarray, detector):
    """The box and landmarks of the face in ``image``: the manifest's, else detected."""
    if row.get("box") and row.get("landmarks"):
        return row["box"], row["landmarks"]
    try:
        faces = detector.detect(image) if detector is not None else []
    except FrameRefused:
        faces = []
    faces = [f for f in faces if f.landmarks]
    if not faces:
        return None, None
    face = max(faces, key=lambda f: f.w * f.h)
    return face.box, face.landmarks


def synthesise(data_dirs: list[Path], masks_dir: Path, out_dir: Path, per_face: int = 2,
               seed: int = 42, detector=None, progress: bool = True,
               wrong_per_face: int = 0) -> dict:
    """Write the synthetic masked faces and their manifest; return counts."""
    templates = fm.load_templates(masks_dir)
    textures = fm.training_textures(fm.list_textures(masks_dir))
    families = sorted({t.family for t in templates})
    weights = np.array([FAMILY_WEIGHTS.get(f, 1.0) for f in families])
    rng = np.random.default_rng(seed)
    sources = []
    for data_dir in data_dirs:
        rows = manifest.read(Path(data_dir))
        for path in sorted((Path(data_dir) / "without_mask").glob("*")):
            row = rows.get(path.resolve(), {})
            sources.append((path, row))
    out_rows, families_used, styles_used, worn = [], Counter(), Counter(), Counter()
    no_landmarks = 0
    for i, (path, row) in enumerate(tqdm(sources, desc="masks", unit="face",
                                         disable=not progress)):
        # The ways of wearing it wrong in turn, face after face: each as often as the others.
        wears = ["right"] * per_face + [fm.WRONG[(i * wrong_per_face + n) % len(fm.WRONG)]
                                        for n in range(wrong_per_face)]
        try:
            image = read_rgb(path)
        except UnreadableImage:
            continue
        box, landmarks = _landmarks(row, image, detector)
        if landmarks is None:
            no_landmarks += 1
            continue
        for n, wear in enumerate(wears):
            family = str(rng.choice(families, p=weights / weights.sum()))
            template = fm.choose_template(templates, family, landmarks)
            style = fm.random_style(rng, textures)
            try:
                masked = fm.put_mask(image, box, landmarks, template, style, rng, wear)
            except ValueError:
                continue
            label, tag = ("with_mask", "") if wear == "right" else (WRONG_LABEL, wear)
            target = out_dir / label / f"{path.parent.parent.name}_{path.stem}__{tag}{n}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(masked).save(target)
            out_rows.append({"file": manifest.relative(target, out_dir), "label": label,
                             "group": row.get("group") or f"picture:{path.resolve()}",
                             "source": manifest.relative(path, out_dir),
                             "photo": row.get("photo", ""), "box": box, "landmarks": landmarks,
                             "template": template.name, "style": style.name, "wear": wear})
            families_used[family] += 1
            styles_used[style.name.split(":")[0]] += 1
            worn[wear] += 1
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest.write(out_dir, out_rows)
    summary = {"data": [str(d) for d in data_dirs], "masks": str(masks_dir), "seed": seed,
               "per_face": per_face, "wrong_per_face": wrong_per_face,
               "unmasked_faces": len(sources), "worn": dict(worn),
               "without_landmarks": no_landmarks, "written": len(out_rows),
               "families": dict(families_used), "styles": dict(styles_used)}
    (out_dir / "synth.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.synth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", required=True, type=Path,
                   help="a prepared face folder (class folders + manifest.csv); repeat")
    p.add_argument("--masks", type=Path, default=DEFAULT_MASKS,
                   help="the mask templates and textures (default: $MASKWATCH_MASKS or "
                        "../shared/masks)")
    p.add_argument("--out", required=True, type=Path, help="where the synthetic faces go")
    p.add_argument("--per-face", type=int, default=2,
                   help="masks worn right put on each unmasked face")
    p.add_argument("--wrong-per-face", type=int, default=0,
                   help="masks worn wrong put on each unmasked face: under the nose, under "
                        "the lower lip, on the chin, in turn")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    if args.per_face < 0 or args.wrong_per_face < 0 or args.per_face + args.wrong_per_face < 1:
        p.error("--per-face and --wrong-per-face: at least one mask a face in all")
    try:
        from edge.config import load_config
        from edge.pipeline import build_detector
        summary = synthesise(args.data, args.masks, args.out, args.per_face, args.seed,
                             build_detector(load_config()), wrong_per_face=args.wrong_per_face)
    except fm.MaskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{summary['written']} masked faces from {summary['unmasked_faces']} unmasked ones "
          f"({summary['without_landmarks']} without landmarks skipped) into {args.out}")
    print("worn:     " + ", ".join(f"{k} {v}" for k, v in sorted(summary["worn"].items())))
    print("families: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["families"].items())))
    print("styles:   " + ", ".join(f"{k} {v}" for k, v in sorted(summary["styles"].items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
