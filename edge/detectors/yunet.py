"""YuNet, a small CNN face detector, run by OpenCV's own ``cv2.FaceDetectorYN``.

No dependency beyond the ``opencv-python-headless`` 4.x the edge already uses: OpenCV's DNN
module runs the ONNX file and does the decoding and NMS. The files are vendored in
``models/yunet/`` (see its README for source, commit and sha256):

- ``"n"``: YuNet_n, 75,856 parameters, the better of the two on WIDER Face (AP hard 0.811);
- ``"s"``: YuNet_s, 54,608 parameters, about a third fewer operations (AP hard 0.768).

Both files have a fixed 640x640 shape in their graph, but OpenCV 4.x runs them at whatever
input size is set, so a frame is passed at its own size (after the optional shrink) and no
letterbox is needed. Time grows with the pixel count, which is what ``detect_width`` trades.
OpenCV's DNN runs on OpenCV's thread pool (``cv2.setNumThreads``; all cores by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.detectors import Detector, Found
from edge.plugins import Plugin
from edge.shared.params import ParamError, Params, param

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "yunet"
MODELS = {"n": "yunet_n_640_640.onnx", "s": "yunet_s_640_640.onnx"}


@dataclass(frozen=True)
class YuNetParams(Params):
    model: str = param("n", path="model", help="n | s | a path to a YuNet .onnx file")
    score: float = param(0.7, min=0.0, max=1.0, help="keep faces scoring at least this (0..1)")
    nms: float = param(0.3, min=0.0, max=1.0,
                       help="drop faces overlapping a better one by more than this IoU")
    top_k: int = param(5000, min=1, max=100_000, help="candidates that go into NMS")
    detect_width: int = param(640, min=0, max=8192,
                              help="frames wider than this are shrunk before detection; "
                                   "0 = never")

    @classmethod
    def problems(cls, values):
        width = values.get("detect_width")
        if width is not None and 0 < width < 32:
            return [("detect_width", f"must be 0 (never shrink) or at least 32, got {width}")]
        return []


class YuNetDetector(Detector):
    """Faces with YuNet through ``cv2.FaceDetectorYN`` (``YuNetParams``).

    Its network strides 32 pixels at its deepest (OpenCV pads its input to a multiple of 32
    with zeros): regions are snapped to that grid.

    ``detect_width``: time is roughly proportional to the pixels, so 320 on a 640x480 frame
    is about 4x faster, and finds faces down to about twice the size it otherwise would.
    """

    grid = 32

    def __init__(self, params: YuNetParams = YuNetParams()):
        model = params.model
        path = MODEL_DIR / MODELS[model] if model in MODELS else Path(model)
        if not path.is_file():
            raise ParamError("model", f"YuNet model {path} not found; use 'n', 's' or the path "
                                      "of a YuNet .onnx file")
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), params.score,
                                                  params.nms, params.top_k)
        except cv2.error as exc:
            raise ParamError("model", f"{path} is not a YuNet model OpenCV can load "
                                      f"({str(exc).strip().splitlines()[-1]})") from None
        self.path = path
        self.params = params
        self.detect_width = params.detect_width
        self._input_size: tuple[int, int] | None = None

    def input_scale(self, shape) -> float:
        width = shape[1]
        return self.detect_width / width if self.detect_width and width > self.detect_width else 1.0

    def find(self, frame: np.ndarray, scale: float | None = None) -> list[Found]:
        height, width = frame.shape[:2]
        scale = self.input_scale(frame.shape) if scale is None else scale
        image = frame
        if scale < 1.0:  # shrink first: fewer to convert
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        size = (bgr.shape[1], bgr.shape[0])
        if size != self._input_size:  # setInputSize rebuilds the prior boxes: only on change
            self._net.setInputSize(size)
            self._input_size = size
        _, rows = self._net.detect(bgr)
        faces = []
        for row in rows if rows is not None else ():
            # x, y, w, h, five landmarks as x, y pairs, score; in pixels of the detected image.
            x, y, w, h = (float(v) for v in row[:4] / scale)
            landmarks = tuple((float(px / scale), float(py / scale))
                              for px, py in row[4:14].reshape(5, 2))
            faces.append(Found(x, y, x + w, y + h, float(row[14]), landmarks))
        return faces


PLUGIN = Plugin("detector", "yunet", YuNetParams, YuNetDetector,
                "OpenCV's cv2.FaceDetectorYN with the YuNet model (models/yunet/)", order=10)
