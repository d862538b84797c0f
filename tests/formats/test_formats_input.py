"""Bad input, dry runs, image placement, and exports of a query and of a version diff, on the real
services through the CLI (``framevault import`` / ``framevault export-as``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pycocotools.coco import COCO

from framevault.sdk import ClientSettings, DatasetVersion, NotFoundError, SingleFrame
from framevault.sdk.formats import FormatError, IssueKind, read_coco, read_voc, read_yolo

try:
    from tests.cli.test_cli import run, unique
    from tests.sdk.helpers import make_image
except ModuleNotFoundError:  # tests/ itself is on sys.path when it is not a package
    from cli.test_cli import run, unique  # type: ignore[no-redef]
    from sdk.helpers import make_image  # type: ignore[no-redef]


def coco_tree(root: Path) -> Path:
    """Images a (40x30), b (20x10) and c (16x16, a dog), and a COCO file with a caption-free
    image entry whose file is missing and four annotations that cannot be imported."""
    make_image(root / "images" / "a.jpg", (40, 30))
    make_image(root / "images" / "b.png", (20, 10))
    make_image(root / "images" / "c.jpg", (16, 16))
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30, "frame_labels": ["day"]},
                   {"id": 2, "file_name": "b.png", "width": 20, "height": 10},
                   {"id": 3, "file_name": "c.jpg", "width": 16, "height": 16},
                   {"id": 4, "file_name": "missing.jpg", "width": 8, "height": 8}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 8], "iscrowd": 0,
             "segmentation": [[1, 2, 11, 2, 11, 10]]},
            {"id": 11, "image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5], "iscrowd": 0},
            {"id": 12, "image_id": 3, "category_id": 2, "bbox": [2, 2, 8, 8], "iscrowd": 0},
            {"id": 13, "image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1]},
            {"id": 14, "image_id": 2, "category_id": 1, "bbox": [15, 0, 10, 5]},
            {"id": 15, "image_id": 4, "category_id": 1, "bbox": [0, 0, 1, 1]},
            {"id": 16, "image_id": 77, "category_id": 1, "bbox": [0, 0, 1, 1]},
        ],
    }
    (root / "instances.json").write_text(json.dumps(data))
    return root / "instances.json"


def with_change(coco_file: Path, index: int, **fields: object) -> Path:
    data = json.loads(coco_file.read_text())
    data["annotations"][index].update(fields)
    out = coco_file.with_name("changed.json")
    out.write_text(json.dumps(data))
    return out


def test_malformed_files_name_the_file_record_and_field(tmp_path: Path) -> None:
    coco_file = coco_tree(tmp_path)
    with pytest.raises(FormatError) as bad_box:
        read_coco(with_change(coco_file, 1, bbox=[0, 0, 5]), tmp_path / "images")
    assert (bad_box.value.record, bad_box.value.field) == ("annotations[1] (id 11)", "bbox")
    assert bad_box.value.file.endswith("changed.json") and "needs 4 numbers" in str(bad_box.value)
    with pytest.raises(FormatError) as bad_polygon:
        read_coco(with_change(coco_file, 0, segmentation=[[1, 2, 3]]), tmp_path / "images")
    assert (bad_polygon.value.record, bad_polygon.value.field) == ("annotations[0] (id 10)", "segmentation[0]")
    (tmp_path / "broken.json").write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(FormatError, match=r"broken.json, line 2 column \d+: not JSON"):
        read_coco(tmp_path / "broken.json", tmp_path)

    yolo = tmp_path / "yolo"
    make_image(yolo / "images" / "train" / "x.jpg", (10, 10))
    (yolo / "labels" / "train").mkdir(parents=True)
    (yolo / "labels" / "train" / "x.txt").write_text("0 0.5 0.5 0.2 0.2\ncat 0.5 0.5 0.2 0.2\n")
    (yolo / "data.yaml").write_text("names: [cat]\ntrain: images/train\n")
    with pytest.raises(FormatError) as bad_class:
        read_yolo(yolo)
    assert bad_class.value.file.endswith("x.txt") and (bad_class.value.record, bad_class.value.field) == (
        "line 2", "class")
    (yolo / "data.yaml").write_text("train: images/train\n")
    with pytest.raises(FormatError) as no_names:
        read_yolo(yolo / "data.yaml")
    assert no_names.value.field == "names"

    voc = tmp_path / "voc"
    make_image(voc / "JPEGImages" / "v.jpg", (10, 10))
    (voc / "Annotations").mkdir()
    (voc / "Annotations" / "v.xml").write_text(
        "<annotation><filename>v.jpg</filename><object><name>cat</name>"
        "<bndbox><ymin>1</ymin><xmax>4</xmax><ymax>4</ymax></bndbox></object></annotation>")
    with pytest.raises(FormatError) as no_xmin:
        read_voc(voc)
    assert (no_xmin.value.record, no_xmin.value.field) == ("object[0]", "bndbox/xmin")
    (voc / "Annotations" / "v.xml").write_text("<annotation><filename>v.jpg</filename>")
    with pytest.raises(FormatError, match=r"v.xml, line 1 column \d+: not XML"):
        read_voc(voc)


def test_records_that_cannot_be_imported_are_reported_each(tmp_path: Path) -> None:
    coco_file = coco_tree(tmp_path)
    read = read_coco(coco_file, tmp_path / "images")
    assert [(issue.kind, issue.record, issue.field) for issue in read.issues] == [
        (IssueKind.missing_image, "images[3] (id 4)", "file_name"),
        (IssueKind.unknown_category, "annotations[3] (id 13)", "category_id"),
        (IssueKind.box_out_of_range, "annotations[4] (id 14)", "bbox"),
        (IssueKind.missing_image, "annotations[5] (id 15)", "image_id"),
        (IssueKind.missing_image, "annotations[6] (id 16)", "image_id"),
    ]
    assert "past the image width 20" in str(read.issues[2])
    assert [f.id for f in read.frames] == ["a.jpg", "b.png", "c.jpg"]
    assert [a.id for a in read.frames[0].annotations] == [None, "coco-10", "coco-10"]
    assert read.frames[0].frame_labels == ["day"]
    degenerate = read_coco(with_change(coco_file, 1, segmentation=[[0, 0, 5, 5]]), tmp_path / "images").issues[1]
    assert (degenerate.kind, degenerate.record, degenerate.field) == (
        IssueKind.unsupported, "annotations[1] (id 11)", "segmentation[0]")

    yolo = tmp_path / "yolo"
    make_image(yolo / "images" / "val" / "x.jpg", (10, 20))
    (yolo / "labels" / "val").mkdir(parents=True)
    (yolo / "labels" / "val" / "x.txt").write_text("0 0.5 0.5 0.2 0.1\n3 0.5 0.5 0.2 0.2\n1 0.95 0.5 0.2 0.2 0.9\n")
    (yolo / "labels" / "val" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (yolo / "dataset.yaml").write_text("names: {0: cat, 1: dog}\nval: images/val\n")
    yolo_read = read_yolo(yolo)
    assert [(issue.kind, issue.record) for issue in yolo_read.issues] == [
        (IssueKind.unknown_category, "line 2"), (IssueKind.box_out_of_range, "line 3"),
        (IssueKind.missing_image, "the whole file")]
    (frame,) = yolo_read.frames
    assert (frame.id, frame.metadata["split"], frame.width, frame.height) == ("val/x.jpg", "val", 10, 20)
    assert frame.annotations[0].box2d_xywh == pytest.approx((4, 9, 2, 2))

    voc = tmp_path / "voc"
    make_image(voc / "JPEGImages" / "v.jpg", (10, 10))
    (voc / "Annotations").mkdir()
    for name, label, xmax in (("v", "cat", 4), ("w", "cat", 4), ("v2", "bird", 4), ("v3", "cat", 11)):
        image = "v.jpg" if name != "w" else "w.jpg"
        (voc / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{image}</filename><size><width>10</width><height>10</height></size>"
            f"<object><name>{label}</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
            f"<xmax>{xmax}</xmax><ymax>4</ymax></bndbox></object></annotation>")
    voc_read = read_voc(voc, labels=["cat"])
    assert [(issue.kind, Path(issue.file).name) for issue in voc_read.issues] == [
        (IssueKind.unknown_category, "v2.xml"), (IssueKind.box_out_of_range, "v3.xml"),
        (IssueKind.missing_image, "w.xml")]
    assert voc_read.frames[0].annotations[0].metadata == {"difficult": 1}


async def test_cli_import_reports_left_out_records_and_imports_the_rest(sdk: ClientSettings, tmp_path: Path) -> None:
    coco_file = coco_tree(tmp_path)
    dataset = unique("formats-import")

    dry = await run(sdk, "import", "coco", str(coco_file), "--images", str(tmp_path / "images"), "--dataset", dataset, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    summary = json.loads(dry.stdout)
    assert summary["frames"] == 3 and summary["annotations"] == 5
    assert summary["left_out"] == {"box out of range": 1, "missing image": 3, "unknown category": 1}
    assert dry.stderr.count("left out: ") == 5
    with pytest.raises(NotFoundError):
        await DatasetVersion.aget_version(dataset)  # the dry run wrote nothing

    strict = await run(sdk, "import", "coco", str(coco_file), "--images", str(tmp_path / "images"), "--dataset", dataset, "--strict")
    assert strict.exit_code == 2 and "nothing imported" in strict.stderr
    malformed = await run(sdk, "import", "coco", str(with_change(coco_file, 1, bbox="wide")), "--images", str(tmp_path / "images"),
                          "--dataset", dataset)
    assert malformed.exit_code == 2
    assert "changed.json, annotations[1] (id 11), field 'bbox': must be a list of numbers" in malformed.stderr
    with pytest.raises(NotFoundError):
        await DatasetVersion.aget_version(dataset)

    done = await run(sdk, "import", "coco", str(coco_file), "--images", str(tmp_path / "images"), "--dataset", dataset, "--no-progress")
    assert done.exit_code == 0, done.stderr
    assert "imported 3 of 3 frames (5 annotations)" in done.stdout and "5 records left out" in done.stdout
    assert "annotations[4] (id 14), field 'bbox': box out of range" in done.stderr
    draft = await DatasetVersion.aget_version(dataset)
    stored = {frame.id: frame async for frame in draft.aiterate_frames()}
    assert sorted(stored) == ["a.jpg", "b.png", "c.jpg"]
    assert [a.id for a in stored["b.png"].annotations] == ["coco-11"]
    assert stored["a.jpg"].frame_labels == ["day"]
    assert stored["a.jpg"].source.startswith("blob:sha256/")


async def test_images_can_stay_where_they_are(sdk: ClientSettings, tmp_path: Path) -> None:
    coco_file = coco_tree(tmp_path)
    dataset = unique("formats-reference")
    done = await run(sdk, "import", "coco", str(coco_file), "--images", str(tmp_path / "images"), "--dataset", dataset, "--reference", "--no-progress")
    assert done.exit_code == 0, done.stderr
    draft = await DatasetVersion.aget_version(dataset)
    sources = sorted([frame.source async for frame in draft.aiterate_frames()])
    assert sources == [f"file://{tmp_path / 'images' / name}" for name in ("a.jpg", "b.png", "c.jpg")]

    kept = await run(sdk, "export-as", "coco", str(tmp_path / "named"), "--dataset", dataset, "--reference-images")
    assert kept.exit_code == 0 and "0 images copied" in kept.stdout
    assert not (tmp_path / "named" / "images").exists()
    copied = await run(sdk, "export-as", "voc", str(tmp_path / "voc"), "--dataset", dataset)
    assert copied.exit_code == 0 and "3 images copied" in copied.stdout
    assert (tmp_path / "voc" / "JPEGImages" / "b.png").read_bytes() == (tmp_path / "images" / "b.png").read_bytes()
    # VOC has no place for polygons or frame labels: said, not dropped silently.
    assert "not exported: 1 frame label annotations" in copied.stderr
    assert "not exported: 1 polygon annotations" in copied.stderr


async def test_export_of_a_query_and_of_a_version_diff(sdk: ClientSettings, tmp_path: Path) -> None:
    coco_file = coco_tree(tmp_path)
    dataset = unique("formats-diff")
    assert (await run(sdk, "import", "coco", str(coco_file), "--images", str(tmp_path / "images"), "--dataset", dataset, "--version", "v1",
                      "--no-progress")).exit_code == 0
    v1 = await DatasetVersion.aget_version(dataset, "v1")
    await v1.apublish_version()
    v2 = await DatasetVersion.acreate_version(dataset, "v2", parent_version_name="v1")
    stored = {frame.id: frame async for frame in v2.aiterate_frames()}
    changed = stored["b.png"]
    changed.add_annotation(box2d_xywh=(1, 1, 3, 3), labels=["dog"])
    make_image(tmp_path / "images" / "d.jpg", (12, 12))
    added = SingleFrame(source=tmp_path / "images" / "d.jpg", width=12, height=12, id="d.jpg",
                        metadata={"file_name": "d.jpg"})
    added.add_annotation(box2d_xywh=(1, 1, 2, 2), labels=["cat"])
    assert await v2.aadd_frames([changed, added], progress=False) == []
    assert await v2.adelete_frames(["c.jpg"]) == 1

    diff = await run(sdk, "export-as", "coco", str(tmp_path / "diff"), "--dataset", dataset, "--version", "v2",
                     "--diff-base", "v1", "--no-progress")
    assert diff.exit_code == 0, diff.stderr
    assert "exported 2 frames" in diff.stdout and "1 removed since v1" in diff.stdout
    assert (tmp_path / "diff" / "removed.txt").read_text() == "c.jpg\n"
    coco = COCO(str(tmp_path / "diff" / "annotations.json"))
    names = {image["id"]: image["file_name"] for image in coco.dataset["images"]}
    assert sorted(names.values()) == ["b.png", "d.jpg"]
    by_name = {names[i]: [(coco.cats[a["category_id"]]["name"], a["bbox"]) for a in coco.imgToAnns[i]] for i in names}
    assert sorted(by_name["b.png"]) == [("cat", [0.0, 0.0, 5.0, 5.0]), ("dog", [1.0, 1.0, 3.0, 3.0])]
    assert coco.imgs[next(i for i in names if names[i] == "b.png")]["width"] == 20

    dogs = await run(sdk, "export-as", "yolo", str(tmp_path / "dogs"), "--dataset", dataset, "--version", "v2",
                     "-q", "label:dog", "--category", "cat", "--category", "dog", "--no-progress")
    assert dogs.exit_code == 0, dogs.stderr
    assert sorted(p.name for p in (tmp_path / "dogs" / "labels" / "train").iterdir()) == ["b.txt"]
    assert (tmp_path / "dogs" / "labels" / "train" / "b.txt").read_text() == (
        "0 0.125000 0.250000 0.250000 0.500000\n1 0.125000 0.250000 0.150000 0.300000\n")
    both = await run(sdk, "export-as", "voc", str(tmp_path / "both"), "--dataset", dataset, "--version", "v2",
                     "--diff-base", "v1", "-q", "label:dog", "--no-progress")
    assert both.exit_code == 0 and "exported 1 frames" in both.stdout
    assert [p.name for p in (tmp_path / "both" / "Annotations").iterdir()] == ["b.xml"]


async def test_a_missing_extra_is_named(sdk: ClientSettings, tmp_path: Path) -> None:
    """The dev environment has no fiftyone (it lives in its own, see fiftyone_env.py)."""
    result = await run(sdk, "import", "fiftyone", "some-dataset", "--dataset", unique("formats-extra"))
    assert result.exit_code == 1 and "pip install 'framevault[fiftyone]'" in result.stderr
    exported = await run(sdk, "export-as", "fiftyone", str(tmp_path / "out"), "--dataset", "x")
    assert exported.exit_code == 2 and "--fiftyone-dataset" in exported.stderr
