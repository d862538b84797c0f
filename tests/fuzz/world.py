"""The seeded data the fuzzer works against, and the checks that it survived.

One guarded dataset holds two published versions (``released`` and
``released-2``, with frames that reference real blobs) and a draft with frames
of its own; a playground dataset has a draft only. Fuzzed requests name these
through ``{{placeholders}}`` (see ``strategies.py``), resolved here for the
current run. Fuzzed writes may legitimately publish the draft, delete the
playground or delete blobs: ``ensure`` puts back what later examples need. The
published versions are never legitimately changed; ``fingerprint`` reads them
whole, and a difference rebuilds the guarded dataset (so later examples are
judged on intact data) after the failure has been reported.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor as d
from google.protobuf.message import Message
from grpc import aio
from PIL import Image

from framevault.v1 import blob_pb2, dataset_pb2, frame_pb2, metadata_pb2, view_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .strategies import TOKEN_JSON_EDGES


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


# Fixed contents, so digests are known when the strategies are built.
BLOBS: list[bytes] = [b"framevault fuzz blob 0", b"framevault fuzz blob 1 " * 40, _png(6, 4), b""]
PUBLISHED_FRAMES = 12
DRAFT_FRAMES = 3


def digest_of(data: bytes) -> blob_pb2.Digest:
    return blob_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def blob_uri_of(data: bytes) -> str:
    return f"blob:sha256/{hashlib.sha256(data).hexdigest()}/{len(data)}"


def meta(**values: Any) -> metadata_pb2.Metadata:
    out = metadata_pb2.Metadata()
    for key, value in values.items():
        target = out.fields[key]
        if isinstance(value, bool):
            target.bool_value = value
        elif isinstance(value, int):
            target.int_value = value
        elif isinstance(value, float):
            target.double_value = value
        else:
            target.string_value = value
    return out


def seed_frame(frame_id: str, index: int) -> frame_pb2.Frame:
    roi = frame_pb2.Roi(labels=["car" if index % 2 else "person"], box=frame_pb2.Box2D(x=1, y=2, w=3, h=4),
                        meta=meta(track=index))
    if index % 3 == 0:
        roi.confidence = 0.25 * (index % 4)
    source = frame_pb2.Source(uri=blob_uri_of(BLOBS[index % 3]), content_type="image/png" if index % 3 == 2 else
                              "application/octet-stream", width=6, height=4, meta=meta(camera="front"))
    return frame_pb2.Frame(id=frame_id, context_id=f"ctx-{index % 2}", timestamp=index * 33, sources=[source],
                           rois=[roi], meta=meta(city="bremen" if index % 2 else "hamburg", n=index, x=index / 3))


def view_of(version_placeholder: str, **options: Any) -> view_pb2.View:
    return view_pb2.View(selections=[view_pb2.ViewSelection(version=dataset_pb2.VersionRef(id=version_placeholder),
                                                            query=options.pop("query", ""))], **options)


SEED_VIEWS = {
    "sequential": view_of("{{published.id}}"),
    "random": view_of("{{published.id}}", order=view_pb2.ITERATION_ORDER_RANDOM, random_seed=7),
    "query": view_of("{{draft.id}}", query='label:car AND meta.city:"bremen"'),
    "metadata": view_of("{{published.id}}", order=view_pb2.ITERATION_ORDER_METADATA,
                        metadata_order=view_pb2.MetadataOrder(key="meta.n", descending=True)),
}


class CallFailed(AssertionError):
    pass


@dataclass
class World:
    metadata: aio.Channel
    blob: aio.Channel
    cursor_secret: str
    values: dict[str, str] = field(default_factory=dict)
    # Fingerprints of the published versions, by version id.
    baseline: dict[str, Any] = field(default_factory=dict)
    generation: int = 0
    _names: itertools.count = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        from framevault.v1 import blob_pb2_grpc, metadata_service_pb2_grpc

        self.stub = metadata_service_pb2_grpc.MetadataServiceStub(self.metadata)
        self.blob_stub = blob_pb2_grpc.BlobServiceStub(self.blob)

    def name(self, prefix: str) -> str:
        return f"fuzz-{prefix}-{uuid.uuid4().hex[:8]}-{next(self._names)}"

    # --- building ------------------------------------------------------------

    async def build(self) -> None:
        """A fresh guarded dataset and playground, real tokens and cursors."""
        self.generation += 1
        await self.put_blobs()
        dataset = await self.stub.CreateDataset(ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(
            name=self.name("guarded"), description="fuzzing", tags=["fuzz"], meta=meta(owner="fuzz"))))
        self.values["dataset.id"], self.values["dataset.name"] = dataset.id, dataset.name
        current = await self.version(dataset.id, "Current")
        await self.upload(current.id, [seed_frame(f"f{i:03d}", i) for i in range(PUBLISHED_FRAMES)])
        first = await self.stub.SnapshotVersion(ms.SnapshotVersionRequest(
            version=dataset_pb2.VersionRef(id=current.id), snapshot_name="released"))
        await self.upload(first.draft.id, [seed_frame("f001", 101)])
        second = await self.stub.SnapshotVersion(ms.SnapshotVersionRequest(
            version=dataset_pb2.VersionRef(id=first.draft.id), snapshot_name="released-2"))
        self.values["published.id"], self.values["published2.id"] = first.snapshot.id, second.snapshot.id
        self.values["draft.id"] = second.draft.id
        await self.upload(second.draft.id, [seed_frame(f"d{i:03d}", i) for i in range(DRAFT_FRAMES)])
        await self.new_playground()
        await self.collect_tokens()
        self.baseline = {vid: await self.fingerprint_of(vid) for vid in self.published_ids()}

    async def new_playground(self) -> None:
        playground = await self.stub.CreateDataset(ms.CreateDatasetRequest(
            dataset=dataset_pb2.Dataset(name=self.name("playground"))))
        self.values["playground.id"], self.values["playground.name"] = playground.id, playground.name
        draft = await self.version(playground.id, "Current")
        self.values["playground_draft.id"] = draft.id
        await self.upload(draft.id, [seed_frame(f"f{i:03d}", i) for i in range(2)])

    async def new_draft(self) -> None:
        draft = await self.stub.CreateVersion(ms.CreateVersionRequest(
            dataset=dataset_pb2.DatasetRef(id=self.values["dataset.id"]),
            parent=dataset_pb2.VersionRef(id=self.values["published2.id"]),
            version=dataset_pb2.Version(name=self.name("draft"))))
        self.values["draft.id"] = draft.id
        await self.upload(draft.id, [seed_frame(f"d{i:03d}", i) for i in range(DRAFT_FRAMES)])

    async def put_blobs(self) -> None:
        missing = await self.blob_stub.FindMissingBlobs(blob_pb2.FindMissingBlobsRequest(
            digests=[digest_of(b) for b in BLOBS]))
        wanted = {(m.hash, m.size_bytes) for m in missing.missing_digests}
        requests = [blob_pb2.BatchUpdateBlobsRequest.Request(digest=digest_of(b), data=b) for b in BLOBS
                    if (digest_of(b).hash, len(b)) in wanted]
        if requests:
            # The S3 server shared with other test runs may briefly answer busy.
            for attempt in range(5):
                try:
                    response = await self.blob_stub.BatchUpdateBlobs(
                        blob_pb2.BatchUpdateBlobsRequest(requests=requests))
                    break
                except aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == 4:
                        raise
                    await asyncio.sleep(1)
            assert all(r.status.code == 0 for r in response.responses), response

    async def version(self, dataset_id: str, name: str) -> dataset_pb2.Version:
        return await self.stub.GetVersion(ms.GetVersionRequest(version=dataset_pb2.VersionRef(
            dataset=dataset_pb2.DatasetRef(id=dataset_id), name=name)))

    async def upload(self, version_id: str, frames: list[frame_pb2.Frame]) -> None:
        call = self.stub.UploadFrames()
        await call.write(ms.UploadFramesRequest(options=ms.UploadOptions(
            version=dataset_pb2.VersionRef(id=version_id), upload_retries=5)))
        await call.write(ms.UploadFramesRequest(items=[ms.UploadItem(frame=f) for f in frames]))
        await call.done_writing()
        results = [r async for r in call]
        outcomes = [fr for r in results if r.HasField("results") for fr in r.results.results]
        failed = [fr for fr in outcomes if fr.outcome == ms.FrameResult.OUTCOME_FAILED]
        assert len(outcomes) == len(frames) and not failed, f"seeding upload failed: {failed}"

    async def collect_tokens(self) -> None:
        v = self.values
        page = await self.stub.ListDatasets(ms.ListDatasetsRequest(page_size=1))
        v["token.datasets"] = page.next_page_token
        page = await self.stub.ListVersions(ms.ListVersionsRequest(
            dataset=dataset_pb2.DatasetRef(id=v["dataset.id"]), page_size=1))
        v["token.versions"] = page.next_page_token
        page = await self.stub.ListFrames(ms.ListFramesRequest(
            version=dataset_pb2.VersionRef(id=v["published.id"]), page_size=4))
        v["token.frames"] = page.next_page_token
        views = await self.stub.ListViewFrames(ms.ListViewFramesRequest(
            view=self.resolve(SEED_VIEWS["sequential"]), page_size=3))
        v["token.view_frames"] = views.next_page_token
        views = await self.stub.ListViewFrames(ms.ListViewFramesRequest(
            view=self.resolve(SEED_VIEWS["metadata"]), page_size=2))
        v["token.view_frames_metadata"] = views.next_page_token
        for name, view, cursors in (("sequential", "sequential", False), ("random", "random", False),
                                    ("frame", "sequential", True)):
            call = self.stub.IterateFrames(ms.IterateFramesRequest(
                view=self.resolve(SEED_VIEWS[view]), frames_per_message=3, frame_cursors=cursors))
            first = await call.read()
            call.cancel()
            # Per-frame cursors where the service gives them, else the message's.
            v[f"cursor.{name}"] = first.frame_cursors[0] if cursors and first.frame_cursors else first.cursor
        diff = [m async for m in self.stub.DiffVersions(ms.DiffVersionsRequest(
            base=dataset_pb2.VersionRef(id=v["published.id"]), target=dataset_pb2.VersionRef(id=v["draft.id"]),
            max_changes=1))]
        v["cursor.diff"] = diff[-1].cursor
        assert all(v[k] for k in v if k.startswith(("token.", "cursor."))), v

    # --- per example -----------------------------------------------------------

    async def ensure(self) -> None:
        """Puts back what fuzzed writes may legitimately have removed."""
        await self.put_blobs()
        if not await self._is_draft(self.values["draft.id"]):
            await self.new_draft()
        try:
            await self.stub.GetDataset(ms.GetDatasetRequest(dataset=dataset_pb2.DatasetRef(
                id=self.values["playground.id"])))
            playground_ok = await self._is_draft(self.values["playground_draft.id"])
        except aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            playground_ok = False
        if not playground_ok:
            await self.new_playground()

    async def _is_draft(self, version_id: str) -> bool:
        try:
            version = await self.stub.GetVersion(ms.GetVersionRequest(version=dataset_pb2.VersionRef(id=version_id)))
        except aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return False
        return version.status == dataset_pb2.VERSION_STATUS_DRAFT

    def published_ids(self) -> list[str]:
        return [self.values["published.id"], self.values["published2.id"]]

    async def fingerprint_of(self, version_id: str) -> Any:
        """Status, frame_count and every frame (with its etag) of a version."""
        ref = dataset_pb2.VersionRef(id=version_id)
        try:
            version = await self.stub.GetVersion(ms.GetVersionRequest(version=ref))
        except aio.AioRpcError as exc:
            return ("unreadable", exc.code().name, exc.details())
        frames: list[tuple[str, str, bytes]] = []
        token = ""
        while True:
            try:
                page = await self.stub.ListFrames(ms.ListFramesRequest(version=ref, page_size=1000, page_token=token))
            except aio.AioRpcError as exc:
                return ("frames unreadable", exc.code().name, exc.details())
            frames += [(f.id, f.etag, f.SerializeToString(deterministic=True)) for f in page.frames]
            token = page.next_page_token
            if not token:
                break
        return (version.status, version.frame_count, version.dataset_id, tuple(frames))

    async def published_changes(self) -> list[str]:
        """How the published versions differ from their baseline (empty: intact)."""
        changes = []
        for version_id, before in self.baseline.items():
            after = await self.fingerprint_of(version_id)
            if after != before:
                changes.append(describe_change(version_id, before, after))
        return changes

    # --- placeholders ------------------------------------------------------------

    def resolve(self, msg: Message, upload_id: str | None = None) -> Message:
        """A copy of ``msg`` with every ``{{placeholder}}`` replaced by its value."""
        out = type(msg)()
        out.CopyFrom(msg)
        context = {"uuid": upload_id or str(uuid.uuid4())}
        _resolve_strings(out, lambda text: _PLACEHOLDER.sub(lambda m: self._value(m.group(1), context), text))
        return out

    def _value(self, name: str, context: dict[str, str]) -> str:
        if name in context:
            return context[name]
        if name.startswith("forge:"):
            _, token_name, leaf, edge = name.split(":")
            return self.forge(self.values[token_name], int(leaf), TOKEN_JSON_EDGES[int(edge)])
        return self.values[name]

    def forge(self, token: str, leaf: int, replacement: Any) -> str:
        """``token`` with one value of its payload replaced, re-sealed the way
        an outsider can: an unkeyed checksum recomputed, a signed token
        re-signed when it was signed with a key derived from the (default)
        secret of the service's settings, else left with its old signature."""
        head, sep, mac = token.partition(".")
        try:
            body_bytes = _b64decode(head)
            body = json.loads(body_bytes)
        except ValueError:
            return token + "x"
        if not isinstance(body, dict) or not body:
            return token + "x"
        if sep:
            key = self._signing_key(body_bytes, mac)
            positional = "s" if "s" in body else next(iter(body))
            body[positional] = _replace_leaf(body[positional], leaf, replacement)
            new_body = json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
            new_mac = _b64encode(hmac.new(key, new_body, hashlib.sha256).digest()[:16]) if key else mac
            return f"{_b64encode(new_body)}.{new_mac}"
        payload = {k: v for k, v in body.items() if k != "c"}
        positional = "a" if "a" in payload else next(iter(payload))
        payload[positional] = _replace_leaf(payload[positional], leaf, replacement)
        if "c" in body:
            payload["c"] = hashlib.sha256(json.dumps(dict(payload), sort_keys=True,
                                                     separators=(",", ":")).encode()).hexdigest()[:16]
        return _b64encode(json.dumps(payload, separators=(",", ":")).encode())

    def _signing_key(self, body: bytes, mac: str) -> bytes | None:
        for purpose in SIGNING_PURPOSES:
            key = hashlib.sha256(f"framevault/{purpose}/v1".encode() + b"\x00" + self.cursor_secret.encode()).digest()
            if _b64encode(hmac.new(key, body, hashlib.sha256).digest()[:16]) == mac:
                return key
        return None


# How the services derive token keys from their secret (documented in their
# token module); a token signed otherwise keeps its signature when forged.
SIGNING_PURPOSES = ("view-cursor", "page-token")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_PLACEHOLDER = re.compile(r"\{\{([^{}]+)\}\}")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [p for k in sorted(value) for p in _leaves(value[k], (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


def _replace_leaf(value: Any, leaf: int, replacement: Any) -> Any:
    paths = _leaves(value)
    if not paths or paths == [()]:
        return replacement
    path = paths[leaf % len(paths)]
    out = json.loads(json.dumps(value))
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement
    return out


def _resolve_strings(msg: Message, replace: Any) -> None:
    for field_desc, value in msg.ListFields():
        if field_desc.type == d.FieldDescriptor.TYPE_STRING:
            if field_desc.is_repeated:
                getattr(msg, field_desc.name)[:] = [replace(v) for v in value]
            else:
                setattr(msg, field_desc.name, replace(value))
        elif field_desc.type == d.FieldDescriptor.TYPE_MESSAGE:
            if field_desc.message_type.GetOptions().map_entry:
                value_field = field_desc.message_type.fields_by_name["value"]
                if value_field.type == d.FieldDescriptor.TYPE_MESSAGE:
                    for item in value.values():
                        _resolve_strings(item, replace)
                elif value_field.type == d.FieldDescriptor.TYPE_STRING:
                    for key in list(value):
                        value[key] = replace(value[key])
            elif field_desc.is_repeated:
                for item in value:
                    _resolve_strings(item, replace)
            else:
                _resolve_strings(value, replace)


def describe_change(version_id: str, before: Any, after: Any) -> str:
    if before[0] != after[0] or len(after) != len(before):
        return f"published version {version_id}: {before[:3]} became {after[:3]}"
    lost = {f[0] for f in before[3]} - {f[0] for f in after[3]}
    gained = {f[0] for f in after[3]} - {f[0] for f in before[3]}
    changed = {a[0] for a, b in zip(sorted(after[3]), sorted(before[3]), strict=False) if a != b}
    return (f"published version {version_id}: status/frame_count/dataset {before[:3]} -> {after[:3]}, "
            f"frames lost {sorted(lost)}, gained {sorted(gained)}, changed {sorted(changed - lost - gained)}")
