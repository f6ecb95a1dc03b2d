"""The parity gate: a TFLite file is published only if it behaves like the Keras model.

Every file is run through the edge runtime's own ``Classifier`` — the code the Pi runs —
so the gate covers our runtime as well as the converter.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from edge.shared.classifier import Classifier

# Per format: minimum top-1 agreement with Keras, maximum |Δp|, maximum accuracy drop (points).
DEFAULT_GATES = {
    "float32": {"min_agreement": 1.0, "max_abs_diff": 1e-3, "max_drop": None},
    "float16": {"min_agreement": 0.999, "max_abs_diff": None, "max_drop": None},
    "dynamic": {"min_agreement": 0.995, "max_abs_diff": None, "max_drop": 0.5},
    "int8": {"min_agreement": 0.995, "max_abs_diff": None, "max_drop": 0.5},
}


@dataclass
class Parity:
    agreement: float
    accuracy: float
    keras_accuracy: float
    drop_points: float
    mean_abs_diff: float
    max_abs_diff: float
    count: int

    def as_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in vars(self).items()}


def measure(classifier: Classifier, images: np.ndarray, labels: np.ndarray,
            keras_probs: np.ndarray, desc: str = "parity", progress: bool = True) -> Parity:
    """Compare ``classifier`` with the Keras probabilities on the held-out images."""
    probs = np.concatenate([classifier.predict(images[i:i + 16])
                            for i in tqdm(range(0, len(images), 16), desc=desc, unit="batch",
                                          disable=not progress)])
    if not np.isfinite(probs).all():
        # NaN compares false with everything: make it fail every threshold explicitly.
        return Parity(0.0, 0.0, _acc(keras_probs, labels), 100.0, float("inf"), float("inf"),
                      len(images))
    diff = np.abs(probs - keras_probs)
    acc = _acc(probs, labels)
    keras_acc = _acc(keras_probs, labels)
    return Parity(float((probs.argmax(1) == keras_probs.argmax(1)).mean()), acc, keras_acc,
                  100.0 * (keras_acc - acc), float(diff.mean()), float(diff.max()), len(images))


def _acc(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(1) == labels).mean())


def failures(parity: Parity, gate: dict) -> list[str]:
    """Why a file fails its gate; empty when it passes."""
    why = []
    if parity.agreement < gate["min_agreement"]:
        why.append(f"agreement {parity.agreement:.2%} < {gate['min_agreement']:.2%}")
    if gate["max_abs_diff"] is not None and not parity.max_abs_diff <= gate["max_abs_diff"]:
        why.append(f"max |Δp| {parity.max_abs_diff:.2g} > {gate['max_abs_diff']:.2g}")
    if gate["max_drop"] is not None and not parity.drop_points <= gate["max_drop"]:
        why.append(f"accuracy drop {parity.drop_points:.2f} points > {gate['max_drop']:.2f}")
    return why


def median_latency_ms(classifier: Classifier, face: np.ndarray, runs: int = 50, warmup: int = 5) -> float:
    """Median ms of one face's invoke, after warm-up. A measurement, never an assertion."""
    batch = face[np.newaxis]
    for _ in range(warmup):
        classifier.predict(batch)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        classifier.predict(batch)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)
