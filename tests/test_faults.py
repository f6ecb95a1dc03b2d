"""Faults a device alone at a doorway for weeks meets, each against the real
``python -m edge run`` process: a full disk, a silent stream, a stdout nobody reads, a hung
camera, SIGHUP, a broken video, a broken pin factory, junk input. Each test asserts the
outcome: exit code, time to stop, files whole or absent, events delivered or counted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.samples import write_frames
from tests.edge_process import (
    CYCLE,
    ROOT,
    config_file,
    run_measuring_peak,
    start,
    stop_and_time,
)

pytestmark = pytest.mark.slow


@pytest.mark.root
def test_snapshots_on_a_full_disk_are_whole_or_absent_and_none_is_lost(model, tmp_path,
                                                                      small_disk):
    disk = small_disk("4m")
    filler = disk / "filler"
    filler.write_bytes(b"\0" * (4096 * 1024 - 16 * 1024))   # 16 KB left: no JPEG fits
    snaps = disk / "snapshots"
    frames = tmp_path / "frames"
    write_frames(frames, sequence=CYCLE * 8)
    config = config_file(tmp_path, model, frames, extra=f'[sinks.snapshot]\nenabled = true\n'
                                                        f'dir = "{snaps}"\n')
    proc = start(["run", "--config", str(config)])
    events = []
    for line in proc.stdout:                         # the disk is full for two violations
        events.append(json.loads(line))
        if sum(e["event"] == "violation" for e in events) == 2:
            filler.unlink()                          # ...then space comes back
            break
    events += [json.loads(line) for line in proc.stdout]
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    violations = [e for e in events if e["event"] == "violation"]
    saved = sorted(snaps.glob("violation-*.jpg"))
    assert len(violations) >= 4
    # Every violation has its snapshot: those of the full disk were held and written later.
    assert len(saved) == len(violations)
    for path in saved:
        assert path.read_bytes().endswith(b"\xff\xd9") and cv2.imread(str(path)) is not None
    assert not list(snaps.glob("*.tmp"))
    assert err.count("Traceback") == 1 and "sink snapshot failed" in err
    assert "sink snapshot works again (0 results dropped while it failed)" in err


def test_a_stop_gets_through_a_silent_stream_in_time(model, tmp_path, silent_server):
    config = config_file(tmp_path, model, None)
    proc = start(["run", "--config", str(config), "--source",
                  f"rtsp://127.0.0.1:{silent_server}/stream"])
    time.sleep(2.0)                                      # inside the first open()
    took, err = stop_and_time(proc)
    assert proc.returncode == 0, err
    assert took < 10.0, f"stop took {took:.1f}s"          # the unit's TimeoutStopSec is 15 s
    assert "SIGTERM: stopping after this frame" in err and "stopped after 0 frames" in err


def test_a_stdout_nobody_reads_does_not_wedge_the_loop(model, tmp_path):
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    while True:                                          # nobody reads: the pipe is full
        try:
            os.write(write_end, b"x" * 4096)
        except BlockingIOError:
            break
    os.set_blocking(write_end, True)
    frames = tmp_path / "frames"
    write_frames(frames, sequence=CYCLE * 20)
    config = config_file(tmp_path, model, frames, extra="[sinks.gpio]\nenabled = true\n")
    proc = start(["run", "--config", str(config)], stdout=write_end)
    os.close(write_end)
    try:
        time.sleep(4.0)                                  # two violations wait for stdout
        took, err = stop_and_time(proc)
    finally:
        os.close(read_end)
    assert proc.returncode == 0, err
    assert took < 5.0, f"stop took {took:.1f}s"
    assert "GPIO off: green=0, red=0, buzzer=0" in err
    assert "event lines never reached stdout" in err


def test_a_hung_camera_cannot_keep_the_outputs_on_past_the_stop(model, tmp_path):
    """A source whose read never returns: the stop guard switches everything off and exits."""
    frames = tmp_path / "frames"
    write_frames(frames, sequence=(("plain", 1),))
    config = config_file(tmp_path, model, frames)
    script = textwrap.dedent(f"""
        import sys, time
        import edge.pipeline as pipeline
        from edge.__main__ import main
        from edge.sources.images import ImageFolderSource

        class Hangs(ImageFolderSource):
            live = True
            def read(self):
                if getattr(self, "served", False):
                    time.sleep(3600)                     # a capture that never returns
                self.served = True
                return super().read()

        pipeline.make_source = lambda config: Hangs(config.params)
        pipeline.STOP_GRACE = 1.0
        sys.exit(main(["run", "--config", {str(config)!r}]))
    """)
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)
    took, err = stop_and_time(proc)
    assert proc.returncode == 0, err
    assert took < 4.0, f"stop took {took:.1f}s"
    assert "still blocked 1s after the signal; switching the outputs off" in err
    assert "GPIO off: green=0, red=0, buzzer=0" in err


def test_sighup_stops_cleanly_and_the_annotated_video_is_whole(model, tmp_path):
    frames = tmp_path / "frames"
    write_frames(frames, sequence=CYCLE * 10)
    config = config_file(tmp_path, model, frames)
    video = tmp_path / "annotated.avi"
    proc = start(["run", "--config", str(config), "--annotate", str(video)])
    assert json.loads(proc.stdout.readline())["event"] == "violation"
    took, err = stop_and_time(proc, signal.SIGHUP)
    assert proc.returncode == 0, err
    assert "SIGHUP: stopping after this frame" in err
    assert "GPIO off: green=0, red=0, buzzer=0" in err
    capture = cv2.VideoCapture(str(video))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) >= 5    # a header written on close
    assert capture.read()[0]


@pytest.mark.parametrize("key, value", [("threshold", "nan"), ("cooldown", "nan"),
                                        ("threshold", "inf")])
def test_a_non_finite_number_in_the_config_is_refused(model, tmp_path, key, value):
    config = config_file(tmp_path, model, tmp_path)
    config.write_text(config.read_text().replace("cooldown = 0.5\n", f"{key} = {value}\n"))
    for command in (["check-config", str(config)], ["run", "--config", str(config)]):
        proc = start(command)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and f"tracker.{key}: must be a finite number" in err


def test_a_truncated_video_fails_instead_of_ending_normally(model, tmp_path):
    video = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(120):
        writer.write(np.full((240, 320, 3), i, np.uint8))
    writer.release()
    data = video.read_bytes()
    (tmp_path / "truncated.avi").write_bytes(data[: len(data) // 2])
    config = config_file(tmp_path, model, None)
    proc = start(["run", "--config", str(config), "--source", str(tmp_path / "truncated.avi")])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "truncated.avi ended after" in err and "of its 120 frames" in err
    proc = start(["run", "--config", str(config), "--source", str(video)])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err                      # the whole file still ends normally


@pytest.mark.parametrize("factory", ["nosuchfactory", None])
def test_no_pins_or_a_broken_pin_factory_is_one_line_not_a_traceback(model, tmp_path, factory):
    """A workstation (no pin factory at all) or a misspelt GPIOZERO_PIN_FACTORY: one line
    that says what to do, once, however long it runs."""
    frames = tmp_path / "frames"
    write_frames(frames, sequence=(("masked", 60),))
    config = config_file(tmp_path, model, frames, fps=10.0)
    env = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    if factory:
        env["GPIOZERO_PIN_FACTORY"] = factory
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)],
                            cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=60)                 # 6 s of frames
    assert proc.returncode == 0, err
    assert "GPIO off" not in err and "Traceback" not in err and "Warning" not in err
    assert err.count("sink gpio: no GPIO pins here") == 1
    assert "[sinks.gpio] enabled = false" in err


def test_a_folder_of_only_unreadable_files_exits_2_like_an_empty_one(model, tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    for name in ("a.jpg", "b.png"):
        (junk / name).write_bytes(b"not an image")
    config = config_file(tmp_path, model, junk)
    proc = start(["run", "--config", str(config)])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "none of the 2 image files" in err


def test_a_model_file_of_the_wrong_size_exits_2(model, tmp_path):
    broken = tmp_path / "model"
    shutil.copytree(model, broken)
    tflite = next(broken.glob("*.tflite"))
    tflite.write_bytes(tflite.read_bytes() + b"\0")
    config = config_file(tmp_path, broken, tmp_path)
    proc = start(["run", "--config", str(config)])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "its card.json says" in err


def peak_rss_mb(model: Path, folder: Path, tmp_path: Path) -> float:
    """Peak RSS of a whole ``edge run`` over ``folder``, annotating every frame."""
    config = config_file(tmp_path, model, folder, fps=0.0)
    proc, peak = run_measuring_peak(["run", "--config", str(config),
                                     "--annotate", str(tmp_path / "annotated")])
    assert proc.returncode == 0, proc.stderr
    return peak


def test_a_huge_frame_costs_little_more_memory_than_a_camera_frame(model, tmp_path):
    small, huge = tmp_path / "small", tmp_path / "huge"
    write_frames(small, sequence=(("plain", 1),))
    huge.mkdir()
    frame = cv2.imread(str(next(small.iterdir())))
    cv2.imwrite(str(huge / "photo.jpg"), cv2.resize(frame, (8000, 6000)))
    base, big = peak_rss_mb(model, small, tmp_path), peak_rss_mb(model, huge, tmp_path)
    # 144 MB a copy at full size; decoded at a quarter and shrunk to 1920 px, a few MB.
    assert big - base < 60, f"{base:.0f} MB for 640x480, {big:.0f} MB for 8000x6000"


def test_a_short_soak_holds_memory_and_file_descriptors_flat(model, tmp_path):
    """make soak's own check, briefly: RSS and open files after warm-up stay put. The warm-up
    (as make soak's) spans the first violations and snapshots, so that memory the allocator
    keeps after their first large buffers is settled before the first reading."""
    report = tmp_path / "soak.json"
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "edge.measure.soak", "--frames", "1000",
                           "--warmup", "500", "--model", str(model), "--detector", "blazeface",
                           "--json", str(report)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(report.read_text())
    assert result["ok"] and result["frames"] == 1000
    assert result["fds_end"] <= result["fds_start"]
    assert result["events"]["violation"] >= 10 and result["snapshots_kept"] >= 10
