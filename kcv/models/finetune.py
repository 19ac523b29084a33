"""Fine-tuning a pretrained `keras.applications` backbone (d2l 14.14, dog-breed identification).

The book takes torchvision's ImageNet ResNet-34 *including its 1000-way output layer*, freezes it,
and trains only a new head `Linear(1000, 256) -> ReLU -> Linear(256, 120)` on top of the 1000
ImageNet scores. `finetune` builds the same shape of model on a Keras backbone:

    images float [0, 255] (batch, H, W, 3)
      -> `preprocess`   the backbone's own ImageNet preprocessing (table below), inside the model
      -> `backbone`     InferenceMode wrapper around the keras.applications network (its
                        `.layer`, or `backbone_network(model)`): frozen, always run with
                        training=False
                        keep_imagenet_top=True:  include_top=True, classifier_activation=None
                                                 -> (batch, 1000) ImageNet logits (the book)
                        keep_imagenet_top=False: include_top=False, pooling="avg"
                                                 -> (batch, C) pooled features (any input size)
      -> `head_dense`   Dense(head_units, relu)
      -> `logits`       Dense(num_classes), float32 even under mixed precision

Backbones (`BACKBONES`) and the preprocessing their ImageNet weights expect, applied to [0, 255]
RGB by the `preprocess` layer (`ImagenetPreprocess`):

    resnet50, resnet101, resnet152   "caffe": RGB -> BGR, minus the BGR mean
                                     (103.939, 116.779, 123.68), no scaling
                                     (= keras.applications.resnet.preprocess_input)
    densenet121                      "torch": x / 255, minus (0.485, 0.456, 0.406),
                                     divided by (0.229, 0.224, 0.225)
                                     (= keras.applications.densenet.preprocess_input)
    mobilenet_v3_small, _large       "none": the network rescales inside (x / 127.5 - 1)
    efficientnet_b0                  "none": the network normalises inside (x / 255, then the
                                     ImageNet mean / std)

Weights (`kcv.models.pretrained`, the one vocabulary): "imagenet" reads Keras' own file from its
cache (`<$KERAS_HOME or ~/.keras>/models/`, names in `kcv.models.pretrained.PRETRAINED`); a
missing file is a one-line `PretrainedWeightsError` (a ValueError) unless `allow_download=True`.
A path loads a local `.h5` / `.weights.h5` file in Keras' layout for that backbone and top choice.
None / "none" (or "random") keeps the random initialisation (tests, offline smoke runs). The
weights are resolved before anything is built, and the backbone is always built with
`weights=None`, so building never touches the network.

Why a wrapper: a Keras 3 functional model passes the caller's `training` flag to every layer,
overriding a `training=False` written at graph-building time, so `backbone(x, training=False)`
alone would run an unfrozen backbone's batch norm on batch statistics (and update its moving
averages) and its dropout / stochastic depth in every training step. `InferenceMode` has no
`training` argument and always calls the network with training=False.

Second phase: `unfreeze(model, n)` (or `trainable_layers=n` at build time) makes the last `n`
backbone layers that hold weights trainable, for a short run with a smaller learning rate (e.g.
a tenth of the head's). The backbone still runs in inference mode, so its batch-norm layers keep
their ImageNet statistics and only their scale/offset can move. Compile again after changing
trainability. kcv-train runs both phases with --fine_tune_epochs (pipelines/components/trainer.py:
phase 1 builds with trainable_layers=0, phase 2 builds with trainable_layers=n, takes phase 1's
weights and compiles at --lr x --fine_tune_lr_factor); `weighted_layers` is what n counts, e.g.
ResNet-50's last block conv5_block3 is its last 6 (7 with the kept ImageNet output layer).

Random init (weights="none") is for tests and offline smoke runs only: the frozen network then
extracts noise, and MobileNetV3 / EfficientNet in inference mode shrink it to ~1e-10 / ~1e-6,
so the head learns little more than the class priors; a random ResNet-50 keeps features near 1.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
from keras import layers, ops

from kcv.models.pretrained import load_error, resolve_weights
from kcv.models.registry import register

IMAGENET_INPUT_SIZE = (224, 224)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
TORCH_RGB_MEAN = (0.485, 0.456, 0.406)
TORCH_RGB_STD = (0.229, 0.224, 0.225)
PREPROCESS_MODES = ("caffe", "torch", "none")


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """One keras.applications backbone: its constructor and the preprocessing its ImageNet weights
    expect. The weight files (names, md5, origin) are `kcv.models.pretrained.PRETRAINED[name]`."""

    constructor: Callable[..., keras.Model]
    preprocess: str


BACKBONES: dict[str, BackboneSpec] = {
    "resnet50": BackboneSpec(keras.applications.ResNet50, "caffe"),
    "resnet101": BackboneSpec(keras.applications.ResNet101, "caffe"),
    "resnet152": BackboneSpec(keras.applications.ResNet152, "caffe"),
    "densenet121": BackboneSpec(keras.applications.DenseNet121, "torch"),
    "mobilenet_v3_small": BackboneSpec(keras.applications.MobileNetV3Small, "none"),
    "mobilenet_v3_large": BackboneSpec(keras.applications.MobileNetV3Large, "none"),
    "efficientnet_b0": BackboneSpec(keras.applications.EfficientNetB0, "none"),
}

# keras.applications.EfficientNet* built with weights="imagenet" add a Rescaling by
# 1/sqrt(std) right after their Normalization layer (the variance stored in the weight files is
# the std, see tensorflow/tensorflow#49930); built with weights=None they do not. We always build
# with weights=None, so after loading pretrained weights the variance is multiplied by these
# values instead: (x - m) / sqrt(v * s) == ((x - m) / sqrt(v)) / sqrt(s).
_EFFICIENTNET_STD = (0.229, 0.224, 0.225)


def list_backbones() -> list[str]:
    return sorted(BACKBONES)


def _spec(backbone: str) -> BackboneSpec:
    try:
        return BACKBONES[backbone]
    except KeyError:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {', '.join(list_backbones())}") from None


@keras.saving.register_keras_serializable(package="kcv")
class ImagenetPreprocess(layers.Layer):
    """Float RGB in [0, 255] -> the input a keras.applications backbone's ImageNet weights expect.

    mode "caffe": RGB -> BGR, minus CAFFE_BGR_MEAN (ResNet; keras resnet.preprocess_input).
    mode "torch": x / 255, minus TORCH_RGB_MEAN, over TORCH_RGB_STD (DenseNet).
    mode "none":  identity, for backbones that preprocess inside (MobileNetV3, EfficientNet).
    (batch, H, W, 3) in and out; computed in float32 (dtype default) so the mean subtraction is
    exact under mixed precision.
    """

    def __init__(self, mode: str = "caffe", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if mode not in PREPROCESS_MODES:
            raise ValueError(f"unknown preprocess mode {mode!r}; choose from {', '.join(PREPROCESS_MODES)}")
        self.mode = mode

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        if self.mode == "caffe":
            mean = ops.convert_to_tensor(CAFFE_BGR_MEAN, dtype=self.compute_dtype)
            return ops.flip(x, axis=-1) - mean
        if self.mode == "torch":
            mean = ops.convert_to_tensor(TORCH_RGB_MEAN, dtype=self.compute_dtype)
            std = ops.convert_to_tensor(TORCH_RGB_STD, dtype=self.compute_dtype)
            return (x / 255.0 - mean) / std
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def _build_backbone(backbone: str, input_shape: tuple, include_top: bool) -> keras.Model:
    spec = _spec(backbone)
    kwargs = dict(include_top=include_top, weights=None, input_shape=tuple(input_shape))
    if include_top:
        kwargs["classifier_activation"] = None  # keep the 1000 ImageNet scores as logits
    else:
        kwargs["pooling"] = "avg"
    return spec.constructor(**kwargs)


def _load_backbone_weights(model: keras.Model, backbone: str, path: str, include_top: bool) -> None:
    try:
        model.load_weights(path)
    except Exception as err:  # h5py / Keras errors are long; keep the first line
        raise load_error(backbone, path, err, include_top) from None
    if backbone.startswith("efficientnet"):
        norm = next(l for l in model.layers if isinstance(l, layers.Normalization))
        std = ops.convert_to_tensor(_EFFICIENTNET_STD, dtype=norm.adapt_variance.dtype)
        norm.adapt_variance.assign(norm.adapt_variance * std)
        norm.finalize_state()  # the layer caches mean/variance as tensors


@keras.saving.register_keras_serializable(package="kcv")
class InferenceMode(layers.Wrapper):
    """Calls the wrapped layer with training=False, whatever the caller's training flag.

    Batch norm inside keeps using (and never updates) its moving statistics and dropout stays
    off, also while some of its layers are trainable. Shapes are the wrapped layer's.
    """

    def call(self, inputs):  # no `training` argument: Functional then cannot inject one
        return self.layer(inputs, training=False)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def backbone_network(model: keras.Model) -> keras.Model:
    """The keras.applications network inside a finetune model (its `backbone` layer)."""
    layer = model.get_layer("backbone")
    return layer.layer if isinstance(layer, InferenceMode) else layer


def weighted_layers(backbone: keras.Model) -> list[layers.Layer]:
    """The backbone's layers that hold weights, in network order (what trainable_layers counts)."""
    return [layer for layer in backbone.layers if layer.weights]


def unfreeze(model: keras.Model, trainable_layers: int) -> keras.Model:
    """Make exactly the last `trainable_layers` weighted layers of `model`'s backbone trainable.

    0 freezes the whole backbone. Works on a built (or trained, or loaded) finetune model, for a
    second phase: `unfreeze(model, 10)`, then compile again with a smaller learning rate.
    Returns `model`.
    """
    wrapper, network = model.get_layer("backbone"), backbone_network(model)
    weighted = weighted_layers(network)
    if not 0 <= trainable_layers <= len(weighted):
        raise ValueError(
            f"trainable_layers must be in 0..{len(weighted)} (the backbone's layers with weights), "
            f"got {trainable_layers}"
        )
    wrapper.trainable = trainable_layers > 0  # True makes every sublayer trainable ...
    for layer in weighted[: len(weighted) - trainable_layers]:
        layer.trainable = False  # ... so freeze all but the last N again
    return model


@register("finetune")
def finetune(
    num_classes: int,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    backbone: str = "resnet50",
    weights: str | None = "imagenet",
    head_units: int = 256,
    keep_imagenet_top: bool = True,
    trainable_layers: int = 0,
    allow_download: bool = False,
    *,
    cache_dir: str | None = None,
    seed: int | None = None,
    name: str = "finetune",
) -> keras.Model:
    """Pretrained backbone + new head, the book's dog-breed model. Returns logits (batch, num_classes).

    Args:
      num_classes: breeds (the book: 120).
      input_shape: (H, W, 3) of float [0, 255] RGB input. With keep_imagenet_top and pretrained
        weights it must be (224, 224, 3), as keras.applications requires for the ImageNet top.
      backbone: a key of BACKBONES (list_backbones()).
      weights: "imagenet" (Keras' cache), a local .h5/.weights.h5 path, or None / "none" (random
        init; "random" is the same). See kcv.models.pretrained; errors are PretrainedWeightsError.
      head_units: width of the ReLU layer of the head (the book: 256).
      keep_imagenet_top: True feeds the 1000 ImageNet logits to the head (the book);
        False feeds globally average-pooled features.
      trainable_layers: how many of the last weighted backbone layers to train (see unfreeze).
      allow_download: fetch missing ImageNet weights into the Keras cache.
      cache_dir: Keras cache root to read (default $KERAS_HOME or ~/.keras).
      seed: seeds the head's initialisers (the backbone's random init, weights=None, is unseeded).
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if not isinstance(head_units, int) or head_units < 1:
        raise ValueError(f"head_units must be a positive int, got {head_units!r}")
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"input_shape must be (H, W, 3) RGB, got {input_shape}")
    spec = _spec(backbone)
    path = resolve_weights(backbone, weights, include_top=keep_imagenet_top, allow_download=allow_download,
                           cache_dir=cache_dir)
    if keep_imagenet_top and path is not None and tuple(input_shape[:2]) != IMAGENET_INPUT_SIZE:
        raise ValueError(
            f"keep_imagenet_top with pretrained weights needs input_shape (224, 224, 3), got "
            f"{input_shape}; crop to 224 or pass keep_imagenet_top=False"
        )
    base = _build_backbone(backbone, input_shape, keep_imagenet_top)
    if path is not None:
        _load_backbone_weights(base, backbone, path, keep_imagenet_top)

    inputs = keras.Input(input_shape, name="images")
    x = ImagenetPreprocess(spec.preprocess, name="preprocess")(inputs)
    # (batch, 1000) ImageNet logits, or (batch, C) pooled features; always in inference mode
    x = InferenceMode(base, name="backbone")(x)
    x = layers.Dense(
        head_units,
        activation="relu",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        name="head_dense",
    )(x)
    outputs = layers.Dense(
        num_classes,
        kernel_initializer=keras.initializers.GlorotUniform(seed=None if seed is None else seed + 1),
        dtype="float32",  # logits (and so softmax / loss) in float32 under mixed precision
        name="logits",
    )(x)
    model = keras.Model(inputs, outputs, name=name)
    return unfreeze(model, trainable_layers)
