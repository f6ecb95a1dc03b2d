"""The classifier: raw RGB pixels in, class probabilities out.

Preprocessing is the first layer of the graph, so training, export and the edge all
feed the same thing — uint8-range RGB — and can never disagree about scaling.
"""

from __future__ import annotations

import keras
from keras import layers

from train.weights import WeightsUnavailable, check_weights, weights_help

BACKBONES = ("inception_v3", "efficientnet_lite0")
MIN_INPUT = {"inception_v3": 75, "efficientnet_lite0": 32}


def build_backbone(name: str, input_size: int, weights: str | None) -> tuple[keras.Model, layers.Layer]:
    """The body without its top, and the layer that maps 0..255 RGB to what it expects."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone '{name}' (known: {', '.join(BACKBONES)})")
    if input_size < MIN_INPUT[name]:
        raise ValueError(f"{name} needs --input-size >= {MIN_INPUT[name]}")
    check_weights(weights)
    shape = (input_size, input_size, 3)
    if name == "efficientnet_lite0":
        from train import efficientnet_lite

        try:
            body = efficientnet_lite.efficientnet_lite0(shape, include_top=False, weights=weights)
        except efficientnet_lite.WeightsFileError as exc:
            raise WeightsUnavailable(weights_help(str(exc))) from exc
        return body, efficientnet_lite.preprocessing_layer()
    try:
        body = keras.applications.InceptionV3(include_top=False, weights=weights, input_shape=shape)
    except Exception as exc:  # urllib, ssl, h5py and Keras all raise their own types
        raise WeightsUnavailable(weights_help(f"{type(exc).__name__}: {exc}")) from exc
    # keras.applications.inception_v3.preprocess_input: x / 127.5 - 1.
    return body, layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")


def build_model(num_classes: int, input_size: int = 224, backbone: str = "inception_v3",
                weights: str | None = "imagenet", pooling: str = "avg", dense: int = 128,
                dropout: float = 0.5) -> keras.Model:
    """Raw pixels → in-graph preprocessing → body → the seed's head.

    A pretrained body keeps its BatchNorm layers in inference mode in both phases (see
    ``set_trainable``); a body trained from scratch has no statistics to keep, so its
    BatchNorm trains.
    """
    body, preprocess = build_backbone(backbone, input_size, weights)
    pixels = keras.Input((input_size, input_size, 3), name="pixels")
    x = preprocess(pixels)
    x = body(x)
    pool = {"avg": layers.GlobalAveragePooling2D, "max": layers.GlobalMaxPooling2D}[pooling]
    x = pool(name="pool")(x)
    if dense:
        x = layers.Dense(dense, activation="relu", name="head_dense")(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    # float32 output even under mixed precision, so softmax stays numerically sound.
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(pixels, outputs, name=f"maskwatch_{backbone}")


def body_of(model: keras.Model) -> keras.Model:
    """The nested backbone model inside ``model``."""
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def set_trainable(model: keras.Model, phase: str, unfreeze_from: str | None = None,
                  pretrained: bool = True) -> None:
    """Phase ``head``: only the new head trains. Phase ``finetune``: the body too,
    all of it or from the layer named ``unfreeze_from`` onwards.

    A ``pretrained`` body's BatchNorm layers stay frozen when it is unfrozen, which in Keras
    runs them in inference mode: they keep their ImageNet statistics instead of re-estimating
    them from batches of 32 face crops (the Keras guidance for fine-tuning on small data).
    Calling the body with ``training=False`` does not do this in Keras 3: ``fit`` calls the
    whole model with ``training=True`` and that reaches the body (keras-team/keras#20285).
    """
    body = body_of(model)
    body.trainable = phase == "finetune"
    if phase == "finetune" and pretrained:
        for layer in body.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False
    if phase == "finetune" and unfreeze_from:
        names = [layer.name for layer in body.layers]
        if unfreeze_from not in names:
            raise ValueError(f"--unfreeze-from: no layer '{unfreeze_from}' in {body.name}")
        start = names.index(unfreeze_from)
        for layer in body.layers[:start]:
            layer.trainable = False
