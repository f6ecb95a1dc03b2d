"""What a new user types first, each in a fresh process, as on a Pi that has just installed
the ``edge`` extra: check the shipped config, then run the demo with the bundled model.
``tests/pins/run.py`` runs these on the versions a Bookworm and a Trixie Pi get, where an
import-time call their OpenCV lacks once stopped every command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def edge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"})


def test_the_shipped_config_passes_check_config():
    checked = edge("check-config", "edge/maskwatch.toml")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "edge/maskwatch.toml: ok"


def test_the_demo_raises_and_clears_a_violation_with_the_bundled_model(tmp_path):
    demo = edge("demo", "--out", str(tmp_path))
    assert demo.returncode == 0, demo.stderr
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["violation", "clear"]
    assert len(list((tmp_path / "annotated").glob("*.jpg"))) == 24
