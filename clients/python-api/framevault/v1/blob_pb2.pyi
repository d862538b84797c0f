import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PreviewFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PREVIEW_FORMAT_UNSPECIFIED: _ClassVar[PreviewFormat]
    PREVIEW_FORMAT_JPEG: _ClassVar[PreviewFormat]
    PREVIEW_FORMAT_PNG: _ClassVar[PreviewFormat]
    PREVIEW_FORMAT_WEBP: _ClassVar[PreviewFormat]
PREVIEW_FORMAT_UNSPECIFIED: PreviewFormat
PREVIEW_FORMAT_JPEG: PreviewFormat
PREVIEW_FORMAT_PNG: PreviewFormat
PREVIEW_FORMAT_WEBP: PreviewFormat

class Digest(_message.Message):
    __slots__ = ("hash", "size_bytes")
    HASH_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    hash: str
    size_bytes: int
    def __init__(self, hash: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class GetCapabilitiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCapabilitiesResponse(_message.Message):
    __slots__ = ("digest_function", "max_batch_total_size_bytes", "max_batch_blobs", "preferred_chunk_size_bytes", "max_chunk_size_bytes", "max_blob_size_bytes", "max_preview_edge", "max_download_url_seconds", "resumable_part_size_bytes", "direct_transfers", "direct_transfer_min_size_bytes")
    DIGEST_FUNCTION_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_TOTAL_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_BLOBS_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_CHUNK_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNK_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BLOB_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PREVIEW_EDGE_FIELD_NUMBER: _ClassVar[int]
    MAX_DOWNLOAD_URL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESUMABLE_PART_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DIRECT_TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    DIRECT_TRANSFER_MIN_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    digest_function: str
    max_batch_total_size_bytes: int
    max_batch_blobs: int
    preferred_chunk_size_bytes: int
    max_chunk_size_bytes: int
    max_blob_size_bytes: int
    max_preview_edge: int
    max_download_url_seconds: int
    resumable_part_size_bytes: int
    direct_transfers: bool
    direct_transfer_min_size_bytes: int
    def __init__(self, digest_function: _Optional[str] = ..., max_batch_total_size_bytes: _Optional[int] = ..., max_batch_blobs: _Optional[int] = ..., preferred_chunk_size_bytes: _Optional[int] = ..., max_chunk_size_bytes: _Optional[int] = ..., max_blob_size_bytes: _Optional[int] = ..., max_preview_edge: _Optional[int] = ..., max_download_url_seconds: _Optional[int] = ..., resumable_part_size_bytes: _Optional[int] = ..., direct_transfers: _Optional[bool] = ..., direct_transfer_min_size_bytes: _Optional[int] = ...) -> None: ...

class FindMissingBlobsRequest(_message.Message):
    __slots__ = ("digests",)
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    digests: _containers.RepeatedCompositeFieldContainer[Digest]
    def __init__(self, digests: _Optional[_Iterable[_Union[Digest, _Mapping]]] = ...) -> None: ...

class FindMissingBlobsResponse(_message.Message):
    __slots__ = ("missing_digests",)
    MISSING_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    missing_digests: _containers.RepeatedCompositeFieldContainer[Digest]
    def __init__(self, missing_digests: _Optional[_Iterable[_Union[Digest, _Mapping]]] = ...) -> None: ...

class BatchUpdateBlobsRequest(_message.Message):
    __slots__ = ("requests",)
    class Request(_message.Message):
        __slots__ = ("digest", "data")
        DIGEST_FIELD_NUMBER: _ClassVar[int]
        DATA_FIELD_NUMBER: _ClassVar[int]
        digest: Digest
        data: bytes
        def __init__(self, digest: _Optional[_Union[Digest, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[BatchUpdateBlobsRequest.Request]
    def __init__(self, requests: _Optional[_Iterable[_Union[BatchUpdateBlobsRequest.Request, _Mapping]]] = ...) -> None: ...

class BatchUpdateBlobsResponse(_message.Message):
    __slots__ = ("responses",)
    class Response(_message.Message):
        __slots__ = ("digest", "status")
        DIGEST_FIELD_NUMBER: _ClassVar[int]
        STATUS_FIELD_NUMBER: _ClassVar[int]
        digest: Digest
        status: _status_pb2.Status
        def __init__(self, digest: _Optional[_Union[Digest, _Mapping]] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[BatchUpdateBlobsResponse.Response]
    def __init__(self, responses: _Optional[_Iterable[_Union[BatchUpdateBlobsResponse.Response, _Mapping]]] = ...) -> None: ...

class BatchReadBlobsRequest(_message.Message):
    __slots__ = ("digests",)
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    digests: _containers.RepeatedCompositeFieldContainer[Digest]
    def __init__(self, digests: _Optional[_Iterable[_Union[Digest, _Mapping]]] = ...) -> None: ...

class BatchReadBlobsResponse(_message.Message):
    __slots__ = ("responses",)
    class Response(_message.Message):
        __slots__ = ("digest", "data", "status")
        DIGEST_FIELD_NUMBER: _ClassVar[int]
        DATA_FIELD_NUMBER: _ClassVar[int]
        STATUS_FIELD_NUMBER: _ClassVar[int]
        digest: Digest
        data: bytes
        status: _status_pb2.Status
        def __init__(self, digest: _Optional[_Union[Digest, _Mapping]] = ..., data: _Optional[bytes] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[BatchReadBlobsResponse.Response]
    def __init__(self, responses: _Optional[_Iterable[_Union[BatchReadBlobsResponse.Response, _Mapping]]] = ...) -> None: ...

class WriteBlobRequest(_message.Message):
    __slots__ = ("resource_name", "write_offset", "data", "finish_write")
    RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    WRITE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    FINISH_WRITE_FIELD_NUMBER: _ClassVar[int]
    resource_name: str
    write_offset: int
    data: bytes
    finish_write: bool
    def __init__(self, resource_name: _Optional[str] = ..., write_offset: _Optional[int] = ..., data: _Optional[bytes] = ..., finish_write: _Optional[bool] = ...) -> None: ...

class WriteBlobResponse(_message.Message):
    __slots__ = ("committed_size", "already_existed")
    COMMITTED_SIZE_FIELD_NUMBER: _ClassVar[int]
    ALREADY_EXISTED_FIELD_NUMBER: _ClassVar[int]
    committed_size: int
    already_existed: bool
    def __init__(self, committed_size: _Optional[int] = ..., already_existed: _Optional[bool] = ...) -> None: ...

class QueryWriteStatusRequest(_message.Message):
    __slots__ = ("resource_name",)
    RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    resource_name: str
    def __init__(self, resource_name: _Optional[str] = ...) -> None: ...

class QueryWriteStatusResponse(_message.Message):
    __slots__ = ("committed_size", "complete")
    COMMITTED_SIZE_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    committed_size: int
    complete: bool
    def __init__(self, committed_size: _Optional[int] = ..., complete: _Optional[bool] = ...) -> None: ...

class ReadBlobRequest(_message.Message):
    __slots__ = ("digest", "offset", "limit")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    digest: Digest
    offset: int
    limit: int
    def __init__(self, digest: _Optional[_Union[Digest, _Mapping]] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ReadBlobResponse(_message.Message):
    __slots__ = ("data", "offset")
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    offset: int
    def __init__(self, data: _Optional[bytes] = ..., offset: _Optional[int] = ...) -> None: ...

class GetDownloadUrlRequest(_message.Message):
    __slots__ = ("digest", "expires_in_seconds", "content_type")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    digest: Digest
    expires_in_seconds: int
    content_type: str
    def __init__(self, digest: _Optional[_Union[Digest, _Mapping]] = ..., expires_in_seconds: _Optional[int] = ..., content_type: _Optional[str] = ...) -> None: ...

class GetDownloadUrlResponse(_message.Message):
    __slots__ = ("url", "expire_time")
    URL_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    url: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, url: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreatePreviewRequest(_message.Message):
    __slots__ = ("digest", "max_edge", "format")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    MAX_EDGE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    digest: Digest
    max_edge: int
    format: PreviewFormat
    def __init__(self, digest: _Optional[_Union[Digest, _Mapping]] = ..., max_edge: _Optional[int] = ..., format: _Optional[_Union[PreviewFormat, str]] = ...) -> None: ...

class CreatePreviewResponse(_message.Message):
    __slots__ = ("digest", "content_type", "width", "height", "source_width", "source_height")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    SOURCE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    digest: Digest
    content_type: str
    width: int
    height: int
    source_width: int
    source_height: int
    def __init__(self, digest: _Optional[_Union[Digest, _Mapping]] = ..., content_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., source_width: _Optional[int] = ..., source_height: _Optional[int] = ...) -> None: ...

class DeleteBlobsRequest(_message.Message):
    __slots__ = ("digests",)
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    digests: _containers.RepeatedCompositeFieldContainer[Digest]
    def __init__(self, digests: _Optional[_Iterable[_Union[Digest, _Mapping]]] = ...) -> None: ...

class DeleteBlobsResponse(_message.Message):
    __slots__ = ("responses",)
    class Response(_message.Message):
        __slots__ = ("digest", "status")
        DIGEST_FIELD_NUMBER: _ClassVar[int]
        STATUS_FIELD_NUMBER: _ClassVar[int]
        digest: Digest
        status: _status_pb2.Status
        def __init__(self, digest: _Optional[_Union[Digest, _Mapping]] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[DeleteBlobsResponse.Response]
    def __init__(self, responses: _Optional[_Iterable[_Union[DeleteBlobsResponse.Response, _Mapping]]] = ...) -> None: ...

class CollectGarbageRequest(_message.Message):
    __slots__ = ("dry_run", "grace_period_seconds")
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    grace_period_seconds: int
    def __init__(self, dry_run: _Optional[bool] = ..., grace_period_seconds: _Optional[int] = ...) -> None: ...

class CollectGarbageResponse(_message.Message):
    __slots__ = ("digests", "totals")
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    digests: _containers.RepeatedCompositeFieldContainer[Digest]
    totals: GarbageTotals
    def __init__(self, digests: _Optional[_Iterable[_Union[Digest, _Mapping]]] = ..., totals: _Optional[_Union[GarbageTotals, _Mapping]] = ...) -> None: ...

class GarbageTotals(_message.Message):
    __slots__ = ("scanned_blobs", "referenced_blobs", "collected_blobs", "collected_bytes", "dry_run")
    SCANNED_BLOBS_FIELD_NUMBER: _ClassVar[int]
    REFERENCED_BLOBS_FIELD_NUMBER: _ClassVar[int]
    COLLECTED_BLOBS_FIELD_NUMBER: _ClassVar[int]
    COLLECTED_BYTES_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    scanned_blobs: int
    referenced_blobs: int
    collected_blobs: int
    collected_bytes: int
    dry_run: bool
    def __init__(self, scanned_blobs: _Optional[int] = ..., referenced_blobs: _Optional[int] = ..., collected_blobs: _Optional[int] = ..., collected_bytes: _Optional[int] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class StartDirectUploadRequest(_message.Message):
    __slots__ = ("resource_name", "part_numbers", "expires_in_seconds")
    RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    PART_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    resource_name: str
    part_numbers: _containers.RepeatedScalarFieldContainer[int]
    expires_in_seconds: int
    def __init__(self, resource_name: _Optional[str] = ..., part_numbers: _Optional[_Iterable[int]] = ..., expires_in_seconds: _Optional[int] = ...) -> None: ...

class DirectUploadPart(_message.Message):
    __slots__ = ("part_number", "offset", "size_bytes", "url")
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    part_number: int
    offset: int
    size_bytes: int
    url: str
    def __init__(self, part_number: _Optional[int] = ..., offset: _Optional[int] = ..., size_bytes: _Optional[int] = ..., url: _Optional[str] = ...) -> None: ...

class StartDirectUploadResponse(_message.Message):
    __slots__ = ("already_existed", "part_size_bytes", "part_count", "uploaded_part_numbers", "parts", "expire_time")
    ALREADY_EXISTED_FIELD_NUMBER: _ClassVar[int]
    PART_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    PART_COUNT_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_PART_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    already_existed: bool
    part_size_bytes: int
    part_count: int
    uploaded_part_numbers: _containers.RepeatedScalarFieldContainer[int]
    parts: _containers.RepeatedCompositeFieldContainer[DirectUploadPart]
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, already_existed: _Optional[bool] = ..., part_size_bytes: _Optional[int] = ..., part_count: _Optional[int] = ..., uploaded_part_numbers: _Optional[_Iterable[int]] = ..., parts: _Optional[_Iterable[_Union[DirectUploadPart, _Mapping]]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CompleteDirectUploadRequest(_message.Message):
    __slots__ = ("resource_name",)
    RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    resource_name: str
    def __init__(self, resource_name: _Optional[str] = ...) -> None: ...

class CompleteDirectUploadResponse(_message.Message):
    __slots__ = ("committed_size", "already_existed")
    COMMITTED_SIZE_FIELD_NUMBER: _ClassVar[int]
    ALREADY_EXISTED_FIELD_NUMBER: _ClassVar[int]
    committed_size: int
    already_existed: bool
    def __init__(self, committed_size: _Optional[int] = ..., already_existed: _Optional[bool] = ...) -> None: ...
