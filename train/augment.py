"""Augmentation that looks like the camera: what a doorway Pi does to a face before the
classifier sees it.

Each augmentation has a name; ``python -m train --augment NAMES`` picks them, and
``python -m train.cv`` measures what each one is worth (leave it out, see what changes).
They run per image inside ``tf.data``, on raw 0..255 RGB at the model's input size, in the
order a face meets them: the detector's box, the frame's edge, whatever is in front of the
face, the light, the lens and the motion, the JPEG encoder.

- ``seed``: the seed project's geometry (rotation 30°, shifts 0.1, shear 0.2, zoom 0.2).
- ``flip``: a mirror image.
- ``jitter``: the box moved and scaled as YuNet's boxes differ from the annotators' on the
  shared scenes' training photos (centre ±5% of the face, sd; size ±9–13%, sd; the crop is
  1.4 faces wide, so ±3.6% and ±10% of it), plus a head tilt of up to ±10°.
- ``colour``: brightness, contrast and saturation ±25%, hue ±5%: white balance, exposure.
- ``blur``: half of the time; either defocus or motion-like Gaussian blur (sigma up to 2.5 px
  at 224), or a face that was only 20–100 px across, enlarged as the Pi enlarges it.
- ``jpeg``: half of the time, JPEG quality 30–95.
- ``occlusion``: a quarter of the time, a part of another face or of the background over a
  side of this one (10–35% of the crop from the left, right or top; 10-20% from below): a
  hand, another head, a collar.
- ``edge``: 15% of the time, black over 10–40% of one side: a face cut by the frame's edge
  as ``edge.shared.crop`` shows it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf

NAMES = ("seed", "flip", "jitter", "colour", "blur", "jpeg", "occlusion", "edge")
CAMERA = ("flip", "jitter", "colour", "blur", "jpeg", "occlusion", "edge")


def parse(text: str) -> tuple[str, ...]:
    """``"flip,jitter"`` → the names, checked; ``"none"`` → none; ``"camera"`` → CAMERA."""
    if text in ("", "none"):
        return ()
    names = []
    for name in text.split(","):
        name = name.strip()
        names += CAMERA if name == "camera" else [name]
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(unknown)} (known: {', '.join(NAMES)}, "
                         "camera, none)")
    return tuple(n for n in NAMES if n in names)


def _chance(p: float) -> tf.Tensor:
    import tensorflow as tf

    return tf.random.uniform(()) < p


def _side_mask(size: int, side: tf.Tensor, depth: tf.Tensor, start: tf.Tensor,
               length: tf.Tensor) -> tf.Tensor:
    """A (size, size, 1) mask: 1 over ``depth`` pixels from ``side`` (0 left, 1 right, 2 top,
    3 bottom), along ``length`` pixels from ``start`` on the other axis."""
    import tensorflow as tf

    idx = tf.range(size)
    across = (idx >= start) & (idx < start + length)
    near = tf.stack([idx < depth, idx >= size - depth, idx < depth, idx >= size - depth])[side]
    cols, rows = tf.meshgrid(idx, idx)
    along_x = tf.gather(near, cols) & tf.gather(across, rows)
    along_y = tf.gather(near, rows) & tf.gather(across, cols)
    return tf.cast(tf.where(side < 2, along_x, along_y), tf.float32)[..., None]


def _edge(image: tf.Tensor, size: int) -> tf.Tensor:
    import tensorflow as tf

    side = tf.random.uniform((), 0, 4, dtype=tf.int32)
    depth = tf.cast(tf.random.uniform((), 0.10, 0.40) * size, tf.int32)
    return image * (1.0 - _side_mask(size, side, depth, 0, size))


def _occlusion(image: tf.Tensor, size: int) -> tf.Tensor:
    import tensorflow as tf

    side = tf.random.uniform((), 0, 4, dtype=tf.int32)
    share = tf.where(side == 3, tf.random.uniform((), 0.10, 0.20), tf.random.uniform((), 0.10, 0.35))
    depth = tf.cast(share * size, tf.int32)
    length = tf.cast(tf.random.uniform((), 0.4, 1.0) * size, tf.int32)
    start = tf.random.uniform((), 0, size - length + 1, dtype=tf.int32)
    # What covers it: the same picture shifted by half, i.e. hair, background or another
    # part of a face, with its own light.
    shift = tf.random.uniform((2,), size // 3, 2 * size // 3, dtype=tf.int32)
    cover = tf.roll(image, shift=shift, axis=[0, 1]) * tf.random.uniform((), 0.6, 1.2)
    mask = _side_mask(size, side, depth, start, length)
    return image * (1.0 - mask) + tf.clip_by_value(cover, 0, 255) * mask


def _gaussian_blur(image: tf.Tensor, sigma: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    radius = 7
    x = tf.cast(tf.range(-radius, radius + 1), tf.float32)
    k = tf.exp(-0.5 * tf.square(x / sigma))
    k = k / tf.reduce_sum(k)
    kx = tf.tile(tf.reshape(k, (1, -1, 1, 1)), (1, 1, 3, 1))
    ky = tf.tile(tf.reshape(k, (-1, 1, 1, 1)), (1, 1, 3, 1))
    padded = tf.pad(image[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], "SYMMETRIC")
    out = tf.nn.depthwise_conv2d(padded, kx, [1, 1, 1, 1], "VALID")
    out = tf.nn.depthwise_conv2d(out, ky, [1, 1, 1, 1], "VALID")
    return out[0]


def _blur(image: tf.Tensor, size: int) -> tf.Tensor:
    import tensorflow as tf

    def defocus():
        return _gaussian_blur(image, tf.random.uniform((), 0.5, 2.5))

    def low_resolution():
        small = tf.random.uniform((), 20, 100, dtype=tf.int32)
        shrunk = tf.image.resize(image, tf.stack([small, small]), method="area")
        return tf.image.resize(shrunk, (size, size), method="bilinear")

    return tf.cond(_chance(0.5), defocus, low_resolution)


def _jpeg(image: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    quality = tf.random.uniform((), 30, 96, dtype=tf.int32)
    encoded = tf.image.adjust_jpeg_quality(tf.clip_by_value(image, 0, 255) / 255.0, quality)
    return encoded * 255.0


def make_augment(names: tuple[str, ...], size: int, seed: int | None = None):
    """A function of one float32 (size, size, 3) image in 0..255 → its augmented copy, to
    ``map`` over a ``tf.data`` dataset of training images."""
    import keras
    import tensorflow as tf

    layers = []
    if "seed" in names:
        layers += [keras.layers.RandomRotation(30 / 360, fill_mode="nearest", seed=seed),
                   keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed),
                   keras.layers.RandomShear(x_factor=0.2, fill_mode="nearest", seed=seed),
                   keras.layers.RandomZoom(0.2, fill_mode="nearest", seed=seed)]
    if "flip" in names or "seed" in names:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if "jitter" in names:
        # Uniform ranges with about the measured standard deviations (sd = range / sqrt 3).
        shift, zoom = 0.036 * math.sqrt(3), 0.10 * math.sqrt(3)
        layers += [keras.layers.RandomRotation(10 / 360, fill_mode="reflect", seed=seed),
                   keras.layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed),
                   keras.layers.RandomZoom(zoom, fill_mode="reflect", seed=seed)]
    colour = (keras.layers.RandomColorJitter(value_range=(0, 255), brightness_factor=0.25,
                                             contrast_factor=0.25, saturation_factor=(0.35, 0.65),
                                             hue_factor=0.05, seed=seed)
              if "colour" in names else None)

    def augment(image: tf.Tensor) -> tf.Tensor:
        for layer in layers:
            image = layer(image, training=True)
        if "edge" in names:
            image = tf.cond(_chance(0.15), lambda: _edge(image, size), lambda: image)
        if "occlusion" in names:
            image = tf.cond(_chance(0.25), lambda: _occlusion(image, size), lambda: image)
        if colour is not None:
            image = tf.clip_by_value(colour(image, training=True), 0, 255)
        if "blur" in names:
            image = tf.cond(_chance(0.5), lambda: _blur(image, size), lambda: image)
        if "jpeg" in names:
            image = tf.cond(_chance(0.5), lambda: _jpeg(image), lambda: image)
        return tf.ensure_shape(tf.clip_by_value(image, 0, 255), (size, size, 3))

    return augment
