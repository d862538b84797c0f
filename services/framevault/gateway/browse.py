"""What the web app's pages need, composed from the services' RPCs.

Transport-free: each method takes the caller's token and plain values and
returns JSON-ready dicts (proto messages as ``MessageToDict`` with the proto's
field names). Failures are the services' gRPC errors or
``framevault.common.errors`` domain errors; ``errors.http_error`` maps both.
Every list is paged by the services' keyset tokens, so a page costs the same
at the millionth frame as at the first.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from google.protobuf import json_format
from google.protobuf.message import Message
from grpc import aio

from framevault.api.digests import BlobDigest, BlobUriError, digest_to_proto, is_blob_uri, parse_blob_uri
from framevault.auth.expiring_cache import ExpiringCache
from framevault.common.config import Settings
from framevault.common.errors import InvalidArgument, NotFound
from framevault.gateway.backend import Backends, caller_metadata
from framevault.v1 import (
    access_pb2,
    blob_pb2,
    dataset_pb2,
    frame_pb2,
    metadata_service_pb2,
    view_pb2,
)

# Service ids of datasets and versions (MongoDB ObjectIds); any other path segment names nothing.
_SERVICE_ID = re.compile(r"[0-9a-f]{24}")
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 60
# Cards of a datasets page: each costs a version listing and a version's label counts.
DATASET_PAGE_SIZE = 24
TOP_LABELS = 5
DIFF_PAGE_SIZE = 50
# What a grid tile shows of a frame (and where its thumbnail is); everything else stays in the service.
SUMMARY_PROJECTION = ("id", "context_id", "timestamp", "sources.width", "sources.height", "sources.uri",
                      "sources.content_type", "sources.preview.uri", "sources.preview.content_type", "rois.labels")
# Orders of a version's frames (API.md, "Order"): sequential (context id, then timestamp; what
# these names ask for), or by a metadata key (any other ``meta.<key>``, checked by the service).
VERSION_SORTS = frozenset({"", "context", "timestamp"})
CONTEXT_SORTS = frozenset({"", "timestamp"})
# The query language's spellings of a metadata key (views/query.py reads them the same way).
METADATA_SORT_PREFIXES = ("meta.", "metadata.", "meta_data.")
SORT_HELP = "sort is context or timestamp (context, then timestamp), or meta.<key> (e.g. meta.speed)"
# External images a browser may open directly.
_BROWSER_SCHEMES = ("https://", "http://")

T = TypeVar("T")


def to_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def checked_id(kind: str, value: str, field: str) -> str:
    """A dataset or version id from a URL; NOT_FOUND for a segment that cannot be one."""
    if not _SERVICE_ID.fullmatch(value):
        raise NotFound(kind, value, field=field)
    return value


def checked_page_size(raw: str | None, default: int = DEFAULT_PAGE_SIZE) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise InvalidArgument.field("page_size", f"must be a whole number 1..{MAX_PAGE_SIZE}")
    return int(raw)


def frame_path(dataset_id: str, version_id: str, frame_id: str) -> str:
    return f"/api/datasets/{dataset_id}/versions/{version_id}/frames/{quote(frame_id, safe='')}"


@dataclass(frozen=True)
class Permissions:
    can_edit: bool
    can_publish: bool


class Browser:
    def __init__(self, backends: Backends, settings: Settings):
        self._b = backends
        self._local_dev = settings.security_mode == "local-dev"
        self._url_seconds = settings.gateway_download_url_seconds
        self._thumbnail_edge = settings.gateway_thumbnail_edge
        # Source digest -> (preview digest, content type) of the previews CreatePreview answered.
        self._known_previews: ExpiringCache[BlobDigest, tuple[blob_pb2.Digest, str]] = ExpiringCache(
            settings.gateway_known_previews_seconds, settings.gateway_known_previews_entries)

    async def _call(self, method: Callable[..., Awaitable[T]], request: Message, token: str | None) -> T:
        return await method(request, metadata=caller_metadata(token), timeout=self._b.timeout)

    # -- callers --------------------------------------------------------------

    async def caller(self, token: str | None) -> dict[str, Any]:
        """Who the token authenticates (UNAUTHENTICATED when it does not).

        In local-dev mode the services answer every caller and serve no AccessService:
        the caller is the anonymous local-dev user, allowed everything."""
        if self._local_dev:
            return {"principal": "local-dev", "admin": True, "security_mode": "local-dev"}
        caller = await self._call(self._b.access.GetCaller, access_pb2.GetCallerRequest(), token)
        return to_json(caller)

    async def permissions(self, token: str | None, dataset_id: str) -> Permissions:
        if self._local_dev:
            return Permissions(can_edit=True, can_publish=True)
        caller = await self._call(self._b.access.GetCaller, access_pb2.GetCallerRequest(), token)
        if caller.admin:
            return Permissions(can_edit=True, can_publish=True)
        role = max((b.role for b in caller.roles if b.dataset_id == dataset_id), default=access_pb2.ROLE_UNSPECIFIED)
        return Permissions(can_edit=role >= access_pb2.ROLE_EDITOR, can_publish=role >= access_pb2.ROLE_OWNER)

    # -- datasets -------------------------------------------------------------

    async def datasets(self, token: str | None, name: str, tag: str, page_token: str) -> dict[str, Any]:
        request = metadata_service_pb2.ListDatasetsRequest(page_size=DATASET_PAGE_SIZE, page_token=page_token,
                                                           name_prefix=name, tags=[tag] if tag else [])
        page = await self._call(self._b.metadata.ListDatasets, request, token)
        cards = await asyncio.gather(*(self._dataset_card(token, d) for d in page.datasets))
        return {"datasets": list(cards), "next_page_token": page.next_page_token}

    async def _dataset_card(self, token: str | None, dataset: dataset_pb2.Dataset) -> dict[str, Any]:
        versions = await self._all_versions(token, dataset.id)
        card = to_json(dataset)
        card["version_count"] = len(versions)
        card["updated_at"] = card.get("update_time")
        card["top_labels"] = []
        card["newest_version"] = None
        if versions:
            newest = max(versions, key=_update_order)
            card["newest_version"] = {"id": newest.id, "name": newest.name,
                                      "status": dataset_pb2.VersionStatus.Name(newest.status),
                                      "frame_count": str(newest.frame_count)}
            # A published version's label counts are stored with it (cheap at any size); a draft's are
            # counted at each call, so the newest published version answers when there is one.
            published = [v for v in versions if v.status == dataset_pb2.VERSION_STATUS_PUBLISHED]
            counted = max(published, key=_update_order) if published else newest
            stats = await self._call(self._b.metadata.GetVersionStatistics,
                                     metadata_service_pb2.GetVersionStatisticsRequest(
                                         version=dataset_pb2.VersionRef(id=counted.id)), token)
            card["top_labels"] = _label_counts(stats)[:TOP_LABELS]
            card["top_labels_version_id"] = counted.id
            newest_time = to_json(newest).get("update_time")
            if newest_time and (card["updated_at"] is None or newest_time > card["updated_at"]):
                card["updated_at"] = newest_time
        return card

    async def dataset(self, token: str | None, dataset_id: str) -> dict[str, Any]:
        checked_id("dataset", dataset_id, "dataset")
        dataset = await self._call(self._b.metadata.GetDataset, metadata_service_pb2.GetDatasetRequest(
            dataset=dataset_pb2.DatasetRef(id=dataset_id)), token)
        return to_json(dataset)

    # -- versions -------------------------------------------------------------

    async def _all_versions(self, token: str | None, dataset_id: str) -> list[dataset_pb2.Version]:
        versions: list[dataset_pb2.Version] = []
        page_token = ""
        while True:
            page = await self._call(self._b.metadata.ListVersions, metadata_service_pb2.ListVersionsRequest(
                dataset=dataset_pb2.DatasetRef(id=dataset_id), page_size=1000, page_token=page_token), token)
            versions.extend(page.versions)
            page_token = page.next_page_token
            if not page_token:
                return versions

    async def versions(self, token: str | None, dataset_id: str) -> dict[str, Any]:
        checked_id("dataset", dataset_id, "dataset")
        return {"versions": [to_json(v) for v in await self._all_versions(token, dataset_id)]}

    async def version(self, token: str | None, dataset_id: str, version_id: str) -> dict[str, Any]:
        version, permissions = await asyncio.gather(
            self._call(self._b.metadata.GetVersion, metadata_service_pb2.GetVersionRequest(
                version=version_ref(dataset_id, version_id)), token),
            self.permissions(token, dataset_id))
        answer = to_json(version)
        answer["permissions"] = {"can_edit": permissions.can_edit, "can_publish": permissions.can_publish}
        return answer

    async def create_version(self, token: str | None, dataset_id: str, parent_id: str, name: str,
                             description: str) -> dict[str, Any]:
        checked_id("dataset", dataset_id, "dataset")
        request = metadata_service_pb2.CreateVersionRequest(
            dataset=dataset_pb2.DatasetRef(id=dataset_id),
            version=dataset_pb2.Version(name=name, description=description))
        if parent_id:
            request.parent.CopyFrom(version_ref(dataset_id, parent_id, field="parent_id"))
        return to_json(await self._call(self._b.metadata.CreateVersion, request, token))

    async def publish_version(self, token: str | None, dataset_id: str, version_id: str) -> dict[str, Any]:
        request = metadata_service_pb2.PublishVersionRequest(version=version_ref(dataset_id, version_id))
        return to_json(await self._call(self._b.metadata.PublishVersion, request, token))

    async def snapshot_version(self, token: str | None, dataset_id: str, version_id: str, name: str,
                               description: str) -> dict[str, Any]:
        request = metadata_service_pb2.SnapshotVersionRequest(version=version_ref(dataset_id, version_id),
                                                              snapshot_name=name, description=description)
        return to_json(await self._call(self._b.metadata.SnapshotVersion, request, token))

    async def delete_version(self, token: str | None, dataset_id: str, version_id: str) -> dict[str, Any]:
        request = metadata_service_pb2.DeleteVersionRequest(version=version_ref(dataset_id, version_id))
        return to_json(await self._call(self._b.metadata.DeleteVersion, request, token))

    async def statistics(self, token: str | None, dataset_id: str, version_id: str, meta_key: str
                         ) -> dict[str, Any]:
        request = metadata_service_pb2.GetVersionStatisticsRequest(
            version=version_ref(dataset_id, version_id), meta_keys=[meta_key] if meta_key else [])
        stats = await self._call(self._b.metadata.GetVersionStatistics, request, token)
        distribution: list[dict[str, Any]] = []
        missing = 0
        for dist in stats.meta_distributions:
            missing = dist.missing_count
            distribution = [{"value": _plain_value(to_json(item.value)), "count": item.count} for item in dist.values]
        return {"frame_count": stats.frame_count, "annotated_frame_count": stats.annotated_frame_count,
                "roi_count": stats.roi_count, "label_counts": _label_counts(stats),
                "meta_key": meta_key, "meta_distribution": distribution, "meta_missing_count": missing}

    # -- frames ---------------------------------------------------------------

    async def frames(self, token: str | None, dataset_id: str, version_id: str, query: str, page_size: int,
                     page_token: str, *, context: str | None, sort: str, descending: bool) -> dict[str, Any]:
        """A page of a version's frames: one context's in timestamp order (either direction), the
        whole version's in the services' sequential order (context id, then timestamp), or by a
        metadata key (``sort=meta.<key>``, either direction; frames without the key last)."""
        selection = view_pb2.ViewSelection(version=version_ref(dataset_id, version_id), query=query)
        if context is not None:
            if sort not in CONTEXT_SORTS:
                raise InvalidArgument.field("sort", "within a context frames are in timestamp order")
            request = metadata_service_pb2.ListContextFramesRequest(
                selection=selection, context_id=context, page_size=page_size, page_token=page_token,
                descending=descending)
            request.projection.paths.extend(SUMMARY_PROJECTION)
            answer = await self._call(self._b.metadata.ListContextFrames, request, token)
            frames, next_token = answer.frames, answer.next_page_token
        else:
            view = view_pb2.View(selections=[selection], order=view_pb2.ITERATION_ORDER_SEQUENTIAL)
            if sort.startswith(METADATA_SORT_PREFIXES):
                view.order = view_pb2.ITERATION_ORDER_METADATA
                view.metadata_order.key = sort
                view.metadata_order.descending = descending
            elif sort not in VERSION_SORTS:
                raise InvalidArgument.field("sort", SORT_HELP)
            elif descending:
                raise InvalidArgument.field("desc", "the sequential order is ascending; descending order is "
                                                    "offered within one context and with sort=meta.<key>")
            view.projection.paths.extend(SUMMARY_PROJECTION)
            page = await self._call(self._b.metadata.ListViewFrames, metadata_service_pb2.ListViewFramesRequest(
                view=view, page_size=page_size, page_token=page_token), token)
            frames, next_token = page.frames, page.next_page_token
        return {"frames": await self._summaries(token, dataset_id, version_id, frames),
                "next_page_token": next_token}

    async def contexts(self, token: str | None, dataset_id: str, version_id: str, query: str, page_size: int,
                       page_token: str) -> dict[str, Any]:
        """One tile per context id (ascending), with its first frame and its frame count."""
        request = metadata_service_pb2.ListContextsRequest(
            selection=view_pb2.ViewSelection(version=version_ref(dataset_id, version_id), query=query),
            page_size=page_size, page_token=page_token)
        request.projection.paths.extend(SUMMARY_PROJECTION)
        answer = await self._call(self._b.metadata.ListContexts, request, token)
        firsts = await self._summaries(token, dataset_id, version_id, [c.first_frame for c in answer.contexts])
        return {"contexts": [{"context_id": c.context_id, "frame_count": c.frame_count, "first_frame": first}
                             for c, first in zip(answer.contexts, firsts, strict=True)],
                "next_page_token": answer.next_page_token}

    async def _summaries(self, token: str | None, dataset_id: str, version_id: str,
                         frames: Sequence[frame_pb2.Frame]) -> list[dict[str, Any]]:
        """Grid tiles whose ``thumbnail_url`` the browser opens straight away where the preview is known:
        a download URL of the frame's stored preview or of the one the blob service made earlier
        (asked for with the caller's credential, one call per distinct blob, all at once); the
        gateway's thumbnail path, which makes one, for the others."""
        summaries = [frame_summary(dataset_id, version_id, f) for f in frames]
        locations = [self._known_thumbnail(f) for f in frames]
        blobs = {(loc[0].hash, loc[0].size_bytes): loc for loc in locations if isinstance(loc, tuple)}
        urls = dict(zip(blobs, await asyncio.gather(*(self._known_download_url(token, digest, content_type)
                                                      for digest, content_type in blobs.values())), strict=True))
        for summary, location in zip(summaries, locations, strict=True):
            url = urls.get((location[0].hash, location[0].size_bytes)) if isinstance(location, tuple) else location
            if url:
                summary["thumbnail_url"] = url
        return summaries

    def _known_thumbnail(self, frame: frame_pb2.Frame) -> str | tuple[blob_pb2.Digest, str] | None:
        """Where the frame's thumbnail is without asking a service: a URL a browser opens, a preview
        blob (digest, content type), or None when only the thumbnail path can tell."""
        if not frame.sources:
            return None
        source = frame.sources[0]
        if source.preview.uri:
            uri, content_type = source.preview.uri, source.preview.content_type or "image/jpeg"
        elif is_blob_uri(source.uri):
            try:
                return self._known_previews.get(parse_blob_uri(source.uri))
            except BlobUriError:
                return None
        else:
            uri, content_type = source.uri, source.content_type
        if uri.startswith(_BROWSER_SCHEMES):
            return uri
        if not is_blob_uri(uri):
            return None
        try:
            return digest_to_proto(parse_blob_uri(uri)), content_type
        except BlobUriError:
            return None

    async def _known_download_url(self, token: str | None, digest: blob_pb2.Digest, content_type: str) -> str | None:
        """A download URL of a preview believed to exist; None (the thumbnail path then answers, saying
        why) when the blob service refuses it, e.g. a preview collected since."""
        try:
            return await self._download_url(token, digest, content_type)
        except aio.AioRpcError:
            return None

    async def _frame(self, token: str | None, dataset_id: str, version_id: str, frame_id: str) -> frame_pb2.Frame:
        return await self._call(self._b.metadata.GetFrame, metadata_service_pb2.GetFrameRequest(
            version=version_ref(dataset_id, version_id), frame_id=frame_id), token)

    async def frame(self, token: str | None, dataset_id: str, version_id: str, frame_id: str) -> dict[str, Any]:
        """The frame and its neighbours in its context (timestamp order), for playing a context."""
        frame = await self._frame(token, dataset_id, version_id, frame_id)
        previous, following = await asyncio.gather(
            self._neighbour(token, dataset_id, version_id, frame, descending=True),
            self._neighbour(token, dataset_id, version_id, frame, descending=False))
        return {"frame": to_json(frame), "neighbours": {"previous": previous, "next": following}}

    async def _neighbour(self, token: str | None, dataset_id: str, version_id: str, frame: frame_pb2.Frame, *,
                         descending: bool) -> str | None:
        request = metadata_service_pb2.ListContextFramesRequest(
            selection=view_pb2.ViewSelection(version=version_ref(dataset_id, version_id)),
            context_id=frame.context_id, page_size=1, descending=descending, start_after_frame_id=frame.id)
        request.projection.paths.append("id")
        answer = await self._call(self._b.metadata.ListContextFrames, request, token)
        return answer.frames[0].id if answer.frames else None

    # -- diff -----------------------------------------------------------------

    async def diff(self, token: str | None, dataset_id: str, base_id: str, target_id: str, page_token: str
                   ) -> dict[str, Any]:
        """A page of the frames added, changed and removed from ``base_id`` to ``target_id``.

        DiffVersions sends at most a page of changes (``max_changes``) and the cursor that continues
        after them, which is the page token: the next page starts there in the service's indexes.
        Tiles get thumbnails as the frames grid's do; removed frames are ``base_id``'s, the others
        ``target_id``'s."""
        if not base_id:
            raise InvalidArgument.field("from", "required: the version compared from")
        if not target_id:
            raise InvalidArgument.field("to", "required: the version compared to")
        request = metadata_service_pb2.DiffVersionsRequest(
            base=version_ref(dataset_id, base_id, field="from"), target=version_ref(dataset_id, target_id, field="to"),
            include_frames=True, resume_cursor=page_token, max_changes=DIFF_PAGE_SIZE)
        changes: list[metadata_service_pb2.FrameChange] = []
        next_token = ""
        call = self._b.metadata.DiffVersions(request, metadata=caller_metadata(token), timeout=self._b.timeout)
        async for message in call:
            changes.extend(message.changes)
            next_token = message.cursor
        removed = [c for c in changes if _DIFF_KINDS.get(c.kind) == "removed"]
        in_target = [c for c in changes if _DIFF_KINDS.get(c.kind) in ("added", "changed")]
        base_tiles, target_tiles = await asyncio.gather(
            self._summaries(token, dataset_id, base_id, [c.base for c in removed]),
            self._summaries(token, dataset_id, target_id, [c.target for c in in_target]))
        groups: dict[str, list[dict[str, Any]]] = {"added": [], "changed": [], "removed": []}
        for change, tile in [*zip(removed, base_tiles, strict=True), *zip(in_target, target_tiles, strict=True)]:
            groups[_DIFF_KINDS[change.kind]].append(tile)
        return {**groups, "next_page_token": next_token}

    # -- images ---------------------------------------------------------------

    async def source_image_url(self, token: str | None, dataset_id: str, version_id: str, frame_id: str,
                               index: int) -> str:
        frame = await self._frame(token, dataset_id, version_id, frame_id)
        source = _nth(frame.sources, index, "source")
        return await self._location_url(token, source.uri, source.content_type, f"sources[{index}].uri")

    async def mask_image_url(self, token: str | None, dataset_id: str, version_id: str, frame_id: str,
                             source_index: int, mask_index: int) -> str:
        frame = await self._frame(token, dataset_id, version_id, frame_id)
        mask = _nth(_nth(frame.sources, source_index, "source").masks, mask_index, "mask")
        return await self._location_url(token, mask.uri, mask.content_type or "image/png",
                                        f"sources[{source_index}].masks[{mask_index}].uri")

    async def thumbnail_url(self, token: str | None, dataset_id: str, version_id: str, frame_id: str) -> str:
        """The first source's preview; made by the blob service on demand when the frame has none."""
        frame = await self._frame(token, dataset_id, version_id, frame_id)
        source = _nth(frame.sources, 0, "source")
        if source.HasField("preview") and source.preview.uri:
            return await self._location_url(token, source.preview.uri, source.preview.content_type or "image/jpeg",
                                            "sources[0].preview.uri")
        if not is_blob_uri(source.uri):
            return await self._location_url(token, source.uri, source.content_type, "sources[0].uri")
        digest = _blob_digest(source.uri, "sources[0].uri")
        preview = await self._call(self._b.blob.CreatePreview, blob_pb2.CreatePreviewRequest(
            digest=digest, max_edge=self._thumbnail_edge, format=blob_pb2.PREVIEW_FORMAT_JPEG), token)
        self._known_previews.put(parse_blob_uri(source.uri), (preview.digest, preview.content_type))
        # The blob service lets whoever may read the source read the preview made of it.
        return await self._download_url(token, preview.digest, preview.content_type)

    async def _location_url(self, token: str | None, uri: str, content_type: str, field: str) -> str:
        if uri.startswith(_BROWSER_SCHEMES):
            return uri
        if not is_blob_uri(uri):
            raise NotFound("image", uri or "(none)", field=field,
                           message=f"the image is not stored in framevault ({uri or 'no location'}); "
                                   "a browser cannot open it")
        return await self._download_url(token, _blob_digest(uri, field), content_type)

    async def _download_url(self, token: str | None, digest: blob_pb2.Digest, content_type: str) -> str:
        answer = await self._call(self._b.blob.GetDownloadUrl, blob_pb2.GetDownloadUrlRequest(
            digest=digest, expires_in_seconds=self._url_seconds, content_type=content_type), token)
        return answer.url


def version_ref(dataset_id: str, version_id: str, field: str = "version") -> dataset_pb2.VersionRef:
    checked_id("dataset", dataset_id, "dataset")
    checked_id("version", version_id, field)
    return dataset_pb2.VersionRef(dataset=dataset_pb2.DatasetRef(id=dataset_id), id=version_id)


def frame_summary(dataset_id: str, version_id: str, frame: frame_pb2.Frame) -> dict[str, Any]:
    first = frame.sources[0] if frame.sources else None
    labels = sorted({label for roi in frame.rois for label in roi.labels})
    return {"id": frame.id, "context_id": frame.context_id, "timestamp": str(frame.timestamp),
            "thumbnail_url": frame_path(dataset_id, version_id, frame.id) + "/thumbnail",
            "roi_count": len(frame.rois), "labels": labels,
            "width": first.width if first else 0, "height": first.height if first else 0}


_DIFF_KINDS = {metadata_service_pb2.FrameChange.KIND_ADDED: "added",
               metadata_service_pb2.FrameChange.KIND_CHANGED: "changed",
               metadata_service_pb2.FrameChange.KIND_REMOVED: "removed"}


def _update_order(version: dataset_pb2.Version) -> tuple[int, int]:
    return version.update_time.seconds, version.update_time.nanos


def _label_counts(stats: dataset_pb2.VersionStatistics) -> list[dict[str, Any]]:
    return [{"label": label, "count": count}
            for label, count in sorted(stats.roi_label_counts.items(), key=lambda item: (-item[1], item[0]))]


def _plain_value(value: dict[str, Any]) -> Any:
    """A MetadataValue's JSON (``{"string_value": "x"}``) as the plain value it holds."""
    return next(iter(value.values()), None) if len(value) == 1 else value


def _nth(items: Any, index: int, kind: str) -> Any:
    if not 0 <= index < len(items):
        raise NotFound(kind, str(index), field=kind)
    return items[index]


def _blob_digest(uri: str, field: str) -> blob_pb2.Digest:
    try:
        return digest_to_proto(parse_blob_uri(uri))
    except BlobUriError as exc:
        raise NotFound("image", uri, field=field, message=f"the image location is not a blob: {exc}") from None
