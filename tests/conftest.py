"""Shared test settings: quiet TensorFlow, and the one place that locates the shared data."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

ROOT = Path(__file__).resolve().parents[1]
# The one setting for the shared datasets: MASKWATCH_DATA, default ../shared/data.
DATA = Path(os.environ.get("MASKWATCH_DATA", ROOT.parent / "shared" / "data"))


def shared_data(name: str) -> Path:
    """The shared dataset ``name`` (prajna, scenes), or skip the test saying why."""
    path = DATA / name
    if not path.is_dir():
        pytest.skip(f"shared dataset {path} is absent (set MASKWATCH_DATA to its parent folder)")
    return path


# The mask templates sit beside the datasets (../shared/masks); MASKWATCH_MASKS overrides.
MASKS = Path(os.environ.get("MASKWATCH_MASKS", DATA.parent / "masks"))


@pytest.fixture(scope="session")
def masks_dir() -> Path:
    """The shared mask templates and textures, or skip the test saying why."""
    if not (MASKS / "masks.cfg").is_file():
        pytest.skip(f"mask templates {MASKS} are absent (set MASKWATCH_MASKS, or MASKWATCH_DATA "
                    "to a folder beside them)")
    return MASKS


@pytest.fixture(scope="session")
def scenes_dir() -> Path:
    return shared_data("scenes")


@pytest.fixture(scope="session")
def prajna_dir() -> Path:
    return shared_data("prajna")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One real two-phase run of `python -m train`: input 75, random init, 1 epoch each."""
    from tests.synthetic import write_class_folders
    from train.__main__ import main

    tmp = tmp_path_factory.mktemp("tiny")
    root = write_class_folders(tmp / "data", per_class=20, size=64, seed=5)
    out = tmp / "models" / "tiny"
    code = main(["--data", str(root), "--out", str(out), "--input-size", "75", "--weights", "none",
                 "--epochs-head", "1", "--epochs-finetune", "1", "--batch-size", "8", "--seed", "1"])
    assert code == 0
    return out


@pytest.fixture(scope="session")
def model() -> Path:
    """The tests' model folder: a hand-wired blue-mask "classifier" (tests/edge_model.py)."""
    from tests import edge_model

    return edge_model.model_folder()


@pytest.fixture
def pins():
    """gpiozero's MockFactory for one test: pins whose states the test can read."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = None


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in held:
        conn.close()


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(size)``: a tmpfs of ``size`` ("4m") mounted in tmp_path, a disk that
    fills up; unmounted after the test. Skips without root or CAP_SYS_ADMIN."""
    mounted = []

    def mount(size: str = "4m") -> Path:
        if os.geteuid() != 0:
            pytest.skip("needs root to mount a small tmpfs as a disk that fills up")
        disk = tmp_path / f"disk{len(mounted)}"
        disk.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot mount a tmpfs here (no CAP_SYS_ADMIN)")
        mounted.append(disk)
        return disk

    yield mount
    for disk in mounted:
        subprocess.run(["umount", str(disk)], check=False)
