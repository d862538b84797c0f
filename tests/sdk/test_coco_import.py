"""The SDK's import of image folders with COCO annotations (read by ``read_coco``):
pure reading, then an import into a real draft with records left out."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from framevault.sdk import ClientSettings, DatasetVersion
from framevault.sdk.formats import FormatError, IssueKind, read_image_folder

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


def with_unknown_category(coco_file: Path) -> Path:
    """The COCO file with the annotation of dog.jpg naming a category it does not declare."""
    data = json.loads(coco_file.read_text())
    data["annotations"][2]["category_id"] = 42
    unknown = coco_file.with_name("unknown.json")
    unknown.write_text(json.dumps(data))
    return unknown


def test_coco_file_maps_to_annotations(image_folder: tuple[Path, Path]) -> None:
    folder, coco_file = image_folder
    imported = read_image_folder(folder, coco_file=coco_file)
    (orphan,) = imported.issues
    assert (orphan.kind, orphan.record, orphan.field) == (IssueKind.missing_image, "annotations[3] (id 103)", "image_id")
    read = imported.coco_frames()
    cat1 = read.get(str(folder / "cats" / "cat1.jpg"))
    assert cat1 is not None and (cat1.width, cat1.height) == (40, 30), "matched by base name"
    box, polygon = cat1.annotations
    assert box.box2d_xywh == (1, 2, 10, 8) and polygon.poly2d_xy == [[1, 2, 11, 2, 11, 10, 1, 10]]
    assert box.id == polygon.id == "coco-100" and box.labels == ["cat"]
    assert box.metadata == {"iscrowd": 0, "area": 80, "coco_id": 100}
    cat2 = read.get(str(folder / "cats" / "cat2.png"))
    assert cat2 is not None
    (crowd,) = cat2.annotations
    assert crowd.box2d_xywh == (0, 0, 5, 5), "the RLE mask rides on the box of its object"
    assert crowd.metadata["coco_rle"] == {"size": [10, 20], "counts": "0i0_5"}
    dog = read.get(str(folder / "dog.jpg"))
    assert dog is not None
    _, keypoints = dog.annotations
    assert keypoints.keypoints == [(5, 5, 2), (6, 6, 1), (0, 0, 0)]


def test_image_folder_becomes_frames_with_coco_annotations(image_folder: tuple[Path, Path]) -> None:
    folder, coco_file = image_folder
    imported = read_image_folder(folder, coco_file=coco_file)
    frames = list(imported.frames())
    assert [f.id for f in frames] == ["cats/cat1.jpg", "cats/cat2.png", "dog.jpg"]
    assert [issue.record for issue in imported.issues] == ["annotations[3] (id 103)"] and imported.unmatched == []
    cat1, cat2, dog = frames
    assert (cat1.width, cat1.height) == (40, 30) and (dog.width, dog.height) == (16, 16), "header size without COCO"
    assert cat1.metadata == {"file_name": "cats/cat1.jpg", "coco_image_id": 1}
    assert (cat1.context_id, cat1.timestamp) == ("cats/cat1.jpg", 0)
    assert [a.id for a in cat1.annotations] == ["coco-100", "coco-100"]
    assert [a.labels for a in cat2.annotations] == [["cat"]]
    assert dog.annotations[1].keypoints == [(5, 5, 2), (6, 6, 1), (0, 0, 0)]
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


def test_a_malformed_annotation_refuses_the_file_naming_record_and_field(image_folder: tuple[Path, Path]) -> None:
    folder, coco_file = image_folder
    with pytest.raises(FormatError, match="needs 4 numbers, got 3") as malformed:
        read_image_folder(folder, coco_file=with_bad_box(coco_file))
    assert (malformed.value.file, malformed.value.record, malformed.value.field) == (
        str(coco_file.with_name("bad.json")), "annotations[2] (id 102)", "bbox")


def test_unusable_coco_files_and_settings_are_refused(tmp_path: Path, image_folder: tuple[Path, Path]) -> None:
    folder, _ = image_folder
    not_json = tmp_path / "x.json"
    not_json.write_text("{")
    with pytest.raises(FormatError, match="not JSON"):
        read_image_folder(folder, coco_file=not_json)
    no_images = tmp_path / "y.json"
    no_images.write_text('{"annotations": []}')
    with pytest.raises(FormatError, match="no 'images' list"):
        read_image_folder(folder, coco_file=no_images)
    with pytest.raises(ValueError, match="fps"):
        read_image_folder(folder, fps=0)


async def test_import_into_a_draft_with_records_left_out(sdk: ClientSettings, image_folder: tuple[Path, Path]) -> None:
    folder, coco_file = image_folder
    name = f"coco-{uuid.uuid4().hex[:8]}"
    await DatasetVersion.acreate_new_dataset(name)
    draft = await DatasetVersion.aget_version(name)
    imported = read_image_folder(folder, coco_file=with_unknown_category(coco_file))

    totals = await draft.aadd_frames_with_totals(imported.frames(), progress=False)

    assert (totals.created, totals.failed) == (3, [])
    assert [(issue.kind, issue.record) for issue in imported.issues] == [
        (IssueKind.unknown_category, "annotations[2] (id 102)"), (IssueKind.missing_image, "annotations[3] (id 103)")]
    stored = {frame.id: frame async for frame in draft.aiterate_frames()}
    assert sorted(stored) == ["cats/cat1.jpg", "cats/cat2.png", "dog.jpg"]
    assert [a.id for a in stored["cats/cat1.jpg"].annotations] == ["coco-100", "coco-100"]
    assert stored["dog.jpg"].annotations == [], "the record left out, its image imported"
