"""Reading a class-folder dataset: decode every file once, audit it, find duplicates, split.

The audit skips what can't be trained on and says why; the split keeps every group on
one side, so the held-out figures are honest. A group joins exact and near-duplicate
images, and the files a folder's ``manifest.csv`` gives one ``group``: the crops of one
photo, a pasted-mask twin and its original, a synthetic mask and the face it was put on.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, UnidentifiedImageError
from sklearn.model_selection import StratifiedGroupKFold
from tqdm import tqdm

from edge.shared.crop import resize_face
from train import manifest

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MIN_SIDE = 32
# Perceptual-hash Hamming distance (of 64 bits) at or below which two images count as
# near-duplicates: recompressions, small resizes and crops stay within it.
NEAR_DUPLICATE_BITS = 6


@dataclass
class Dataset:
    """Decoded images (uint8 RGB, resized to one size) with labels and an audit trail."""

    classes: list[str]
    paths: list[Path]
    labels: np.ndarray            # int class index per image
    images: np.ndarray            # (N, size, size, 3) uint8 RGB
    groups: np.ndarray            # duplicate-group id per image
    skipped: list[dict] = field(default_factory=list)
    converted: Counter = field(default_factory=Counter)
    empty_classes: list[str] = field(default_factory=list)
    exact_duplicates: int = 0     # files whose pixels repeat an earlier file
    near_duplicates: int = 0      # further files within NEAR_DUPLICATE_BITS of another

    def audit_summary(self) -> dict:
        return {
            "images": len(self.paths),
            "per_class": {c: int((self.labels == i).sum()) for i, c in enumerate(self.classes)},
            "skipped": self.skipped,
            "converted_to_rgb": dict(self.converted),
            "empty_classes": self.empty_classes,
            "exact_duplicates": self.exact_duplicates,
            "near_duplicates": self.near_duplicates,
            "duplicate_groups": int(sum(1 for n in Counter(self.groups.tolist()).values() if n > 1)),
            "near_duplicate_bits": NEAR_DUPLICATE_BITS,
        }


def decode_rgb(path: Path) -> tuple[np.ndarray, str]:
    """Decode an image file fully to RGB uint8; return it and its original PIL mode.

    Raises ValueError with the reason for anything that isn't a usable image.
    """
    try:
        with Image.open(path) as img:
            img.load()  # forces a full decode, so truncated files fail here
            mode = img.mode
            if mode != "RGB":
                # Palette images with transparency must pass through RGBA to keep colours.
                if mode == "P" and "transparency" in img.info:
                    img = img.convert("RGBA")
                img = img.convert("RGB")
            array = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"not a readable image ({type(exc).__name__}: {exc})") from exc
    if min(array.shape[:2]) < MIN_SIDE:
        raise ValueError(f"too small ({array.shape[1]}x{array.shape[0]} px, minimum {MIN_SIDE})")
    return array, mode


def list_class_files(data_dirs: list[Path]) -> tuple[list[str], list[tuple[Path, str]], list[str]]:
    """Classes (union of sub-folder names, sorted), (file, class) pairs, and empty classes."""
    files: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for data_dir in data_dirs:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise FileNotFoundError(f"dataset folder {data_dir} does not exist")
        for class_dir in sorted(p for p in data_dir.iterdir() if p.is_dir()):
            seen.add(class_dir.name)
            files += [(f, class_dir.name) for f in sorted(class_dir.rglob("*"))
                      if f.is_file() and not f.name.startswith(".")]
    with_files = {c for _, c in files}
    empty = sorted(seen - with_files)
    classes = sorted(with_files)
    if len(classes) < 2:
        raise ValueError(f"need at least two non-empty class folders in {', '.join(map(str, data_dirs))}; "
                         f"found {classes or 'none'}")
    return classes, files, empty


def group_duplicates(pixel_digests: list[str], hashes: np.ndarray,
                     keys: list[str | None] | None = None) -> tuple[np.ndarray, int, int]:
    """Union-find over exact (same pixels) and near (pHash within NEAR_DUPLICATE_BITS)
    pairs, and over files sharing a manifest group ``keys`` (None: no group).

    Returns each file's group, the exact and the near duplicates found (not counting files
    joined only by a key)."""
    n = len(pixel_digests)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    exact = 0
    for i, digest in enumerate(pixel_digests):
        if digest in first:
            parent[find(i)] = find(first[digest])
            exact += 1
        else:
            first[digest] = i
    # Pairwise Hamming distances between 64-bit hashes, one row block at a time.
    bits = np.unpackbits(hashes.view(np.uint8).reshape(n, 8), axis=1).astype(np.uint8)
    for start in range(0, n, 512):
        block = bits[start:start + 512]
        dist = (block[:, None, :] != bits[None, :, :]).sum(axis=2)
        for a, b in zip(*np.nonzero(dist <= NEAR_DUPLICATE_BITS)):
            i, j = start + int(a), int(b)
            if i < j:
                parent[find(j)] = find(i)
    near = n - len({find(i) for i in range(n)}) - exact
    first_of_key: dict[str, int] = {}
    for i, key in enumerate(keys or ()):
        if key:
            parent[find(i)] = find(first_of_key.setdefault(key, i))
    roots = np.array([find(i) for i in range(n)])
    return roots, exact, near


def load_dataset(data_dirs: list[Path], size: int, progress: bool = True,
                 exclude_photos: set[str] | None = None,
                 groups: dict[Path, str] | None = None) -> Dataset:
    """Decode and audit every file under ``data_dirs``; resize the good ones to ``size``.

    ``exclude_photos``: leave out the files whose manifest row names one of these photos
    (crops of a photo and the synthetic masks put on them): a cross-validation fold, or a
    held-out part. ``groups``: more group names by resolved path, beside the manifests'."""
    classes, files, empty = list_class_files([Path(d) for d in data_dirs])
    rows: dict[Path, dict] = {}
    for data_dir in data_dirs:
        rows.update(manifest.read(Path(data_dir)))
    if exclude_photos:
        files = [(f, c) for f, c in files
                 if rows.get(f.resolve(), {}).get("photo") not in exclude_photos]
    paths, labels, images, digests, hashes = [], [], [], [], []
    skipped, converted = [], Counter()
    for path, label in tqdm(files, desc="audit", unit="img", disable=not progress):
        try:
            rgb, mode = decode_rgb(path)
        except ValueError as exc:
            skipped.append({"path": str(path), "reason": str(exc)})
            continue
        if mode != "RGB":
            converted[mode] += 1
        paths.append(path)
        labels.append(classes.index(label))
        images.append(resize_face(rgb, size))
        digests.append(hashlib.sha256(rgb.tobytes() + str(rgb.shape).encode()).hexdigest())
        hashes.append(int(str(imagehash.phash(Image.fromarray(rgb))), 16))
    if not paths:
        raise ValueError("no usable images: every file was skipped (see the audit)")
    groups = groups or {}
    keys = [rows.get(Path(p).resolve(), {}).get("group") or groups.get(Path(p).resolve())
            for p in paths]
    ids, exact, near = group_duplicates(digests, np.array(hashes, dtype=np.uint64), keys)
    return Dataset(classes, paths, np.array(labels), np.stack(images), ids, skipped,
                   converted, empty, exact, near)


def split_indices(labels: np.ndarray, groups: np.ndarray, test_size: float, seed: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded split that never puts one duplicate group on both sides.

    StratifiedGroupKFold with round(1/test_size) folds; the first fold is held out.
    """
    folds = max(2, int(round(1.0 / test_size)))
    if len(set(groups.tolist())) < folds or np.bincount(labels).max() < folds:
        raise ValueError(f"too few distinct images ({len(set(groups.tolist()))} groups) "
                         f"to hold out {test_size:.0%} of them; add images or change the fraction")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return np.sort(train), np.sort(test)


def write_split(path: Path, dataset: Dataset, parts: dict[str, np.ndarray], settings: dict) -> None:
    """``split.json``: which files are train, validation and test, so export and eval reuse it."""
    doc = {"classes": dataset.classes, "settings": settings}
    for name, idx in parts.items():
        doc[name] = [{"path": str(Path(dataset.paths[i]).resolve()),
                      "label": dataset.classes[dataset.labels[i]]} for i in idx]
    Path(path).write_text(json.dumps(doc, indent=1))


def read_items(items: list[dict], classes: list[str], size: int, desc: str = "load",
               progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``split.json`` entries (``{"path", "label"}``) as training did: images, label indices."""
    images, labels = [], []
    for item in tqdm(items, desc=desc, unit="img", disable=not progress):
        rgb, _ = decode_rgb(Path(item["path"]))
        images.append(resize_face(rgb, size))
        labels.append(classes.index(item["label"]))
    return np.stack(images), np.array(labels)


def read_split_images(split_path: Path, part: str, size: int, progress: bool = True
                      ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode one part of a ``split.json`` as training did: images, label indices, classes."""
    doc = json.loads(Path(split_path).read_text())
    images, labels = read_items(doc[part], doc["classes"], size, f"load {part}", progress)
    return images, labels, doc["classes"]
