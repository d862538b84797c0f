"""The README's quickstarts, run as written against the services ``make run`` starts, with real image files.

Every frame a command reports as registered is read back: its source is a
``blob:`` reference, and the blob service returns exactly the bytes of the
local file it came from.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from framevault.v1 import frame_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .flows import (
    create_dataset,
    list_frames,
    python_script,
    read_blob,
    readme_block,
    run,
    store_blob,
    unique,
    upload_frames,
    version_ref,
    write_image,
)
from .launch import Endpoints

# The README's CLI quickstart filters with this; half of the images pass it.
WIDE, NARROW = (640, 360), (320, 180)


def ingest_summary(stdout: str) -> dict[str, int]:
    """Images found, frames created and frames failed, from the last line ``framevault ingest`` prints."""
    line = next(line for line in reversed(stdout.splitlines()) if line.startswith("ingested "))
    images = re.search(r" of (\d+) images", line)
    counts = dict((kind, int(n)) for n, kind in re.findall(r"(\d+) (created|failed)", line))
    assert images and set(counts) == {"created", "failed"}, line
    return {"images": int(images.group(1)), **counts}


def assert_sources_round_trip(endpoints: Endpoints, frames: list[frame_pb2.Frame], files: dict[str, Path]) -> None:
    """Each frame (by id) has one source whose blob holds exactly the bytes of its file."""
    blobs = endpoints.blob_stub()
    assert sorted(f.id for f in frames) == sorted(files)
    for frame in frames:
        (source,) = frame.sources
        assert read_blob(blobs, source.uri) == files[frame.id].read_bytes(), frame.id


def test_readme_python_quickstart(make_run: Endpoints, tmp_path: Path) -> None:
    image = write_image(tmp_path / "images" / "0001.jpg", (1280, 720), 1)
    dataset = unique("py-quickstart")
    code = readme_block("## Quickstart", "python").replace('"drives"', f'"{dataset}"')
    done = python_script(code, make_run.client_env(), tmp_path)
    assert "(['car'], [1])" in done.stdout, done.stdout

    frames = list_frames(make_run.metadata_stub(), version_ref(dataset, "v1"))
    assert len(frames) == 1
    assert [(list(r.labels), r.HasField("box")) for r in frames[0].rois] == [(["car"], True), (["daytime"], False)]
    assert read_blob(make_run.blob_stub(), frames[0].sources[0].uri) == image.read_bytes()


def coco_folder(root: Path, count: int) -> tuple[dict[str, Path], set[str]]:
    """``images/`` with ``count`` JPEG and PNG files in two folders and ``annotations/instances.json``.

    Returns the files by frame id (relative path) and the ids the README's
    export query selects (a car on a wide image).
    """
    files: dict[str, Path] = {}
    images, annotations = [], []
    wide_cars: set[str] = set()
    for n in range(count):
        relative = f"{'front' if n % 2 else 'rear'}/{n:04d}.{'png' if n % 3 == 0 else 'jpg'}"
        size = WIDE if n % 4 < 2 else NARROW
        files[relative] = write_image(root / "images" / relative, size, n + 10)
        images.append({"id": n + 1, "file_name": relative, "width": size[0], "height": size[1]})
        label = 1 if n % 2 == 0 else 2
        annotations.append({"id": 1000 + n, "image_id": n + 1, "category_id": label, "bbox": [4, 5, 60, 40],
                            "area": 2400, "iscrowd": 0})
        if label == 1 and size == WIDE:
            wide_cars.add(relative)
    coco = {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]}
    (root / "annotations").mkdir()
    (root / "annotations" / "instances.json").write_text(json.dumps(coco))
    return files, wide_cars


def test_readme_cli_quickstart(make_run: Endpoints, tmp_path: Path) -> None:
    files, wide_cars = coco_folder(tmp_path, 24)
    video = tmp_path / "video.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + hashlib.sha256(tmp_path.name.encode()).digest() * 64)
    dataset = unique("cli-quickstart")
    script = readme_block("From the command line", "bash").replace("drives", dataset)
    done = run(["bash", "-euo", "pipefail", "-c", script], make_run.client_env(), tmp_path)

    assert ingest_summary(done.stdout) == {"images": len(files), "created": len(files), "failed": 0}, done.stdout
    assert f"blob:sha256/{hashlib.sha256(video.read_bytes()).hexdigest()}/{video.stat().st_size}" in done.stdout
    exported = [json.loads(line) for line in (tmp_path / "cars.jsonl").read_text().splitlines()]
    assert sorted(frame["id"] for frame in exported) == sorted(wide_cars)

    frames = list_frames(make_run.metadata_stub(), version_ref(dataset, "v1"))
    assert_sources_round_trip(make_run, frames, files)
    video_ref = done.stdout.strip().splitlines()[-1].split()[0]
    assert read_blob(make_run.blob_stub(), video_ref) == video.read_bytes()


def test_ingest_again_creates_nothing(make_run: Endpoints, tmp_path: Path) -> None:
    files, _ = coco_folder(tmp_path, 60)
    dataset = unique("ingest")
    argv = ["framevault", "ingest", "./images", "--dataset", dataset, "--coco", "./annotations/instances.json"]
    first = run(argv, make_run.client_env(), tmp_path)
    assert ingest_summary(first.stdout) == {"images": 60, "created": 60, "failed": 0}, first.stdout
    again = run(argv, make_run.client_env(), tmp_path)
    assert ingest_summary(again.stdout) == {"images": 60, "created": 0, "failed": 0}, again.stdout

    frames = list_frames(make_run.metadata_stub(), version_ref(dataset))
    assert_sources_round_trip(make_run, frames, files)
    assert all([r.labels for r in f.rois] == [["car" if int(f.id[-8:-4]) % 2 == 0 else "person"]] for f in frames)


SDK_FRAMES_SCRIPT = """
import json, sys
from framevault.sdk import DatasetVersion, SingleFrame

dataset, spec = sys.argv[1], json.loads(sys.argv[2])
DatasetVersion.create_new_dataset(dataset_name=dataset)
draft = DatasetVersion.get_version(dataset_name=dataset)
frames = []
for frame_id, source, mask in spec:
    frame = SingleFrame(id=frame_id, source=source, mask_source=mask, width=64, height=48, context_id="c")
    frame.add_annotation(box2d_xywh=(1, 2, 3, 4), labels=["car"])
    frames.append(frame)
failed = draft.add_frames(frames, upload_retries=3)
print(json.dumps([[f.frame_id, f.error.describe()] for f in failed]))
"""


def test_sdk_frames_with_local_files_and_blob_references(make_run: Endpoints, tmp_path: Path) -> None:
    env = make_run.client_env()
    local = write_image(tmp_path / "local.png", (64, 48), 200)
    mask = write_image(tmp_path / "mask.png", (64, 48), 201)
    put = write_image(tmp_path / "put.jpg", (64, 48), 202)
    put_ref = run(["framevault", "blob", "put", str(put)], env, tmp_path).stdout.split()[0]
    stored_ref = store_blob(make_run.blob_stub(), b"bytes stored over plain gRPC " + tmp_path.name.encode())
    spec = [["local-file", str(local), str(mask)], ["cli-blob", put_ref, None], ["grpc-blob", stored_ref, None]]
    dataset = unique("sdk-sources")
    done = python_script(SDK_FRAMES_SCRIPT, env, tmp_path, dataset, json.dumps(spec))
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []

    frames = {f.id: f for f in list_frames(make_run.metadata_stub(), version_ref(dataset))}
    blobs = make_run.blob_stub()
    assert sorted(frames) == ["cli-blob", "grpc-blob", "local-file"]
    assert read_blob(blobs, frames["local-file"].sources[0].uri) == local.read_bytes()
    assert read_blob(blobs, frames["local-file"].sources[0].masks[0].uri) == mask.read_bytes()
    assert frames["cli-blob"].sources[0].uri == put_ref
    assert read_blob(blobs, put_ref) == put.read_bytes()
    assert frames["grpc-blob"].sources[0].uri == stored_ref


def test_inline_bytes_are_stored_in_the_blob_service(make_run: Endpoints, tmp_path: Path) -> None:
    image = write_image(tmp_path / "inline.png", (16, 12), 77).read_bytes()
    preview = write_image(tmp_path / "preview.jpg", (8, 6), 78).read_bytes()
    mask = write_image(tmp_path / "mask.png", (16, 12), 79).read_bytes()
    version = create_dataset(make_run.metadata_stub(), unique("inline"))
    results = upload_frames(make_run.metadata_stub(), version, [frame_pb2.Frame(
        id="inline", context_id="c", sources=[frame_pb2.Source(
            content_type="image/png", width=16, height=12, inline_content=image,
            preview=frame_pb2.Preview(content_type="image/jpeg", inline_content=preview),
            masks=[frame_pb2.Mask(id="semantic", content_type="image/png", inline_content=mask)])])])
    assert [(r.frame_id, r.outcome) for r in results] == [("inline", ms.FrameResult.OUTCOME_CREATED)], results

    (frame,) = list_frames(make_run.metadata_stub(), version)
    (source,) = frame.sources
    blobs = make_run.blob_stub()
    assert read_blob(blobs, source.uri) == image
    assert read_blob(blobs, source.preview.uri) == preview
    assert read_blob(blobs, source.masks[0].uri) == mask
    assert not source.inline_content
