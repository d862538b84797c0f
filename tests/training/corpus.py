"""A dataset of real images and masks in the blob service, for the training loader tests and benchmark."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from framevault.sdk import DatasetVersion, SingleFrame

MASK_LABELS = {(0, 0, 0): "background", (255, 0, 0): ["person", "pedestrian"], 7: "void"}
# Mask pixel values and their class ids with the mask labels numbered in order
# (background 0, person 1, pedestrian 2, void 3); (9, 9, 9) has no label.
MASK_VALUES = [((0, 0, 0), 0), ((255, 0, 0), 1), ((7, 7, 7), 3), ((9, 9, 9), -1)]


@dataclass
class Corpus:
    dataset_name: str
    frame_ids: list[str]
    image_paths: dict[str, Path]
    mask_paths: dict[str, Path]


def noise_image(path: Path, size: tuple[int, int], seed: int) -> Path:
    """A PNG of random pixels: it does not compress, so its size is about width x height x 3 bytes."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def mask_image(path: Path, size: tuple[int, int], shift: int) -> Path:
    """A mask of vertical stripes of the MASK_VALUES colours, starting at stripe ``shift``."""
    width, height = size
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    for x in range(width):
        pixels[:, x] = MASK_VALUES[(x + shift) % len(MASK_VALUES)][0]
    Image.fromarray(pixels).save(path)
    return path


def expected_label_map(size: tuple[int, int], shift: int) -> np.ndarray:
    width, height = size
    row = np.array([MASK_VALUES[(x + shift) % len(MASK_VALUES)][1] for x in range(width)], dtype=np.int64)
    return np.tile(row, (height, 1))


async def make_corpus(folder: Path, frames: int, size: tuple[int, int] = (24, 16), *, masks: bool = True) -> Corpus:
    """A dataset (draft Current) of ``frames`` noise images, each with a mask and one box, uploaded as blobs."""
    name = f"training-{uuid.uuid4().hex[:8]}"
    await DatasetVersion.acreate_new_dataset(name)
    draft = await DatasetVersion.aget_version(name)
    await draft.aset_masks_labels(MASK_LABELS)
    corpus = Corpus(name, [], {}, {})
    batch = []
    for index in range(frames):
        frame_id = f"f{index:04d}"
        image = noise_image(folder / f"{frame_id}.png", size, seed=index)
        mask = mask_image(folder / f"{frame_id}_mask.png", size, shift=index) if masks else None
        frame = SingleFrame(source=str(image), width=size[0], height=size[1], id=frame_id, context_id=f"c{index % 3}",
                            timestamp=index, mask_source=str(mask) if mask else None)
        frame.add_annotation(box2d_xywh=(1, 2, 3 + index, 4), labels="person" if index % 2 else "car")
        batch.append(frame)
        corpus.frame_ids.append(frame_id)
        corpus.image_paths[frame_id] = image
        if mask:
            corpus.mask_paths[frame_id] = mask
    failed = await draft.aadd_frames(batch, progress=False)
    assert failed == [], failed
    return corpus
