"""The config: defaults load, every problem names its dotted key, check-config's exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import edge
from edge.__main__ import main
from edge.config import ConfigError, load_config, with_overrides
from tests.conftest import ROOT

HAAR = "[detector]\nname = 'haar'\n"   # the detector tables are checked for the chosen one


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "maskwatch.toml"
    path.write_text(text)
    return path


def errors_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_defaults_load_and_the_default_model_is_beside_the_package():
    config = load_config(None)
    assert config.source.kind == "picamera2"
    assert config.detector.name == "yunet" and config.detector.params.model == "n"
    assert config.model_path == Path(edge.__file__).resolve().parents[1] / "models" / "default"


def test_the_shipped_file_is_every_setting_of_the_code_with_its_default():
    """edge/maskwatch.toml is generated from the parameter classes: the defaults live in
    the code alone, and the file lists every table the registry knows, no more."""
    from edge.config import DEFAULT_CONFIG, defaults_toml, read_tables
    from edge.plugins import plugins

    assert DEFAULT_CONFIG.read_text() == defaults_toml(), \
        "edge/maskwatch.toml is stale: python -m edge config > edge/maskwatch.toml"
    tables = read_tables(None)
    assert set(tables["detector"]) - {"name"} == set(plugins("detector"))
    assert set(tables["source"]) - {"kind", "fps", "reconnect_min", "reconnect_max", "loop"} \
        == set(plugins("source"))
    assert set(tables["sinks"]) == set(plugins("sink"))
    # Loading the shipped file changes nothing.
    assert load_config(DEFAULT_CONFIG) == load_config(None)


def test_a_file_only_needs_the_keys_it_changes(tmp_path):
    config = load_config(write(tmp_path, "[tracker]\nk = 2\n[sinks.gpio]\nred = 5\n"))
    assert config.tracker.k == 2 and config.tracker.n == 5
    assert config.sinks.gpio.red == 5 and config.sinks.gpio.green == 17


@pytest.mark.parametrize("text, key, reason", [
    ("[tracker]\nbogus = 1\n", "tracker.bogus", "unknown key"),
    ("[sourc]\nkind = 'images'\n", "sourc", "unknown table"),
    ("[sinks.gpio]\nred = 'x'\n", "sinks.gpio.red", "expected an integer"),
    ("[model]\nthreads = true\n", "model.threads", "expected an integer"),
    ("[tracker]\nthreshold = 1.5\n", "tracker.threshold", "at most 1"),
    ("[tracker]\nk = 7\n", "tracker.k", "at most tracker.n"),
    ("[source]\nkind = 'webcam'\n", "source.kind", "must be one of"),
    ("[source]\nfps = -1\n", "source.fps", "at least 0"),
    ("[sinks.gpio]\ngreen = 27\n", "sinks.gpio.red", "pin 27 is already sinks.gpio.green"),
    ("[detector.haar]\nscale = 1.2\n", "detector.haar.scale", "unknown key"),
    (HAAR + "[detector.haar]\nmin_size = 'big'\n", "detector.haar.min_size",
     "expected an integer"),
    ("[detector]\nname = 'blazeface'\n[detector.blazeface]\nmodel = 1\n", "detector.blazeface.model",
     "expected a string"),
    ("[detector.yunet]\ntop_k = 1.5\n", "detector.yunet.top_k", "expected an integer"),
    ("[source]\nkind = 'images'\n", "source.images.path", "needs a folder"),
    ("[source]\npath = 'frames'\n", "source.path", "moved to source.images.path"),
    ("[detector.yunet]\ndetect_width = 16\n", "detector.yunet.detect_width", "at least 32"),
    ("[tracker\n", "not valid TOML", ""),
])
def test_each_problem_names_its_key(tmp_path, text, key, reason):
    message = errors_of(write(tmp_path, text))
    assert key in message and reason in message


def test_all_problems_are_reported_at_once(tmp_path):
    message = errors_of(write(tmp_path, "[tracker]\nk = 9\n[model]\nmargin = 2.0\n"
                                        "[service]\nwatchdog = 1\n"))
    assert all(key in message for key in ("tracker.k", "model.margin", "service.watchdog"))


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "frames").mkdir()
    config = load_config(write(tmp_path, "[source]\nkind = 'images'\n[source.images]\n"
                                         "path = 'frames'\n[source.opencv]\n"
                                         "url = 'rtsp://cam/stream'\n[model]\npath = 'm'\n"))
    assert Path(config.source.params.path) == tmp_path / "frames"
    assert config.source.opencv.url == "rtsp://cam/stream"
    assert config.model_path == tmp_path / "m"


def test_detector_files_are_relative_to_the_config_but_model_names_are_not(tmp_path):
    config = load_config(write(tmp_path, "[detector.yunet]\nmodel = 'mine/face.onnx'\n"
                                         "[detector.blazeface]\nmodel = 'short'\n"
                                         "[detector.haar]\ncascade = 'cascade.xml'\n"))
    assert config.detector.yunet.model == str(tmp_path / "mine" / "face.onnx")
    assert config.detector.blazeface.model == "short"
    assert config.detector.haar.cascade == str(tmp_path / "cascade.xml")
    assert load_config(write(tmp_path, "[detector.yunet]\nmodel = 's'\n")).detector.yunet.model == "s"


def test_an_unknown_detector_name_is_one_more_reported_problem(tmp_path):
    message = errors_of(write(tmp_path, "[detector]\nname = 'yolo'\n[tracker]\nk = 'x'\n"))
    assert "detector.name: must be one of 'yunet', 'blazeface', 'haar'" in message
    assert "tracker.k: expected an integer" in message


def test_command_line_source_and_model_override_the_file(tmp_path):
    config = load_config(None)
    assert with_overrides(config, source="0").source.kind == "opencv"
    folder = with_overrides(config, source=str(tmp_path))
    assert folder.source.kind == "images" and folder.source.params.path == str(tmp_path)
    stream = with_overrides(config, source="rtsp://cam/1", model="models/x")
    assert stream.source.params.url == "rtsp://cam/1" and stream.model.path == "models/x"
    with pytest.raises(ConfigError, match="--source"):
        with_overrides(config, source=str(tmp_path / "missing.mp4"))


def test_command_line_detector_overrides_the_name_and_keeps_its_table(tmp_path):
    config = load_config(write(tmp_path, "[detector.haar]\nmin_neighbors = 7\n"))
    haar = with_overrides(config, detector="haar").detector
    assert haar.name == "haar" and haar.params.min_neighbors == 7
    assert with_overrides(config, detector="blazeface").detector.params.model == "full"
    with pytest.raises(ConfigError, match="must be one of"):
        with_overrides(config, detector="yolo")


def test_eval_detector_flag_with_a_bad_table_exits_2(tmp_path, capsys):
    config = write(tmp_path, "[detector.haar]\nmin_size = 'big'\n")
    assert main(["eval", "--config", str(config), "--detector", "haar",
                 "--faces", str(tmp_path)]) == 2
    assert "detector.haar.min_size: expected an integer" in capsys.readouterr().err


def test_check_config_exit_codes(tmp_path, capsys):
    assert main(["check-config", str(write(tmp_path, "[tracker]\nk = 2\n"))]) == 0
    assert main(["check-config", str(write(tmp_path, "[tracker]\nk = 'two'\n"))]) == 2
    assert "tracker.k: expected an integer" in capsys.readouterr().err
    # A value only the detector itself rejects is still reported under its key.
    bad_haar = write(tmp_path, HAAR + "[detector.haar]\ncascade = 'none.xml'\n")
    assert main(["check-config", str(bad_haar)]) == 2
    assert "detector.haar.cascade: Haar cascade" in capsys.readouterr().err


def test_a_two_class_card_without_alarm_labels_alarms_on_without_mask_as_before():
    from edge.shared.card import alarm_labels
    assert alarm_labels({"classes": ["with_mask", "without_mask"]}) == (("without_mask",),
                                                                          ("with_mask",))
    three = {"classes": ["mask_weared_incorrect", "with_mask", "without_mask"],
             "alarm_labels": ["without_mask", "mask_weared_incorrect"], "masked_labels": ["with_mask"]}
    assert alarm_labels(three) == (("without_mask", "mask_weared_incorrect"), ("with_mask",))


def test_check_config_refuses_an_alarm_label_the_model_lacks_naming_key_and_classes(model, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'[model]\npath = "{model}"\n[tracker]\n'
                      'alarm_labels = ["without_mask", "mask_weared_incorrect"]\n')
    checked = subprocess.run([sys.executable, "-m", "edge", "check-config", str(config)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 2
    assert ("tracker.alarm_labels: the model has no class 'mask_weared_incorrect' (its "
            "classes: with_mask, without_mask)") in checked.stderr
    config.write_text(f'[model]\npath = "{model}"\n[tracker]\nmasked_labels = ["hat"]\n')
    checked = subprocess.run([sys.executable, "-m", "edge", "check-config", str(config)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 2 and "tracker.masked_labels: the model has no class 'hat'" \
        in checked.stderr
