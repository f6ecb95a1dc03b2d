"""Sources deliver RGB (not BGR) frames, in order, and fail in the way the pipeline expects."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.sources import SourceError, SourceUnusable
from edge.sources.images import ImageFolderSource, ImagesParams
from edge.sources.opencv import OpenCVParams, OpenCVSource
from edge.sources.picamera import PiCameraParams, PiCameraSource, to_rgb

RED_RGB = (230, 20, 20)


def two_tone(h=96, w=128) -> np.ndarray:
    """RGB: left half red, right half blue — any channel swap turns red into blue."""
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 2] = RED_RGB
    image[:, w // 2:] = (20, 20, 230)
    return image


def assert_red_left(rgb: np.ndarray):
    left, right = rgb[:, : rgb.shape[1] // 4].mean((0, 1)), rgb[:, -rgb.shape[1] // 4:].mean((0, 1))
    assert left[0] > 180 and left[2] < 70, left
    assert right[2] > 180 and right[0] < 70, right


def test_images_source_reads_rgb_in_name_order_and_skips_junk(tmp_path):
    for name in ("b.png", "a.png"):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(two_tone(), cv2.COLOR_RGB2BGR))
    (tmp_path / "c.jpg").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    source = ImageFolderSource(ImagesParams(str(tmp_path)))
    source.open()
    first, second = source.read(), source.read()
    assert (first.name, second.name) == ("a.png", "b.png")
    assert first.image.dtype == np.uint8 and first.image.shape == (96, 128, 3)
    assert tuple(first.image[0, 0]) == RED_RGB       # PNG is lossless: exact pixels
    assert source.read() is None                     # c.jpg unreadable, skipped; then the end
    assert not source.live


def test_images_source_without_images_fails_to_open(tmp_path):
    with pytest.raises(SourceError, match="no images"):
        ImageFolderSource(ImagesParams(str(tmp_path))).open()


def test_opencv_source_reads_a_video_file_as_rgb(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (128, 96))
    assert writer.isOpened()
    for _ in range(5):
        writer.write(cv2.cvtColor(two_tone(), cv2.COLOR_RGB2BGR))
    writer.release()
    source = OpenCVSource(OpenCVParams(url=str(path)))
    source.open()
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    source.close()
    assert len(frames) == 5 and not source.live
    for frame in frames:
        assert_red_left(frame.image)
    # File frames carry the file's own timeline: 10 frames/s.
    assert frames[1].t - frames[0].t == pytest.approx(0.1, abs=0.01)


def test_opencv_source_missing_file_and_dead_stream_raise_source_error(tmp_path):
    with pytest.raises(SourceError):
        OpenCVSource(OpenCVParams(url=str(tmp_path / "missing.mp4"))).open()
    assert OpenCVSource(OpenCVParams(device=7)).live
    assert OpenCVSource(OpenCVParams(url="rtsp://192.0.2.1/x")).live


class StubCamera:
    """Just enough of Picamera2: returns what a camera in ``fmt`` puts in memory."""

    fmt = "RGB888"
    instances: list["StubCamera"] = []

    def __init__(self):
        self.started = self.closed = False
        self.camera_config = None
        StubCamera.instances.append(self)

    def create_video_configuration(self, main):
        return {"main": dict(main, format=self.fmt)}

    def configure(self, config):
        self.camera_config = config

    def start(self):
        self.started = True

    def capture_array(self, stream="main"):
        w, h = self.camera_config["main"]["size"]
        bgr = cv2.cvtColor(two_tone(h, w), cv2.COLOR_RGB2BGR)
        if self.fmt == "XRGB8888":   # B, G, R, X
            return np.dstack([bgr, np.full((h, w), 255, np.uint8)])
        return bgr                   # RGB888: B, G, R

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True


@pytest.mark.parametrize("fmt", ["RGB888", "XRGB8888"])
def test_picamera2_memory_order_becomes_rgb(fmt, monkeypatch):
    monkeypatch.setattr(StubCamera, "fmt", fmt)
    source = PiCameraSource(PiCameraParams(64, 48), camera_class=StubCamera)
    source.open()
    frame = source.read()
    assert frame.image.shape == (48, 64, 3) and frame.image.flags.c_contiguous
    assert tuple(frame.image[0, 0]) == RED_RGB
    assert_red_left(frame.image)
    source.close()
    camera = StubCamera.instances[-1]
    assert camera.closed and not camera.started and source.live


def test_to_rgb_checks_the_shape_against_the_format():
    assert tuple(to_rgb(np.array([[[1, 2, 3, 0]]], np.uint8), "XRGB8888")[0, 0]) == (3, 2, 1)
    assert tuple(to_rgb(np.array([[[1, 2, 3]]], np.uint8), "BGR888")[0, 0]) == (1, 2, 3)
    with pytest.raises(SourceError):
        to_rgb(np.zeros((4, 4, 3), np.uint8), "XRGB8888")


def test_a_camera_that_fails_to_start_or_capture_raises_source_error():
    class Broken(StubCamera):
        def start(self):
            raise RuntimeError("Camera __init__ sequence did not complete")

    with pytest.raises(SourceError, match="could not start"):
        PiCameraSource(camera_class=Broken).open()

    class Dying(StubCamera):
        def capture_array(self, stream="main"):
            raise TimeoutError("dequeue timed out")

    source = PiCameraSource(camera_class=Dying)
    source.open()
    with pytest.raises(SourceError, match="stopped"):
        source.read()


def test_without_picamera2_installed_the_message_says_how_to_install_it():
    try:
        import picamera2  # noqa: F401
        pytest.skip("picamera2 is installed here")
    except ImportError:
        pass
    with pytest.raises(SourceUnusable, match="apt install python3-picamera2"):
        PiCameraSource().open()


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp"])
def test_the_header_gives_the_size_before_decoding(ext, tmp_path):
    from edge.shared.images import dimensions

    for w, h in ((128, 96), (17, 300)):
        ok, data = cv2.imencode(ext, np.zeros((h, w, 3), np.uint8))
        assert ok and dimensions(data.tobytes())[1:] == (w, h)


def test_a_webp_lossless_picture_and_a_progressive_jpeg_are_sized_too():
    from edge.shared.images import dimensions

    image = np.random.default_rng(0).integers(0, 255, (40, 70, 3), np.uint8)
    ok, data = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, 101])   # lossless
    assert dimensions(data.tobytes()) == ("WebP", 70, 40)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert dimensions(data.tobytes()) == ("JPEG", 70, 40)


def test_what_is_not_a_sane_picture_is_refused_with_the_reason(tmp_path):
    import os

    from edge.shared.images import UnreadableImage, read_bgr
    from tests.strange_files import bomb_png

    good = tmp_path / "good.png"
    cv2.imwrite(str(good), two_tone())
    cases = {"missing": tmp_path / "gone.png", "empty": tmp_path / "empty.png",
             "FIFO": tmp_path / "fifo.jpg", "folder": tmp_path / "dir.jpg",
             "Too many levels": tmp_path / "loop.png", "not a JPEG, PNG": tmp_path / "text.png",
             "pixel budget": bomb_png(tmp_path / "bomb.png", side=8000),
             "cut short": tmp_path / "cut.png", "OpenCV can decode": tmp_path / "body.png"}
    (tmp_path / "empty.png").touch()
    os.mkfifo(tmp_path / "fifo.jpg")
    (tmp_path / "dir.jpg").mkdir()
    os.symlink(tmp_path / "loop.png", tmp_path / "loop.png")
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:20])
    (tmp_path / "body.png").write_bytes(good.read_bytes()[:40])
    os.symlink(tmp_path / "nowhere.png", tmp_path / "gone.png")
    for reason, path in cases.items():
        with pytest.raises(UnreadableImage, match=reason):
            read_bgr(path)
    assert read_bgr(good).shape == (96, 128, 3)


def test_the_source_skips_and_counts_what_it_cannot_read(tmp_path, caplog):
    import os

    for name in ("a.png", "e.png"):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(two_tone(), cv2.COLOR_RGB2BGR))
    os.mkfifo(tmp_path / "b.jpg")
    os.symlink(tmp_path / "nowhere.png", tmp_path / "c.png")
    cv2.imwrite(str(tmp_path / "d.png"), two_tone())
    source = ImageFolderSource(ImagesParams(str(tmp_path)))
    source.open()
    (tmp_path / "d.png").unlink()                    # deleted between listing and reading
    assert [source.read().name, source.read().name] == ["a.png", "e.png"]
    assert source.read() is None and source.skipped == 3
    assert "skipping b.jpg: a FIFO" in caplog.text and "skipping c.png: missing" in caplog.text
