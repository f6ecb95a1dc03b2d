"""BlazeFace, MediaPipe's face detector, run with the classifier's LiteRT interpreter.

MediaPipe is not needed at run time: this module re-implements the few steps of its
``face_detection`` graph around the bare ``.tflite`` files vendored in models/blazeface/.

1. **Letterbox** the RGB frame into the model's square input, keeping the aspect ratio and
   padding with black, then scale pixels to [-1, 1] (``ImageToTensorCalculator``).
2. **Run** the model: per anchor, 16 regression values (box centre offset, box size and six
   keypoints, in input pixels) and one score logit.
3. **Decode** each box relative to its SSD anchor (``SsdAnchorsCalculator`` and
   ``TensorsToDetectionsCalculator``), and turn logits into scores with a clipped sigmoid.
4. **Weighted NMS**: overlapping boxes are averaged, weighted by score, rather than only the
   best one kept, which steadies the box from frame to frame (``NonMaxSuppressionCalculator``).
5. **Map back** from the letterboxed input to frame pixels, exactly undoing step 1.

Two models: ``"short"`` (128x128, faces within ~2 m, the doorway case) and ``"full"``
(192x192 sparse, faces up to ~5 m, so also small faces in a crowd).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.detectors import Detector, Found
from edge.plugins import Plugin
from edge.shared.classifier import load_interpreter
from edge.shared.params import ParamError, Params, param

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "blazeface"

# Logits are clipped before the sigmoid, as MediaPipe does (score_clipping_thresh).
SCORE_CLIP = 100.0


@dataclass(frozen=True)
class ModelSpec:
    """What MediaPipe's graph config says about one model file.

    :param size: side of the square input tensor; also the x/y/w/h scale of the regressors.
    :param strides: one per SSD layer; consecutive equal strides share one anchor grid.
    :param anchors_per_layer: 2 when the graph sets ``interpolated_scale_aspect_ratio`` (an
        extra anchor per layer), else 1. With ``fixed_anchor_size`` every anchor is 1x1, so
        only the count matters, not the scales.
    """

    file: str
    size: int
    strides: tuple[int, ...]
    anchors_per_layer: int


# From mediapipe/modules/face_detection/face_detection_{short,full}_range.pbtxt (0.10.14).
MODELS = {
    "short": ModelSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2),
    "full": ModelSpec("face_detection_full_range_sparse.tflite", 192, (4,), 1),
}


def ssd_anchors(size: int, strides: tuple[int, ...], anchors_per_layer: int) -> np.ndarray:
    """Anchor centres ``(N, 2)`` as x, y in 0..1 of the input, in the model's output order.

    Like ``SsdAnchorsCalculator``: layers with the same stride are merged into one grid of
    ``ceil(size / stride)`` cells a side; cells go row by row, and each cell repeats its
    centre once per anchor of every merged layer. For the short model that is
    16x16 cells x 2 + 8x8 cells x 6 = 896; for the full model 48x48 x 1 = 2304.
    """
    grids = []
    layer = 0
    while layer < len(strides):
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
        cells = math.ceil(size / strides[layer])
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres = (np.stack([xs.ravel(), ys.ravel()], axis=1) + 0.5) / cells
        grids.append(np.repeat(centres, (last - layer) * anchors_per_layer, axis=0))
        layer = last
    return np.concatenate(grids).astype(np.float32)


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, size: int) -> np.ndarray:
    """Regressor rows ``(N, >=4)`` to boxes ``(N, 4)`` as x0, y0, x1, y1 in 0..1 of the input.

    The first four values are centre x, y offsets from the anchor and the box width and
    height, all in input pixels (hence ``/ size``); anchors are 1x1 so no anchor scaling.
    The remaining twelve values are keypoints (eyes, nose, mouth, ears), which we don't use.
    """
    cx = raw[:, 0] / size + anchors[:, 0]
    cy = raw[:, 1] / size + anchors[:, 1]
    w = raw[:, 2] / size
    h = raw[:, 3] / size
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def scores_from_logits(logits: np.ndarray) -> np.ndarray:
    """Sigmoid of logits clipped to +-SCORE_CLIP, as MediaPipe scores them.

    Computed in float64: ``exp(100)`` overflows float32 (harmlessly, but with a warning).
    """
    clipped = np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    return 1.0 / (1.0 + np.exp(-clipped))


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x0, y0, x1, y1 box with each of ``boxes``."""
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray,
                 iou_threshold: float) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression.

    Take the best remaining box and every remaining box overlapping it by more than
    ``iou_threshold``; emit the score-weighted mean of that group with the best score, and
    drop the group. Averaging uses the evidence of all anchors that fired on the face.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    remaining = np.arange(len(scores))
    merged = []
    while remaining.size:
        overlap = box_iou(boxes[remaining[0]], boxes[remaining])
        overlap[0] = 1.0  # the best box always joins its own group, even if degenerate
        group = remaining[overlap > iou_threshold]
        weights = scores[group]
        box = (boxes[group] * weights[:, None]).sum(axis=0) / weights.sum()
        merged.append((box, float(scores[group[0]])))
        remaining = remaining[overlap <= iou_threshold]
    return merged


@dataclass(frozen=True)
class Letterbox:
    """Where a frame sits inside the square model input: per-axis scale and padding.

    Scales are per axis because the resized size is rounded to whole pixels; using the
    exact ones makes ``to_frame`` the inverse of the resize, not an approximation.
    """

    size: int
    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int

    def to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes in 0..1 of the input to frame pixels (both as x0, y0, x1, y1)."""
        px = boxes[:, [0, 2]] * self.size
        py = boxes[:, [1, 3]] * self.size
        x = (px - self.pad_x) / self.scale_x
        y = (py - self.pad_y) / self.scale_y
        return np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], axis=1)

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """Frame-pixel boxes to 0..1 of the input: the inverse of ``to_frame``."""
        x = (boxes[:, [0, 2]] * self.scale_x + self.pad_x) / self.size
        y = (boxes[:, [1, 3]] * self.scale_y + self.pad_y) / self.size
        return np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], axis=1)


def letterbox(frame: np.ndarray, size: int,
              scale: float | None = None) -> tuple[np.ndarray, Letterbox]:
    """Fit ``frame`` into a ``size``x``size`` image, aspect ratio kept, centred, black bars;
    scaled by ``scale`` (no more than fits) rather than to fill the square, if given.

    Downscaling uses area averaging, so small faces in a big frame are not aliased away.
    """
    h, w = frame.shape[:2]
    scale = min(size / max(h, w), scale if scale is not None else float("inf"))
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, (new_w, new_h), interpolation=interpolation)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    image = cv2.copyMakeBorder(resized, pad_y, size - new_h - pad_y, pad_x, size - new_w - pad_x,
                               cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return image, Letterbox(size, new_w / w, new_h / h, pad_x, pad_y)


@dataclass(frozen=True)
class BlazeFaceParams(Params):
    model: str = param("full", path="model",
                       help="short (128x128, faces within ~2 m) | full (192x192, also small "
                            "faces) | a path to either .tflite file")
    # MediaPipe uses 0.5 for the short model and 0.6 for the full one; masks lower the
    # scores, and on the shared scenes 0.5 lifts the full model's recall (faces >= 32 px)
    # from 0.60 to 0.68 while precision stays above 0.9 (0.95 -> 0.92).
    score_threshold: float = param(0.5, min=0.0, max=1.0, help="keep boxes scoring at least this")
    nms_iou: float = param(0.3, min=0.0, max=1.0,
                           help="boxes overlapping more than this are merged (MediaPipe: 0.3)")
    threads: int = param(2, min=1, max=64, help="interpreter threads")
    min_size: int = param(0, min=0, max=8192,
                          help="drop faces narrower than this, frame pixels (0 keeps all)")


class BlazeFaceDetector(Detector):
    """Faces with BlazeFace through LiteRT (``BlazeFaceParams``); a model path is recognised
    by its input size."""

    regions_pay = False   # a fixed 128 or 192 px input: a region costs what the frame does

    def __init__(self, params: BlazeFaceParams = BlazeFaceParams()):
        model = params.model
        path = MODEL_DIR / MODELS[model].file if model in MODELS else Path(model)
        if not path.is_file():
            raise ParamError("model", f"BlazeFace model {path} not found; use 'short', "
                                      "'full' or a path (models/blazeface/ holds both)")
        self.interpreter, self.runtime = load_interpreter(path, params.threads)
        self._input = self.interpreter.get_input_details()[0]
        size = int(self._input["shape"][1])
        specs = {spec.size: spec for spec in MODELS.values()}
        if size not in specs:
            raise ParamError("model", f"{path} takes {size}x{size} input; BlazeFace "
                                      f"files take {' or '.join(str(s) for s in specs)}")
        self.spec = specs[size]
        self.anchors = ssd_anchors(self.spec.size, self.spec.strides, self.spec.anchors_per_layer)
        # The two outputs come in either order depending on the file; tell them apart by width.
        outputs = {int(d["shape"][-1]): d for d in self.interpreter.get_output_details()}
        if set(outputs) != {16, 1} or outputs[1]["shape"][1] != len(self.anchors):
            raise ParamError("model", f"{path} does not have BlazeFace's outputs: "
                                      f"{len(self.anchors)} anchors x 16 box values and x 1 "
                                      "score")
        self._boxes_index, self._scores_index = outputs[16]["index"], outputs[1]["index"]
        self.score_threshold = params.score_threshold
        self.nms_iou = params.nms_iou
        self.min_size = params.min_size

    def input_scale(self, shape) -> float:
        return self.spec.size / max(shape[:2])

    def find(self, frame: np.ndarray, scale: float | None = None) -> list[Found]:
        image, box = letterbox(frame, self.spec.size, scale)
        # Same [-1, 1] range as MediaPipe; the black bars become -1, as its BORDER_ZERO does.
        x = image[np.newaxis].astype(np.float32) / 127.5 - 1.0
        self.interpreter.set_tensor(self._input["index"], x)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._boxes_index)[0]
        scores = scores_from_logits(self.interpreter.get_tensor(self._scores_index)[0, :, 0])
        keep = scores >= self.score_threshold
        boxes = decode_boxes(raw[keep], self.anchors[keep], self.spec.size)
        faces = []
        for norm_box, score in weighted_nms(boxes, scores[keep], self.nms_iou):
            x0, y0, x1, y1 = (float(v) for v in box.to_frame(norm_box[np.newaxis])[0])
            # The width inside the frame, as the clipped box will have it.
            if min(x1, frame.shape[1]) - max(x0, 0) >= self.min_size:
                faces.append(Found(x0, y0, x1, y1, float(score)))
        return faces


PLUGIN = Plugin("detector", "blazeface", BlazeFaceParams, BlazeFaceDetector,
                "MediaPipe's BlazeFace through LiteRT (models/blazeface/)", order=20)
