"""The Raspberry Pi camera through picamera2 (from apt: ``python3-picamera2``).

picamera2 is imported when the source opens, so everything else runs where it isn't
installed. Its format names follow DRM, which lists channels from the *least* significant
byte: ``RGB888`` is B, G, R in memory and ``XRGB8888`` is B, G, R, X. OpenCV would call
those BGR and BGRA, and :func:`to_rgb` turns either into the RGB the classifier was trained
on. (``BGR888`` would be RGB in memory; the conversion handles it too.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from edge.plugins import Plugin
from edge.shared.params import Params, param
from edge.sources import Frame, SourceError, SourceUnusable

FORMAT = "RGB888"  # 3 bytes a pixel: a quarter less to copy than XRGB8888

# Memory order of each format, in OpenCV's terms -> the conversion to RGB.
_TO_RGB = {
    "RGB888": cv2.COLOR_BGR2RGB,
    "XRGB8888": cv2.COLOR_BGRA2RGB,
    "BGR888": None,
    "XBGR8888": cv2.COLOR_RGBA2RGB,
}


def to_rgb(array: np.ndarray, fmt: str) -> np.ndarray:
    """A picamera2 ``capture_array`` result in format ``fmt`` as contiguous RGB uint8."""
    if fmt not in _TO_RGB:
        raise SourceError(f"picamera2 format {fmt} is not supported (use {FORMAT})")
    channels = 4 if fmt.startswith("X") else 3
    if array.ndim != 3 or array.shape[2] != channels:
        raise SourceError(f"picamera2 gave shape {array.shape} for {fmt}")
    code = _TO_RGB[fmt]
    return np.ascontiguousarray(array) if code is None else cv2.cvtColor(array, code)


@dataclass(frozen=True)
class PiCameraParams(Params):
    width: int = param(640, min=16, max=8192, help="the resolution asked of the camera")
    height: int = param(480, min=16, max=8192)


class PiCameraSource:
    live = True

    def __init__(self, params: PiCameraParams = PiCameraParams(), camera_class=None):
        self.width, self.height = params.width, params.height
        self._camera_class = camera_class  # tests pass a stub; None means picamera2's
        self._camera = None
        self._format = FORMAT

    def open(self) -> None:
        camera_class = self._camera_class
        if camera_class is None:
            try:
                from picamera2 import Picamera2 as camera_class
            except ImportError as exc:
                raise SourceUnusable(
                    "picamera2 is not installed: on the Pi, sudo apt install python3-picamera2 "
                    "(and create the venv with --system-site-packages); off a Pi, give --source "
                    "a camera index, a video file or a folder of images (e.g. --source "
                    "build/demo/frames after make demo)") from exc
        try:
            camera = camera_class()
            config = camera.create_video_configuration(
                main={"size": (self.width, self.height), "format": FORMAT})
            camera.configure(config)
            camera.start()
        except Exception as exc:  # libcamera raises many kinds; all mean "no camera now"
            raise SourceError(f"the Pi camera could not start: {exc}") from exc
        # Convert by the format the camera was really configured with.
        self._format = camera.camera_config["main"]["format"]
        self._camera = camera

    def read(self) -> Frame:
        if self._camera is None:
            raise SourceError("read() before open()")
        try:
            array = self._camera.capture_array("main")
        except Exception as exc:
            raise SourceError(f"the Pi camera stopped: {exc}") from exc
        return Frame(to_rgb(array, self._format), time.monotonic())

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.stop()
            finally:
                camera.close()


PLUGIN = Plugin("source", "picamera2", PiCameraParams, PiCameraSource,
                "the Raspberry Pi camera through picamera2 (apt: python3-picamera2)", order=10)
