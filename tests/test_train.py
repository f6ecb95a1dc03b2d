"""Training: the audit, the leak-free split, in-graph preprocessing, a tiny full run, prepare."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from edge.shared.crop import crop_face, square_box
from tests.synthetic import write_class_folders
from train import data


def _save(img: Image.Image, path, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt)


@pytest.fixture()
def messy_dataset(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "messy"
    rgb = lambda: Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8))  # noqa: E731
    _save(rgb(), root / "a" / "good.jpg")
    _save(rgb(), root / "b" / "good.png")
    (root / "a" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + rng.bytes(500))
    buf = io.BytesIO()
    rgb().save(buf, "PNG")
    (root / "a" / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (root / "a" / "notes.txt").write_text("not an image")
    _save(rgb().convert("L"), root / "a" / "gray.png")
    _save(rgb().convert("RGBA"), root / "b" / "rgba.png")
    _save(rgb().convert("CMYK"), root / "b" / "cmyk.jpg")
    _save(rgb().convert("P"), root / "b" / "palette.png")
    _save(Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)), root / "b" / "tiny.png")
    (root / "empty").mkdir()
    return root


def test_audit_skips_and_converts_and_lists(messy_dataset):
    ds = data.load_dataset([messy_dataset], size=40, progress=False)
    assert ds.classes == ["a", "b"]
    assert ds.empty_classes == ["empty"]
    skipped = {item["path"].rsplit("/", 1)[-1]: item["reason"] for item in ds.skipped}
    assert set(skipped) == {"corrupt.jpg", "truncated.png", "notes.txt", "tiny.png"}
    assert "too small" in skipped["tiny.png"]
    assert all("not a readable image" in skipped[f] for f in ("corrupt.jpg", "truncated.png", "notes.txt"))
    assert dict(ds.converted) == {"L": 1, "RGBA": 1, "CMYK": 1, "P": 1}
    kept = sorted(p.name for p in ds.paths)
    assert kept == ["cmyk.jpg", "good.jpg", "good.png", "gray.png", "palette.png", "rgba.png"]
    assert ds.images.shape == (6, 40, 40, 3) and ds.images.dtype == np.uint8
    summary = ds.audit_summary()
    assert summary["images"] == 6 and len(summary["skipped"]) == 4


@pytest.fixture()
def planted(tmp_path):
    """60 distinct images per class, plus exact copies and a re-encoded near-copy."""
    root = write_class_folders(tmp_path / "planted", per_class=60, size=64, seed=3)
    originals = [root / "horizontal" / "000.png", root / "horizontal" / "001.png", root / "vertical" / "000.png"]
    for n, src in enumerate(originals):
        shutil.copy(src, src.parent / f"copy{n}.png")
    img = Image.open(originals[0]).resize((60, 60)).resize((64, 64))
    img.save(originals[0].parent / "near0.jpg", quality=90)
    return root


def test_duplicates_are_found_and_grouped(planted):
    ds = data.load_dataset([planted], size=48, progress=False)
    assert ds.exact_duplicates == 3
    assert ds.near_duplicates >= 1
    group_of = {p.name if p.parent.name == "horizontal" else "v/" + p.name: g for p, g in zip(ds.paths, ds.groups)}
    assert group_of["000.png"] == group_of["copy0.png"] == group_of["near0.jpg"]
    assert group_of["001.png"] == group_of["copy1.png"]
    assert group_of["v/000.png"] == group_of["v/copy2.png"]
    assert group_of["000.png"] != group_of["001.png"]


def test_split_is_deterministic_stratified_and_leak_free(planted):
    ds = data.load_dataset([planted], size=48, progress=False)
    train, test = data.split_indices(ds.labels, ds.groups, 0.25, seed=7)
    again = data.split_indices(ds.labels, ds.groups, 0.25, seed=7)
    other = data.split_indices(ds.labels, ds.groups, 0.25, seed=8)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert not np.array_equal(test, other[1])
    assert set(train).isdisjoint(test) and len(train) + len(test) == len(ds.labels)
    assert set(ds.groups[train]).isdisjoint(ds.groups[test])
    assert 0.2 <= len(test) / len(ds.labels) <= 0.3
    for label in (0, 1):  # stratified: each class near its overall share
        share = (ds.labels[test] == label).mean()
        assert abs(share - (ds.labels == label).mean()) < 0.08


@pytest.mark.slow
def test_preprocessing_is_inside_the_graph():
    import keras

    from train.model import body_of, build_model

    model = build_model(2, input_size=75, weights=None)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 75, 75, 3)).astype(np.float32)
    features = keras.Model(model.input, model.get_layer("pool").output)(pixels)
    manual = keras.layers.GlobalAveragePooling2D()(body_of(model)(pixels / 127.5 - 1.0, training=False))
    np.testing.assert_allclose(np.asarray(features), np.asarray(manual), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("pretrained", [True, False])
def test_fine_tuning_keeps_a_pretrained_bodys_batchnorm_statistics(pretrained):
    """Keras 3's fit runs the body with training=True; only a frozen BatchNorm keeps its
    (ImageNet) statistics. A body trained from scratch must learn them."""
    import keras

    from train.model import body_of, build_model, set_trainable

    model = build_model(2, input_size=75, backbone="efficientnet_lite0", weights=None)
    set_trainable(model, "finetune", pretrained=pretrained)
    body = body_of(model)
    norms = [layer for layer in body.layers if isinstance(layer, keras.layers.BatchNormalization)]
    before = [layer.moving_mean.numpy().copy() for layer in norms]
    model.compile(keras.optimizers.SGD(1e-3), "sparse_categorical_crossentropy")
    pixels = np.random.default_rng(0).integers(0, 256, (4, 75, 75, 3)).astype(np.float32)
    model.train_on_batch(pixels, np.array([0, 1, 0, 1]))
    moved = max(float(np.abs(layer.moving_mean.numpy() - b).max()) for layer, b in zip(norms, before))
    assert (moved == 0.0) is pretrained
    # Every convolution of the body trains in this phase either way.
    convs = [layer for layer in body.layers if isinstance(layer, (keras.layers.Conv2D,
                                                                  keras.layers.DepthwiseConv2D))]
    assert convs and all(layer.trainable for layer in convs)


@pytest.mark.slow
def test_weights_file_missing_names_the_choices(tmp_path, capsys, caplog):
    from train.__main__ import main

    root = write_class_folders(tmp_path / "d", per_class=6, size=48)
    code = main(["--data", str(root), "--out", str(tmp_path / "m"), "--input-size", "75",
                 "--weights", str(tmp_path / "nope.h5"), "--epochs-head", "1", "--epochs-finetune", "0"])
    assert code == 2
    text = caplog.text
    assert "--weights imagenet" in text and "--weights PATH" in text and "--weights none" in text


@pytest.mark.slow
def test_tiny_run_writes_every_artifact(tiny_run):
    for name in ("model.keras", "labels.txt", "split.json", "metrics.json", "classification_report.txt",
                 "training.png", "confusion.png"):
        assert (tiny_run / name).is_file(), name
    assert (tiny_run / "labels.txt").read_text().split() == ["horizontal", "vertical"]
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert set(metrics["timings"]) == {"head", "finetune"}
    assert metrics["audit"]["images"] == 40
    assert metrics["settings"]["input_size"] == 75 and metrics["versions"]["tensorflow"]
    split = json.loads((tiny_run / "split.json").read_text())
    assert sum(len(split[p]) for p in ("train", "val", "test")) == 40


@pytest.mark.slow
def test_tiny_run_metrics_match_its_predictions(tiny_run):
    import keras

    metrics = json.loads((tiny_run / "metrics.json").read_text())["held_out"]
    x, y, classes = data.read_split_images(tiny_run / "split.json", "test", 75, progress=False)
    pred = keras.models.load_model(tiny_run / "model.keras").predict(x.astype(np.float32), verbose=0).argmax(1)
    assert metrics["count"] == len(y)
    assert metrics["accuracy"] == pytest.approx(float((pred == y).mean()))
    matrix = np.zeros((2, 2), int)
    np.add.at(matrix, (y, pred), 1)
    assert metrics["confusion_matrix"] == matrix.tolist()


def test_crop_is_rows_first_and_square():
    frame = np.zeros((100, 300, 3), np.uint8)  # wide: x and y can't be confused silently
    frame[20:40, 200:220] = 255                # a face at x=200..220, y=20..40
    crop = crop_face(frame, (200, 20, 20, 20), margin=0.2)
    assert crop.shape == (28, 28, 3)
    assert crop[4:24, 4:24].min() == 255 and crop.sum() == 255 * 3 * 400
    # A face cut by the frame's edge keeps its square: the part past the edge is black.
    assert square_box((290, 90, 20, 20)) == (286, 86, 314, 114)
    cut = crop_face(frame, (290, 90, 20, 20), margin=0.2)
    assert cut.shape == (28, 28, 3) and not cut[14:].any() and not cut[:, 14:].any()
    frame[86:100, 286:300] = 7
    assert (cut == 0).all() and (crop_face(frame, (290, 90, 20, 20))[:14, :14] == 7).all()


@pytest.mark.slow
def test_prepare_on_shared_scenes(scenes_dir, tmp_path):
    from edge.shared.images import read_rgb
    from facedata.voc import load_scenes
    from train.prepare import prepare

    out = tmp_path / "faces"
    summary = prepare(scenes_dir, out, 0.2, min_size=32, progress=False, frame=None)
    scenes = load_scenes(scenes_dir)
    total = sum(len(s.faces) for s in scenes)
    assert sum(summary["kept"].values()) + sum(summary["too_small"].values()) == total
    assert set(summary["kept"]) <= {"with_mask", "without_mask", "mask_weared_incorrect"}
    for label, count in summary["kept"].items():
        assert len(list((out / label).glob("*.png"))) == count
    # A saved crop is exactly the edge rule's crop of its photo.
    scene = next(s for s in scenes for f in s.faces if min(f.box[2:]) >= 32)
    n, face = next((n, f) for n, f in enumerate(scene.faces) if min(f.box[2:]) >= 32)
    saved = np.asarray(Image.open(out / face.label / f"{scene.image.stem}_{n}.png"))
    assert np.array_equal(saved, crop_face(read_rgb(scene.image), face.box, 0.2))


@pytest.mark.slow
def test_prepare_cuts_the_detectors_boxes_from_the_training_photos_only(tmp_path):
    from edge.detectors import make_detector
    from facedata import split
    from facedata.voc import framed, load_scenes
    from tests.synthetic import write_voc
    from train.prepare import main as prepare_main

    voc = write_voc(tmp_path / "voc", photos=6)
    split_file = tmp_path / "split.json"
    split.main(["--scenes", str(voc), "--out", str(split_file), "--eval-fraction", "0.5"])
    out = tmp_path / "faces"
    assert prepare_main(["--voc", str(voc), "--split", str(split_file), "--out", str(out)]) == 0
    summary = json.loads((out / "prepare.json").read_text())
    assert summary["boxes"] == "detector" and summary["photos"] == 3
    assert sum(summary["kept"].values()) == 3 and summary["missed_by_detector"] == {}
    assert sum(summary["too_small"].values()) == 3       # the tiny annotated faces
    train = load_scenes(voc, split_file, "train")
    saved = sorted(p.name for p in out.rglob("*.png"))
    assert saved == sorted(f"{s.image.stem}_0.png" for s in train)
    # Each crop is the shipped detector's box (not the annotated one), cut by the edge's rule
    # from the photo as a 640x480 camera frame shows it — what edge eval and the Pi cut.
    detector = make_detector("yunet")
    for scene, frame in framed(train, (640, 480)):
        (face,) = detector.detect(frame)
        assert face.box != scene.faces[0].box
        crop = np.asarray(Image.open(out / scene.faces[0].label / f"{scene.image.stem}_0.png"))
        assert np.array_equal(crop, crop_face(frame, face.box, 0.2))
    # --boxes annotations cuts the annotated box instead, with the same rule.
    ann = tmp_path / "ann"
    assert prepare_main(["--voc", str(voc), "--split", str(split_file), "--out", str(ann),
                         "--boxes", "annotations", "--labels", "without_mask"]) == 0
    summary = json.loads((ann / "prepare.json").read_text())
    assert summary["boxes"] == "annotations" and list(summary["kept"]) == ["without_mask"]
    scene, frame = next((s, f) for s, f in framed(train, (640, 480))
                        if s.faces[0].label == "without_mask")
    crop = np.asarray(Image.open(ann / "without_mask" / f"{scene.image.stem}_0.png"))
    assert np.array_equal(crop, crop_face(frame, scene.faces[0].box, 0.2))


def test_prepare_names_a_missing_folder_or_split(tmp_path, capsys):
    from train.prepare import main as prepare_main

    assert prepare_main(["--voc", str(tmp_path / "none"), "--out", str(tmp_path / "o"),
                         "--boxes", "annotations"]) == 2
    assert "must hold images/ and annotations/" in capsys.readouterr().err
