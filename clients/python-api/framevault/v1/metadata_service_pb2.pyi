from framevault.v1 import blob_pb2 as _blob_pb2
from framevault.v1 import dataset_pb2 as _dataset_pb2
from framevault.v1 import frame_pb2 as _frame_pb2
from framevault.v1 import view_pb2 as _view_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MergeStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MERGE_STRATEGY_UNSPECIFIED: _ClassVar[MergeStrategy]
    MERGE_STRATEGY_FAIL: _ClassVar[MergeStrategy]
    MERGE_STRATEGY_OURS: _ClassVar[MergeStrategy]
    MERGE_STRATEGY_THEIRS: _ClassVar[MergeStrategy]
MERGE_STRATEGY_UNSPECIFIED: MergeStrategy
MERGE_STRATEGY_FAIL: MergeStrategy
MERGE_STRATEGY_OURS: MergeStrategy
MERGE_STRATEGY_THEIRS: MergeStrategy

class CreateDatasetRequest(_message.Message):
    __slots__ = ("dataset", "fail_if_exists")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    FAIL_IF_EXISTS_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    fail_if_exists: bool
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ..., fail_if_exists: _Optional[bool] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.DatasetRef
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.DatasetRef, _Mapping]] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "name_prefix", "tags")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NAME_PREFIX_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    name_prefix: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., name_prefix: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets", "next_page_token")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.Dataset]
    next_page_token: str
    def __init__(self, datasets: _Optional[_Iterable[_Union[_dataset_pb2.Dataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateDatasetRequest(_message.Message):
    __slots__ = ("dataset_ref", "dataset", "update_mask", "etag")
    DATASET_REF_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    dataset_ref: _dataset_pb2.DatasetRef
    dataset: _dataset_pb2.Dataset
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    def __init__(self, dataset_ref: _Optional[_Union[_dataset_pb2.DatasetRef, _Mapping]] = ..., dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("dataset", "force")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.DatasetRef
    force: bool
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.DatasetRef, _Mapping]] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteDatasetResponse(_message.Message):
    __slots__ = ("deleted_versions", "deleted_frames")
    DELETED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    DELETED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    deleted_versions: int
    deleted_frames: int
    def __init__(self, deleted_versions: _Optional[int] = ..., deleted_frames: _Optional[int] = ...) -> None: ...

class CreateVersionRequest(_message.Message):
    __slots__ = ("dataset", "parent", "version")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.DatasetRef
    parent: _dataset_pb2.VersionRef
    version: _dataset_pb2.Version
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.DatasetRef, _Mapping]] = ..., parent: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ..., version: _Optional[_Union[_dataset_pb2.Version, _Mapping]] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.VersionRef
    def __init__(self, version: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ("dataset", "page_size", "page_token")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.DatasetRef
    page_size: int
    page_token: str
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.DatasetRef, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.Version]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[_dataset_pb2.Version, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateVersionRequest(_message.Message):
    __slots__ = ("version_ref", "version", "update_mask", "etag")
    VERSION_REF_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    version_ref: _dataset_pb2.VersionRef
    version: _dataset_pb2.Version
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    def __init__(self, version_ref: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ..., version: _Optional[_Union[_dataset_pb2.Version, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class PublishVersionRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.VersionRef
    def __init__(self, version: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ...) -> None: ...

class SnapshotVersionRequest(_message.Message):
    __slots__ = ("version", "snapshot_name", "description")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.VersionRef
    snapshot_name: str
    description: str
    def __init__(self, version: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ..., snapshot_name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class SnapshotVersionResponse(_message.Message):
    __slots__ = ("snapshot", "draft")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    snapshot: _dataset_pb2.Version
    draft: _dataset_pb2.Version
    def __init__(self, snapshot: _Optional[_Union[_dataset_pb2.Version, _Mapping]] = ..., draft: _Optional[_Union[_dataset_pb2.Version, _Mapping]] = ...) -> None: ...

class DeleteVersionRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.VersionRef
    def __init__(self, version: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ...) -> None: ...

class DeleteVersionResponse(_message.Message):
    __slots__ = ("deleted_frames",)
    DELETED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    deleted_frames: int
    def __init__(self, deleted_frames: _Optional[int] = ...) -> None: ...

class DiffVersionsRequest(_message.Message):
    __slots__ = ("base", "target", "include_frames", "resume_cursor", "max_changes")
    BASE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FRAMES_FIELD_NUMBER: _ClassVar[int]
    RESUME_CURSOR_FIELD_NUMBER: _ClassVar[int]
    MAX_CHANGES_FIELD_NUMBER: _ClassVar[int]
    base: _dataset_pb2.VersionRef
    target: _dataset_pb2.VersionRef
    include_frames: bool
    resume_cursor: str
    max_changes: int
    def __init__(self, base: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ..., target: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ..., include_frames: _Optional[bool] = ..., resume_cursor: _Optional[str] = ..., max_changes: _Optional[int] = ...) -> None: ...

class DiffVersionsResponse(_message.Message):
    __slots__ = ("changes", "cursor")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[FrameChange]
    cursor: str
    def __init__(self, changes: _Optional[_Iterable[_Union[FrameChange, _Mapping]]] = ..., cursor: _Optional[str] = ...) -> None: ...

class FrameChange(_message.Message):
    __slots__ = ("frame_id", "kind", "base", "target")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[FrameChange.Kind]
        KIND_ADDED: _ClassVar[FrameChange.Kind]
        KIND_CHANGED: _ClassVar[FrameChange.Kind]
        KIND_REMOVED: _ClassVar[FrameChange.Kind]
    KIND_UNSPECIFIED: FrameChange.Kind
    KIND_ADDED: FrameChange.Kind
    KIND_CHANGED: FrameChange.Kind
    KIND_REMOVED: FrameChange.Kind
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    frame_id: str
    kind: FrameChange.Kind
    base: _frame_pb2.Frame
    target: _frame_pb2.Frame
    def __init__(self, frame_id: _Optional[str] = ..., kind: _Optional[_Union[FrameChange.Kind, str]] = ..., base: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ..., target: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ...) -> None: ...

class MergeVersionsRequest(_message.Message):
    __slots__ = ("ours", "theirs", "strategy", "version")
    OURS_FIELD_NUMBER: _ClassVar[int]
    THEIRS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ours: _dataset_pb2.VersionRef
    theirs: _dataset_pb2.VersionRef
    strategy: MergeStrategy
    version: _dataset_pb2.Version
    def __init__(self, ours: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ..., theirs: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ..., strategy: _Optional[_Union[MergeStrategy, str]] = ..., version: _Optional[_Union[_dataset_pb2.Version, _Mapping]] = ...) -> None: ...

class MergeVersionsResponse(_message.Message):
    __slots__ = ("version", "conflicts", "conflict_count", "applied_changes", "merge_base_id")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    CONFLICT_COUNT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_CHANGES_FIELD_NUMBER: _ClassVar[int]
    MERGE_BASE_ID_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.Version
    conflicts: _containers.RepeatedCompositeFieldContainer[MergeConflict]
    conflict_count: int
    applied_changes: int
    merge_base_id: str
    def __init__(self, version: _Optional[_Union[_dataset_pb2.Version, _Mapping]] = ..., conflicts: _Optional[_Iterable[_Union[MergeConflict, _Mapping]]] = ..., conflict_count: _Optional[int] = ..., applied_changes: _Optional[int] = ..., merge_base_id: _Optional[str] = ...) -> None: ...

class MergeConflict(_message.Message):
    __slots__ = ("frame_id", "ours", "theirs")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    OURS_FIELD_NUMBER: _ClassVar[int]
    THEIRS_FIELD_NUMBER: _ClassVar[int]
    frame_id: str
    ours: FrameChange.Kind
    theirs: FrameChange.Kind
    def __init__(self, frame_id: _Optional[str] = ..., ours: _Optional[_Union[FrameChange.Kind, str]] = ..., theirs: _Optional[_Union[FrameChange.Kind, str]] = ...) -> None: ...

class GetVersionStatisticsRequest(_message.Message):
    __slots__ = ("version", "meta_keys")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    META_KEYS_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.VersionRef
    meta_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ..., meta_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class GetFrameRequest(_message.Message):
    __slots__ = ("version", "frame_id")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.VersionRef
    frame_id: str
    def __init__(self, version: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ..., frame_id: _Optional[str] = ...) -> None: ...

class UpdateFrameRequest(_message.Message):
    __slots__ = ("version", "frame", "update_mask", "etag")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.VersionRef
    frame: _frame_pb2.Frame
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    def __init__(self, version: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ..., frame: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class DeleteFramesRequest(_message.Message):
    __slots__ = ("version", "frame_ids")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FRAME_IDS_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.VersionRef
    frame_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ..., frame_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteFramesResponse(_message.Message):
    __slots__ = ("statuses", "deleted_count")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedCompositeFieldContainer[FrameStatus]
    deleted_count: int
    def __init__(self, statuses: _Optional[_Iterable[_Union[FrameStatus, _Mapping]]] = ..., deleted_count: _Optional[int] = ...) -> None: ...

class FrameStatus(_message.Message):
    __slots__ = ("frame_id", "status")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    frame_id: str
    status: _status_pb2.Status
    def __init__(self, frame_id: _Optional[str] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class CountFramesRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.VersionRef
    def __init__(self, version: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ...) -> None: ...

class CountFramesResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ListFramesRequest(_message.Message):
    __slots__ = ("version", "page_size", "page_token")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.VersionRef
    page_size: int
    page_token: str
    def __init__(self, version: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFramesResponse(_message.Message):
    __slots__ = ("frames", "next_page_token")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[_frame_pb2.Frame]
    next_page_token: str
    def __init__(self, frames: _Optional[_Iterable[_Union[_frame_pb2.Frame, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UploadFramesRequest(_message.Message):
    __slots__ = ("options", "items")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    options: UploadOptions
    items: _containers.RepeatedCompositeFieldContainer[UploadItem]
    def __init__(self, options: _Optional[_Union[UploadOptions, _Mapping]] = ..., items: _Optional[_Iterable[_Union[UploadItem, _Mapping]]] = ...) -> None: ...

class UploadOptions(_message.Message):
    __slots__ = ("version", "upload_retries")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_RETRIES_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.VersionRef
    upload_retries: int
    def __init__(self, version: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ..., upload_retries: _Optional[int] = ...) -> None: ...

class UploadItem(_message.Message):
    __slots__ = ("client_key", "frame")
    CLIENT_KEY_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    client_key: str
    frame: _frame_pb2.Frame
    def __init__(self, client_key: _Optional[str] = ..., frame: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ...) -> None: ...

class UploadFramesResponse(_message.Message):
    __slots__ = ("started", "results", "summary")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    started: UploadStarted
    results: UploadResults
    summary: UploadSummary
    def __init__(self, started: _Optional[_Union[UploadStarted, _Mapping]] = ..., results: _Optional[_Union[UploadResults, _Mapping]] = ..., summary: _Optional[_Union[UploadSummary, _Mapping]] = ...) -> None: ...

class UploadStarted(_message.Message):
    __slots__ = ("version", "max_unacknowledged_frames")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_UNACKNOWLEDGED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.Version
    max_unacknowledged_frames: int
    def __init__(self, version: _Optional[_Union[_dataset_pb2.Version, _Mapping]] = ..., max_unacknowledged_frames: _Optional[int] = ...) -> None: ...

class UploadResults(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[FrameResult]
    def __init__(self, results: _Optional[_Iterable[_Union[FrameResult, _Mapping]]] = ...) -> None: ...

class FrameResult(_message.Message):
    __slots__ = ("index", "client_key", "frame_id", "outcome", "attempts", "error")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[FrameResult.Outcome]
        OUTCOME_CREATED: _ClassVar[FrameResult.Outcome]
        OUTCOME_UPDATED: _ClassVar[FrameResult.Outcome]
        OUTCOME_FAILED: _ClassVar[FrameResult.Outcome]
        OUTCOME_UNCHANGED: _ClassVar[FrameResult.Outcome]
    OUTCOME_UNSPECIFIED: FrameResult.Outcome
    OUTCOME_CREATED: FrameResult.Outcome
    OUTCOME_UPDATED: FrameResult.Outcome
    OUTCOME_FAILED: FrameResult.Outcome
    OUTCOME_UNCHANGED: FrameResult.Outcome
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CLIENT_KEY_FIELD_NUMBER: _ClassVar[int]
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    client_key: str
    frame_id: str
    outcome: FrameResult.Outcome
    attempts: int
    error: _status_pb2.Status
    def __init__(self, index: _Optional[int] = ..., client_key: _Optional[str] = ..., frame_id: _Optional[str] = ..., outcome: _Optional[_Union[FrameResult.Outcome, str]] = ..., attempts: _Optional[int] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class UploadSummary(_message.Message):
    __slots__ = ("created", "updated", "failed", "failed_frame_ids", "failed_frame_ids_truncated", "unchanged")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FRAME_IDS_FIELD_NUMBER: _ClassVar[int]
    FAILED_FRAME_IDS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    created: int
    updated: int
    failed: int
    failed_frame_ids: _containers.RepeatedScalarFieldContainer[str]
    failed_frame_ids_truncated: bool
    unchanged: int
    def __init__(self, created: _Optional[int] = ..., updated: _Optional[int] = ..., failed: _Optional[int] = ..., failed_frame_ids: _Optional[_Iterable[str]] = ..., failed_frame_ids_truncated: _Optional[bool] = ..., unchanged: _Optional[int] = ...) -> None: ...

class IterateFramesRequest(_message.Message):
    __slots__ = ("view", "shard_index", "shard_count", "resume_cursor", "frames_per_message", "frame_cursors", "resume_offset")
    VIEW_FIELD_NUMBER: _ClassVar[int]
    SHARD_INDEX_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    RESUME_CURSOR_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FRAME_CURSORS_FIELD_NUMBER: _ClassVar[int]
    RESUME_OFFSET_FIELD_NUMBER: _ClassVar[int]
    view: _view_pb2.View
    shard_index: int
    shard_count: int
    resume_cursor: str
    frames_per_message: int
    frame_cursors: bool
    resume_offset: int
    def __init__(self, view: _Optional[_Union[_view_pb2.View, _Mapping]] = ..., shard_index: _Optional[int] = ..., shard_count: _Optional[int] = ..., resume_cursor: _Optional[str] = ..., frames_per_message: _Optional[int] = ..., frame_cursors: _Optional[bool] = ..., resume_offset: _Optional[int] = ...) -> None: ...

class IterateFramesResponse(_message.Message):
    __slots__ = ("frames", "selection_indexes", "cursor", "frame_cursors", "start_cursor")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    SELECTION_INDEXES_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    FRAME_CURSORS_FIELD_NUMBER: _ClassVar[int]
    START_CURSOR_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[_frame_pb2.Frame]
    selection_indexes: _containers.RepeatedScalarFieldContainer[int]
    cursor: str
    frame_cursors: _containers.RepeatedScalarFieldContainer[str]
    start_cursor: str
    def __init__(self, frames: _Optional[_Iterable[_Union[_frame_pb2.Frame, _Mapping]]] = ..., selection_indexes: _Optional[_Iterable[int]] = ..., cursor: _Optional[str] = ..., frame_cursors: _Optional[_Iterable[str]] = ..., start_cursor: _Optional[str] = ...) -> None: ...

class CountViewFramesRequest(_message.Message):
    __slots__ = ("view",)
    VIEW_FIELD_NUMBER: _ClassVar[int]
    view: _view_pb2.View
    def __init__(self, view: _Optional[_Union[_view_pb2.View, _Mapping]] = ...) -> None: ...

class CountViewFramesResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ListViewFramesRequest(_message.Message):
    __slots__ = ("view", "page_size", "page_token")
    VIEW_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    view: _view_pb2.View
    page_size: int
    page_token: str
    def __init__(self, view: _Optional[_Union[_view_pb2.View, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListViewFramesResponse(_message.Message):
    __slots__ = ("frames", "next_page_token")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[_frame_pb2.Frame]
    next_page_token: str
    def __init__(self, frames: _Optional[_Iterable[_Union[_frame_pb2.Frame, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListReferencedBlobsRequest(_message.Message):
    __slots__ = ("batch_size",)
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    batch_size: int
    def __init__(self, batch_size: _Optional[int] = ...) -> None: ...

class ListReferencedBlobsResponse(_message.Message):
    __slots__ = ("digests", "references_seen")
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_SEEN_FIELD_NUMBER: _ClassVar[int]
    digests: _containers.RepeatedCompositeFieldContainer[_blob_pb2.Digest]
    references_seen: int
    def __init__(self, digests: _Optional[_Iterable[_Union[_blob_pb2.Digest, _Mapping]]] = ..., references_seen: _Optional[int] = ...) -> None: ...

class ListContextsRequest(_message.Message):
    __slots__ = ("selection", "page_size", "page_token", "projection")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_FIELD_NUMBER: _ClassVar[int]
    selection: _view_pb2.ViewSelection
    page_size: int
    page_token: str
    projection: _field_mask_pb2.FieldMask
    def __init__(self, selection: _Optional[_Union[_view_pb2.ViewSelection, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., projection: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class ListContextsResponse(_message.Message):
    __slots__ = ("contexts", "next_page_token")
    CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    contexts: _containers.RepeatedCompositeFieldContainer[FrameContext]
    next_page_token: str
    def __init__(self, contexts: _Optional[_Iterable[_Union[FrameContext, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class FrameContext(_message.Message):
    __slots__ = ("context_id", "frame_count", "first_frame")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_FRAME_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    frame_count: int
    first_frame: _frame_pb2.Frame
    def __init__(self, context_id: _Optional[str] = ..., frame_count: _Optional[int] = ..., first_frame: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ...) -> None: ...

class ListContextFramesRequest(_message.Message):
    __slots__ = ("selection", "context_id", "page_size", "page_token", "projection", "descending", "start_after_frame_id")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    selection: _view_pb2.ViewSelection
    context_id: str
    page_size: int
    page_token: str
    projection: _field_mask_pb2.FieldMask
    descending: bool
    start_after_frame_id: str
    def __init__(self, selection: _Optional[_Union[_view_pb2.ViewSelection, _Mapping]] = ..., context_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., projection: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., descending: _Optional[bool] = ..., start_after_frame_id: _Optional[str] = ...) -> None: ...

class ListContextFramesResponse(_message.Message):
    __slots__ = ("frames", "next_page_token")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[_frame_pb2.Frame]
    next_page_token: str
    def __init__(self, frames: _Optional[_Iterable[_Union[_frame_pb2.Frame, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
