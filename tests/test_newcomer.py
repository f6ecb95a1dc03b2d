"""A newcomer's first hour: what a new user tried and tripped on, one test each (the GPIO
line off a Pi is tests/test_faults.py's no-pins test)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT


def run(args, env=None, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_camera_default_off_a_pi_points_at_source(model):
    try:
        import picamera2  # noqa: F401
        pytest.skip("picamera2 is installed here")
    except ImportError:
        pass
    for command in (["run"], ["bench", "--frames", "1"]):
        proc = run(["-m", "edge", *command, "--model", str(model)])
        assert proc.returncode == 2, proc.stderr
        assert "give --source" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_run_loop_replays_a_folder_until_stopped(model, tmp_path):
    from edge.samples import write_frames

    frames = tmp_path / "frames"
    write_frames(frames, sequence=(("plain", 3),))
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--model", str(model),
                             "--source", str(frames), "--loop"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)        # 3 frames at 10 frames/s would end after 0.3 s without --loop
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    stopped = [line for line in err.splitlines() if "stopped after" in line]
    assert stopped and int(stopped[0].split("after ")[1].split()[0]) > 10
    made = subprocess.run(["make", "-n", "run", "LOOP=1"], cwd=ROOT, capture_output=True,
                          text=True).stdout
    assert "--loop" in made


def test_make_test_names_its_system_packages_and_upgrades_nothing():
    readme = (ROOT / "README.md").read_text()
    for package in ("mosquitto", "chromium", "iproute2"):
        assert package in readme, package
    script = (ROOT / "tests" / "system-packages.sh").read_text()
    assert "--no-install-recommends" in script and "--no-upgrade" in script
    assert "upgrade " not in script.replace("--no-upgrade", "")


def test_train_checks_its_paths_before_importing_tensorflow(tmp_path):
    code = ("import sys\nfrom train.__main__ import main\n"
            f"code = main(['--data', {str(tmp_path / 'none')!r}, '--out', {str(tmp_path / 'm')!r}])\n"
            "print(code, 'tensorflow' in sys.modules)\n")
    proc = run(["-c", code])
    assert proc.stdout.split() == ["2", "False"], proc.stdout + proc.stderr
    assert "not found" in proc.stderr


def test_help_is_plain_text_with_defaults():
    edge_help = run(["-m", "edge", "--help"]).stdout
    assert "``" not in edge_help and ":class:" not in edge_help
    assert "check-config" in edge_help
    assert "(default: 100)" in run(["-m", "edge", "bench", "--help"]).stdout
    train_help = run(["-m", "train", "--help"]).stdout
    assert "(default: 224)" in train_help and "(default: efficientnet_lite0)" not in train_help
    assert "``" not in train_help


def test_there_is_a_licence_and_it_is_the_one_the_package_says():
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License")
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text()
