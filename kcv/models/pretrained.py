"""Pretrained ImageNet weights of kcv's backbones: one table, one resolver, one error type.

A weights setting (the `--weights` flag, the builders' `weights=` argument) is one of

    imagenet   Keras' own weight file for the backbone, read from Keras' cache
               (`<$KERAS_HOME or ~/.keras>/models/<file>`; also /tmp/.keras/models/ when that
               root is not writable, where Keras then keeps its downloads). It is downloaded
               into the cache only with allow_download=True (the binaries' --download).
    none       random initialisation. `random` is the same (`kcv-style-transfer --weights=random`
               is a documented command), and so is None.
    a path     a local .h5 / .hdf5 / .weights.h5 file in Keras' layout for that backbone.

`resolve_weights(model, weights, include_top=..., allow_download=...)` turns a setting into the
file to load (or None for random initialisation) without building anything. Every failure
(unknown keyword, missing file, file not in the cache offline, failed download, a file that does
not load) is a `PretrainedWeightsError` (a ValueError) with a one-line message naming the file
looked for and the flag to use, which the binaries print as it is.

`PRETRAINED` lists, per backbone, the file names and md5 sums keras.applications asks
`keras.utils.get_file` for, with and without the ImageNet classifier (`include_top`); the
fine-tuning backbones (kcv.models.finetune) and VGG-19 (kcv.models.vgg) read it.
"""
from __future__ import annotations

import dataclasses
import os

IMAGENET = "imagenet"
RANDOM_INIT = ("none", "random")  # both mean random initialisation; "none" is the documented word
WEIGHT_FILE_SUFFIXES = (".h5", ".hdf5")  # .weights.h5 included
WEIGHTS_CHOICES = (
    "imagenet (Keras' cache; --download fetches it), none (random initialisation; random is the "
    "same) or the path of a local .h5 / .weights.h5 file"
)


class PretrainedWeightsError(ValueError):
    """A weights setting that cannot be honoured; the message is one line naming the way out."""


@dataclasses.dataclass(frozen=True)
class WeightFiles:
    """One backbone's ImageNet files: `url` is the folder keras.applications downloads from;
    `top` / `notop` are (file name in Keras' cache, md5) for include_top=True / False."""

    url: str
    top: tuple[str, str]
    notop: tuple[str, str]

    def file(self, include_top: bool) -> tuple[str, str]:
        return self.top if include_top else self.notop


_KA = "https://storage.googleapis.com/tensorflow/keras-applications/"

PRETRAINED: dict[str, WeightFiles] = {
    "resnet50": WeightFiles(
        _KA + "resnet/",
        ("resnet50_weights_tf_dim_ordering_tf_kernels.h5", "2cb95161c43110f7111970584f804107"),
        ("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "4d473c1dd8becc155b73f8504c6f6626"),
    ),
    "resnet101": WeightFiles(
        _KA + "resnet/",
        ("resnet101_weights_tf_dim_ordering_tf_kernels.h5", "f1aeb4b969a6efcfb50fad2f0c20cfc5"),
        ("resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5", "88cf7a10940856eca736dc7b7e228a21"),
    ),
    "resnet152": WeightFiles(
        _KA + "resnet/",
        ("resnet152_weights_tf_dim_ordering_tf_kernels.h5", "100835be76be38e30d865e96f2aaae62"),
        ("resnet152_weights_tf_dim_ordering_tf_kernels_notop.h5", "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    ),
    "densenet121": WeightFiles(
        _KA + "densenet/",
        ("densenet121_weights_tf_dim_ordering_tf_kernels.h5", "9d60b8095a5708f2dcce2bca79d332c7"),
        ("densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5", "30ee3e1110167f948a6b9946edeeb738"),
    ),
    "mobilenet_v3_small": WeightFiles(
        _KA + "mobilenet_v3/",
        ("weights_mobilenet_v3_small_224_1.0_float.h5", "8768d4c2e7dee89b9d02b2d03d65d862"),
        ("weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5", "d3e8ec802a04aa4fc771ee12a9a9b836"),
    ),
    "mobilenet_v3_large": WeightFiles(
        _KA + "mobilenet_v3/",
        ("weights_mobilenet_v3_large_224_1.0_float.h5", "59e551e166be033d707958cf9e29a6a7"),
        ("weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5", "07fb09a5933dd0c8eaafa16978110389"),
    ),
    "efficientnet_b0": WeightFiles(
        "https://storage.googleapis.com/keras-applications/",
        ("efficientnetb0.h5", "902e53a9f72be733fc0bcb005b3ebbac"),
        ("efficientnetb0_notop.h5", "50bc09e76180e00e4465e1a485ddc09d"),
    ),
    "vgg19": WeightFiles(
        _KA + "vgg19/",
        ("vgg19_weights_tf_dim_ordering_tf_kernels.h5", "cbe5617147190e668d6c5d5026f83318"),
        ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "253f8cb515780f3b799900260a226db6"),
    ),
}


def list_pretrained() -> list[str]:
    """The backbone names `resolve_weights` knows."""
    return sorted(PRETRAINED)


def _files(model: str) -> WeightFiles:
    try:
        return PRETRAINED[model]
    except (KeyError, TypeError):
        raise PretrainedWeightsError(
            f"no pretrained weights known for {model!r}; known: {', '.join(list_pretrained())}"
        ) from None


def weights_file(model: str, include_top: bool = True) -> str:
    """File name keras.applications uses for the backbone's ImageNet weights, e.g.
    `resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5` for ("resnet50", False)."""
    return _files(model).file(include_top)[0]


def keras_cache_dir() -> str:
    """Keras' cache root as keras.utils.get_file uses it: $KERAS_HOME or ~/.keras."""
    return os.path.expanduser(os.environ.get("KERAS_HOME", os.path.join("~", ".keras")))


def find_cached(file_name: str, cache_dir: str | None = None) -> tuple[str | None, list[str], str]:
    """(path or None, the places looked in, the cache root) for `<root>/models/<file_name>`.

    When the root is not writable Keras keeps its downloads in /tmp/.keras, so look there too.
    """
    root = cache_dir or keras_cache_dir()
    candidates = [os.path.join(root, "models", file_name)]
    if not os.access(root, os.W_OK):
        candidates.append(os.path.join("/tmp", ".keras", "models", file_name))
    found = next((p for p in candidates if os.path.isfile(p)), None)
    return found, candidates, root


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (h5py / Keras / network errors are long)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def imagenet_weights_path(
    model: str, include_top: bool = True, *, allow_download: bool = False, cache_dir: str | None = None
) -> str:
    """Path of the backbone's ImageNet weights in Keras' cache (`cache_dir`, default
    `keras_cache_dir()`); downloads them there only if `allow_download`."""
    files = _files(model)
    file_name, md5 = files.file(include_top)
    found, candidates, root = find_cached(file_name, cache_dir)
    if found:
        return found
    if not allow_download:
        raise PretrainedWeightsError(
            f"ImageNet weights for {model} are not in the Keras cache: {candidates[0]} is missing; "
            "pass --download to fetch them, --weights=PATH for a local .h5 file, or --weights=none "
            "for random initialisation"
        )
    import keras  # only here: resolving a path or "none" needs no TensorFlow

    try:
        return keras.utils.get_file(
            file_name, files.url + file_name, cache_subdir="models", file_hash=md5, cache_dir=root
        )
    except Exception as err:  # network errors are long and nested; keep one line
        raise PretrainedWeightsError(
            f"could not download {files.url + file_name} to {candidates[0]}: {first_line(err)} "
            "(copy the file there, or pass --weights=PATH or --weights=none)"
        ) from None


def is_random_init(weights: str | None) -> bool:
    """True for the settings meaning random initialisation: None, "none", "random"."""
    return weights is None or (isinstance(weights, str) and weights.strip().lower() in RANDOM_INIT)


def resolve_weights(
    model: str,
    weights: str | None,
    *,
    include_top: bool = True,
    allow_download: bool = False,
    cache_dir: str | None = None,
) -> str | None:
    """The local weight file for `weights` ("imagenet", "none"/"random"/None, or a path), or None
    for random initialisation. Builds nothing; downloads only for "imagenet" with allow_download.

    model: a `PRETRAINED` name ("resnet50", "vgg19", ...); include_top: the ImageNet classifier
    kept (True) or not, which picks the file; cache_dir: Keras' cache root (default $KERAS_HOME
    or ~/.keras). Raises PretrainedWeightsError with a one-line message.
    """
    files = _files(model)
    if is_random_init(weights):
        return None
    if not isinstance(weights, str) or not weights.strip():
        raise PretrainedWeightsError(
            f"{model} weights must be one of: {WEIGHTS_CHOICES}; got {weights!r} (--weights)"
        )
    if weights.strip().lower() == IMAGENET:
        return imagenet_weights_path(model, include_top, allow_download=allow_download, cache_dir=cache_dir)
    path = os.path.expanduser(weights)
    if not path.lower().endswith(WEIGHT_FILE_SUFFIXES):
        raise PretrainedWeightsError(
            f"{model} weights {weights!r} are not imagenet, none or a path to a .h5 file "
            f"(--weights=imagenet, --weights=none or --weights=PATH to e.g. {files.file(include_top)[0]})"
        )
    if not os.path.isfile(path):
        raise PretrainedWeightsError(
            f"{model} weights file not found: {path} (--weights=PATH must name an existing .h5 file; "
            "or --weights=imagenet, --weights=none)"
        )
    return path


def load_error(model: str, path: str, err: BaseException, include_top: bool = True) -> PretrainedWeightsError:
    """The one-line error for a weight file that exists but does not load into the backbone."""
    return PretrainedWeightsError(
        f"could not load {model} weights from {path} ({first_line(err)}); expected Keras' "
        f"{weights_file(model, include_top)} or a .weights.h5 saved from keras.applications with "
        f"include_top={include_top} (--weights=PATH)"
    )
