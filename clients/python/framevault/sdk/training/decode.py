"""Decoding sources into pixel arrays and masks into label maps.

A mask is an image whose pixel values stand for labels; the version's
``mask_labels`` say which (``{(r, g, b): [labels]}``, a gray level ``g`` being
``(g, g, g)``). A label map gives every pixel the class id of its value's
first label, and ``UNLABELED`` where the value has no label or the label has
no class id.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

UNLABELED = -1
"""Class id of pixels whose mask value has no label with a class id (the view's label enumeration uses -1 too)."""


def decode_image(data: bytes, mode: str = "RGB") -> np.ndarray:
    """The pixels of an encoded image as an ``H x W x C`` (``H x W`` for one channel) uint8 array.

    Raises:
        PIL.UnidentifiedImageError: the bytes are not an image Pillow can read.
    """
    with Image.open(io.BytesIO(data)) as image:
        return np.array(image.convert(mode))


def _pack_rgb(pixels: np.ndarray) -> np.ndarray:
    pixels = pixels.astype(np.int64)
    return (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]


class MaskLabelMap:
    """Turns mask images into label maps with one version's mask labels and a label -> class id enumeration."""

    def __init__(self, mask_labels: Mapping[tuple[int, int, int], Sequence[str]], class_ids: Mapping[str, int]) -> None:
        values: dict[int, int] = {}
        for (red, green, blue), labels in mask_labels.items():
            ids = [class_ids[label] for label in labels if label in class_ids]
            values[(int(red) << 16) | (int(green) << 8) | int(blue)] = ids[0] if ids else UNLABELED
        self._keys = np.array(sorted(values), dtype=np.int64)
        self._ids = np.array([values[key] for key in sorted(values)], dtype=np.int64)

    def __call__(self, mask_bytes: bytes) -> np.ndarray:
        """The ``H x W`` int64 label map of an encoded mask image."""
        packed = _pack_rgb(decode_image(mask_bytes, "RGB"))
        if not len(self._keys):
            return np.full(packed.shape, UNLABELED, dtype=np.int64)
        position = np.clip(np.searchsorted(self._keys, packed), 0, len(self._keys) - 1)
        return np.where(self._keys[position] == packed, self._ids[position], UNLABELED)


def enumerate_mask_labels(mask_labels: Mapping[tuple[int, int, int], Sequence[str]]) -> dict[str, int]:
    """Class ids 0, 1, ... for the labels of mask labels, in the order they are listed."""
    ids: dict[str, int] = {}
    for labels in mask_labels.values():
        for label in labels:
            ids.setdefault(label, len(ids))
    return ids
