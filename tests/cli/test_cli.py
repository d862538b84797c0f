"""The ``framevault`` command line against the real services.

Every command runs the installed console script in its own process, as a
user would; the services run in the test process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import client_tls_env

from framevault.sdk import ClientSettings

try:
    from tests.sdk.helpers import make_image, write_coco_folder
except ModuleNotFoundError:  # tests/ itself is on sys.path when it is not a package
    from sdk.helpers import make_image, write_coco_folder  # type: ignore[no-redef]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


SCRIPT = Path(sys.executable).with_name("framevault")


@dataclass
class Run:
    exit_code: int
    stdout_bytes: bytes
    stderr: str

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode()

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


async def run(sdk: ClientSettings | None, *args: str, env: dict[str, str] | None = None) -> Run:
    """Runs ``framevault`` with the session's service addresses as options."""
    argv = [str(SCRIPT), *(["--metadata", sdk.metadata_target, "--blob", sdk.blob_target] if sdk else []), *args]
    done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, timeout=300,
                                   env={**os.environ, **client_tls_env(), **(env or {})})
    return Run(done.returncode, done.stdout, done.stderr.decode())


@pytest.fixture()
def image_folder(tmp_path: Path) -> tuple[Path, Path]:
    """Three real images (JPEG and PNG) and a COCO file with boxes, polygons, RLE and keypoints."""
    return write_coco_folder(tmp_path)


async def test_ingest_with_coco_then_export_jsonl(sdk: ClientSettings, image_folder: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    folder, coco_file = image_folder
    dataset = unique("cli-ingest")
    result = await run(sdk, "ingest", str(folder), "--dataset", dataset, "--coco", str(coco_file), "--no-progress")
    assert result.exit_code == 0, result.output
    assert "ingested 3 of 3 images" in result.stdout and "3 created" in result.stdout
    assert "run-length-encoded" not in result.stderr, "RLE masks are imported (pycocotools is a dev dependency)"
    assert "left out: " + str(coco_file) + ", annotations[3] (id 103), field 'image_id': missing image" in result.stderr

    exported = await run(sdk, "export", "--dataset", dataset, "--version", "Current")
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["cats/cat1.jpg", "cats/cat2.png", "dog.jpg"]
    cat1 = lines[0]
    assert cat1["meta"] == {"file_name": "cats/cat1.jpg", "coco_image_id": 1}
    source = cat1["sources"][0]
    assert source["uri"].startswith("blob:sha256/") and source["content_type"] == "image/jpeg"
    assert (source["width"], source["height"]) == (40, 30)
    assert source["uri"].split("/")[1] == hashlib.sha256((folder / "cats" / "cat1.jpg").read_bytes()).hexdigest()
    assert [("box" in roi, "polygon" in roi) for roi in cat1["rois"]] == [(True, False), (False, True)]
    assert cat1["rois"][0]["labels"] == ["cat"] and cat1["rois"][0]["id"] == "coco-100"
    assert "coco_rle" in json.dumps(lines[1]["rois"][0]["meta"])
    assert lines[2]["sources"][0]["width"] == 16, "size read from the image when COCO has none"
    assert "keypoints" in lines[2]["rois"][1]

    dogs = await run(sdk, "export", "--dataset", dataset, "--query", "label:dog", "-o", str(tmp_path / "d.jsonl"))
    assert dogs.exit_code == 0, dogs.output
    assert [json.loads(x)["id"] for x in (tmp_path / "d.jsonl").read_text().splitlines()] == ["dog.jpg"]

    shuffled = await run(sdk, "export", "--dataset", dataset, "--order", "random", "--seed", "3", "--limit", "2")
    assert shuffled.exit_code == 0 and len(shuffled.stdout.splitlines()) == 2

    # By a metadata key (the COCO image id), largest first.
    by_id = await run(sdk, "export", "--dataset", dataset, "--sort", "meta.coco_image_id", "--descending")
    assert by_id.exit_code == 0, by_id.output
    assert [json.loads(line)["id"] for line in by_id.stdout.splitlines()] == ["dog.jpg", "cats/cat2.png",
                                                                             "cats/cat1.jpg"]
    bad_sort = await run(sdk, "export", "--dataset", dataset, "--sort", "coco_image_id")
    assert bad_sort.exit_code == 2 and "--sort" in bad_sort.stderr

    again = await run(sdk, "ingest", str(folder), "--dataset", dataset, "--coco", str(coco_file))
    assert again.exit_code == 0, again.output
    assert "0 created, 0 updated, 3 unchanged, 0 failed" in again.stdout


async def test_dataset_and_version_commands(sdk: ClientSettings, image_folder: tuple[Path, Path]) -> None:
    folder, _ = image_folder
    dataset = unique("cli-versions")
    created = await run(sdk, "dataset", "create", dataset, "--description", "from the CLI", "--tag", "cli")
    assert created.exit_code == 0 and dataset in created.stdout
    listed = await run(sdk, "dataset", "list", "--prefix", dataset, "--json")
    assert [d["name"] for d in json.loads(listed.stdout)] == [dataset]

    assert (await run(sdk, "ingest", str(folder / "cats"), "--dataset", dataset)).exit_code == 0
    snap = await run(sdk, "version", "snapshot", dataset, "--name", "v1")
    assert snap.exit_code == 0 and "v1" in snap.stdout
    child = await run(sdk, "version", "create", dataset, "v2", "--parent", "v1", "--description", "more")
    assert child.exit_code == 0, child.output
    assert (await run(sdk, "ingest", str(folder), "--dataset", dataset, "--version", "v2",
                      "--no-recursive")).exit_code == 0
    published = await run(sdk, "version", "publish", dataset, "v2")
    assert published.exit_code == 0 and "3 frames" in published.stdout

    diff = await run(sdk, "version", "diff", dataset, "v1", "v2")
    assert diff.exit_code == 0, diff.output
    assert diff.stdout.splitlines() == ["+ dog.jpg"]
    assert "1 added, 0 changed, 0 removed" in diff.stderr

    versions = await run(sdk, "version", "list", dataset, "--json")
    by_name = {v["name"]: v for v in json.loads(versions.stdout)}
    assert by_name["v2"]["parents"] == ["v1"] and by_name["v2"]["status"] == "published"
    assert by_name["Current"]["parents"] == ["v1"] and by_name["Current"]["frame_count"] == 2

    described = await run(sdk, "dataset", "describe", dataset)
    assert described.exit_code == 0
    assert "from the CLI" in described.stdout and "v2" in described.stdout and "published" in described.stdout

    refused = await run(sdk, "dataset", "delete", dataset, "--yes")
    assert refused.exit_code == 1 and "FAILED_PRECONDITION" in refused.stderr
    deleted = await run(sdk, "dataset", "delete", dataset, "--force", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert (await run(sdk, "dataset", "describe", dataset)).exit_code == 1


async def test_errors_are_clear_with_exit_codes(sdk: ClientSettings, image_folder: tuple[Path, Path]) -> None:
    folder, _ = image_folder
    bad_name = await run(sdk, "dataset", "create", " leading space")
    assert bad_name.exit_code == 2
    assert bad_name.stderr.startswith("error: INVALID_ARGUMENT")
    assert "  dataset.name: " in bad_name.stderr or "  name: " in bad_name.stderr

    missing = await run(sdk, "dataset", "describe", unique("missing"))
    assert missing.exit_code == 1 and "NOT_FOUND" in missing.stderr

    dataset = unique("cli-errors")
    assert (await run(sdk, "ingest", str(folder), "--dataset", dataset)).exit_code == 0
    assert (await run(sdk, "version", "publish", dataset, "Current")).exit_code == 0
    twice = await run(sdk, "version", "publish", dataset, "Current")
    assert twice.exit_code == 1 and "FAILED_PRECONDITION" in twice.stderr
    into_published = await run(sdk, "ingest", str(folder), "--dataset", dataset)
    assert into_published.exit_code == 1 and "FAILED_PRECONDITION" in into_published.stderr

    bad_query = await run(sdk, "export", "--dataset", dataset, "--query", "label:cat AND AND")
    assert bad_query.exit_code == 2
    assert "query" in bad_query.stderr and "position" in bad_query.stderr

    usage = await run(sdk, "export")
    assert usage.exit_code == 2 and "--dataset" in usage.output
    (folder / "empty").mkdir()
    no_images = await run(sdk, "ingest", str(folder / "empty"), "--dataset", dataset)
    assert no_images.exit_code == 2 and "no images" in no_images.stderr

    unknown_blob = await run(sdk, "blob", "get", "blob:sha256/" + "0" * 64 + "/5", "-o", str(folder / "x"))
    assert unknown_blob.exit_code == 1 and "NOT_FOUND" in unknown_blob.stderr


async def test_unusable_coco_input_is_a_bad_coco_option(sdk: ClientSettings, image_folder: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    folder, coco_file = image_folder
    not_coco = tmp_path / "not-coco.json"
    not_coco.write_text("[]")
    refused = await run(sdk, "ingest", str(folder), "--dataset", unique("cli-coco"), "--coco", str(not_coco))
    assert refused.exit_code == 2 and "--coco" in refused.stderr and "no 'images' list" in refused.stderr

    data = json.loads(coco_file.read_text())
    data["annotations"][2]["bbox"] = [1, 2, 3]
    coco_file.write_text(json.dumps(data))
    dataset = unique("cli-coco")
    bad_box = await run(sdk, "ingest", str(folder), "--dataset", dataset, "--coco", str(coco_file), "--no-progress")
    assert bad_box.exit_code == 2 and "--coco" in bad_box.stderr
    assert "annotations[2] (id 102), field 'bbox': needs 4 numbers, got 3" in bad_box.stderr
    listed = await run(sdk, "dataset", "list", "--prefix", dataset, "--json")
    assert json.loads(listed.stdout) == [], "a malformed COCO file is refused before the dataset is created"


async def test_blob_put_and_get(sdk: ClientSettings, tmp_path: Path) -> None:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(70_000))
    put = await run(sdk, "blob", "put", str(payload), "--no-progress")
    assert put.exit_code == 0, put.output
    uri = put.stdout.strip()
    assert uri == f"blob:sha256/{hashlib.sha256(payload.read_bytes()).hexdigest()}/70000"
    got = await run(sdk, "blob", "get", uri, "-o", str(tmp_path / "back.bin"))
    assert got.exit_code == 0, got.output
    assert (tmp_path / "back.bin").read_bytes() == payload.read_bytes()
    bare = await run(sdk, "blob", "get", uri.removeprefix("blob:sha256/"))
    assert bare.exit_code == 0 and bare.stdout_bytes == payload.read_bytes()


async def test_addresses_come_from_the_environment(sdk: ClientSettings, tmp_path: Path) -> None:
    env = {"FRAMEVAULT_METADATA_TARGET": sdk.metadata_target, "FRAMEVAULT_BLOB_TARGET": sdk.blob_target}
    dataset = unique("cli-env")
    image = make_image(tmp_path / "one" / "a.png")
    ingested = await run(None, "ingest", str(image.parent), "--dataset", dataset, env=env)
    assert ingested.exit_code == 0, ingested.output
    listed = await run(None, "dataset", "list", "--prefix", dataset, env=env)
    assert listed.exit_code == 0 and dataset in listed.stdout
    failing = await run(None, "version", "publish", dataset, "no-such-version", env=env)
    assert failing.exit_code == 1 and failing.stderr.startswith("error: NOT_FOUND")
