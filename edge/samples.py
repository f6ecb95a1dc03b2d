"""The sample frames: Eileen Collins (``skimage.data.astronaut()``, public domain), bare
and with a surgical-style mask drawn over her nose and mouth, as 640x480 camera frames. The
demo, the measurement tools and the tests run on them, with no camera and no data.

scikit-image is a workstation (dev) dependency only; the Pi never needs these.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SIZE = (640, 480)
# The astronaut's face in the 512x512 original, as OpenCV's Haar cascade finds it.
FACE = (177, 67, 93, 93)
MASK_RGB = (120, 175, 230)     # a surgical-mask blue
SEQUENCE = (("masked", 6), ("plain", 8), ("masked", 10))


def _astronaut() -> np.ndarray:
    try:
        from skimage import data
    except ImportError as exc:
        raise SystemExit("the demo builds its frames with scikit-image, a workstation "
                         "dependency: pip install -e '.[dev]' (or make setup)") from exc
    return data.astronaut()


def draw_mask(image: np.ndarray, face: tuple[int, int, int, int]) -> np.ndarray:
    """A copy of ``image`` with a mask over the lower face of ``face`` (x, y, w, h)."""
    out = image.copy()
    x, y, w, h = face
    top, bottom = y + 0.60 * h, y + 1.02 * h
    left, right = x + 0.10 * w, x + 0.90 * w
    outline = np.array([(left, top), (right, top), (right - 0.04 * w, bottom - 0.12 * h),
                        (x + 0.5 * w, bottom), (left + 0.04 * w, bottom - 0.12 * h)],
                       dtype=np.int32)
    cv2.fillPoly(out, [outline], MASK_RGB, cv2.LINE_AA)
    pleat = tuple(int(c * 0.85) for c in MASK_RGB)
    for frac in (0.25, 0.45, 0.65):
        yy = int(top + frac * (bottom - top))
        cv2.line(out, (int(left + 0.03 * w), yy), (int(right - 0.03 * w), yy), pleat, 1,
                 cv2.LINE_AA)
    # Ear loops, from the mask's corners towards the ears.
    for side, edge in ((-1, left), (1, right)):
        cv2.line(out, (int(edge), int(top)), (int(edge + side * 0.08 * w), int(y + 0.38 * h)),
                 (235, 235, 235), 2, cv2.LINE_AA)
    return out


def sample_frames(size: tuple[int, int] = SIZE) -> dict[str, np.ndarray]:
    """``{"plain": rgb, "masked": rgb}`` at ``size`` (width, height), 4:3 crops of the photo."""
    photo = _astronaut()
    masked = draw_mask(photo, FACE)
    # The top 512x384 of the photo is 4:3 and holds the face; scale it to the frame size.
    return {name: cv2.resize(img[:384], size, interpolation=cv2.INTER_AREA)
            for name, img in (("plain", photo), ("masked", masked))}


def write_frames(folder: Path, sequence=SEQUENCE, size: tuple[int, int] = SIZE) -> list[Path]:
    """Write the demo sequence as numbered PNGs (lossless: the pixels stay as drawn)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    frames = sample_frames(size)
    paths, index = [], 0
    for name, count in sequence:
        for _ in range(count):
            path = folder / f"{index:03d}-{name}.png"
            cv2.imwrite(str(path), cv2.cvtColor(frames[name], cv2.COLOR_RGB2BGR))
            paths.append(path)
            index += 1
    return paths


