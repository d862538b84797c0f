"""Round trips through files written by FiftyOne: FiftyOne builds a dataset and writes it as COCO,
YOLO and VOC with its own exporters; framevault imports each into a version on the real services,
exports the version again, and FiftyOne loads that export: every box, polygon, keypoint, label and
image size matches what FiftyOne started with. The FiftyOne dataset itself goes in and out through
the CLI, run in the FiftyOne environment (fiftyone_env.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from support import client_tls_env

from framevault.sdk import ClientSettings, DatasetVersion
from framevault.sdk.formats import (
    ReadResult,
    aexport_frames,
    aimport_frames,
    aselect_frames,
    read_coco,
    read_voc,
    read_yolo,
)

try:
    from tests.formats.conftest import SOURCE_DATASET
    from tests.formats.fiftyone_env import fiftyone_tool, run_in_fiftyone
except ModuleNotFoundError:  # tests/ itself is on sys.path when it is not a package
    from formats.conftest import SOURCE_DATASET  # type: ignore[no-redef]
    from formats.fiftyone_env import fiftyone_tool, run_in_fiftyone  # type: ignore[no-redef]

# The first test builds the FiftyOne environment (about 4 minutes) unless the machine has it.
pytestmark = pytest.mark.timeout(1800)

LABEL_KINDS = ("boxes", "polygons", "keypoints", "classifications")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rounded(value: Any) -> Any:
    """Pixels to 1/100: the formats store floats (YOLO: 6 decimals of the normalized value)."""
    if isinstance(value, float):
        return round(value, 2) + 0.0
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def labels_of(by_image: dict[str, Any], kinds: tuple[str, ...], *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """Image sizes and the chosen kinds of labels by image name, rounded and in a fixed order."""
    out = {}
    for name, entry in by_image.items():
        picked: dict[str, Any] = {"size": entry["size"]}
        for kind in kinds:
            items = [rounded(item) for item in entry[kind] if (item if kind == "classifications" else item[0])
                     not in without]
            picked[kind] = sorted(items, key=json.dumps)
        out[name] = picked
    return out


async def load(format_name: str, directory: Path, environ: dict[str, str], *, layout: str = "ours") -> Any:
    """``directory`` as FiftyOne's importer for ``format_name`` reads it, in pixels by image name."""
    return await asyncio.to_thread(fiftyone_tool, environ, "load", format_name, str(directory), layout)


async def round_trip(read: ReadResult, format_name: str, output: Path) -> None:
    """``read`` into a new dataset's draft, then the draft exported as ``format_name`` to ``output``."""
    assert read.issues == [], [str(issue) for issue in read.issues]
    name = unique(f"third-party-{format_name}")
    await DatasetVersion.acreate_new_dataset(name)
    draft = await DatasetVersion.aget_version(name)
    report = await aimport_frames(draft, read, progress=False)
    assert report.totals is not None and report.totals.failed == []
    assert report.totals.created == len(read.frames) == 3
    selection = await aselect_frames(name, progress=False)
    assert sorted(f.id or "" for f in selection.frames) == sorted(f.id or "" for f in read.frames)
    assert all(f.source.startswith("blob:sha256/") for f in selection.frames), "images went to the blob service"
    counts = await aexport_frames(format_name, selection.frames, output, progress=False)
    assert counts.frames == 3 and counts.images_copied == 3 and counts.images_referenced == []


async def test_coco_boxes_and_crowd_masks_written_by_fiftyone(
    sdk: ClientSettings, third_party: tuple[Path, Any], fiftyone_env: dict[str, str], tmp_path: Path,
) -> None:
    source, expected = third_party
    theirs = source / "coco_boxes"
    await round_trip(read_coco(theirs / "labels.json", theirs / "data"), "coco", tmp_path / "ours")

    assert labels_of(await load("coco", tmp_path / "ours", fiftyone_env), ("boxes",)) == labels_of(
        await load("coco", theirs, fiftyone_env, layout="fiftyone"), ("boxes",)) == labels_of(expected, ("boxes",))

    def crowd_mask(path: Path) -> np.ndarray:
        data = json.loads(path.read_text())
        (crowd,) = [a for a in data["annotations"] if a["iscrowd"]]
        rle = crowd["segmentation"]
        height, width = rle["size"]
        compressed = mask_utils.frPyObjects(rle, height, width) if isinstance(rle["counts"], list) else rle
        return mask_utils.decode(compressed)

    ours = crowd_mask(tmp_path / "ours" / "annotations.json")
    assert ours.sum() == 7 * 9 and np.array_equal(ours, crowd_mask(theirs / "labels.json"))


@pytest.mark.parametrize(("export", "kind"), [("coco_polygons", "polygons"), ("coco_keypoints", "keypoints")])
async def test_coco_polygons_and_keypoints_written_by_fiftyone(
    sdk: ClientSettings, third_party: tuple[Path, Any], fiftyone_env: dict[str, str], tmp_path: Path, export: str,
    kind: str,
) -> None:
    source, _ = third_party
    theirs = source / export
    await round_trip(read_coco(theirs / "labels.json", theirs / "data"), "coco", tmp_path / "ours")

    # FiftyOne's COCO exporter rounds polygons and keypoints to whole pixels: the file it wrote is the reference.
    assert labels_of(await load("coco", tmp_path / "ours", fiftyone_env), (kind,)) == labels_of(
        await load("coco", theirs, fiftyone_env, layout="fiftyone"), (kind,))


async def test_yolo_tree_written_by_fiftyone(
    sdk: ClientSettings, third_party: tuple[Path, Any], fiftyone_env: dict[str, str], tmp_path: Path,
) -> None:
    source, expected = third_party
    read = read_yolo(source / "yolo")
    assert read.categories == ["cat", "dog"]
    await round_trip(read, "yolo", tmp_path / "ours")

    assert labels_of(await load("yolo", tmp_path / "ours", fiftyone_env), ("boxes",)) == labels_of(
        await load("yolo", source / "yolo", fiftyone_env, layout="fiftyone"), ("boxes",)) == labels_of(
        expected, ("boxes",), without=("crowd",))


async def test_voc_tree_written_by_fiftyone(
    sdk: ClientSettings, third_party: tuple[Path, Any], fiftyone_env: dict[str, str], tmp_path: Path,
) -> None:
    source, expected = third_party
    await round_trip(read_voc(source / "voc" / "labels", images_dir=source / "voc" / "data"), "voc",
                     tmp_path / "ours")

    # VOC corners are whole pixels in FiftyOne's writer: the file it wrote is the reference.
    assert labels_of(await load("voc", tmp_path / "ours", fiftyone_env), ("boxes",)) == labels_of(
        await load("voc", source / "voc", fiftyone_env, layout="fiftyone"), ("boxes",))


async def test_fiftyone_dataset_in_and_out_through_the_cli(
    sdk: ClientSettings, third_party: tuple[Path, Any], fiftyone_env: dict[str, str], tmp_path: Path,
) -> None:
    _, expected = third_party
    environ = {**fiftyone_env, **client_tls_env(), "FRAMEVAULT_METADATA_TARGET": sdk.metadata_target,
               "FRAMEVAULT_BLOB_TARGET": sdk.blob_target}
    dataset = unique("from-fiftyone")
    copy = unique("fiftyone-copy")

    imported = await asyncio.to_thread(run_in_fiftyone, environ, "-m", "framevault.cli.main", "import", "fiftyone",
                                       SOURCE_DATASET, "--dataset", dataset, "--no-progress")
    # The crowd detection carries an instance mask, which has no framevault form: reported, not dropped.
    left_out = [line for line in imported.stderr.splitlines() if line.startswith("left out:")]
    assert len(left_out) == 1 and "instance mask" in left_out[0] and "field detections" in left_out[0]
    assert "imported 3 of 3 frames" in imported.stdout and "1 records left out" in imported.stdout

    exported = await asyncio.to_thread(run_in_fiftyone, environ, "-m", "framevault.cli.main", "export-as", "fiftyone",
                                       str(tmp_path / "out"), "--dataset", dataset, "--fiftyone-dataset", copy,
                                       "--no-progress")
    assert "exported 3 frames" in exported.stdout and "not exported" not in exported.stderr
    try:
        written = await asyncio.to_thread(fiftyone_tool, environ, "dump", copy)
    finally:
        await asyncio.to_thread(fiftyone_tool, environ, "delete", copy)
    assert labels_of(written, LABEL_KINDS) == labels_of(expected, LABEL_KINDS, without=("crowd",))
