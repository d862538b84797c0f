import datetime

from framevault.v1 import metadata_pb2 as _metadata_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VersionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERSION_STATUS_UNSPECIFIED: _ClassVar[VersionStatus]
    VERSION_STATUS_DRAFT: _ClassVar[VersionStatus]
    VERSION_STATUS_PUBLISHED: _ClassVar[VersionStatus]
VERSION_STATUS_UNSPECIFIED: VersionStatus
VERSION_STATUS_DRAFT: VersionStatus
VERSION_STATUS_PUBLISHED: VersionStatus

class Dataset(_message.Message):
    __slots__ = ("id", "name", "description", "tags", "meta", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    meta: _metadata_pb2.Metadata
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., meta: _Optional[_Union[_metadata_pb2.Metadata, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class Version(_message.Message):
    __slots__ = ("id", "dataset_id", "name", "description", "status", "parent_ids", "meta", "mask_labels", "create_time", "update_time", "publish_time", "frame_count", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PARENT_IDS_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    MASK_LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TIME_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    dataset_id: str
    name: str
    description: str
    status: VersionStatus
    parent_ids: _containers.RepeatedScalarFieldContainer[str]
    meta: _metadata_pb2.Metadata
    mask_labels: _containers.RepeatedCompositeFieldContainer[MaskLabel]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    publish_time: _timestamp_pb2.Timestamp
    frame_count: int
    etag: str
    def __init__(self, id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., status: _Optional[_Union[VersionStatus, str]] = ..., parent_ids: _Optional[_Iterable[str]] = ..., meta: _Optional[_Union[_metadata_pb2.Metadata, _Mapping]] = ..., mask_labels: _Optional[_Iterable[_Union[MaskLabel, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., publish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., frame_count: _Optional[int] = ..., etag: _Optional[str] = ...) -> None: ...

class MaskLabel(_message.Message):
    __slots__ = ("value", "labels")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedScalarFieldContainer[int]
    labels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, value: _Optional[_Iterable[int]] = ..., labels: _Optional[_Iterable[str]] = ...) -> None: ...

class VersionStatistics(_message.Message):
    __slots__ = ("version_id", "frame_count", "annotated_frame_count", "roi_count", "roi_label_counts", "meta_distributions")
    class RoiLabelCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    ANNOTATED_FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    ROI_COUNT_FIELD_NUMBER: _ClassVar[int]
    ROI_LABEL_COUNTS_FIELD_NUMBER: _ClassVar[int]
    META_DISTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    version_id: str
    frame_count: int
    annotated_frame_count: int
    roi_count: int
    roi_label_counts: _containers.ScalarMap[str, int]
    meta_distributions: _containers.RepeatedCompositeFieldContainer[MetadataDistribution]
    def __init__(self, version_id: _Optional[str] = ..., frame_count: _Optional[int] = ..., annotated_frame_count: _Optional[int] = ..., roi_count: _Optional[int] = ..., roi_label_counts: _Optional[_Mapping[str, int]] = ..., meta_distributions: _Optional[_Iterable[_Union[MetadataDistribution, _Mapping]]] = ...) -> None: ...

class MetadataDistribution(_message.Message):
    __slots__ = ("key", "values", "missing_count")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    MISSING_COUNT_FIELD_NUMBER: _ClassVar[int]
    key: str
    values: _containers.RepeatedCompositeFieldContainer[MetadataValueCount]
    missing_count: int
    def __init__(self, key: _Optional[str] = ..., values: _Optional[_Iterable[_Union[MetadataValueCount, _Mapping]]] = ..., missing_count: _Optional[int] = ...) -> None: ...

class MetadataValueCount(_message.Message):
    __slots__ = ("value", "count")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    value: _metadata_pb2.MetadataValue
    count: int
    def __init__(self, value: _Optional[_Union[_metadata_pb2.MetadataValue, _Mapping]] = ..., count: _Optional[int] = ...) -> None: ...

class DatasetRef(_message.Message):
    __slots__ = ("id", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class VersionRef(_message.Message):
    __slots__ = ("dataset", "id", "name")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    dataset: DatasetRef
    id: str
    name: str
    def __init__(self, dataset: _Optional[_Union[DatasetRef, _Mapping]] = ..., id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...
