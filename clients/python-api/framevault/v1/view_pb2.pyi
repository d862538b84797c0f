from framevault.v1 import dataset_pb2 as _dataset_pb2
from framevault.v1 import metadata_pb2 as _metadata_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IterationOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ITERATION_ORDER_UNSPECIFIED: _ClassVar[IterationOrder]
    ITERATION_ORDER_SEQUENTIAL: _ClassVar[IterationOrder]
    ITERATION_ORDER_RANDOM: _ClassVar[IterationOrder]
    ITERATION_ORDER_METADATA: _ClassVar[IterationOrder]
ITERATION_ORDER_UNSPECIFIED: IterationOrder
ITERATION_ORDER_SEQUENTIAL: IterationOrder
ITERATION_ORDER_RANDOM: IterationOrder
ITERATION_ORDER_METADATA: IterationOrder

class View(_message.Message):
    __slots__ = ("selections", "order", "random_seed", "infinite", "max_frames", "projection", "label_enumeration", "metadata_order")
    class LabelEnumerationEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SELECTIONS_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    RANDOM_SEED_FIELD_NUMBER: _ClassVar[int]
    INFINITE_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMES_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_FIELD_NUMBER: _ClassVar[int]
    LABEL_ENUMERATION_FIELD_NUMBER: _ClassVar[int]
    METADATA_ORDER_FIELD_NUMBER: _ClassVar[int]
    selections: _containers.RepeatedCompositeFieldContainer[ViewSelection]
    order: IterationOrder
    random_seed: int
    infinite: bool
    max_frames: int
    projection: _field_mask_pb2.FieldMask
    label_enumeration: _containers.ScalarMap[str, int]
    metadata_order: MetadataOrder
    def __init__(self, selections: _Optional[_Iterable[_Union[ViewSelection, _Mapping]]] = ..., order: _Optional[_Union[IterationOrder, str]] = ..., random_seed: _Optional[int] = ..., infinite: _Optional[bool] = ..., max_frames: _Optional[int] = ..., projection: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., label_enumeration: _Optional[_Mapping[str, int]] = ..., metadata_order: _Optional[_Union[MetadataOrder, _Mapping]] = ...) -> None: ...

class MetadataOrder(_message.Message):
    __slots__ = ("key", "descending")
    KEY_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    key: str
    descending: bool
    def __init__(self, key: _Optional[str] = ..., descending: _Optional[bool] = ...) -> None: ...

class ViewSelection(_message.Message):
    __slots__ = ("version", "rules", "query", "weight", "label_mapping")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LABEL_MAPPING_FIELD_NUMBER: _ClassVar[int]
    version: _dataset_pb2.VersionRef
    rules: _containers.RepeatedCompositeFieldContainer[FilterRule]
    query: str
    weight: float
    label_mapping: _containers.RepeatedCompositeFieldContainer[LabelMappingRule]
    def __init__(self, version: _Optional[_Union[_dataset_pb2.VersionRef, _Mapping]] = ..., rules: _Optional[_Iterable[_Union[FilterRule, _Mapping]]] = ..., query: _Optional[str] = ..., weight: _Optional[float] = ..., label_mapping: _Optional[_Iterable[_Union[LabelMappingRule, _Mapping]]] = ...) -> None: ...

class FilterRule(_message.Message):
    __slots__ = ("roi", "meta", "source")
    ROI_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    roi: RoiRule
    meta: MetadataRule
    source: SourceRule
    def __init__(self, roi: _Optional[_Union[RoiRule, _Mapping]] = ..., meta: _Optional[_Union[MetadataRule, _Mapping]] = ..., source: _Optional[_Union[SourceRule, _Mapping]] = ...) -> None: ...

class RoiRule(_message.Message):
    __slots__ = ("labels", "min_confidence", "max_confidence", "min_count", "max_count")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    MIN_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MAX_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MIN_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedScalarFieldContainer[str]
    min_confidence: float
    max_confidence: float
    min_count: int
    max_count: int
    def __init__(self, labels: _Optional[_Iterable[str]] = ..., min_confidence: _Optional[float] = ..., max_confidence: _Optional[float] = ..., min_count: _Optional[int] = ..., max_count: _Optional[int] = ...) -> None: ...

class MetadataRule(_message.Message):
    __slots__ = ("key", "equals", "range", "exists")
    KEY_FIELD_NUMBER: _ClassVar[int]
    EQUALS_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    key: str
    equals: _metadata_pb2.MetadataValue
    range: ValueRange
    exists: bool
    def __init__(self, key: _Optional[str] = ..., equals: _Optional[_Union[_metadata_pb2.MetadataValue, _Mapping]] = ..., range: _Optional[_Union[ValueRange, _Mapping]] = ..., exists: _Optional[bool] = ...) -> None: ...

class ValueRange(_message.Message):
    __slots__ = ("min", "max", "min_exclusive", "max_exclusive")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    MIN_EXCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    MAX_EXCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    min: _metadata_pb2.MetadataValue
    max: _metadata_pb2.MetadataValue
    min_exclusive: bool
    max_exclusive: bool
    def __init__(self, min: _Optional[_Union[_metadata_pb2.MetadataValue, _Mapping]] = ..., max: _Optional[_Union[_metadata_pb2.MetadataValue, _Mapping]] = ..., min_exclusive: _Optional[bool] = ..., max_exclusive: _Optional[bool] = ...) -> None: ...

class SourceRule(_message.Message):
    __slots__ = ("width", "height", "content_type", "uri_prefix", "source_id")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    URI_PREFIX_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    width: IntRange
    height: IntRange
    content_type: str
    uri_prefix: str
    source_id: str
    def __init__(self, width: _Optional[_Union[IntRange, _Mapping]] = ..., height: _Optional[_Union[IntRange, _Mapping]] = ..., content_type: _Optional[str] = ..., uri_prefix: _Optional[str] = ..., source_id: _Optional[str] = ...) -> None: ...

class IntRange(_message.Message):
    __slots__ = ("min", "max")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    min: int
    max: int
    def __init__(self, min: _Optional[int] = ..., max: _Optional[int] = ...) -> None: ...

class LabelMappingRule(_message.Message):
    __slots__ = ("from_labels", "to_label")
    FROM_LABELS_FIELD_NUMBER: _ClassVar[int]
    TO_LABEL_FIELD_NUMBER: _ClassVar[int]
    from_labels: _containers.RepeatedScalarFieldContainer[str]
    to_label: str
    def __init__(self, from_labels: _Optional[_Iterable[str]] = ..., to_label: _Optional[str] = ...) -> None: ...
