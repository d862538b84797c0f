"""The SDK's import of image folders with COCO annotations: pure reading, then
an import into a real draft with per-record errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from framevault.sdk import ClientSettings, DatasetVersion
from framevault.sdk.formats import CocoError, CocoRecordError, load_coco, read_image_folder

from .helpers import write_coco_folder


@pytest.fixture()
def image_folder(tmp_path: Path) -> tuple[Path, Path]:
    return write_coco_folder(tmp_path)


def with_bad_box(coco_file: Path) -> Path:
    """The COCO file with a three-number box on the annotation of dog.jpg."""
    data = json.loads(coco_file.read_text())
    data["annotations"][2]["bbox"] = [1, 2, 3]
    bad = coco_file.with_name("bad.json")
    bad.write_text(json.dumps(data))
    return bad


def test_coco_file_maps_to_annotations(image_folder: tuple[Path, Path]) -> None:
    _, coco_file = image_folder
    index = load_coco(coco_file)
    assert index.orphan_annotations == 1
    cat1 = index.find("cats/cat1.jpg")
    assert cat1 is not None and (cat1.width, cat1.height) == (40, 30)
    box, polygon = index.annotations_of(cat1)
    assert box.box2d_xywh == (1, 2, 10, 8) and polygon.poly2d_xy == [[1, 2, 11, 2, 11, 10, 1, 10]]
    assert box.id == polygon.id == "coco-100" and box.labels == ["cat"]
    assert box.metadata == {"iscrowd": 0, "area": 80, "coco_id": 100}
    cat2 = index.find("cats/cat2.png")
    assert cat2 is not None and index.skipped_rle == 0
    (crowd,) = index.annotations_of(cat2)
    assert crowd.box2d_xywh == (0, 0, 5, 5), "the RLE mask rides on the box of its object"
    assert crowd.metadata["coco_rle"] == {"size": [10, 20], "counts": "0i0_5"}
    dog = index.find("dog.jpg")
    assert dog is not None
    _, keypoints = index.annotations_of(dog)
    assert keypoints.keypoints == [(5, 5, 2), (6, 6, 1), (0, 0, 0)]


def test_image_folder_becomes_frames_with_coco_annotations(image_folder: tuple[Path, Path]) -> None:
    folder, coco_file = image_folder
    imported = read_image_folder(folder, coco_file=coco_file)
    frames = list(imported.frames())
    assert [f.id for f in frames] == ["cats/cat1.jpg", "cats/cat2.png", "dog.jpg"]
    assert imported.errors == [] and imported.unmatched == []
    cat1, cat2, dog = frames
    assert (cat1.width, cat1.height) == (40, 30) and (dog.width, dog.height) == (16, 16), "header size without COCO"
    assert cat1.metadata == {"file_name": "cats/cat1.jpg", "coco_image_id": 1}
    assert (cat1.context_id, cat1.timestamp) == ("cats/cat1.jpg", 0)
    assert [a.id for a in cat1.annotations] == ["coco-100", "coco-100"]
    assert [a.labels for a in cat2.annotations] == [["cat"]]
    assert dog.annotations[1].keypoints == [(5, 5, 2), (6, 6, 1), (0, 0, 0)]
    assert imported.coco is not None and imported.coco.skipped_rle == 0
    assert cat2.annotations[0].metadata["coco_rle"]["size"] == [10, 20]


def test_sequence_folders_are_contexts_with_timestamps_from_fps(image_folder: tuple[Path, Path]) -> None:
    folder, _ = image_folder
    frames = list(read_image_folder(folder, sequence=True, fps=10).frames())
    assert [(f.id, f.context_id, f.timestamp) for f in frames] == [
        ("cats/cat1.jpg", "cats", 0), ("cats/cat2.png", "cats", 100), ("dog.jpg", ".", 0)]
    assert all(not f.annotations for f in frames)
    only_top = read_image_folder(folder, recursive=False)
    assert [f.id for f in only_top.frames()] == ["dog.jpg"]


def test_unmatched_images_are_listed_and_imported_without_annotations(image_folder: tuple[Path, Path]) -> None:
    folder, coco_file = image_folder
    data = json.loads(coco_file.read_text())
    data["images"] = data["images"][:1]
    coco_file.write_text(json.dumps(data))
    imported = read_image_folder(folder, coco_file=coco_file)
    assert imported.unmatched == ["cats/cat2.png", "dog.jpg"]
    assert [len(f.annotations) for f in imported.frames()] == [2, 0, 0]


def test_a_bad_annotation_fails_its_frame_only(image_folder: tuple[Path, Path]) -> None:
    folder, coco_file = image_folder
    imported = read_image_folder(folder, coco_file=with_bad_box(coco_file))
    assert [f.id for f in imported.frames()] == ["cats/cat1.jpg", "cats/cat2.png"]
    assert len(imported.errors) == 1
    error = imported.errors[0]
    assert isinstance(error, CocoRecordError) and error.frame_id == "dog.jpg"
    assert str(error).startswith("dog.jpg: annotation 102 of dog.jpg: ")
    with pytest.raises(CocoError, match="annotation 102 of dog.jpg"):
        list(imported.frames(strict=True))


def test_unusable_coco_files_and_settings_are_refused(tmp_path: Path, image_folder: tuple[Path, Path]) -> None:
    folder, _ = image_folder
    not_json = tmp_path / "x.json"
    not_json.write_text("{")
    with pytest.raises(CocoError, match="cannot read"):
        read_image_folder(folder, coco_file=not_json)
    no_images = tmp_path / "y.json"
    no_images.write_text('{"annotations": []}')
    with pytest.raises(CocoError, match="no 'images' list"):
        read_image_folder(folder, coco_file=no_images)
    with pytest.raises(ValueError, match="fps"):
        read_image_folder(folder, fps=0)


async def test_import_into_a_draft_with_per_record_errors(sdk: ClientSettings, image_folder: tuple[Path, Path]) -> None:
    folder, coco_file = image_folder
    name = f"coco-{uuid.uuid4().hex[:8]}"
    await DatasetVersion.acreate_new_dataset(name)
    draft = await DatasetVersion.aget_version(name)
    imported = read_image_folder(folder, coco_file=with_bad_box(coco_file))

    totals = await draft.aadd_frames_with_totals(imported.frames(), progress=False)

    assert (totals.created, totals.failed) == (2, [])
    assert [e.frame_id for e in imported.errors] == ["dog.jpg"]
    stored = {frame.id: frame async for frame in draft.aiterate_frames()}
    assert sorted(stored) == ["cats/cat1.jpg", "cats/cat2.png"]
    assert [a.id for a in stored["cats/cat1.jpg"].annotations] == ["coco-100", "coco-100"]
