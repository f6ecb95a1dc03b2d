"""Keras → TFLite in the four flavours the edge can run.

``from_keras_model`` is the one path used: ``from_concrete_functions`` was seen to write
a model that outputs NaN with TF 2.21, which the parity gate exists to catch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

FLAVOURS = ("float32", "float16", "dynamic", "int8")


def convert(model, fmt: str, calibration: np.ndarray | None = None, progress: bool = True) -> bytes:
    """Return the ``.tflite`` bytes of ``model`` in format ``fmt``.

    ``int8`` is full-integer with uint8 pixel input and uint8 output; it needs
    ``calibration`` images (uint8, training split only) for its activation ranges.
    """
    import tensorflow as tf
    from tqdm import tqdm

    if fmt not in FLAVOURS:
        raise ValueError(f"unknown format '{fmt}' (known: {', '.join(FLAVOURS)})")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if fmt != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if fmt == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if fmt == "int8":
        if calibration is None or not len(calibration):
            raise ValueError("int8 needs calibration images from the training split")

        def representative() -> Iterator[list[np.ndarray]]:
            for image in tqdm(calibration, desc="calibrate int8", unit="img", disable=not progress):
                yield [image[np.newaxis].astype(np.float32)]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # Raw 0..255 pixels quantise exactly to uint8: the in-graph preprocessing does the rest.
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter.convert()
