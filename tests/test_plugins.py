"""Adding a plugin is one new file plus its TOML table: the toy detector and the toy sink of
docs/plugins.md, added as that page says, are found, configured, checked and run; the
detector keeps the contract, the sink gets every violation."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest

import edge.detectors
from edge import plugins
from edge.config import ConfigError, load_config, schema
from tests.conftest import ROOT
from tests.test_detectors import assert_inside, keeps_the_contract

EXAMPLE = ROOT / "docs" / "examples" / "centre.py"


@pytest.fixture
def toy_added(tmp_path, monkeypatch):
    """The example as edge/detectors/centre.py would be (in a folder of the package's
    path, so the tree itself is untouched), with the registry's caches cleared."""
    folder = tmp_path / "detectors"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "centre.py")
    monkeypatch.setattr(edge.detectors, "__path__", [*edge.detectors.__path__, str(folder)])
    plugins.plugins.cache_clear()
    schema.cache_clear()
    yield
    plugins.plugins.cache_clear()
    schema.cache_clear()


def test_the_toy_detector_is_one_file_and_one_table(toy_added, tmp_path):
    from edge.config import defaults_toml
    from edge.pipeline import build_detector

    assert "centre" in plugins.plugins("detector")
    assert "[detector.centre]" in defaults_toml()
    config_file = tmp_path / "maskwatch.toml"
    config_file.write_text('[detector]\nname = "centre"\n[detector.centre]\nsize = 0.5\n')
    config = load_config(config_file)
    detector = build_detector(config)
    frame = np.zeros((480, 640, 3), np.uint8)
    (face,) = detector.detect(frame)
    assert face.box == (200, 120, 240, 240) and face.score == 0.9
    # Its table is checked like any other.
    config_file.write_text('[detector]\nname = "centre"\n[detector.centre]\nsize = 2.0\n')
    with pytest.raises(ConfigError, match="detector.centre.size: must be at most 1.0"):
        load_config(config_file)


def test_the_toy_detector_keeps_the_detector_contract(toy_added):
    from edge.detectors import FrameRefused, make_detector

    frame = np.zeros((480, 640, 3), np.uint8)
    for drift in (-0.8, -0.6, 0.0, 0.6, 0.8):
        faces = make_detector("centre", drift=drift).detect(frame)
        assert_inside(faces, frame)
        assert len(faces) == (0 if abs(drift) > 0.7 else 1)     # wholly outside: dropped
        if abs(drift) == 0.6:                                   # cut by the edge: clipped
            assert faces[0].x == 0 or faces[0].x + faces[0].w == 640
    with pytest.raises(FrameRefused):
        make_detector("centre").detect(np.zeros((2, 20000, 3), np.uint8))
    # And what tests/test_detectors.py holds every registered detector to.
    keeps_the_contract(make_detector("centre"))


SINK = ROOT / "docs" / "examples" / "textfile.py"


@pytest.fixture
def toy_sink_added(tmp_path, monkeypatch):
    """The example as edge/sinks/textfile.py would be, with the registry's caches cleared."""
    import edge.sinks

    folder = tmp_path / "sinks"
    folder.mkdir()
    shutil.copy(SINK, folder / "textfile.py")
    monkeypatch.setattr(edge.sinks, "__path__", [*edge.sinks.__path__, str(folder)])
    plugins.plugins.cache_clear()
    schema.cache_clear()
    yield
    plugins.plugins.cache_clear()
    schema.cache_clear()


def test_the_toy_sink_is_one_file_and_one_table_and_gets_every_violation(toy_sink_added, model,
                                                                         tmp_path):
    from edge.config import defaults_toml
    from edge.pipeline import Pipeline
    from edge.samples import write_frames

    assert "textfile" in plugins.plugins("sink") and "[sinks.textfile]" in defaults_toml()
    frames = tmp_path / "frames"
    write_frames(frames)
    lines = tmp_path / "violations.txt"
    config_file = tmp_path / "maskwatch.toml"
    config_file.write_text(f'[source]\nkind = "images"\n[source.images]\npath = "{frames}"\n'
                           f'[model]\npath = "{model}"\n[tracker]\ncooldown = 0.5\n'
                           f'[sinks.gpio]\nenabled = false\n[sinks.store]\nenabled = false\n'
                           f'[sinks.textfile]\nenabled = true\npath = "violations.txt"\n')
    log = io.StringIO()
    Pipeline(load_config(config_file), log_stream=log).run()      # closes the sinks at the end
    violations = [json.loads(line) for line in log.getvalue().splitlines()]
    violations = [e for e in violations if e["event"] == "violation"]
    assert violations
    assert [line.split()[2:] for line in lines.read_text().splitlines()] == \
        [[str(e["track"]), e["label"]] for e in violations]
    # Its table is checked like any other.
    config_file.write_text('[sinks.textfile]\nqueue = 0\n')
    with pytest.raises(ConfigError, match="sinks.textfile.queue: must be at least 1"):
        load_config(config_file)
