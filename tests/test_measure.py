"""The measurement tools: the photo split, photos shown in the camera's frame, the detector
table, and ``edge eval --scenes --split``; on a synthetic VOC folder, and on the shared
scenes where they are present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.__main__ import main as edge_main
from edge.measure import compare_detectors
from edge.shared.images import UnreadableImage, read_rgb
from facedata import split
from facedata.voc import (
    Annotation,
    Scene,
    SplitError,
    framed,
    in_frame,
    load_scenes,
)
from tests.conftest import ROOT
from tests.synthetic import write_voc

SPLIT = ROOT / "splits" / "scenes.json"


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> Path:
    return write_voc(tmp_path_factory.mktemp("voc"), photos=6)


def scene(*faces) -> Scene:
    return Scene(Path("unused.jpg"), tuple(Annotation(label, box) for label, box in faces))


def test_a_photo_is_centred_in_the_frame_at_its_own_size():
    photo = np.full((300, 400, 3), 200, np.uint8)
    frame, placed = in_frame(photo, scene(("with_mask", (10, 20, 40, 50))), (640, 480))
    assert frame.shape == (480, 640, 3)
    assert (frame[90:390, 120:520] == 200).all() and frame[:90].max() == 0
    assert placed.faces[0].box == (130, 110, 40, 50)        # moved, not resized


def test_a_bigger_photo_is_shrunk_to_fit_and_a_smaller_one_never_enlarged():
    photo = np.full((960, 1280, 3), 200, np.uint8)
    frame, placed = in_frame(photo, scene(("without_mask", (100, 200, 80, 60))), (640, 480))
    assert frame.shape == (480, 640, 3) and frame.min() == 200   # 1280x960 fills 640x480
    assert placed.faces[0].box == (50, 100, 40, 30)
    tall = np.full((1000, 300, 3), 200, np.uint8)                # only the height must shrink
    frame, placed = in_frame(tall, scene(("with_mask", (0, 0, 100, 100))), (640, 480))
    assert placed.faces[0].box == (248, 0, 48, 48)
    assert (frame[:, 248:392] == 200).all() and frame[:, :248].max() == 0
    same, unchanged = in_frame(photo, scene(("with_mask", (1, 2, 3, 4))), None)
    assert same is photo and unchanged.faces[0].box == (1, 2, 3, 4)


def test_the_split_is_by_photo_seeded_disjoint_and_stratified():
    faces = [("without_mask", (0, 0, 40, 40))] * 2 + [("with_mask", (0, 0, 40, 40))]
    scenes = ([Scene(Path(f"u{n}.jpg"), tuple(Annotation(*f) for f in faces)) for n in range(20)]
              + [Scene(Path(f"m{n}.jpg"), (Annotation("with_mask", (0, 0, 40, 40)),))
                 for n in range(80)])
    parts = split.make_split(scenes, 0.3, seed=1)
    assert parts == split.make_split(scenes, 0.3, seed=1)
    assert parts != split.make_split(scenes, 0.3, seed=2)
    assert not set(parts["train"]) & set(parts["eval"])
    assert len(parts["train"]) + len(parts["eval"]) == 100 and len(parts["eval"]) == 30
    # The 20 photos with unmasked faces are spread like the rest: 6 of them held out.
    assert sum(name.startswith("u") for name in parts["eval"]) == 6


def test_the_split_command_writes_a_file_that_eval_and_prepare_read(voc, tmp_path, capsys):
    out = tmp_path / "split.json"
    assert split.main(["--scenes", str(voc), "--out", str(out), "--eval-fraction", "0.5"]) == 0
    doc = json.loads(out.read_text())
    assert len(doc["train"]) == len(doc["eval"]) == 3
    assert doc["counts"]["eval"]["faces_min32"] and "wrote" in capsys.readouterr().out
    held_out = load_scenes(voc, out, "eval")
    assert sorted(s.image.name for s in held_out) == doc["eval"]


def test_a_split_that_does_not_fit_the_photos_is_refused(voc, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": ["photo0.jpg"], "eval": ["photo0.jpg"]}))
    with pytest.raises(SplitError, match="in both parts"):
        load_scenes(voc, bad, "eval")
    bad.write_text(json.dumps({"train": ["photo0.jpg"], "eval": ["elsewhere.jpg"]}))
    with pytest.raises(SplitError, match="made for other photos"):
        load_scenes(voc, bad, "eval")
    with pytest.raises(SplitError, match="not found"):
        load_scenes(voc, tmp_path / "none.json", "eval")
    with pytest.raises(SplitError, match="part must be one of"):
        load_scenes(voc, SPLIT, "test")


def test_eval_scores_only_the_held_out_photos(voc, tmp_path, capsys):
    from tests import edge_model

    out = tmp_path / "split.json"
    split.main(["--scenes", str(voc), "--out", str(out), "--eval-fraction", "0.5"])
    report = tmp_path / "eval.json"
    assert edge_main(["eval", "--model", str(edge_model.model_folder()), "--scenes", str(voc),
                      "--split", str(out), "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["images"] == 3 and result["part"] == "eval" and result["frame"] == [640, 480]
    assert result["detector"] == "yunet"
    # Every astronaut is found; the tiny annotated "face" counts only among all faces.
    assert result["min32"]["faces"] == 3 and result["min32"]["detection_recall"] == 1.0
    assert result["all"]["faces"] == 6
    assert "the eval part" in capsys.readouterr().out
    assert edge_main(["eval", "--model", str(edge_model.model_folder()), "--scenes", str(voc),
                      "--split", str(tmp_path / "none.json")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow
def test_the_detector_table_has_every_row_for_each_part(voc, tmp_path, capsys):
    out = tmp_path / "split.json"
    split.main(["--scenes", str(voc), "--out", str(out), "--eval-fraction", "0.5"])
    report = tmp_path / "detectors.json"
    assert compare_detectors.main(["--scenes", str(voc), "--split", str(out),
                                   "--json", str(report)]) == 0
    summary = json.loads(report.read_text())
    rows = summary["rows"]
    assert {"blazeface full", "blazeface short", "haar tuned"} <= set(rows)
    assert {(r["params"]["model"], r["params"]["detect_width"]) for r in rows.values()
            if r["detector"] == "yunet"} == {(m, w) for m in "ns" for w in (320, 480, 640)}
    for part in ("train", "eval"):
        assert set(summary["results"][part]) == set(rows)
        assert summary["results"][part]["yunet n w640 s0.7"]["large"]["recall"] == 1.0
    assert all(ms > 0 for ms in summary["ms_640x480"].values())
    assert "ms@640x480" in capsys.readouterr().out


def test_framed_skips_an_unreadable_photo(voc, tmp_path, caplog):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    scenes = load_scenes(voc)[:1] + [Scene(broken, ())]
    assert [s.image for s, _ in framed(scenes, (640, 480))] == [scenes[0].image]
    assert "skipping unreadable" in caplog.text
    with pytest.raises(UnreadableImage):
        read_rgb(broken)


def test_the_committed_split_covers_the_shared_scenes(scenes_dir):
    doc = json.loads(SPLIT.read_text())
    names = {s.image.name for s in load_scenes(scenes_dir)}
    assert set(doc["train"]) | set(doc["eval"]) == names
    assert not set(doc["train"]) & set(doc["eval"])
    assert 0.25 < len(doc["eval"]) / len(names) < 0.35
    # Remade from the photos with its own settings, it comes out the same.
    assert split.make_split(load_scenes(scenes_dir), doc["eval_fraction"], doc["seed"],
                            doc["min_face"]) == {"train": doc["train"], "eval": doc["eval"]}
    for part in ("train", "eval"):
        assert doc["counts"][part]["faces_min32"]["without_mask"] >= 20
