"""The edge tests on the versions a Raspberry Pi actually gets (``make test`` runs this).

The Pi installs the ``edge`` extra beside apt's numpy (the installer pins pip to it), so a
Bookworm Pi runs numpy 1.24.2 with the OpenCV pip picks for it (4.11), and the extra's
floors are whatever a user's pip may keep. This machine's venv has the newest of
everything, so a call that only the newest OpenCV or numpy has would pass here and crash
every Bookworm Pi. For each OS in ``tests/pins/<os>.txt``:

1. a venv in ``build/pins/<os>``, built once and reused while the pins, the edge extra and
   the interpreter stay the same: the edge extra, constrained by the pins, plus the test
   tools (no TensorFlow: the Pi never has it);
2. the edge tests in it, the checkout's code first on ``sys.path``: every test module but
   the training ones (``TRAINING``), with ``-m "not slow"``, and the doctests of ``edge`` and
   ``facedata``. Among them, ``tests/test_new_install.py`` runs ``check-config`` and the demo
   in fresh processes, as a new user does.

Usage: ``python tests/pins/run.py [OS ...] [-- PYTEST ARGS]`` (default: every OS). Standard
library only. Exit 0 when every OS passed; otherwise the first failing pytest's code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BUILD = ROOT / "build" / "pins"
# The Python each OS ships; this machine's python3 stands in when it lacks that one.
PYTHONS = {"bookworm": "3.11", "trixie": "3.13"}
# What the tests need besides the edge extra: the demo's sample frames come from scikit-image.
TEST_TOOLS = ["pytest>=8", "hypothesis>=6.100", "scikit-image>=0.22"]
# Test modules that train or export (TensorFlow): never the Pi's.
TRAINING = {"test_augment.py", "test_cv.py", "test_efficientnet_lite.py", "test_export.py",
            "test_masks.py", "test_train.py", "test_newcomer.py", "test_arm64.py"}


def say(text: str) -> None:
    print(f"pins: {text}", flush=True)


def interpreter(version: str) -> tuple[str, str]:
    """The python executable for ``version`` (on PATH, or one pyenv installed), and a note
    when this one stands in for it."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for found in [shutil.which(f"python{version}"),
                  *sorted(map(str, pyenv.glob(f"{version}.*/bin/python{version}")))]:
        if found and subprocess.run([found, "-c", "pass"], capture_output=True).returncode == 0:
            return found, ""
    return sys.executable, (f" (Python {version} is not on this machine: "
                            f"{sys.version_info.major}.{sys.version_info.minor} stands in)")


def requirements() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        edge = tomllib.load(f)["project"]["optional-dependencies"]["edge"]
    return [*edge, *TEST_TOOLS]


def venv(name: str) -> Path:
    """``build/pins/NAME``: the edge extra under NAME's pins, built now unless up to date."""
    pins = HERE / f"{name}.txt"
    python, note = interpreter(PYTHONS[name])
    folder = BUILD / name
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"], check=True,
                             capture_output=True, text=True).stdout.strip()
    wanted = hashlib.sha256(json.dumps([pins.read_text(), requirements(), version]).encode())
    stamp = folder / ".stamp"
    if stamp.is_file() and stamp.read_text() == wanted.hexdigest():
        say(f"{name}: reusing {folder.relative_to(ROOT)}{note}")
        return folder
    say(f"{name}: building {folder.relative_to(ROOT)} on Python {version.split()[0]}{note}")
    started = time.monotonic()
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(folder)], check=True)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet",
           "--disable-pip-version-check"]
    subprocess.run([*pip, *requirements(), "--constraint", str(pins)], check=True)
    stamp.write_text(wanted.hexdigest())
    say(f"{name}: built in {time.monotonic() - started:.0f}s")
    return folder


def versions(folder: Path) -> str:
    script = ("import cv2, numpy, gpiozero, paho.mqtt, prometheus_client, importlib.metadata as m\n"
              "print(f'numpy {numpy.__version__}, opencv {cv2.__version__}, ai-edge-litert '"
              "f'{m.version(\"ai-edge-litert\")}, gpiozero {m.version(\"gpiozero\")}, paho-mqtt '"
              "f'{m.version(\"paho-mqtt\")}, prometheus-client {m.version(\"prometheus-client\")}')")
    found = subprocess.run([str(folder / "bin" / "python"), "-c", script], capture_output=True,
                           text=True)
    return found.stdout.strip() or found.stderr.strip().splitlines()[-1]


def edge_tests() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                  if p.name not in TRAINING)


def run_tests(name: str, folder: Path, extra: list[str]) -> int:
    say(f"{name}: {versions(folder)}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GPIOZERO_PIN_FACTORY": "mock"}
    python = str(folder / "bin" / "python")
    common = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=-ra"]
    args = ["--doctest-modules", "-m", "not slow", *edge_tests(), "edge", "facedata"]
    code = subprocess.run([python, *common, *args, *extra], cwd=ROOT, env=env).returncode
    if code:
        say(f"{name}: FAILED (pytest exit {code}) on the Pi's versions: {versions(folder)}")
        return code
    say(f"{name}: passed")
    return 0


def main(argv: list[str]) -> int:
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    names = (argv[:argv.index("--")] if "--" in argv else argv) or list(PYTHONS)
    unknown = [n for n in names if n not in PYTHONS]
    if unknown:
        print(f"pins: unknown OS {unknown[0]!r}: one of {', '.join(PYTHONS)}", file=sys.stderr)
        return 2
    for name in names:
        code = run_tests(name, venv(name), extra)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
