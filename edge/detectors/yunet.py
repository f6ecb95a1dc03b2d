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

from pathlib import Path

import cv2
import numpy as np

from edge.detectors import Detector, DetectorParamError, Found

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "yunet"
MODELS = {"n": "yunet_n_640_640.onnx", "s": "yunet_s_640_640.onnx"}


class YuNetDetector(Detector):
    """Faces with YuNet through ``cv2.FaceDetectorYN``.

    :param model: ``"n"`` or ``"s"`` (the vendored files), or a path to a YuNet ``.onnx``.
    :param score: keep faces scoring at least this (0..1).
    :param nms: faces overlapping a better one by more than this IoU are dropped.
    :param top_k: the best this many candidates go into NMS.
    :param detect_width: frames wider than this are shrunk to it (aspect kept) before
        detection, and the boxes scaled back; 0 = never. Time is roughly proportional to
        the pixels, so 320 on a 640x480 frame is about 4x faster, and finds faces down to
        about twice the size it otherwise would.
    """

    def __init__(self, model: str = "n", score: float = 0.7, nms: float = 0.3,
                 top_k: int = 5000, detect_width: int = 640):
        path = MODEL_DIR / MODELS[model] if model in MODELS else Path(model)
        if not path.is_file():
            raise DetectorParamError("model", f"YuNet model {path} not found; use 'n', 's' or "
                                              "the path of a YuNet .onnx file")
        for name, value in (("score", score), ("nms", nms)):
            if not 0.0 <= value <= 1.0:
                raise DetectorParamError(name, f"must be between 0 and 1, got {value}")
        if top_k < 1:
            raise DetectorParamError("top_k", f"must be at least 1, got {top_k}")
        if detect_width < 0 or 0 < detect_width < 32:
            raise DetectorParamError("detect_width", f"must be 0 (never shrink) or at least 32, "
                                                     f"got {detect_width}")
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score, nms, top_k)
        except cv2.error as exc:
            raise DetectorParamError("model", f"{path} is not a YuNet model OpenCV can load "
                                              f"({str(exc).strip().splitlines()[-1]})") from None
        self.path = path
        self.score, self.nms, self.top_k = score, nms, top_k
        self.detect_width = detect_width
        self._input_size: tuple[int, int] | None = None

    def find(self, frame: np.ndarray) -> list[Found]:
        height, width = frame.shape[:2]
        scale = 1.0
        image = frame
        if self.detect_width and width > self.detect_width:  # shrink first: fewer to convert
            scale = self.detect_width / width
            size = (self.detect_width, max(1, round(height * scale)))
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
