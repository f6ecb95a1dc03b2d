"""Where ImageNet weights come from, checked without importing TensorFlow (so a wrong path
is an error at once, not after 11 s of imports)."""

from __future__ import annotations

from pathlib import Path


class WeightsUnavailable(Exception):
    """ImageNet weights could not be had; the message names the three choices."""


def weights_help(reason: str) -> str:
    return (f"ImageNet weights are unavailable ({reason}). Choose one of:\n"
            "  --weights imagenet   Keras downloads them once into ~/.keras/models (needs internet);\n"
            "                       for efficientnet_lite0: python -m train.convert_weights, offline\n"
            "  --weights PATH       a local no-top weights file, e.g. "
            "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5\n"
            "  --weights none       train from scratch (much weaker on small datasets)")


def check_weights(weights: str | None) -> None:
    """Fail early, before the audit, when a weights file is named but absent."""
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise WeightsUnavailable(weights_help(f"{weights} is not a file"))
