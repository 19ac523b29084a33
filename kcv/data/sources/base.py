"""The Source interface every data layout implements, and the example it loads.

A source lists `Record`s (stable id, file path, label), knows its label vocabulary, validates its
layout in the constructor, and `load(split)` returns every example of a split as `SourceExample`s,
each image decoded once so bad files fail there, all named in one DataError.
"""
from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np

from kcv.data.errors import offenders
from kcv.data.images import DEFAULT_MAX_IMAGE_PIXELS, decode_rgb, encode_png, load_rgb, open_checked

log = logging.getLogger(__name__)
LOG_EVERY = 10000  # images between progress lines: large sets take minutes to decode


@dataclasses.dataclass(frozen=True)
class Record:
    """One example: a stable id, where its image lives, and its label (None when unlabelled)."""

    id: str
    path: str | None
    label: str | None


# eq=False: the array fields make field-wise == ambiguous; compare fields explicitly instead.
@dataclasses.dataclass(frozen=True, eq=False)
class SourceExample:
    """One loaded example, ready for the Example schema.

    encoded: image file bytes (8-bit RGB PNG or JPEG); b"" for vector data.
    features: float32 (d,) for vector data, else None.
    boxes: float32 (N, 4) normalised xyxy and box_classes: int64 (N,) for detection, else None.
    """

    id: str
    encoded: bytes
    label: str | None
    features: np.ndarray | None = None
    boxes: np.ndarray | None = None
    box_classes: np.ndarray | None = None


def _is_8bit_rgb_png(data: bytes) -> bool:
    # IHDR: signature (8) + length (4) + "IHDR" (4) + width (4) + height (4), then bit depth.
    return len(data) > 24 and data[24] == 8


def encoded_image(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> bytes:
    """The bytes to store for an image file: the file itself when it is 8-bit RGB PNG or JPEG
    (what a decoder gives back equals our decoding), else a PNG of its RGB decoding.

    Decodes fully (validation); ValueError naming `name` if the file is empty or corrupt, or
    (from its header, before decoding) has more than `max_pixels` pixels.
    """
    image = decode_rgb(data, name=name, max_pixels=max_pixels)  # (H, W, 3) uint8
    with open_checked(data, name, max_pixels) as img:  # the header again, for mode and format
        # tRNS on an RGB PNG: we composite onto white, a plain PNG decoder would not.
        keep = img.mode == "RGB" and "transparency" not in img.info and (
            img.format == "JPEG" or (img.format == "PNG" and _is_8bit_rgb_png(data)))
    return data if keep else encode_png(image)


class Source:
    """Base class: subclasses fill `records()`; reading, validation and loading are shared."""

    name = "source"
    #: splits the source provides on disk (Kaggle test/, bananas val, a tfds test split)
    native_splits: tuple[str, ...] = ("train",)
    #: the split the source provides for evaluation, or None: the pipeline holds one out of train
    eval_split: str | None = None

    def records(self, split: str = "train") -> list[Record]:
        raise NotImplementedError

    def labels(self) -> list[str]:
        """The label vocabulary: sorted distinct labels of the train split."""
        return sorted({r.label for r in self.records("train") if r.label is not None})

    def read(self, record: Record) -> np.ndarray:
        """The record's image as (H, W, 3) uint8."""
        return load_rgb(record.path)

    def _encode(self, record: Record, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> bytes:
        with open(record.path, "rb") as f:
            data = f.read()
        return encoded_image(data, name=os.path.basename(record.path), max_pixels=max_pixels)

    def _decode_all(self, split: str, keep: bool = True, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
                    ) -> tuple[list[SourceExample], list[str]]:
        """(examples in records() order, or [] unless `keep`; one message per unreadable or
        over-limit image)."""
        records = self.records(split)
        examples, bad = [], []
        for n, record in enumerate(records, start=1):
            try:
                encoded = self._encode(record, max_pixels)
                if keep:  # validate() only decodes: holding every file's bytes would cost memory
                    examples.append(SourceExample(record.id, encoded, record.label))
            except (ValueError, OSError) as err:
                bad.append(str(err))
            if n % LOG_EVERY == 0:
                log.info("%s: read %d/%d %s images", self.name, n, len(records), split)
        return examples, bad

    def load(self, split: str = "train", max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> list[SourceExample]:
        """Every example of `split`, in records() order, each image decoded once.

        Raises DataError counting and naming the unreadable images, all of them at once; an image
        whose header announces more than `max_image_pixels` pixels is one of them, never decoded.
        """
        examples, bad = self._decode_all(split, max_pixels=max_image_pixels)
        if bad:
            raise offenders("images are unreadable (fix or remove them and their label rows)", bad)
        return examples

    def validate(self, read_images: bool = True) -> None:
        """Check layout (done in the constructor) and, if asked, decode every image fully.

        Raises DataError naming the count and the first unreadable files of all native splits.
        """
        if not read_images:
            return
        bad = []
        for split in self.native_splits:
            bad += self._decode_all(split, keep=False)[1]
        if bad:
            raise offenders("images are unreadable", bad)
