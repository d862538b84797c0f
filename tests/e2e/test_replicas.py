"""Two replicas of each service against one database and one bucket: a caller may land on either.

Four processes, started like ``make run`` starts a service
(``framevault.stack.services.ServiceProcess``), each on its own port:
metadata A and B, blob A and B. They share only what a deployment's replicas
share: the MongoDB replica set and database, the bucket, and the settings of
one ConfigMap and Secret (a token secret that is not the default, one part
size). Each metadata replica reaches the other side's blob replica and the
reverse, so no pair of processes is wired only to itself.

What a caller got from one replica must work on the other: a view cursor
(sequential, random order, per-frame cursors), page tokens of the list calls,
a WriteBlob cut on A and continued on B. Garbage collection running on both
blob replicas at once deletes every old unreferenced blob and nothing that is
referenced or young; frames uploaded into one draft through both metadata
replicas at once all land and are counted once.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from support import free_port, violated_fields

from framevault.stack.services import ServiceNotServing, ServiceProcess, service_env
from framevault.stack.session_data import make_bucket, remove_test_data
from framevault.v1 import (
    blob_pb2,
    blob_pb2_grpc,
    dataset_pb2,
    frame_pb2,
    metadata_pb2,
    metadata_service_pb2_grpc,
    view_pb2,
)
from framevault.v1 import metadata_service_pb2 as ms

from .flows import (
    blob_uri,
    create_dataset,
    digest_of_uri,
    python_script,
    read_blob,
    store_blob,
    unique,
    upload_frames,
)
from .launch import START_TIMEOUT_SECONDS, World, caller_environment, channel

# The smallest part S3 allows: a blob a little over one part has one resumable boundary.
PART_SIZE = 5 * 1024 * 1024
CHUNK = 1024 * 1024
# Blobs younger than this survive a collection; the old ones are made older by waiting.
GC_GRACE_SECONDS = 10
CALL_TIMEOUT = 60

Reply = TypeVar("Reply")


@dataclass
class Replicas:
    """Where the replicas listen; ``metadata[i]`` and ``blob[i]`` are stubs of replica i."""

    metadata_addresses: list[str]
    blob_addresses: list[str]
    # The settings every replica shares (the deployment's ConfigMap and Secret).
    shared_env: dict[str, str]
    # In start order: blob A, metadata A, blob B, metadata B; with the environment each started with.
    processes: list[ServiceProcess]
    envs: list[dict[str, str]]

    def restart(self, index: int) -> None:
        """Starts ``processes[index]`` again, on its address with its settings, once it has exited."""
        old = self.processes[index]
        assert old.process.poll() is not None, f"{old.name} at {old.address} still runs"
        self.processes[index] = ServiceProcess.start(old.name, self.envs[index], log_path=old.log_path)
        start_serving([self.processes[index]])

    @property
    def metadata(self) -> list[metadata_service_pb2_grpc.MetadataServiceStub]:
        return [metadata_service_pb2_grpc.MetadataServiceStub(channel(a, token=self.token))
                for a in self.metadata_addresses]

    @property
    def blob(self) -> list[blob_pb2_grpc.BlobServiceStub]:
        return [blob_pb2_grpc.BlobServiceStub(channel(a, token=self.token)) for a in self.blob_addresses]

    @property
    def token(self) -> str:
        """The admin key the first metadata replica issued."""
        return Path(self.shared_env["FRAMEVAULT_BOOTSTRAP_ADMIN_KEY_FILE"]).read_text().strip()


def start_serving(processes: Iterable[ServiceProcess]) -> None:
    for process in processes:
        try:
            process.wait_serving(START_TIMEOUT_SECONDS)
        except ServiceNotServing as exc:
            pytest.fail(str(exc))


@pytest.fixture(scope="module")
def replicas(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    # A database and bucket of this module alone: its garbage collection must not see other tests' blobs.
    run_id = uuid.uuid4().hex[:10]
    logs = tmp_path_factory.mktemp("replicas")
    world = World(database=f"fvrep_{run_id}", bucket=f"fvrep-{run_id}", admin_key_file=logs / "admin.key")
    make_bucket(world.bucket)
    shared = {**service_env({**caller_environment(), **world.service_overrides()}),
              "FRAMEVAULT_VIEW_CURSOR_SECRET": secrets.token_urlsafe(32),
              "FRAMEVAULT_S3_PART_SIZE_BYTES": str(PART_SIZE),
              # Small enough for 10,000 parts of PART_SIZE, so the part size is not grown.
              "FRAMEVAULT_BLOB_MAX_SIZE_BYTES": str(10_000 * PART_SIZE)}
    metadata_addresses = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    blob_addresses = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    processes: list[ServiceProcess] = []
    envs: list[dict[str, str]] = []
    try:
        for i, letter in enumerate("ab"):
            other = 1 - i
            envs.append({**shared, "FRAMEVAULT_BLOB_ADDRESS": blob_addresses[i],
                         "FRAMEVAULT_METADATA_TARGET": metadata_addresses[other]})
            processes.append(ServiceProcess.start("blob", envs[-1], log_path=logs / f"blob-{letter}.log"))
            envs.append({**shared, "FRAMEVAULT_METADATA_ADDRESS": metadata_addresses[i],
                         "FRAMEVAULT_BLOB_TARGET": blob_addresses[other]})
            processes.append(ServiceProcess.start("metadata", envs[-1], log_path=logs / f"metadata-{letter}.log"))
        start_serving(processes)
        yield Replicas(metadata_addresses, blob_addresses, shared, processes, envs)
    finally:
        for process in processes:
            process.stop()
        remove_test_data(database=world.database, bucket=world.bucket)


# -- data ------------------------------------------------------------------------------------------


def frame(frame_id: str, context: str, timestamp: int, uri: str | None = None) -> frame_pb2.Frame:
    return frame_pb2.Frame(
        id=frame_id, context_id=context, timestamp=timestamp,
        sources=[frame_pb2.Source(uri=uri or f"s3://drives/{context}/{timestamp:06d}.jpg", content_type="image/jpeg")],
        rois=[frame_pb2.Roi(labels=["car" if timestamp % 2 else "pedestrian"],
                            box=frame_pb2.Box2D(x=1, y=2, w=30, h=40))],
        meta=metadata_pb2.Metadata(fields={"speed": metadata_pb2.MetadataValue(int_value=timestamp % 90)}))


def dataset_with_frames(replicas: Replicas, prefix: str, count: int) -> dataset_pb2.VersionRef:
    """A draft of ``count`` frames in five contexts, written through replica A."""
    version = create_dataset(replicas.metadata[0], unique(prefix))
    results = upload_frames(replicas.metadata[0], version,
                            [frame(f"f{n:04d}", f"ctx{n % 5}", n * 33) for n in range(count)])
    assert [r.outcome for r in results] == [ms.FrameResult.OUTCOME_CREATED] * count
    return version


def whole_view(version: dataset_pb2.VersionRef, order: view_pb2.IterationOrder = view_pb2.ITERATION_ORDER_SEQUENTIAL,
               seed: int = 0) -> view_pb2.View:
    return view_pb2.View(selections=[view_pb2.ViewSelection(version=version)], order=order, random_seed=seed)


# -- view cursors ----------------------------------------------------------------------------------


def first_message(stub: metadata_service_pb2_grpc.MetadataServiceStub,
                  request: ms.IterateFramesRequest) -> ms.IterateFramesResponse | None:
    """The first message of an IterateFrames stream (None when it ends at once); the rest is cancelled."""
    stream = stub.IterateFrames(request, timeout=CALL_TIMEOUT)
    try:
        return next(stream, None)
    finally:
        stream.cancel()


def iterate_all(stub: metadata_service_pb2_grpc.MetadataServiceStub, request: ms.IterateFramesRequest) -> list[str]:
    return [f.id for message in stub.IterateFrames(request, timeout=CALL_TIMEOUT) for f in message.frames]


def iterate_hopping(replicas: Replicas, view: view_pb2.View, per_message: int) -> list[str]:
    """The view one message per call, each call on the other replica, resumed by the cursor the last one issued."""
    ids: list[str] = []
    cursor = ""
    for hop in range(10_000):
        message = first_message(replicas.metadata[hop % 2], ms.IterateFramesRequest(
            view=view, frames_per_message=per_message, resume_cursor=cursor))
        if message is None:
            return ids
        ids.extend(f.id for f in message.frames)
        cursor = message.cursor
    raise AssertionError("the iteration never ended")


@pytest.mark.parametrize("order", [view_pb2.ITERATION_ORDER_SEQUENTIAL, view_pb2.ITERATION_ORDER_RANDOM])
def test_view_cursor_issued_by_one_replica_resumes_on_the_other(replicas: Replicas,
                                                                order: view_pb2.IterationOrder) -> None:
    version = dataset_with_frames(replicas, "cursor", 47)
    view = whole_view(version, order, seed=7)
    expected = iterate_all(replicas.metadata[0], ms.IterateFramesRequest(view=view, frames_per_message=10))
    assert sorted(expected) == [f"f{n:04d}" for n in range(47)]

    assert iterate_hopping(replicas, view, per_message=6) == expected


def test_frame_cursor_of_one_replica_resumes_after_that_frame_on_the_other(replicas: Replicas) -> None:
    version = dataset_with_frames(replicas, "frame-cursor", 20)
    view = whole_view(version)
    expected = iterate_all(replicas.metadata[1], ms.IterateFramesRequest(view=view))
    message = first_message(replicas.metadata[0], ms.IterateFramesRequest(view=view, frames_per_message=8,
                                                                          frame_cursors=True))
    assert message is not None and len(message.frame_cursors) == 8

    rest = iterate_all(replicas.metadata[1], ms.IterateFramesRequest(view=view,
                                                                    resume_cursor=message.frame_cursors[2]))
    assert expected[:3] + rest == expected


@pytest.mark.parametrize("order", [view_pb2.ITERATION_ORDER_SEQUENTIAL, view_pb2.ITERATION_ORDER_RANDOM])
def test_a_message_cursor_and_an_offset_of_one_replica_resume_inside_a_message_on_the_other(
        replicas: Replicas, order: view_pb2.IterationOrder) -> None:
    version = dataset_with_frames(replicas, "offset", 20)
    view = whole_view(version, order, seed=5)
    expected = iterate_all(replicas.metadata[1], ms.IterateFramesRequest(view=view))
    message = first_message(replicas.metadata[0], ms.IterateFramesRequest(view=view, frames_per_message=8))
    assert message is not None and not message.frame_cursors

    # Three frames of the second message taken: B continues after them, and says where it started.
    resumed = first_message(replicas.metadata[1], ms.IterateFramesRequest(
        view=view, frames_per_message=8, resume_cursor=message.cursor, resume_offset=3))
    assert resumed is not None and [f.id for f in resumed.frames] == expected[11:19]
    rest = iterate_all(replicas.metadata[0], ms.IterateFramesRequest(view=view, resume_cursor=resumed.start_cursor))
    assert expected[:11] + rest == expected


# Reads frames of a dataset's draft through the SDK, as a user's script does: argv = dataset, order,
# resume cursor ("" = the start), frames to take (0 = all); prints their ids and the iterator's cursor.
SDK_VIEW_READER = """
import itertools, json, sys
from framevault.sdk import DataView
view = DataView(iteration_order=sys.argv[2], random_seed=9)
view.add_query(dataset_name=sys.argv[1])
iterator = view.get_iterator(resume_cursor=sys.argv[3])
ids = [frame.id for frame in itertools.islice(iterator, int(sys.argv[4]) or None)]
print(json.dumps({"ids": ids, "cursor": iterator.cursor}))
"""


@pytest.mark.parametrize("order", ["sequential", "random"])
def test_an_sdk_cursor_taken_inside_a_message_on_one_replica_resumes_on_the_other(
        replicas: Replicas, order: str, tmp_path: Path) -> None:
    name = dataset_with_frames(replicas, "sdk-offset", 20).dataset.name

    def read(replica: int, cursor: str, frames: int) -> tuple[list[str], str]:
        env = {**caller_environment(), "FRAMEVAULT_METADATA_TARGET": replicas.metadata_addresses[replica],
               "FRAMEVAULT_BLOB_TARGET": replicas.blob_addresses[replica], "FRAMEVAULT_PLAINTEXT": "true",
               "FRAMEVAULT_TOKEN": replicas.token, "FRAMEVAULT_ITERATE_FRAMES_PER_MESSAGE": "6"}
        done = python_script(SDK_VIEW_READER, env, tmp_path, name, order, cursor, str(frames))
        result = json.loads(done.stdout.strip().splitlines()[-1])
        return result["ids"], result["cursor"]

    everything, _ = read(1, "", 0)
    assert sorted(everything) == [f"f{n:04d}" for n in range(20)]
    # 8 frames: the second message's second frame. Then 3 more on B, inside that message still.
    head, cursor = read(0, "", 8)
    middle, cursor = read(1, cursor, 3)
    rest, _ = read(0, cursor, 0)
    assert head + middle + rest == everything


def test_a_cursor_is_refused_by_a_service_with_another_secret(replicas: Replicas, tmp_path: Path) -> None:
    """What makes a cursor work on B is the secret both share, not anything the issuing process remembers."""
    version = dataset_with_frames(replicas, "other-secret", 12)
    message = first_message(replicas.metadata[0], ms.IterateFramesRequest(view=whole_view(version),
                                                                          frames_per_message=5))
    assert message is not None
    address = f"127.0.0.1:{free_port()}"
    stranger = ServiceProcess.start("metadata", {
        **replicas.shared_env, "FRAMEVAULT_METADATA_ADDRESS": address,
        "FRAMEVAULT_BLOB_TARGET": replicas.blob_addresses[0],
        "FRAMEVAULT_VIEW_CURSOR_SECRET": secrets.token_urlsafe(32)}, log_path=tmp_path / "metadata-c.log")
    try:
        start_serving([stranger])
        stub = metadata_service_pb2_grpc.MetadataServiceStub(channel(address, token=replicas.token))
        with pytest.raises(grpc.RpcError) as refused:
            iterate_all(stub, ms.IterateFramesRequest(view=whole_view(version), resume_cursor=message.cursor))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "issued by another server" in (refused.value.details() or "")
        assert violated_fields(refused.value) == ["resume_cursor"]  # type: ignore[arg-type]
    finally:
        stranger.stop()


# -- page tokens -----------------------------------------------------------------------------------


def pages_hopping(replicas: Replicas, call: Callable[[int, str], tuple[list[str], str]]) -> list[str]:
    """Every page of a list call, each page asked of the other replica with the token the last one issued."""
    items: list[str] = []
    token = ""
    for hop in range(10_000):
        page, token = call(hop % 2, token)
        items.extend(page)
        if not token:
            return items
    raise AssertionError("the pages never ended")


def test_page_tokens_issued_by_one_replica_work_on_the_other(replicas: Replicas) -> None:
    version = dataset_with_frames(replicas, "pages", 31)
    prefix = unique("pages-list")
    for n in range(5):
        create_dataset(replicas.metadata[n % 2], f"{prefix}-{n}")

    def list_frames(replica: int, token: str) -> tuple[list[str], str]:
        page = replicas.metadata[replica].ListFrames(
            ms.ListFramesRequest(version=version, page_size=4, page_token=token), timeout=CALL_TIMEOUT)
        return [f.id for f in page.frames], page.next_page_token

    def list_datasets(replica: int, token: str) -> tuple[list[str], str]:
        page = replicas.metadata[replica].ListDatasets(
            ms.ListDatasetsRequest(name_prefix=prefix, page_size=2, page_token=token), timeout=CALL_TIMEOUT)
        return [d.name for d in page.datasets], page.next_page_token

    def list_view_frames(replica: int, token: str) -> tuple[list[str], str]:
        page = replicas.metadata[replica].ListViewFrames(
            ms.ListViewFramesRequest(view=whole_view(version, view_pb2.ITERATION_ORDER_RANDOM, seed=3),
                                     page_size=6, page_token=token), timeout=CALL_TIMEOUT)
        return [f.id for f in page.frames], page.next_page_token

    frames = pages_hopping(replicas, list_frames)
    assert sorted(frames) == [f"f{n:04d}" for n in range(31)]
    assert frames == [f.id for f in replicas.metadata[1].ListFrames(
        ms.ListFramesRequest(version=version, page_size=100), timeout=CALL_TIMEOUT).frames]
    datasets = pages_hopping(replicas, list_datasets)
    assert sorted(datasets) == [f"{prefix}-{n}" for n in range(5)]
    assert datasets == [d.name for d in replicas.metadata[1].ListDatasets(
        ms.ListDatasetsRequest(name_prefix=prefix), timeout=CALL_TIMEOUT).datasets]
    random_order = iterate_all(replicas.metadata[0], ms.IterateFramesRequest(
        view=whole_view(version, view_pb2.ITERATION_ORDER_RANDOM, seed=3)))
    assert pages_hopping(replicas, list_view_frames) == random_order


# -- blob uploads ----------------------------------------------------------------------------------


def resource_name(data: bytes) -> str:
    return f"uploads/{uuid.uuid4()}/blobs/{hashlib.sha256(data).hexdigest()}/{len(data)}"


def committed_size(stub: blob_pb2_grpc.BlobServiceStub, name: str) -> int:
    reply = stub.QueryWriteStatus(blob_pb2.QueryWriteStatusRequest(resource_name=name), timeout=CALL_TIMEOUT)
    return int(reply.committed_size)


def chunks(name: str, data: bytes, start: int, end: int, *, finish: bool) -> Iterator[blob_pb2.WriteBlobRequest]:
    for offset in range(start, end, CHUNK):
        piece = data[offset:min(offset + CHUNK, end)]
        yield blob_pb2.WriteBlobRequest(resource_name=name, write_offset=offset, data=piece,
                                        finish_write=finish and offset + len(piece) == end)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + CALL_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {CALL_TIMEOUT}s")
        time.sleep(0.1)


def test_write_blob_cut_on_one_replica_continues_on_the_other(replicas: Replicas) -> None:
    data = os.urandom(PART_SIZE + 3 * CHUNK + 12_345)
    name = resource_name(data)
    a, b = replicas.blob
    for stub in (a, b):
        capabilities = stub.GetCapabilities(blob_pb2.GetCapabilitiesRequest(), timeout=CALL_TIMEOUT)
        assert capabilities.resumable_part_size_bytes == PART_SIZE
    held_open = threading.Event()

    def first_stream() -> Iterator[blob_pb2.WriteBlobRequest]:
        # One whole part and a bit: the part is committed, the rest stays buffered in A until the cut.
        yield from chunks(name, data, 0, PART_SIZE + CHUNK, finish=False)
        held_open.wait(CALL_TIMEOUT)

    cut = a.WriteBlob.future(first_stream(), timeout=CALL_TIMEOUT)
    try:
        # B reads A's progress from the bucket, not from A.
        wait_for(lambda: committed_size(b, name) == PART_SIZE, "replica B seeing the part A committed")
    finally:
        cut.cancel()
        held_open.set()
    assert committed_size(a, name) == PART_SIZE

    # An offset B could only accept by continuing A's upload: a fresh upload starts at 0.
    reply = b.WriteBlob(chunks(name, data, PART_SIZE, len(data), finish=True), timeout=CALL_TIMEOUT)
    assert reply.committed_size == len(data)

    status = a.QueryWriteStatus(blob_pb2.QueryWriteStatusRequest(resource_name=name), timeout=CALL_TIMEOUT)
    assert status.complete and status.committed_size == len(data)
    assert read_blob(a, blob_uri(data)) == data
    assert read_blob(b, blob_uri(data)) == data


BLOB_A = 0  # index of blob A in Replicas.processes


def test_write_blob_on_a_replica_killed_mid_upload_continues_on_the_other(replicas: Replicas) -> None:
    """SIGKILL gives A no chance to hand anything over: what B continues from is what the bucket holds."""
    data = os.urandom(2 * PART_SIZE + CHUNK + 777)
    name = resource_name(data)
    a, b = replicas.blob
    held_open = threading.Event()

    def first_stream() -> Iterator[blob_pb2.WriteBlobRequest]:
        yield from chunks(name, data, 0, 2 * PART_SIZE + CHUNK, finish=False)
        held_open.wait(CALL_TIMEOUT)

    cut = a.WriteBlob.future(first_stream(), timeout=CALL_TIMEOUT)
    try:
        wait_for(lambda: committed_size(b, name) == 2 * PART_SIZE, "replica B seeing both parts A committed")
        replicas.processes[BLOB_A].kill()
    finally:
        held_open.set()
        cut.cancel()
    try:
        reply = b.WriteBlob(chunks(name, data, 2 * PART_SIZE, len(data), finish=True), timeout=CALL_TIMEOUT)
        assert reply.committed_size == len(data)
        assert read_blob(b, blob_uri(data)) == data
    finally:
        replicas.restart(BLOB_A)
    assert read_blob(a, blob_uri(data)) == data


# -- garbage collection ----------------------------------------------------------------------------


def collect(stub: blob_pb2_grpc.BlobServiceStub) -> tuple[set[str], blob_pb2.GarbageTotals]:
    collected: set[str] = set()
    totals = blob_pb2.GarbageTotals()
    for message in stub.CollectGarbage(blob_pb2.CollectGarbageRequest(grace_period_seconds=GC_GRACE_SECONDS),
                                       timeout=CALL_TIMEOUT * 2):
        collected.update(d.hash for d in message.digests)
        if message.HasField("totals"):
            totals = message.totals
    return collected, totals


def missing(stub: blob_pb2_grpc.BlobServiceStub, uris: Iterable[str]) -> set[str]:
    reply = stub.FindMissingBlobs(blob_pb2.FindMissingBlobsRequest(digests=[digest_of_uri(u) for u in uris]),
                                  timeout=CALL_TIMEOUT)
    return {d.hash for d in reply.missing_digests}


def run_both(calls: list[Callable[[], Reply]]) -> list[Reply]:
    """Runs the calls at the same time, each in its own thread; their results in order."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], Reply]) -> Reply:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_concurrent_garbage_collection_on_both_replicas(replicas: Replicas) -> None:
    a, b = replicas.blob
    referenced = [store_blob(replicas.blob[n % 2], f"referenced {n} {uuid.uuid4()}".encode()) for n in range(30)]
    old_garbage = [store_blob(replicas.blob[n % 2], f"garbage {n} {uuid.uuid4()}".encode()) for n in range(40)]
    version = create_dataset(replicas.metadata[0], unique("gc"))
    results = upload_frames(replicas.metadata[1], version,
                            [frame(f"r{n}", "ctx", n, uri) for n, uri in enumerate(referenced)])
    assert {r.outcome for r in results} == {ms.FrameResult.OUTCOME_CREATED}
    # Age the blobs past the grace period, then add young unreferenced ones.
    time.sleep(GC_GRACE_SECONDS + 2)
    young = [store_blob(replicas.blob[n % 2], f"young {n} {uuid.uuid4()}".encode()) for n in range(10)]

    (collected_a, totals_a), (collected_b, totals_b) = run_both([lambda: collect(a), lambda: collect(b)])

    def hashes(uris: Iterable[str]) -> set[str]:
        return {digest_of_uri(u).hash for u in uris}

    collected = collected_a | collected_b
    assert not collected & hashes(referenced + young)
    # Everything else this module stored is unreferenced and old: every test's leftovers go too.
    assert hashes(old_garbage) <= collected
    assert missing(a, referenced + young) == set()
    assert missing(b, old_garbage) == hashes(old_garbage)
    assert totals_a.referenced_blobs >= len(referenced) and totals_b.referenced_blobs >= len(referenced)


# -- uploads into one draft ------------------------------------------------------------------------


def upload_batches(stub: metadata_service_pb2_grpc.MetadataServiceStub, version: dataset_pb2.VersionRef,
                   frames: list[frame_pb2.Frame], batch: int,
                   pause: tuple[int, threading.Event] | None = None) -> list[ms.FrameResult]:
    """One UploadFrames stream sending ``frames`` in messages of ``batch``, so two streams interleave.

    ``pause`` (n, event): after the first n frames the stream waits, open, for the event.
    """
    def requests() -> Iterator[ms.UploadFramesRequest]:
        yield ms.UploadFramesRequest(options=ms.UploadOptions(version=version, upload_retries=5))
        for start in range(0, len(frames), batch):
            if pause is not None and start == pause[0]:
                pause[1].wait(CALL_TIMEOUT)
            yield ms.UploadFramesRequest(items=[ms.UploadItem(client_key=f.id, frame=f)
                                                for f in frames[start:start + batch]])

    results: list[ms.FrameResult] = []
    for response in stub.UploadFrames(requests(), timeout=CALL_TIMEOUT * 4):
        if response.WhichOneof("message") == "results":
            results.extend(response.results.results)
    return results


def test_uploads_into_one_draft_through_both_replicas_at_once_all_land(replicas: Replicas) -> None:
    version = create_dataset(replicas.metadata[0], unique("both"))
    shared = [frame(f"s{n:03d}", "shared", n) for n in range(60)]
    per_replica = [[frame(f"{side}{n:03d}", f"ctx-{side}", n) for n in range(300)] + shared for side in "ab"]

    results_a, results_b = run_both([
        lambda: upload_batches(replicas.metadata[0], version, per_replica[0], batch=40),
        lambda: upload_batches(replicas.metadata[1], version, per_replica[1], batch=40)])

    for results in (results_a, results_b):
        assert len(results) == 360 and ms.FrameResult.OUTCOME_FAILED not in {r.outcome for r in results}
    # A frame both sent is created by one stream; the other finds it already there.
    shared_ids = {f.id for f in shared}
    created_shared = [r.frame_id for r in results_a + results_b
                      if r.frame_id in shared_ids and r.outcome == ms.FrameResult.OUTCOME_CREATED]
    assert sorted(created_shared) == sorted(shared_ids)

    expected = sorted({f.id for frames in per_replica for f in frames})
    assert len(expected) == 660
    for stub in replicas.metadata:
        listed = iterate_all(stub, ms.IterateFramesRequest(view=whole_view(version)))
        assert sorted(listed) == expected
        assert stub.CountFrames(ms.CountFramesRequest(version=version), timeout=CALL_TIMEOUT).count == 660
        # The exact count sums the write leases of both processes.
        assert stub.GetVersion(ms.GetVersionRequest(version=version), timeout=CALL_TIMEOUT).frame_count == 660
    published = replicas.metadata[1].PublishVersion(ms.PublishVersionRequest(version=version), timeout=CALL_TIMEOUT)
    assert published.frame_count == 660


def test_publish_on_one_replica_while_the_other_uploads_counts_exactly_what_landed(replicas: Replicas) -> None:
    """The draft's write leases live in the database: a publish on B fences the writes A has in flight."""
    version = create_dataset(replicas.metadata[0], unique("fence"))
    frames = [frame(f"p{n:05d}", f"ctx{n // 100}", n) for n in range(1200)]
    published_event = threading.Event()
    uploading = ThreadPoolExecutor(1)
    try:
        # Half the frames go before the publish, the other half after it, on the same open stream.
        upload = uploading.submit(upload_batches, replicas.metadata[0], version, frames, 25,
                                  (600, published_event))
        wait_for(lambda: replicas.metadata[1].CountFrames(ms.CountFramesRequest(version=version),
                                                          timeout=CALL_TIMEOUT).count > 0,
                 "some frames landing through replica A")
        try:
            published = replicas.metadata[1].PublishVersion(ms.PublishVersionRequest(version=version),
                                                             timeout=CALL_TIMEOUT)
        finally:
            published_event.set()
        results = upload.result(CALL_TIMEOUT * 4)
    finally:
        uploading.shutdown()

    created = {r.frame_id for r in results if r.outcome == ms.FrameResult.OUTCOME_CREATED}
    failed = [r for r in results if r.outcome == ms.FrameResult.OUTCOME_FAILED]
    assert created and {f.id for f in frames[600:]} <= {r.frame_id for r in failed}
    assert len(created) + len(failed) == len(results) == len(frames)
    assert {r.error.code for r in failed} == {grpc.StatusCode.FAILED_PRECONDITION.value[0]}
    published_ref = dataset_pb2.VersionRef(dataset=version.dataset, id=published.id)
    stored = iterate_all(replicas.metadata[0], ms.IterateFramesRequest(view=whole_view(published_ref)))
    assert sorted(stored) == sorted(created)
    assert published.frame_count == len(created)
    for stub in replicas.metadata:
        assert stub.GetVersion(ms.GetVersionRequest(version=published_ref), timeout=CALL_TIMEOUT).frame_count \
            == len(created)


def test_the_same_upload_written_through_both_replicas_at_once_stores_the_blob_once(replicas: Replicas) -> None:
    """Two streams of one upload on different replicas: the state object's conditional writes fence them."""
    data = os.urandom(3 * PART_SIZE + 4321)
    name = resource_name(data)

    def write(stub: blob_pb2_grpc.BlobServiceStub) -> int:
        """Writes the blob, continuing where the upload stands after each refusal; the refusals it met."""
        for refusals in range(20):
            status = stub.QueryWriteStatus(blob_pb2.QueryWriteStatusRequest(resource_name=name),
                                           timeout=CALL_TIMEOUT)
            if status.complete:
                # The other stream finished the upload: nothing is left to send (an empty
                # stream would be refused).
                assert status.committed_size == len(data)
                return refusals
            offset = int(status.committed_size)
            try:
                reply = stub.WriteBlob(chunks(name, data, offset, len(data), finish=True), timeout=CALL_TIMEOUT)
            except grpc.RpcError as exc:
                # The other stream moved the upload on: ask where it stands and continue there,
                # after a jittered pause as a real client's retry policy takes, so the two streams
                # stop refusing each other in lockstep on a loaded machine.
                assert exc.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.INVALID_ARGUMENT), exc
                time.sleep(random.uniform(0, 0.05 * (refusals + 1)))
                continue
            assert reply.committed_size == len(data)
            return refusals
        raise AssertionError("the upload never completed")

    run_both([lambda: write(replicas.blob[0]), lambda: write(replicas.blob[1])])

    for stub in replicas.blob:
        status = stub.QueryWriteStatus(blob_pb2.QueryWriteStatusRequest(resource_name=name), timeout=CALL_TIMEOUT)
        assert status.complete and status.committed_size == len(data)
        assert read_blob(stub, blob_uri(data)) == data
