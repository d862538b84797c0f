"""The dataset the browser tests look at, written with the Python SDK as a user writes it.

Run as a script with a client's environment (``python -m web.seed <dataset> <folder>``, from tests/): it
prints one JSON object with the ids the tests open. Everything the pages must draw is known here, so the
tests can check pixels: plain-colour images, a box and a two-part polygon at known pixels, a mask of one
known colour, contexts with known timestamps, and a second version that changes, adds and removes frames.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from framevault.sdk import DatasetVersion, FrameGroup, SingleFrame

# The painted frame: one plain colour, so any other colour on its pixels was drawn by the viewer.
IMAGE_SIZE = (400, 300)
IMAGE_COLOUR = (128, 128, 128)
BOX = (40, 30, 120, 90)  # x, y, w, h in image pixels
# Two parts: a triangle and a separate square.
POLYGON = [[(240, 60), (360, 60), (300, 240)], [(40, 200), (100, 200), (100, 260), (40, 260)]]
# The masked frame: its mask is black (no label) but for one rectangle of MASK_COLOUR.
MASK_COLOUR = (0, 200, 255)
MASK_RECT = (200, 0, 400, 150)  # left, top, right, bottom
MASK_LABELS = {(0, 0, 0): "background", MASK_COLOUR: "sky"}
# Contexts of the grid: name -> frame count; frames are 100 ms apart.
CONTEXTS = {"drive-a": 3, "drive-b": 2}
# A frame group (added in the second version): two cameras, each one plain colour.
STEREO_ID = "stereo"
STEREO_SIZE = (200, 100)
STEREO_COLOURS = {"left": (180, 60, 60), "right": (60, 60, 180)}
# A source that answers nothing: the viewer must still draw the frame's ROIs and say why the image is missing.
UNREACHABLE_IMAGE = "http://127.0.0.1:9/missing.png"


def plain_image(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def mask_image(path: Path) -> Path:
    mask = Image.new("RGB", IMAGE_SIZE, (0, 0, 0))
    ImageDraw.Draw(mask).rectangle((MASK_RECT[0], MASK_RECT[1], MASK_RECT[2] - 1, MASK_RECT[3] - 1), fill=MASK_COLOUR)
    mask.save(path)
    return path


def context_frames(folder: Path) -> list[SingleFrame]:
    frames = []
    for n, (context, count) in enumerate(CONTEXTS.items()):
        for i in range(count):
            frame_id = f"{context}-{i}"
            image = plain_image(folder / f"{frame_id}.png", (64, 48), (40 * n + 20, 10 * i + 60, 90))
            frame = SingleFrame(source=image, width=64, height=48, id=frame_id, context_id=context, timestamp=100 * i,
                                metadata={"weather": "sunny" if context == "drive-a" else "rain", "index": i})
            frame.add_annotation(box2d_xywh=(4, 4, 20, 20), labels=["car" if context == "drive-a" else "person"],
                                 confidence=0.5 + 0.1 * i)
            frames.append(frame)
    return frames


def seed(dataset: str, folder: Path) -> dict[str, object]:
    folder.mkdir(parents=True, exist_ok=True)
    DatasetVersion.create_new_dataset(dataset_name=dataset)
    draft = DatasetVersion.get_version(dataset_name=dataset)
    draft.set_masks_labels(MASK_LABELS)

    painted = SingleFrame(source=plain_image(folder / "painted.png", IMAGE_SIZE, IMAGE_COLOUR), width=IMAGE_SIZE[0],
                          height=IMAGE_SIZE[1], id="painted", context_id="drive-painted", timestamp=0,
                          metadata={"weather": "fog"})
    painted.add_annotation(box2d_xywh=BOX, labels=["car"], confidence=0.9, metadata={"occluded": False})
    painted.add_annotation(poly2d_xy=POLYGON, labels=["road"])
    masked = SingleFrame(source=plain_image(folder / "masked.png", IMAGE_SIZE, IMAGE_COLOUR), width=IMAGE_SIZE[0],
                         height=IMAGE_SIZE[1], id="masked", context_id="drive-masked", timestamp=0,
                         mask_source=mask_image(folder / "mask.png"))
    unreachable = SingleFrame(source=UNREACHABLE_IMAGE, width=IMAGE_SIZE[0], height=IMAGE_SIZE[1], id="unreachable",
                              context_id="drive-unreachable", timestamp=0, content_type="image/png")
    unreachable.add_annotation(box2d_xywh=BOX, labels=["car"])
    failed = draft.add_frames([*context_frames(folder), painted, masked, unreachable], upload_retries=3)
    assert not failed, failed

    v1 = DatasetVersion.create_snapshot(dataset_name=dataset, snapshot_name="v1")
    current = DatasetVersion.get_version(dataset_name=dataset)
    changed = current.get_single_frame("drive-a-1")
    changed.add_annotation(box2d_xywh=(30, 10, 20, 20), labels=["truck"])
    added = SingleFrame(source=plain_image(folder / "added.png", (64, 48), (200, 60, 60)), width=64, height=48,
                        id="drive-a-3", context_id="drive-a", timestamp=300, metadata={"weather": "sunny"})
    failed = current.add_frames([changed, added, stereo_group(folder)], upload_retries=3)
    assert not failed, failed
    current.delete_frames(["drive-b-1"])
    return {
        "dataset_id": v1.dataset_id, "v1_id": v1.version_id, "current_id": current.version_id,
        "changed": ["drive-a-1"], "added": ["drive-a-3", STEREO_ID], "removed": ["drive-b-1"],
    }


def stereo_group(folder: Path) -> FrameGroup:
    """A frame group of two cameras; its box belongs to the left one only."""
    group = FrameGroup(id=STEREO_ID, context_id="drive-stereo", timestamp=0)
    for side, colour in STEREO_COLOURS.items():
        image = plain_image(folder / f"{side}.png", STEREO_SIZE, colour)
        group[side] = SingleFrame(source=image, width=STEREO_SIZE[0], height=STEREO_SIZE[1], source_metadata={"camera": side})
    group["left"].add_annotation(box2d_xywh=(20, 20, 60, 40), labels=["cone"])
    return group


def seed_large_diff(dataset: str, folder: Path, added: int) -> dict[str, object]:
    """A dataset whose second version adds ``added`` frames to the first one's single frame."""
    folder.mkdir(parents=True, exist_ok=True)
    DatasetVersion.create_new_dataset(dataset_name=dataset)
    draft = DatasetVersion.get_version(dataset_name=dataset)
    image = plain_image(folder / "plain.png", (64, 48), (90, 120, 150))
    failed = draft.add_frames([SingleFrame(source=image, width=64, height=48, id="first", context_id="drive-first",
                                           timestamp=0)], upload_retries=3)
    assert not failed, failed
    v1 = DatasetVersion.create_snapshot(dataset_name=dataset, snapshot_name="v1")
    current = DatasetVersion.get_version(dataset_name=dataset)
    frames = [SingleFrame(source=image, width=64, height=48, id=f"more-{i:03d}", context_id="drive-more",
                          timestamp=100 * i) for i in range(added)]
    failed = current.add_frames(frames, upload_retries=3)
    assert not failed, failed
    return {"dataset_id": v1.dataset_id, "v1_id": v1.version_id, "current_id": current.version_id,
            "added": [frame.id for frame in frames]}


if __name__ == "__main__":
    if sys.argv[3:4] == ["large-diff"]:
        print(json.dumps(seed_large_diff(sys.argv[1], Path(sys.argv[2]), int(sys.argv[4]))))
    else:
        print(json.dumps(seed(sys.argv[1], Path(sys.argv[2]))))
