"""Face classification with a TFLite file through the LiteRT interpreter.

The same code runs on the Pi and in export's parity gate, so the gate covers it too.
"""

from __future__ import annotations

import importlib.metadata
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.shared.card import FORMAT_PREFERENCE, ModelError, ModelFile, resolve_model
from edge.shared.crop import DEFAULT_MARGIN, resize_face
from edge.shared.params import Params, param

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class ModelParams(Params):
    """which classifier runs, and how faces are cut for it"""

    path: str = param("", path="file",
                      help="a model folder with card.json; empty = models/default of the install")
    format: str = param("", choices=("", *FORMAT_PREFERENCE),
                        help=" | ".join(FORMAT_PREFERENCE) + "; empty = fastest the card accepts")
    threads: int = param(2, min=1, max=64, help="interpreter threads")
    margin: float = param(DEFAULT_MARGIN, min=0.0, max=1.0,
                          help="crop margin around a face box, as a fraction of its size")


# Tried in order; the Pi has only the first.
RUNTIMES = (
    ("ai-edge-litert", "ai_edge_litert.interpreter"),
    ("tflite-runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow.lite"),
)


def _interpreter_class(runtime: str | None = None):
    for dist, module in RUNTIMES:
        if runtime is not None and dist != runtime:
            continue
        try:
            mod = __import__(module, fromlist=["Interpreter"])
        except ImportError:
            continue
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        return mod.Interpreter, f"{dist} {version}"
    wanted = runtime or " or ".join(d for d, _ in RUNTIMES)
    raise ModelError(f"no TFLite runtime found ({wanted}): pip install ai-edge-litert")


def load_interpreter(path: Path, threads: int = 2, runtime: str | None = None):
    """Return ``(interpreter, "runtime version")`` with tensors allocated."""
    interpreter_class, name = _interpreter_class(runtime)
    try:
        interpreter = interpreter_class(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        text = str(exc)
        if "version" in text and ("op" in text.lower() or "opcode" in text):
            raise ModelError(
                f"{path} needs a newer TFLite runtime than {name} ({text.strip()}); "
                "install ai-edge-litert (pip install ai-edge-litert) — tflite-runtime 2.14 "
                "cannot run the dynamic-range file") from exc
        raise ModelError(f"{path} could not be loaded by {name}: {text.strip()}; "
                         "re-run 'make export'") from exc
    return interpreter, name


class Classifier:
    """Classify RGB face crops with one accepted file of a model folder.

    >>> clf = Classifier("models/default")           # doctest: +SKIP
    >>> clf.classify([face_rgb])                     # doctest: +SKIP
    array([[0.98, 0.02]], dtype=float32)
    """

    def __init__(self, model: Path | str | ModelFile, fmt: str | None = None,
                 threads: int = 2, runtime: str | None = None):
        self.model = model if isinstance(model, ModelFile) else resolve_model(model, fmt)
        self.labels = self.model.classes
        self.size = self.model.input_size
        self.interpreter, self.runtime = load_interpreter(self.model.path, threads, runtime)
        self.input_details = self.interpreter.get_input_details()[0]
        self.output_details = self.interpreter.get_output_details()[0]
        shape = tuple(self.input_details["shape"][1:])
        if shape != (self.size, self.size, 3):
            raise ModelError(f"{self.model.path} takes input {shape}, but its card says "
                             f"{self.size}x{self.size}x3; re-run 'make export'")
        if self.output_details["shape"][-1] != len(self.labels):
            raise ModelError(f"{self.model.path} has {self.output_details['shape'][-1]} outputs for "
                             f"{len(self.labels)} classes in its card; re-run 'make export'")
        log.info("classifier %s (%s) loaded in %s", self.model.path.name, self.model.format,
                 self.runtime)

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Class probabilities for faces already resized: uint8 ``(N, size, size, 3)`` RGB."""
        faces = np.asarray(faces)
        out = np.empty((len(faces), len(self.labels)), dtype=np.float32)
        in_dtype = self.input_details["dtype"]
        in_scale, in_zero = self.input_details["quantization"]
        out_scale, out_zero = self.output_details["quantization"]
        # Our int8 files take raw uint8 pixels as they are (scale 1, zero point 0): no
        # per-face arithmetic on the Pi's hot path. Other parameters are honoured below.
        as_is = in_dtype == np.float32 or (faces.dtype == in_dtype and (in_scale, in_zero) == (1.0, 0))
        for i, face in enumerate(faces):
            if as_is:
                x = face[np.newaxis].astype(in_dtype, copy=False)
            else:
                x = face[np.newaxis].astype(np.float32)
                if in_scale:  # quantise raw pixels with the file's own parameters
                    x = np.round(x / in_scale + in_zero)
                info = np.iinfo(in_dtype)
                x = np.clip(x, info.min, info.max).astype(in_dtype)
            self.interpreter.set_tensor(self.input_details["index"], x)
            self.interpreter.invoke()
            y = self.interpreter.get_tensor(self.output_details["index"])[0]
            if self.output_details["dtype"] != np.float32:
                y = (y.astype(np.float32) - out_zero) * out_scale
            out[i] = y
        return out

    def classify(self, crops: list[np.ndarray]) -> np.ndarray:
        """Class probabilities for RGB uint8 face crops of any size."""
        if not crops:
            return np.empty((0, len(self.labels)), dtype=np.float32)
        return self.predict(np.stack([resize_face(c, self.size) for c in crops]))
