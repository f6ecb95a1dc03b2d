"""A broken command line or missing data ends in one line that says what to do, and exit 2:
never a traceback. One test per case of issue 13, each through the real entry point."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from edge.__main__ import main as edge
from tests import edge_model
from tests.conftest import ROOT
from tests.synthetic import write_class_folders


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_eval_faces_missing_folder(model, tmp_path, capsys):
    assert edge(["eval", "--model", str(model), "--faces", str(tmp_path / "none")]) == 2
    assert "give --faces a folder with one sub-folder" in one_line_error(capsys)


def test_eval_faces_with_no_images_fails(model, tmp_path, capsys):
    for label in edge_model.CLASSES:
        (tmp_path / label).mkdir()
    assert edge(["eval", "--model", str(model), "--faces", str(tmp_path)]) == 2
    assert "no images" in one_line_error(capsys)


def test_eval_faces_with_only_unreadable_images_fails(model, tmp_path, capsys):
    for label in edge_model.CLASSES:
        (tmp_path / label).mkdir()
        (tmp_path / label / "broken.jpg").write_bytes(b"not a jpeg")
    assert edge(["eval", "--model", str(model), "--faces", str(tmp_path)]) == 2
    assert "none of its 2 images could be read" in one_line_error(capsys)


def test_eval_scenes_missing_or_empty_folder(model, tmp_path, capsys):
    assert edge(["eval", "--model", str(model), "--scenes", str(tmp_path / "none")]) == 2
    assert "must hold images/ and annotations/" in one_line_error(capsys)
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    assert edge(["eval", "--model", str(model), "--scenes", str(tmp_path)]) == 2
    assert "no annotated photos" in one_line_error(capsys)


def test_bench_on_a_folder_without_frames(model, tmp_path, capsys):
    (tmp_path / "frames").mkdir()
    assert edge(["bench", "--model", str(model), "--source", str(tmp_path / "frames")]) == 2
    assert "holds no images" in one_line_error(capsys)


def test_check_config_reports_every_problem_at_once(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[tracker]\nk = 7\nn = 5\nthreshold = 'high'\ncooldown = nan\n"
                      "[detector]\nname = 'yolo'\n")
    assert edge(["check-config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for problem in ("detector.name: must be one of", "tracker.threshold: expected a number",
                    "tracker.cooldown: must be a finite number",
                    "tracker.k: must be at most tracker.n (5), got 7"):
        assert problem in err


def test_check_config_loads_the_model_card_and_the_detectors_file(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[model]\npath = '/nonexistent'\n[detector.yunet]\nmodel = 'gone.onnx'\n")
    assert edge(["check-config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "model.path: /nonexistent/card.json not found" in err
    assert f"detector.yunet.model: YuNet model {tmp_path / 'gone.onnx'} not found" in err


@pytest.mark.slow
def test_train_with_a_missing_or_empty_dataset(tmp_path, caplog):
    from train.__main__ import main as train

    assert train(["--data", str(tmp_path / "none"), "--out", str(tmp_path / "m"),
                  "--weights", "none"]) == 2
    assert "none: not found" in caplog.text and "one sub-folder per class" in caplog.text
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    assert train(["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "m"),
                  "--weights", "none"]) == 2
    assert "need at least two non-empty class folders" in caplog.text
    tiny = write_class_folders(tmp_path / "tiny", per_class=2, size=48)
    assert train(["--data", str(tiny), "--out", str(tmp_path / "m"), "--weights", "none"]) == 2
    assert "too few distinct images" in caplog.text


def test_export_of_a_model_folder_without_its_training_run(model, tmp_path, caplog):
    from export.__main__ import main as export

    assert export(["--model", str(tmp_path / "none" / "model.keras")]) == 2
    assert f"run 'python -m train --out {tmp_path / 'none'}' first" in caplog.text
    # An exported folder (the bundled model ships no .keras): never advise training into it.
    bundled = tmp_path / "default"
    shutil.copytree(model, bundled, ignore=shutil.ignore_patterns("*.keras"))
    caplog.clear()
    assert export(["--model", str(bundled / "model.keras")]) == 2
    assert "train into a new folder" in caplog.text
    assert f"--out {bundled}" not in caplog.text


def test_prepare_with_a_split_for_other_photos(tmp_path, capsys):
    from tests.synthetic import write_voc
    prepare = pytest.importorskip("train.prepare", reason="the train extra (not on a Pi)").main

    voc = write_voc(tmp_path / "voc", photos=2)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["elsewhere.jpg"], "eval": []}))
    assert prepare(["--voc", str(voc), "--split", str(split), "--out", str(tmp_path / "o")]) == 2
    assert "made for other photos" in one_line_error(capsys)


@pytest.mark.parametrize("target, variable", [
    ("train", "DATA"), ("eval", "SCENES"), ("eval", "MASKS"), ("faces", "SCENES"),
    ("faces", "PRAJNA"), ("faces", "MASKS"), ("cv", "DATA"), ("detectors", "SCENES")])
def test_make_targets_name_missing_data_before_installing_anything(target, variable, tmp_path):
    # Every other input present, whether or not the shared data is beside this checkout.
    present = tmp_path / "present"
    present.mkdir()
    (present / "masks.cfg").touch()
    inputs = {name: present for name in ("DATA", "SCENES", "PRAJNA", "MASKS")}
    missing = inputs[variable] = tmp_path / "absent"
    result = subprocess.run(["make", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"]
                            + [f"{name}={path}" for name, path in inputs.items()],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"make: {missing}" in result.stderr and "not found" in result.stderr
    assert "README, Data" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_each_commands_help_shows_each_default_once_and_no_empty_ones():
    import re

    from edge.__main__ import build_parser
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        text = " ".join(sub.format_help().split())
        assert "(default: None)" not in text and "(default: False)" not in text, name
        for option in re.split(r" (?=-{1,2}[a-z])", text):
            assert option.count("(default:") <= 1, (name, option)
    assert "(default: 100)" in " ".join(commands["bench"].format_help().split())
