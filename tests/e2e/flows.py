"""What the process-level tests do again and again: real image files, user commands, reading back over gRPC."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image

from framevault.v1 import blob_pb2, blob_pb2_grpc, dataset_pb2, frame_pb2, metadata_service_pb2_grpc
from framevault.v1 import metadata_service_pb2 as ms

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
# The console scripts of the environment the tests run in (``framevault``).
SCRIPTS = Path(sys.executable).parent
COMMAND_TIMEOUT_SECONDS = 300
BLOB_URI = re.compile(r"^blob:sha256/([0-9a-f]{64})/([0-9]+)$")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def write_image(path: Path, size: tuple[int, int], shade: int) -> Path:
    """A real image file (format from the suffix) whose bytes differ from any other shade's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (shade % 256, (shade * 7) % 256, (shade * 13) % 256)).save(path)
    return path


def readme_block(section: str, language: str) -> str:
    """The first ``language`` code block after the README heading ``section``."""
    text = README.read_text(encoding="utf-8").split(section, 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", text, re.DOTALL)
    assert match, f"README has no {language} block after {section!r}"
    return match.group(1)


def run(argv: Sequence[str], env: dict[str, str], cwd: Path, *, check: bool = True,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Runs a user's command to completion; fails with its output when ``check`` and it exits non-zero."""
    done = subprocess.run(list(argv), env={**env, "PATH": f"{SCRIPTS}:{env.get('PATH', '')}"}, cwd=cwd,
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, input=stdin)
    if check:
        assert done.returncode == 0, (f"{' '.join(argv)} exited with {done.returncode}\n"
                                      f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-8000:]}")
    return done


def python_script(code: str, env: dict[str, str], cwd: Path, *args: str,
                  check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` as a plain Python script, as a user of the SDK would."""
    return run([sys.executable, "-c", code, *args], env, cwd, check=check)


def version_ref(dataset: str, version: str = "Current") -> dataset_pb2.VersionRef:
    return dataset_pb2.VersionRef(dataset=dataset_pb2.DatasetRef(name=dataset), name=version)


def list_frames(metadata: metadata_service_pb2_grpc.MetadataServiceStub,
                version: dataset_pb2.VersionRef) -> list[frame_pb2.Frame]:
    """Every frame of a version, page by page."""
    frames: list[frame_pb2.Frame] = []
    token = ""
    while True:
        page = metadata.ListFrames(ms.ListFramesRequest(version=version, page_size=500, page_token=token),
                                   timeout=30)
        frames.extend(page.frames)
        token = page.next_page_token
        if not token:
            return frames


def count_frames(metadata: metadata_service_pb2_grpc.MetadataServiceStub, version: dataset_pb2.VersionRef) -> int:
    return int(metadata.CountFrames(ms.CountFramesRequest(version=version), timeout=30).count)


def digest_of_uri(uri: str) -> blob_pb2.Digest:
    match = BLOB_URI.match(uri)
    assert match, f"{uri!r} is not a blob reference"
    return blob_pb2.Digest(hash=match.group(1), size_bytes=int(match.group(2)))


def blob_uri(data: bytes) -> str:
    return f"blob:sha256/{hashlib.sha256(data).hexdigest()}/{len(data)}"


def read_blob(blobs: blob_pb2_grpc.BlobServiceStub, uri: str) -> bytes:
    """The bytes behind a ``blob:`` reference, streamed from the blob service."""
    return b"".join(chunk.data for chunk in blobs.ReadBlob(blob_pb2.ReadBlobRequest(digest=digest_of_uri(uri)),
                                                            timeout=60))


def store_blob(blobs: blob_pb2_grpc.BlobServiceStub, data: bytes) -> str:
    """Stores ``data`` in one BatchUpdateBlobs call; returns its ``blob:`` reference."""
    digest = digest_of_uri(blob_uri(data))
    reply = blobs.BatchUpdateBlobs(blob_pb2.BatchUpdateBlobsRequest(requests=[
        blob_pb2.BatchUpdateBlobsRequest.Request(digest=digest, data=data)]), timeout=30)
    assert [r.status.code for r in reply.responses] == [0], reply
    return blob_uri(data)


def upload_frames(metadata: metadata_service_pb2_grpc.MetadataServiceStub, version: dataset_pb2.VersionRef,
                  frames: Iterable[frame_pb2.Frame]) -> list[ms.FrameResult]:
    """One UploadFrames stream over plain gRPC (options, then every frame in one message); the per-frame results."""
    def requests() -> Iterable[ms.UploadFramesRequest]:
        yield ms.UploadFramesRequest(options=ms.UploadOptions(version=version, upload_retries=3))
        yield ms.UploadFramesRequest(items=[ms.UploadItem(client_key=f"k{i}", frame=frame)
                                            for i, frame in enumerate(frames)])

    results: list[ms.FrameResult] = []
    for response in metadata.UploadFrames(requests(), timeout=120):
        if response.WhichOneof("message") == "results":
            results.extend(response.results.results)
    return results


def create_dataset(metadata: metadata_service_pb2_grpc.MetadataServiceStub, name: str) -> dataset_pb2.VersionRef:
    """A new dataset; the ref of its draft ``Current``."""
    metadata.CreateDataset(ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name)), timeout=30)
    return version_ref(name)
