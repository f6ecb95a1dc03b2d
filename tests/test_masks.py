"""Synthetic masks: six face points from five landmarks, a homography, colour and light; the
training step that writes them with their groups; and the zoo that measures on them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from edge.detectors.yunet import YuNetDetector
from edge.shared.crop import crop_face
from facedata import masks as fm


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    image = data.astronaut()
    (face,) = YuNetDetector().detect(image)
    return image, face


def write_template_folder(root, colour=(240, 240, 240)):
    """A masks folder with one plain template: a rectangle whose anchors are its corners
    and edge midpoints, front only."""
    (root / "templates").mkdir(parents=True)
    (root / "textures" / "plain").mkdir(parents=True)
    rgba = np.zeros((100, 200, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = colour, 255
    cv2.imwrite(str(root / "templates" / "plain.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    stripes = np.zeros((40, 40, 3), np.uint8)
    stripes[::8] = 255
    for n in range(4):
        cv2.imwrite(str(root / "textures" / "plain" / f"stripes{n}.png"), stripes)
    (root / "masks.cfg").write_text(
        "[plain]\ntemplate: masks/templates/plain.png\nmask_a: 0, 0\nmask_b: 100, 0\n"
        "mask_c: 199, 0\nmask_d: 0, 99\nmask_e: 100, 99\nmask_f: 199, 99\n\n[empty]\n")
    return root


def test_the_six_face_points_sit_where_a_mask_goes(astronaut):
    image, face = astronaut
    a, b, c, d, e, f = fm.face_points(face.box, face.landmarks)
    right_eye, left_eye, nose, mouth_r, mouth_l = np.array(face.landmarks)
    assert a[0] < nose[0] < c[0] and d[0] < e[0] < f[0]          # left to right
    assert min(right_eye[1], left_eye[1]) < b[1] < nose[1]         # the bridge, below the eyes
    assert max(mouth_r[1], mouth_l[1]) < e[1] <= face.y + face.h * 1.1   # the chin, below the lips
    x, y, w, h = face.box
    assert x - 1 <= a[0] and c[0] <= x + w + 1                     # the outline, inside the box


def test_a_mask_worn_wrong_slides_down_the_face_below_the_nose_the_lip_or_onto_the_chin(
        astronaut):
    image, face = astronaut
    right_eye, left_eye, nose, mouth_r, mouth_l = np.array(face.landmarks)
    lips = max(mouth_r[1], mouth_l[1])
    worn = {wear: fm.face_points(face.box, face.landmarks, wear) for wear in fm.WEAR}
    tops = {wear: points[1][1] for wear, points in worn.items()}     # b: the top edge's centre
    assert tops["right"] < nose[1] < tops["nose"] < lips < tops["mouth"] < tops["chin"]
    chin = worn["right"][4][1]                          # the chin, as a mask worn right reaches it
    assert tops["chin"] < chin < worn["chin"][4][1]     # on the chin, and down the neck
    # Narrower where it reaches the jaw and neck; left to right still.
    for points in worn.values():
        a, b, c, d, e, f = points
        assert a[0] < b[0] < c[0] and d[0] < e[0] < f[0]
    width = {wear: points[5][0] - points[3][0] for wear, points in worn.items()}
    assert width["chin"] < width["right"]
    with pytest.raises(ValueError, match="wear must be one of"):
        fm.face_points(face.box, face.landmarks, "sideways")


def test_a_turned_face_gets_the_template_turned_its_way(masks_dir):
    templates = fm.load_templates(masks_dir)
    front = [(30, 40), (70, 40), (50, 60), (35, 80), (65, 80)]
    to_left = [(30, 40), (70, 40), (32, 60), (25, 80), (55, 80)]     # nose towards image left
    to_right = [(30, 40), (70, 40), (68, 60), (45, 80), (75, 80)]
    assert fm.choose_template(templates, "surgical", front).view == "front"
    assert fm.choose_template(templates, "surgical", to_left).view == "left"
    assert fm.choose_template(templates, "surgical", to_right).view == "right"
    assert fm.yaw(to_left) < -fm.TURNED_YAW < fm.TURNED_YAW < fm.yaw(to_right)
    # A family without turned templates (N95 has both; cloth too) falls back to the front.
    assert {t.family for t in templates} >= {"surgical", "N95", "KN95", "cloth", "gas"}


def test_a_mask_covers_mouth_and_nose_and_leaves_the_eyes(astronaut, tmp_path):
    image, face = astronaut
    (template,) = fm.load_templates(write_template_folder(tmp_path / "masks", (20, 20, 200)))
    rng = np.random.default_rng(0)
    out = fm.put_mask(image, face.box, face.landmarks, template, fm.Style(light=0.0), rng)
    assert out.shape == image.shape and out.dtype == np.uint8
    changed = np.abs(out.astype(int) - image).sum(axis=2) > 30
    for x, y in np.array(face.landmarks)[3:]:                      # the mouth corners
        assert changed[int(y), int(x)]
    for x, y in np.array(face.landmarks)[:2]:                      # the eyes
        assert not changed[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4].any()
    mx, my = np.array(face.landmarks)[3:].mean(0).astype(int)
    assert out[my, mx, 2] > out[my, mx, 0] + 100                   # the template's blue


def test_a_white_mask_takes_the_photos_light(astronaut, tmp_path):
    image, face = astronaut
    (template,) = fm.load_templates(write_template_folder(tmp_path / "masks"))
    rng = np.random.default_rng(0)
    mx, my = np.array(face.landmarks)[3:].mean(0).astype(int)
    bright = fm.put_mask(image, face.box, face.landmarks, template, fm.Style(), rng)
    dim = fm.put_mask((image * 0.35).astype(np.uint8), face.box, face.landmarks, template,
                      fm.Style(), rng)
    assert bright[my, mx].mean() > 150 and dim[my, mx].mean() < 0.6 * bright[my, mx].mean()


def test_styles_paint_colours_and_textures(tmp_path):
    root = write_template_folder(tmp_path / "masks")
    (template,) = fm.load_templates(root)
    rng = np.random.default_rng(1)
    navy = fm.paint(template, fm.Style("navy"), rng)
    assert np.allclose(navy[50, 100, :3] * 255, fm.COLOURS["navy"], atol=2)
    textures = fm.list_textures(root)
    striped = fm.paint(template, fm.Style("white", str(textures[0]), 1.0), rng)
    assert striped[..., :3].std() > 0.2                           # the stripes show
    assert fm.zoo_textures(textures) and not set(fm.zoo_textures(textures)) & set(
        fm.training_textures(textures))
    kinds = {fm.random_style(rng, textures).name.split(":")[0] for _ in range(200)}
    assert {"own", "black", "navy", "grey", "pink", "texture"} <= kinds


def test_a_missing_masks_folder_is_named(tmp_path):
    with pytest.raises(fm.MaskError, match="masks.cfg not found"):
        fm.load_templates(tmp_path)


def test_synth_masks_unmasked_faces_and_keeps_their_groups(astronaut, tmp_path):
    from train import manifest
    from train.synth import synthesise

    image, face = astronaut
    faces = tmp_path / "faces"
    (faces / "without_mask").mkdir(parents=True)
    Image.fromarray(image).save(faces / "without_mask" / "eileen.png")
    manifest.write(faces, [{"file": "without_mask/eileen.png", "label": "without_mask",
                            "group": "photo:nasa.jpg", "photo": "nasa.jpg", "box": face.box,
                            "landmarks": face.landmarks}])
    masks = write_template_folder(tmp_path / "masks")
    out = tmp_path / "synth"
    summary = synthesise([faces], masks, out, per_face=3, seed=1, detector=None, progress=False)
    assert summary["written"] == 3 and summary["without_landmarks"] == 0
    rows = manifest.read(out)
    assert len(rows) == 3 and {r["group"] for r in rows.values()} == {"photo:nasa.jpg"}
    assert {r["photo"] for r in rows.values()} == {"nasa.jpg"}
    assert all(r["source"] == str((faces / "without_mask" / "eileen.png").resolve())
               for r in rows.values())
    for path in rows:
        masked = np.asarray(Image.open(path))
        assert masked.shape == image.shape and (masked != image).any()
    # The split keeps a synthetic face with its source; excluding the photo drops both.
    from train import data

    ds = data.load_dataset([faces, out], 64, progress=False)
    assert len(set(ds.groups.tolist())) == 1
    left = data.load_dataset([faces, out], 64, progress=False, exclude_photos={"other.jpg"})
    assert len(left.paths) == 4
    with pytest.raises(ValueError, match="no usable images|at least two"):
        data.load_dataset([faces, out], 64, progress=False, exclude_photos={"nasa.jpg"})


def test_prepare_folders_crops_faces_and_groups_pasted_mask_twins(astronaut, tmp_path):
    from train import manifest
    from train.holdout import make_holdout
    from train.prepare import prepare_folders

    image, face = astronaut
    root = tmp_path / "pictures"
    for label in ("with_mask", "without_mask"):
        (root / label).mkdir(parents=True)
    rng = np.random.default_rng(3)
    small = cv2.resize(image, (300, 300), interpolation=cv2.INTER_AREA)
    for n in range(8):
        # Eight people: the astronaut somewhere on a noise background of her own, and a twin
        # of each picture with a "mask" pasted over her mouth.
        person = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
        left, top = 10 * n, 90 - 10 * n
        person[top:top + 300, left:left + 300] = small
        Image.fromarray(person).save(root / "without_mask" / f"{n}.png")
        twin = person.copy()
        twin[top + 80:top + 130, left + 110:left + 160] = (200, 220, 240)
        Image.fromarray(twin).save(root / "with_mask" / f"{n}.png")
    out = tmp_path / "crops"
    summary = prepare_folders(root, out, 0.2, YuNetDetector(), progress=False)
    assert summary["twins"] == 16 and sum(summary["kept"].values()) >= 14
    rows = manifest.read(out)
    groups = {}
    for row in rows.values():
        groups.setdefault(row["group"], set()).add(row["label"])
        assert row["photo"].split("/")[0] == row["label"] and len(row["landmarks"]) == 5
    assert all(len(labels) == 2 for labels in groups.values())
    crop = np.asarray(Image.open(out / "without_mask" / "0.png"))
    assert abs(crop.shape[0] - crop.shape[1]) <= 1 and crop.shape[0] < 300 / 2
    held = make_holdout(root, 0.25, seed=1)
    for n in range(8):
        assert (f"with_mask/{n}.png" in held["eval"]) == (f"without_mask/{n}.png" in held["eval"])


def test_the_zoo_reports_each_family(astronaut, tmp_path):
    from edge.alarm import AlarmRule
    from edge.measure.zoo import FAMILIES, ZooFace, run_zoo, zoo_table

    image, face = astronaut

    def lower_middle(crop):
        h, w = crop.shape[:2]
        return crop[int(0.6 * h):int(0.8 * h), int(0.4 * w):int(0.6 * w)].reshape(-1, 3).mean(0)

    skin = lower_middle(crop_face(image, face.box, 0.2))

    class SkinOrNot:
        """Calls a crop unmasked when its mouth region has the bare face's colour."""
        labels = ("with_mask", "without_mask")

        def classify(self, crops):
            return np.array([[0.1, 0.9] if np.abs(lower_middle(c) - skin).max() < 25
                             else [0.9, 0.1] for c in crops])

    masks = write_template_folder(tmp_path / "masks")
    faces = [ZooFace(image, face.box, face.landmarks, "astronaut", "picture")]
    rule = AlarmRule(SkinOrNot.labels, ("without_mask",), ("with_mask",))
    found = run_zoo(SkinOrNot(), rule, faces, masks, 0.2, 0.7)
    rows = found["masks"]
    assert rows["bare (no mask)"]["alarms"] == 1.0
    # The one template family is "plain", so only the colour families have rows.
    families = [name for name, (family, _) in FAMILIES.items() if family is None]
    assert set(rows) == {"bare (no mask)", *families}
    assert all(rows[name]["faces"] == 1 for name in families)
    for name in ("black", "navy"):
        assert rows[name]["with_mask_recall"] == 1.0 and rows[name]["alarms"] == 0.0
    # The wear zoo: a row per way of wearing it wrong, each of the same faces.
    assert set(found["wear"]) == {"nose", "mouth", "chin"}
    assert all(r["faces"] == 1 and 0.0 <= r["alarms"] <= 1.0 for r in found["wear"].values())
    table = zoo_table(found, {"held-out one-person pictures": 1})
    assert "with_mask recall" in table and "under the lower lip" in table
