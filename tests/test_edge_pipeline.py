"""The whole runtime with a real (tiny) TFLite model: detection, debounce, GPIO, sd_notify,
retries, SIGTERM, exit codes, and the eval / bench / demo commands."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.__main__ import main
from edge.config import load_config
from edge.demo import run_demo
from edge.detectors.haar import HaarDetector
from edge.notify import Notifier
from edge.pipeline import Pipeline, with_source
from edge.samples import sample_frames, write_frames
from edge.shared.crop import crop_face
from edge.sinks import SafeSink
from edge.sinks.gpio import GpioSink
from edge.sinks.log import LogSink
from edge.sources import Frame, SourceError
from facedata.voc import load_scenes
from tests.conftest import ROOT
from tests.edge_process import finish


@pytest.fixture(scope="session")
def few_frames(tmp_path_factory) -> Path:
    """A short sequence, for tests that only need the loop to go round: 2 masked, 4 plain."""
    folder = tmp_path_factory.mktemp("few")
    write_frames(folder, sequence=(("masked", 2), ("plain", 4)))
    return folder


def config_for(model: Path, source: Path | None = None, **tracker):
    config = load_config(None)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, path=str(model)),
                                 tracker=dataclasses.replace(config.tracker, **tracker))
    if source is not None:
        config = with_source(config, kind="images", table={"path": str(source)}, fps=0.0,
                             reconnect_min=0.01, reconnect_max=0.02)
    return config


class Listener:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET.

    A thread drains it as systemd would: the queue holds only a few datagrams, and the
    runtime drops (never waits for) messages that don't fit.
    """

    def __init__(self):
        # A short path: unix socket paths are limited to about 100 bytes.
        self.dir = tempfile.mkdtemp(prefix="mw-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.received: list[str] = []
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            if not data:      # shut down
                return
            self.received.append(data.decode())

    def messages(self, settle: float = 0.5) -> list[str]:
        """Everything received so far, after ``settle`` seconds for datagrams in flight."""
        time.sleep(settle)
        return list(self.received)

    def wait_for(self, text: str, timeout: float = 60.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in m for m in self.received):
                return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} on the notify socket; got {self.received}")

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


def test_haar_finds_the_astronaut_and_the_crop_is_her_face():
    from skimage import data
    photo = data.astronaut()
    (face,) = HaarDetector().detect(photo)
    # Her face spans roughly x 180-270, y 70-170 in the 512x512 photo.
    cx, cy = face.x + face.w / 2, face.y + face.h / 2
    assert 200 < cx < 250 and 100 < cy < 140 and 70 < face.w < 130
    crop = crop_face(photo, face.box, 0.2)
    assert crop.shape[0] == crop.shape[1] > face.w     # square, with a margin
    centre = crop[crop.shape[0] // 3: 2 * crop.shape[0] // 3, crop.shape[1] // 3: 2 * crop.shape[1] // 3]
    r, g, b = centre.reshape(-1, 3).mean(0)
    assert r > g > b and r > 120                       # skin, not the dark background


def test_demo_frames_drive_the_leds_and_the_log(model, few_frames, pins):
    """Masked → green; unmasked for 3 frames → one violation: red + buzzer and a JSON line."""
    config = config_for(model, few_frames, k=3, n=5, cooldown=0.5)
    out = io.StringIO()
    gpio = config.sinks.gpio
    sink = GpioSink(dataclasses.replace(gpio, violation_seconds=1.0, buzzer_seconds=0.25))
    pipeline = Pipeline(config, sinks=[SafeSink("gpio", lambda: sink),
                                       SafeSink("log", lambda: LogSink(out))])
    sample = sample_frames()
    sequence = ["masked"] * 4 + ["plain"] * 6 + ["masked"] * 12
    states, events = [], []
    for i, name in enumerate(sequence):
        # 8 frames/s on a made-up clock: exact binary fractions, no real time involved.
        result = pipeline.process(Frame(sample[name], t=i * 0.125))
        events += [(i, e.kind) for e in result.events]
        states.append(tuple(int(bool(pins.pin(p).state)) for p in (17, 27, 22)))
    pipeline.close()
    # The 3rd plain frame raises it; the evidence ends with frame 11 (2 of the last 5
    # frames unmasked), and 0.5 s later — frame 15 — it clears.
    assert events == [(6, "violation"), (15, "clear")]
    assert states[0] == states[3] == (1, 0, 0)          # masked: green
    assert states[4] == states[5] == (0, 0, 0)          # unmasked, not yet a violation
    assert states[6] == states[7] == (0, 1, 1)          # violation: red and buzzer
    assert states[8] == (0, 1, 0)                       # buzzer off after 0.25 s
    assert states[13] == (0, 1, 0)                      # masked again, violation not cleared
    assert states[14] == (0, 0, 0)                      # red off after 1 s
    assert states[15] == states[21] == (1, 0, 0)        # cleared: green again
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == \
        ["violation", "clear"]
    assert tuple(int(bool(pins.pin(p).state)) for p in (17, 27, 22)) == (0, 0, 0)


def test_faces_the_gate_holds_back_are_tracked_unjudged_and_never_classified(model, few_frames):
    from edge.quality import Gate
    from edge.sinks.annotate import GREY, draw

    config = dataclasses.replace(config_for(model, few_frames, k=1, n=1),
                                 judge=Gate(min_width=4096))
    pipeline = Pipeline(config, sinks=[])
    seen = []
    pipeline.classifier.classify = lambda crops: seen.append(len(crops)) or np.empty((0, 2))
    sample = sample_frames()
    results = [pipeline.process(Frame(sample["plain"], t=i * 0.1)) for i in range(5)]
    pipeline.close()
    assert seen == [0] * 5                               # nothing reached the classifier
    assert not any(r.events for r in results)            # and nothing was raised
    (track,) = results[-1].tracks
    assert track.unjudged == "small" and not pipeline.tracker.tracks[0].votes
    drawn = draw(sample["plain"], results[-1].tracks)
    x, y, w, h = track.box
    assert tuple(drawn[y + h // 2, x]) == GREY


def test_a_sink_that_raises_does_not_stop_the_loop(model, few_frames, caplog):
    seen = []

    class Broken:
        def handle(self, result):
            raise RuntimeError("boom")

        def close(self):
            pass

    class Counter(Broken):
        def handle(self, result):
            seen.append(result.name)

    config = config_for(model, few_frames)
    pipeline = Pipeline(config, sinks=[SafeSink("broken", Broken, retry_seconds=0.0),
                                       SafeSink("counter", Counter)])
    assert pipeline.run() == 6
    assert len(seen) == 6
    assert sum("sink broken failed" in r.getMessage() for r in caplog.records) == 1


class FlakyCamera:
    """A live source: 3 frames, a failed read, one failed reopen, then 3 more frames.

    It drops markers on the notify socket, so the test can see what the pipeline sent
    while the camera was down.
    """

    live = True

    def __init__(self, image, notify_path):
        self.image, self.path = image, notify_path
        self.reads = self.opens = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def mark(self, text):
        self.sock.sendto(text.encode(), self.path)

    def open(self):
        self.opens += 1
        if self.opens == 2:
            raise SourceError("no camera")
        if self.opens == 3:
            self.mark("TEST=up")

    def read(self):
        self.reads += 1
        if self.reads == 4:
            self.mark("TEST=down")
            raise SourceError("camera unplugged")
        return Frame(self.image, time.monotonic()) if self.reads <= 7 else None

    def close(self):
        pass


def test_a_failing_source_is_retried_and_the_watchdog_is_fed_while_it_is_down(
        model, few_frames, listener, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", listener.path)
    monkeypatch.setenv("WATCHDOG_USEC", "2")   # ping after every frame
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    camera = FlakyCamera(sample_frames()["plain"], listener.path)
    pipeline = Pipeline(config_for(model, few_frames), source=camera, sinks=[])
    assert pipeline.run() == 6
    assert camera.opens == 3
    messages = listener.messages()
    assert messages[0].startswith("READY=1")
    down, up = messages.index("TEST=down"), messages.index("TEST=up")
    assert "WATCHDOG=1" in messages[:down]
    # The loop is alive while it retries: systemd must not restart it (and give up after
    # StartLimitBurst) for a camera that is away; the status says what is wrong.
    assert "WATCHDOG=1" in messages[down:up]
    assert any(m.startswith("STATUS=source down") for m in messages[down:up])
    assert "WATCHDOG=1" in messages[up:]
    assert messages[-1] == "STOPPING=1"


@pytest.mark.slow
def test_notify_sends_ready_and_status_with_fps(model, few_frames, listener):
    pipeline = Pipeline(config_for(model, few_frames), sinks=[], notifier=Notifier(listener.path))
    pipeline.run(max_frames=3)
    messages = listener.messages()
    assert messages[0].startswith("READY=1\nSTATUS=first frame processed")
    assert any(m.startswith("STATUS=") and "frames/s" in m for m in messages)
    assert "WATCHDOG=1" not in messages        # no WATCHDOG_USEC: systemd doesn't want pings


@pytest.mark.slow
def test_sigterm_finishes_the_frame_turns_gpio_off_and_exits_0(model, tmp_path, listener):
    plain = tmp_path / "plain"
    write_frames(plain, sequence=(("plain", 40),))
    config = tmp_path / "maskwatch.toml"
    config.write_text(f"""
[source]
kind = "images"
fps = 5.0
[source.images]
path = "plain"
[model]
path = "{model}"
[sinks.store]
path = "{tmp_path / 'events.db'}"
""")
    env = dict(os.environ, GPIOZERO_PIN_FACTORY="mock", NOTIFY_SOCKET=listener.path,
               PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        listener.wait_for("READY=1")
        event = json.loads(proc.stdout.readline())      # the violation: red LED and buzzer on
        assert event["event"] == "violation"
        proc.send_signal(signal.SIGTERM)
        out, err = finish(proc, 60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "SIGTERM: stopping after this frame" in err
    assert "GPIO off: green=0, red=0, buzzer=0" in err
    assert "STOPPING=1" in listener.messages()


def test_missing_or_corrupt_model_exits_2_with_the_fix(model, few_frames, tmp_path, capsys):
    args = ["run", "--source", str(few_frames), "--model"]
    assert main(args + [str(tmp_path / "nothing")]) == 2
    assert "card.json not found" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    (broken / "card.json").write_text("{")
    assert main(args + [str(broken)]) == 2
    assert "corrupt" in capsys.readouterr().err
    shutil.copytree(model, broken, dirs_exist_ok=True)
    tflite = next(broken.glob("*.tflite"))
    whole = tflite.read_bytes()
    tflite.write_bytes(whole[:-8])                        # truncated: the card's bytes say so
    assert main(args + [str(broken)]) == 2
    assert f"is {len(whole) - 8} bytes, its card.json says {len(whole)}" in capsys.readouterr().err
    tflite.write_bytes(whole[:-8] + b"\0" * 8)            # same size, other bytes: the hash
    assert main(args + [str(broken)]) == 2
    assert "does not match the sha256" in capsys.readouterr().err


def test_a_missing_image_folder_exits_2(model, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(f'[source]\nkind = "images"\n[source.images]\npath = "gone"\n'
                      f'[model]\npath = "{model}"\n')
    assert main(["run", "--config", str(config)]) == 2
    assert "gone is not a folder" in capsys.readouterr().err


def test_annotate_writes_frames_for_a_file_source(model, few_frames, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(f'[sinks.gpio]\nenabled = false\n[source]\nfps = 0.0\n'
                      f'[sinks.store]\npath = "{tmp_path / "events.db"}"\n')
    out = tmp_path / "annotated"
    assert main(["run", "--config", str(config), "--source", str(few_frames), "--model",
                 str(model), "--annotate", str(out)]) == 0
    assert len(list(out.glob("*.jpg"))) == 6
    assert '"event": "violation"' in capsys.readouterr().out


@pytest.mark.slow
def test_demo_writes_annotated_frames_and_the_event_log(model, tmp_path):
    config = config_for(model)
    assert run_demo(config, tmp_path) == 0
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["violation", "clear"]
    assert len(list((tmp_path / "annotated").glob("*.jpg"))) == 24


def test_eval_faces_reports_accuracy_and_confusion(model, tmp_path, capsys):
    sample, detector = sample_frames(), HaarDetector()
    for label, name in (("with_mask", "masked"), ("without_mask", "plain")):
        (tmp_path / "faces" / label).mkdir(parents=True)
        (face,) = detector.detect(sample[name])
        crop = crop_face(sample[name], face.box, 0.2)
        for i in range(3):
            cv2.imwrite(str(tmp_path / "faces" / label / f"{i}.png"),
                        cv2.cvtColor(np.roll(crop, i, axis=1), cv2.COLOR_RGB2BGR))
    report = tmp_path / "faces.json"
    assert main(["eval", "--model", str(model), "--faces", str(tmp_path / "faces"),
                 "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["accuracy"] == 1.0 and result["confusion"] == [[3, 0], [0, 3]]
    assert result["per_class"]["without_mask"]["f1"] == 1.0
    assert "confusion (rows: true" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("detector", ["haar", "blazeface", "yunet"])
def test_eval_scenes_on_the_shared_photos(model, scenes_dir, tmp_path, capsys, detector):
    """The whole pipeline over the first 40 shared photos (skipped without MASKWATCH_DATA)."""
    report = tmp_path / "scenes.json"
    assert main(["eval", "--model", str(model), "--scenes", str(scenes_dir), "--detector",
                 detector, "--limit", "40", "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    scenes = load_scenes(scenes_dir)[:40]
    assert result["images"] == 40 and result["detector"] == detector
    assert result["all"]["faces"] == sum(len(s.faces) for s in scenes)
    big = result["min32"]
    assert big["faces"] == sum(a.box[2] >= 32 for s in scenes for a in s.faces)
    for metrics in (result["all"], big):
        assert 0.0 < metrics["detection_recall"] <= 1.0
        assert 0.0 < metrics["detection_precision"] <= 1.0
        assert metrics["matched"] <= min(metrics["faces"], metrics["detections"])
    # Small faces are hard for every detector: recall over faces >= 32 px is the better number.
    assert big["detection_recall"] > result["all"]["detection_recall"]
    # The pipeline's detection figures are the detector-only scoring's, on the same photos
    # in the same 640x480 frames.
    from edge.detectors import make_detector
    from edge.measure.detection import evaluate_detector
    from facedata.voc import framed

    params = dataclasses.asdict(getattr(load_config(None).detector, detector))
    placed = list(framed(scenes, (640, 480)))
    alone = evaluate_detector(make_detector(detector, **params), [s for s, _ in placed],
                              min_face=32, frames=[f for _, f in placed])
    for mine, theirs in ((result["all"], alone["all"]), (big, alone["large"])):
        assert mine["detection_recall"] == pytest.approx(theirs["recall"])
        assert mine["detection_precision"] == pytest.approx(theirs["precision"])
    assert "detection recall" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_reports_stages_and_the_seed_style_ratio(model, few_frames, tmp_path, capsys):
    from tests.edge_model import add_keras
    add_keras(model)
    report = tmp_path / "bench.json"
    assert main(["bench", "--model", str(model), "--source", str(few_frames), "--frames", "4",
                 "--warmup", "1", "--detector", "haar", "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["frame_size"] == [640, 480] and result["faces_per_frame"] == 1.0
    assert result["detector"] == "haar"
    # Detection alone for each detector, with its own config table, whichever one runs.
    config = load_config(None)
    for name in ("haar", "blazeface", "yunet"):
        timed = result["detectors"][name]
        assert timed["params"] == dataclasses.asdict(getattr(config.detector, name))
        assert timed["frames"] == 4 and timed["ms"] > 0
    for stage in ("capture", "detect", "crop", "classify", "track", "sinks",
                  "classify_per_face", "frame"):
        assert result["stages"][stage]["n"] == 4
    assert result["peak_rss_mib"] > 0 and result["fps"] > 0
    out = capsys.readouterr().out
    assert "detection alone at 640x480" in out
    assert not any(line.startswith("{") for line in out.splitlines())  # JSON: the file only
    # The seed-style loop (TensorFlow: train, never the Pi) times the same frames after it.
    from train.seed_loop import main as seed_loop
    assert seed_loop(["--bench", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["baseline"]["keras_model"].endswith("bluemask.keras")
    assert result["speedup"] > 0 and "speed-up" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_times_the_seeds_own_network_when_the_model_has_no_keras_file(
        model, few_frames, tmp_path, capsys):
    exported = tmp_path / "exported"
    shutil.copytree(model, exported, ignore=shutil.ignore_patterns("*.keras"))
    report = tmp_path / "bench.json"
    assert main(["bench", "--model", str(exported), "--source", str(few_frames), "--frames", "2",
                 "--warmup", "1", "--detector", "haar", "--json", str(report)]) == 0
    from train.seed_loop import main as seed_loop
    assert seed_loop(["--bench", str(report)]) == 0
    baseline = json.loads(report.read_text())["baseline"]
    assert baseline["keras_model"].startswith("the seed's network (InceptionV3 224 px")
    assert baseline["frames"] == 2 and baseline["mean_ms"] > 0
    assert "Keras: the seed's network" in capsys.readouterr().out


def test_without_picamera2_run_exits_2_instead_of_retrying(model, capsys):
    try:
        import picamera2  # noqa: F401
        pytest.skip("picamera2 is installed here")
    except ImportError:
        pass
    assert main(["run", "--model", str(model), "--source", "picamera2"]) == 2
    assert "apt install python3-picamera2" in capsys.readouterr().err
