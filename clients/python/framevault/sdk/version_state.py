"""What every ``DatasetVersion`` part stands on: the version as last read from the
service, its attributes, its reference, and paging through List calls.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from framevault.api.metadata_values import metadata_to_dict
from framevault.sdk.refs import version_ref
from framevault.sdk.runtime import current_client
from framevault.v1 import dataset_pb2


def proto_time(stamp: timestamp_pb2.Timestamp) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if stamp.seconds or stamp.nanos else None


async def list_pages(method: Any, request: Any, items_field: str) -> AsyncIterator[Any]:
    """Every item of a paginated List call."""
    async for page in list_page_items(method, request, items_field):
        for item in page:
            yield item


async def list_page_items(method: Any, request: Any, items_field: str) -> AsyncIterator[list[Any]]:
    """The items of a paginated List call, one list per page."""
    client = current_client()
    while True:
        response = await client.unary(method, request, idempotent=True)
        yield list(getattr(response, items_field))
        if not response.next_page_token:
            return
        request.page_token = response.next_page_token


class VersionStatus(enum.Enum):
    """Lifecycle state of a version."""

    draft = "draft"
    published = "published"
    unknown = "unknown"

    @classmethod
    def from_proto(cls, status: int) -> VersionStatus:
        return {dataset_pb2.VERSION_STATUS_DRAFT: cls.draft,
                dataset_pb2.VERSION_STATUS_PUBLISHED: cls.published}.get(status, cls.unknown)  # type: ignore[call-overload]


class VersionState:
    """A version as last read from the service: its attributes and its reference."""

    def __init__(self, proto: dataset_pb2.Version, dataset_name: str | None = None) -> None:
        self._proto = proto
        self.dataset_name = dataset_name

    def __repr__(self) -> str:
        return (f"DatasetVersion(dataset={self.dataset_name or self.dataset_id!r}, name={self.version_name!r}, "
                f"id={self.version_id!r}, status={self.status.value}, frames={self.frame_count})")

    # -- attributes --

    @property
    def version_id(self) -> str:
        """The version's id (unique across datasets)."""
        return self._proto.id

    id = version_id

    @property
    def version_name(self) -> str:
        """The version's name, unique within its dataset."""
        return self._proto.name

    name = version_name

    @property
    def dataset_id(self) -> str:
        return self._proto.dataset_id

    @property
    def description(self) -> str:
        return self._proto.description

    @property
    def status(self) -> VersionStatus:
        return VersionStatus.from_proto(self._proto.status)

    @property
    def is_draft(self) -> bool:
        return self.status is VersionStatus.draft

    @property
    def is_published(self) -> bool:
        return self.status is VersionStatus.published

    @property
    def parent_ids(self) -> list[str]:
        """Parent versions: the one whose frames this version inherits first; a merge has two."""
        return list(self._proto.parent_ids)

    @property
    def parent_id(self) -> str | None:
        return self._proto.parent_ids[0] if self._proto.parent_ids else None

    @property
    def metadata(self) -> dict[str, Any]:
        return metadata_to_dict(self._proto.meta)

    @property
    def mask_labels(self) -> dict[tuple[int, int, int], list[str]]:
        """Mask pixel value (r, g, b) to labels."""
        return {tuple(m.value): list(m.labels) for m in self._proto.mask_labels}  # type: ignore[misc]

    @property
    def frame_count(self) -> int:
        """Frames in the version when it was last read from the service."""
        return int(self._proto.frame_count)

    @property
    def create_time(self) -> datetime | None:
        return proto_time(self._proto.create_time)

    @property
    def update_time(self) -> datetime | None:
        return proto_time(self._proto.update_time)

    @property
    def publish_time(self) -> datetime | None:
        return proto_time(self._proto.publish_time)

    @property
    def etag(self) -> str:
        return self._proto.etag

    def to_proto(self) -> dataset_pb2.Version:
        """A copy of the version as last read from the service."""
        copy = dataset_pb2.Version()
        copy.CopyFrom(self._proto)
        return copy

    def ref(self) -> dataset_pb2.VersionRef:
        """A reference to this version (by id)."""
        return version_ref(version_id=self.version_id)
