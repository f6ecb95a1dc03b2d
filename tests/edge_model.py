"""A tiny, hand-wired mask "classifier" for the edge tests, written as a real model folder.

It is a test double with a known answer, not a trained model: one 1x1 convolution measures
how much of the crop is strongly blue (``relu(B - R - 0.2)``), global pooling averages that,
and a softmax turns "more than 0.5% blue" into ``with_mask``. The demo's drawn mask is a
surgical blue and the astronaut's face is not, so on the demo frames it answers like a
good mask model would — which lets tests check the tracker, GPIO and log end to end.

The folder holds what export writes — ``card.json`` and ``NAME-float32.tflite``. The TFLite
file is committed (``tests/fixtures/``), so that the edge tests need no TensorFlow and run
on the Pi's versions (``tests/pins``); ``python -m tests.edge_model`` converts it again from
the Keras model, and ``tests/test_export.py`` holds the two to the same answers. Bench's
seed-style baseline adds the Keras model itself (:func:`add_keras`).
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edge.shared.card import SCHEMA_VERSION, sha256_of

NAME = "bluemask"
CLASSES = ("with_mask", "without_mask")
SIZE = 32
TFLITE = Path(__file__).resolve().parent / "fixtures" / f"{NAME}-float32.tflite"


def build_keras_model():
    import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Conv2D(1, 1, activation="relu", name="blue")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="decide")(x)
    model = keras.Model(inputs, outputs)
    # blue = relu(B - R - 0.2): zero for skin, hair and grey walls.
    model.get_layer("blue").set_weights([np.array([-1.0, 0.0, 1.0]).reshape(1, 1, 3, 1),
                                         np.array([-0.2])])
    # logit(with_mask) - logit(without_mask) = 1000 * (blue - 0.005)
    model.get_layer("decide").set_weights([np.array([[1000.0, 0.0]]), np.array([-5.0, 0.0])])
    return model


def convert() -> bytes:
    """The Keras model as a float32 TFLite file (TensorFlow)."""
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(build_keras_model()).convert()


def add_keras(folder: Path) -> Path:
    """``folder/NAME.keras``, written unless it is there (Keras)."""
    path = folder / f"{NAME}.keras"
    if not path.exists():
        build_keras_model().save(path)
    return path


def write_model_folder(folder: Path) -> Path:
    """Write ``card.json`` and the committed float32 TFLite file into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tflite = folder / TFLITE.name
    shutil.copyfile(TFLITE, tflite)
    card = {
        "schema": SCHEMA_VERSION,
        "name": NAME,
        "classes": list(CLASSES),
        "input": {"size": SIZE, "color": "RGB"},
        "formats": {"float32": {"accepted": True, "file": tflite.name,
                                "sha256": sha256_of(tflite), "bytes": tflite.stat().st_size}},
    }
    (folder / "card.json").write_text(json.dumps(card, indent=2))
    return folder


@functools.cache
def model_folder() -> Path:
    """The test model, built once per test session in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="maskwatch-test-model-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return write_model_folder(folder / NAME)


if __name__ == "__main__":
    TFLITE.write_bytes(convert())
    print(f"wrote {TFLITE}")
