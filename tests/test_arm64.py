"""The current code on an emulated arm64 Raspberry Pi OS base (Bookworm, Python 3.11, the
PyPI arm64 wheels the installer put there) computes exactly what it computes here.

Runs when ``sudo make arm64-check`` has left its Bookworm root in build/arm64 (about 12
minutes to build); skips, saying so, otherwise — CI doesn't build roots."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.arm64 import check

pytestmark = [pytest.mark.slow, pytest.mark.root]

ROOTFS = check.BUILD / "bookworm" / "root"
VENV_PYTHON = Path("/opt/maskwatch/venv/bin/python")


def test_the_current_code_on_emulated_arm64_bookworm_matches_x86(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to chroot into the cached arm64 root")
    if not (ROOTFS / VENV_PYTHON.relative_to("/")).exists():
        pytest.skip(f"no cached arm64 Bookworm root with maskwatch installed in {ROOTFS}: "
                    "sudo make arm64-check builds it")
    entry = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    if not entry.exists() or "enabled" not in entry.read_text():
        pytest.skip("qemu-aarch64 is not registered with binfmt_misc (sudo make arm64-check "
                    "sets it up)")
    from edge.samples import write_frames

    frames = tmp_path / "frames"
    write_frames(frames, sequence=(("masked", 2), ("plain", 4), ("masked", 2)))
    config = tmp_path / "run.toml"
    config.write_text(check.RUN_CONFIG)
    here = tmp_path / "x86.json"
    subprocess.run([sys.executable, "-m", "edge.measure.replay", "--frames", str(frames),
                    "--config", str(config), "--json", str(here)], check=True,
                   cwd=check.ROOT, capture_output=True)
    inside = Path("/tmp/maskwatch-current")
    dest = ROOTFS / inside.relative_to("/")
    shutil.rmtree(dest, ignore_errors=True)
    for item in ("edge", "models/default", "models/blazeface", "models/yunet"):
        shutil.copytree(check.ROOT / item, dest / item,
                        ignore=shutil.ignore_patterns("__pycache__", "*.keras"))
    shutil.copytree(frames, dest / "frames")
    shutil.copy(config, dest / "run.toml")
    try:
        with check.mounted(ROOTFS):
            check.in_root(ROOTFS, ["env", "-C", str(inside), str(VENV_PYTHON), "-m",
                                   "edge.measure.replay", "--frames", str(inside / "frames"),
                                   "--config", str(inside / "run.toml"),
                                   "--json", str(inside / "arm64.json")],
                          env={"PYTHONPATH": str(inside)}, capture_output=True, timeout=900)
        compare = subprocess.run([sys.executable, "-m", "edge.measure.replay", "--compare",
                                  str(here), str(dest / "arm64.json")], cwd=check.ROOT,
                                 capture_output=True, text=True)
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    assert compare.returncode == 0, compare.stdout
    assert "0 differences" in compare.stdout


def _fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for target in ("proc", "sys", "dev/pts", "etc", "other"):
        (root / target).mkdir(parents=True)
    (root / "proc" / "cpuinfo").touch()
    return root


def test_a_rerun_releases_the_mounts_an_interrupted_run_left(tmp_path):
    """make arm64-check killed inside its mounts (timeout's SIGTERM), then run again: the
    real `mounted` of a killed process leaves nothing, and stale ones are released."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount")
    root = _fake_root(tmp_path)
    script = ("import sys, time\nfrom pathlib import Path\nfrom tests.arm64 import check\n"
              "import signal\nsignal.signal(signal.SIGTERM, check._stop_on_signal)\n"
              f"with check.mounted(Path({str(root)!r})):\n"
              "    print('mounted', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=check.ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "mounted"
        assert len(check.mounts_under(root)) == 5
        proc.terminate()                                   # what `timeout` does
        proc.wait(timeout=20)
    finally:
        proc.kill()
    assert check.mounts_under(root) == []
    # A harder stop (SIGKILL: nothing unwinds) leaves them, and mounting sysfs again then
    # fails ("sys already mounted"); the next run releases them first, however often
    # they were stacked.
    for kind, source, target in (check.OWN_MOUNTS[0], check.OWN_MOUNTS[0], check.OWN_MOUNTS[1]):
        subprocess.run(["mount", "-t", kind, source, str(root / target)], check=True)
    assert len(check.mounts_under(root)) == 3
    assert len(check.release_own_mounts(root)) == 3 and check.mounts_under(root) == []
    # Someone else's mount in the root: refused, and left alone.
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(root / "other")], check=True)
    try:
        with pytest.raises(SystemExit, match="did not make"):
            check.release_own_mounts(root)
        assert check.mounts_under(root) == [str((root / "other").resolve())]
    finally:
        subprocess.run(["umount", str(root / "other")], check=False)


def test_a_failed_step_names_its_suite_command_and_last_lines(monkeypatch, tmp_path):
    monkeypatch.setattr(check, "in_root", lambda root, cmd, env=None, **kw: subprocess.run(cmd, **kw))
    script = "for i in $(seq 40); do echo line$i; done; echo 'no module named cv2.utils' >&2; exit 3"
    with pytest.raises(check.StepFailed) as failed:
        check.step("bookworm", "deploy/install.sh", tmp_path, ["sh", "-c", script],
                   tmp_path / "install.log")
    report = failed.value.report()
    assert "bookworm: deploy/install.sh failed (exit 3)" in report
    assert "command: sh -c" in report and "no module named cv2.utils" in report
    assert "line40" in report and "line1\n" not in report          # the last lines only
    assert "line1\n" in (tmp_path / "install.log").read_text()      # all of it in the log
    rows = [{"os": "bookworm", "python": "3.11", "failed": "deploy/install.sh (exit 3)"},
            {"os": "trixie", "python": "3.13", "not_run": True}]
    summary = check.table(rows)
    assert "FAILED: deploy/install.sh (exit 3)" in summary and "not run" in summary
    assert not any(check.passed(r) for r in rows)
