"""VGG-19 feature extractor for neural style transfer (d2l 14.12), on Keras' VGG-19 weights.

The book takes its features from torchvision's `vgg19.features` *before* the ReLU: style from
conv1_1, conv2_1, conv3_1, conv4_1, conv5_1 (indices 0, 5, 10, 19, 28) and content from conv4_4
(index 25). Keras' `VGG19` fuses the ReLU into each `Conv2D`, so its layer outputs are post-ReLU.
`vgg19_features` rebuilds the conv stack with linear convs and separate ReLU layers, copies the
weights from `keras.applications.VGG19(include_top=False, ...)`, and returns the pre-activation
outputs of the chosen layers, named as Keras names them (block1_conv1 ... block5_conv4).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import keras
from keras import layers, ops

from kcv.models.pretrained import load_error, resolve_weights
from kcv.models.registry import register

# (filters, convs) per block: VGG-19 configuration "E" of Simonyan & Zisserman.
VGG19_BLOCKS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))

# The book's choice (d2l: style_layers = [0, 5, 10, 19, 28], content_layers = [25]).
DEFAULT_STYLE_LAYERS: tuple[str, ...] = (
    "block1_conv1",
    "block2_conv1",
    "block3_conv1",
    "block4_conv1",
    "block5_conv1",
)
DEFAULT_CONTENT_LAYERS: tuple[str, ...] = ("block4_conv4",)

# Mean of the ImageNet training set in BGR order and 0-255 range: what the Caffe-trained weights
# that Keras ships (and keras.applications.vgg19.preprocess_input) expect to be subtracted.
CAFFE_BGR_MEAN: tuple[float, float, float] = (103.939, 116.779, 123.68)

# The weights are Keras' no-top ImageNet VGG-19 (kcv.models.pretrained.PRETRAINED["vgg19"]).
PRETRAINED_NAME = "vgg19"


def vgg19_layer_names() -> list[str]:
    """All conv layer names of VGG-19 in network order: block1_conv1, ..., block5_conv4."""
    return [
        f"block{b}_conv{c}"
        for b, (_, convs) in enumerate(VGG19_BLOCKS, start=1)
        for c in range(1, convs + 1)
    ]


@keras.saving.register_keras_serializable(package="kcv")
class CaffePreprocess(layers.Layer):
    """RGB in [0, 1] -> what Keras' VGG weights expect: x*255, RGB->BGR, minus the BGR mean.

    Same result as `keras.applications.vgg19.preprocess_input(255 * x)`. (batch, H, W, 3) in and out.
    """

    def call(self, x):
        x = ops.cast(x, self.compute_dtype) * 255.0
        bgr = ops.flip(x, axis=-1)
        return bgr - ops.convert_to_tensor(CAFFE_BGR_MEAN, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def _source_vgg19(weights_path: str) -> keras.Model:
    """keras.applications.VGG19(include_top=False) holding the weights in `weights_path`."""
    try:
        return keras.applications.VGG19(
            include_top=False, weights=weights_path, input_shape=(None, None, 3)
        )
    except Exception as err:  # h5py/Keras errors are long; keep the first line
        raise load_error(PRETRAINED_NAME, weights_path, err, include_top=False) from None


@register("vgg19_features")
def vgg19_features(
    content_layers: Sequence[str] = DEFAULT_CONTENT_LAYERS,
    style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
    weights: str | None = "imagenet",
    *,
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    pre_activation: bool = True,
    include_preprocessing: bool = True,
    allow_download: bool = False,
    cache_dir: str | None = None,
    seed: int | None = None,
    name: str = "vgg19_features",
) -> keras.Model:
    """VGG-19 feature extractor returning the chosen conv outputs by name.

    Input: float RGB images in [0, 1], (batch, H, W, 3). Preprocessing happens INSIDE the model
    (layer `caffe_preprocess`), because Keras' VGG-19 ImageNet weights (converted from Caffe) need
    Caffe preprocessing: scale to 0-255, reorder RGB -> BGR, subtract the ImageNet mean
    [103.939, 116.779, 123.68] (B, G, R), no division by a std; i.e. exactly
    `keras.applications.vgg19.preprocess_input(255 * x)`. This differs from the book, which feeds
    torchvision's weights with (x - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225].
    `include_preprocessing=False` drops the layer for inputs that are already Caffe-preprocessed.

    Output: `{"content": {name: (batch, h, w, c)}, "style": {name: (batch, h, w, c)}}`, float32
    even under a mixed-precision policy (the tapped layers compute in float32). With
    `pre_activation=True` (the default, as the book) these are conv outputs before the ReLU;
    relu of them equals Keras' VGG19 layer of the same name. The network stops at the deepest
    chosen layer, as the book's truncated `net` does. The model is frozen (`trainable=False`).

    weights (kcv.models.pretrained's vocabulary): "imagenet" (Keras' cache; downloads only if
    `allow_download`), a path to a local `.h5` / `.weights.h5` file for
    `keras.applications.VGG19(include_top=False)`, or "none" / "random" / None (Glorot-uniform
    convs from `seed`, warns: style transfer results will be poor). Weight problems raise
    `kcv.models.pretrained.PretrainedWeightsError` (a ValueError) with a one-line message.
    """
    content_layers, style_layers = list(content_layers), list(style_layers)
    known = vgg19_layer_names()
    chosen = content_layers + style_layers
    unknown = [n for n in chosen if n not in known]
    if unknown or not chosen:
        raise ValueError(f"unknown VGG-19 layers {unknown}; choose from {', '.join(known)}")
    source = _resolve_weights(weights, allow_download=allow_download, cache_dir=cache_dir)
    last = max(known.index(n) for n in chosen)

    inputs = keras.Input(input_shape, name="image")
    x = CaffePreprocess(name="caffe_preprocess")(inputs) if include_preprocessing else inputs
    taps: dict[str, object] = {}
    index = 0
    for block, (filters, convs) in enumerate(VGG19_BLOCKS, start=1):
        if index > last:
            break
        if block > 1:
            x = layers.MaxPooling2D(2, strides=2, name=f"block{block - 1}_pool")(x)
        for conv in range(1, convs + 1):
            if index > last:
                break
            layer_name = f"block{block}_conv{conv}"
            init_seed = None if seed is None else seed + index  # a distinct stream per layer
            # A tapped layer computes in float32 under a mixed-precision policy, so the features
            # (and the Gram matrices and losses taken of them) are float32.
            tapped = "float32" if layer_name in chosen else None
            pre = layers.Conv2D(
                filters,
                3,
                padding="same",
                activation=None,  # the ReLU is its own layer so the pre-activation can be tapped
                kernel_initializer=keras.initializers.GlorotUniform(seed=init_seed),
                dtype=tapped,
                name=layer_name,
            )(x)
            x = layers.ReLU(dtype=None if pre_activation else tapped, name=f"{layer_name}_relu")(pre)
            taps[layer_name] = pre if pre_activation else x
            index += 1
    outputs = {
        "content": {n: taps[n] for n in content_layers},
        "style": {n: taps[n] for n in style_layers},
    }
    model = keras.Model(inputs, outputs, name=name)
    if source is not None:
        for layer_name in known[: last + 1]:
            model.get_layer(layer_name).set_weights(source.get_layer(layer_name).get_weights())
    model.trainable = False
    return model


def _resolve_weights(weights: str | None, *, allow_download: bool, cache_dir: str | None):
    """The Keras VGG19 to copy weights from, or None for random initialisation (after warning)."""
    path = resolve_weights(PRETRAINED_NAME, weights, include_top=False, allow_download=allow_download,
                           cache_dir=cache_dir)
    if path is None:
        warnings.warn(
            "VGG-19 with random weights: features carry no ImageNet knowledge, so style transfer "
            "results will be poor (use weights='imagenet' or a local .h5 for real use)",
            UserWarning,
            stacklevel=3,
        )
        return None
    return _source_vgg19(path)
