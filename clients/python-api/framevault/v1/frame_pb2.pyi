from framevault.v1 import metadata_pb2 as _metadata_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Frame(_message.Message):
    __slots__ = ("id", "context_id", "timestamp", "sources", "rois", "meta", "blob", "num_frames", "dataset_id", "version_id", "saved_in_version", "saved", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    ROIS_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    SAVED_IN_VERSION_FIELD_NUMBER: _ClassVar[int]
    SAVED_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    context_id: str
    timestamp: int
    sources: _containers.RepeatedCompositeFieldContainer[Source]
    rois: _containers.RepeatedCompositeFieldContainer[Roi]
    meta: _metadata_pb2.Metadata
    blob: bytes
    num_frames: int
    dataset_id: str
    version_id: str
    saved_in_version: str
    saved: int
    etag: str
    def __init__(self, id: _Optional[str] = ..., context_id: _Optional[str] = ..., timestamp: _Optional[int] = ..., sources: _Optional[_Iterable[_Union[Source, _Mapping]]] = ..., rois: _Optional[_Iterable[_Union[Roi, _Mapping]]] = ..., meta: _Optional[_Union[_metadata_pb2.Metadata, _Mapping]] = ..., blob: _Optional[bytes] = ..., num_frames: _Optional[int] = ..., dataset_id: _Optional[str] = ..., version_id: _Optional[str] = ..., saved_in_version: _Optional[str] = ..., saved: _Optional[int] = ..., etag: _Optional[str] = ...) -> None: ...

class Source(_message.Message):
    __slots__ = ("id", "uri", "content_type", "width", "height", "timestamp", "meta", "preview", "masks", "inline_content")
    ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    MASKS_FIELD_NUMBER: _ClassVar[int]
    INLINE_CONTENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    uri: str
    content_type: str
    width: int
    height: int
    timestamp: int
    meta: _metadata_pb2.Metadata
    preview: Preview
    masks: _containers.RepeatedCompositeFieldContainer[Mask]
    inline_content: bytes
    def __init__(self, id: _Optional[str] = ..., uri: _Optional[str] = ..., content_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., timestamp: _Optional[int] = ..., meta: _Optional[_Union[_metadata_pb2.Metadata, _Mapping]] = ..., preview: _Optional[_Union[Preview, _Mapping]] = ..., masks: _Optional[_Iterable[_Union[Mask, _Mapping]]] = ..., inline_content: _Optional[bytes] = ...) -> None: ...

class Preview(_message.Message):
    __slots__ = ("uri", "content_type", "timestamp", "inline_content")
    URI_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    INLINE_CONTENT_FIELD_NUMBER: _ClassVar[int]
    uri: str
    content_type: str
    timestamp: int
    inline_content: bytes
    def __init__(self, uri: _Optional[str] = ..., content_type: _Optional[str] = ..., timestamp: _Optional[int] = ..., inline_content: _Optional[bytes] = ...) -> None: ...

class Mask(_message.Message):
    __slots__ = ("id", "uri", "content_type", "timestamp", "inline_content")
    ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    INLINE_CONTENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    uri: str
    content_type: str
    timestamp: int
    inline_content: bytes
    def __init__(self, id: _Optional[str] = ..., uri: _Optional[str] = ..., content_type: _Optional[str] = ..., timestamp: _Optional[int] = ..., inline_content: _Optional[bytes] = ...) -> None: ...

class Roi(_message.Message):
    __slots__ = ("id", "labels", "confidence", "polygon", "box", "ellipse", "keypoints", "keypoints_3d", "box_3d", "sources", "meta", "mask", "label_ids")
    ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    POLYGON_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    ELLIPSE_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_3D_FIELD_NUMBER: _ClassVar[int]
    BOX_3D_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    LABEL_IDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    confidence: float
    polygon: Polygon2D
    box: Box2D
    ellipse: Ellipse2D
    keypoints: Keypoints2D
    keypoints_3d: Keypoints3D
    box_3d: Box3D
    sources: _containers.RepeatedScalarFieldContainer[str]
    meta: _metadata_pb2.Metadata
    mask: RoiMaskLink
    label_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, id: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., confidence: _Optional[float] = ..., polygon: _Optional[_Union[Polygon2D, _Mapping]] = ..., box: _Optional[_Union[Box2D, _Mapping]] = ..., ellipse: _Optional[_Union[Ellipse2D, _Mapping]] = ..., keypoints: _Optional[_Union[Keypoints2D, _Mapping]] = ..., keypoints_3d: _Optional[_Union[Keypoints3D, _Mapping]] = ..., box_3d: _Optional[_Union[Box3D, _Mapping]] = ..., sources: _Optional[_Iterable[str]] = ..., meta: _Optional[_Union[_metadata_pb2.Metadata, _Mapping]] = ..., mask: _Optional[_Union[RoiMaskLink, _Mapping]] = ..., label_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class Polygon2D(_message.Message):
    __slots__ = ("parts",)
    PARTS_FIELD_NUMBER: _ClassVar[int]
    parts: _containers.RepeatedCompositeFieldContainer[PolygonPart]
    def __init__(self, parts: _Optional[_Iterable[_Union[PolygonPart, _Mapping]]] = ...) -> None: ...

class PolygonPart(_message.Message):
    __slots__ = ("xy",)
    XY_FIELD_NUMBER: _ClassVar[int]
    xy: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, xy: _Optional[_Iterable[float]] = ...) -> None: ...

class Box2D(_message.Message):
    __slots__ = ("x", "y", "w", "h")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    W_FIELD_NUMBER: _ClassVar[int]
    H_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    w: float
    h: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., w: _Optional[float] = ..., h: _Optional[float] = ...) -> None: ...

class Ellipse2D(_message.Message):
    __slots__ = ("cx", "cy", "rx", "ry", "theta")
    CX_FIELD_NUMBER: _ClassVar[int]
    CY_FIELD_NUMBER: _ClassVar[int]
    RX_FIELD_NUMBER: _ClassVar[int]
    RY_FIELD_NUMBER: _ClassVar[int]
    THETA_FIELD_NUMBER: _ClassVar[int]
    cx: float
    cy: float
    rx: float
    ry: float
    theta: float
    def __init__(self, cx: _Optional[float] = ..., cy: _Optional[float] = ..., rx: _Optional[float] = ..., ry: _Optional[float] = ..., theta: _Optional[float] = ...) -> None: ...

class Keypoints2D(_message.Message):
    __slots__ = ("xy", "visibility")
    XY_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    xy: _containers.RepeatedScalarFieldContainer[float]
    visibility: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, xy: _Optional[_Iterable[float]] = ..., visibility: _Optional[_Iterable[int]] = ...) -> None: ...

class Keypoints3D(_message.Message):
    __slots__ = ("xyz",)
    XYZ_FIELD_NUMBER: _ClassVar[int]
    xyz: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, xyz: _Optional[_Iterable[float]] = ...) -> None: ...

class Box3D(_message.Message):
    __slots__ = ("x", "y", "z", "size_x", "size_y", "size_z", "qw", "qx", "qy", "qz")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    SIZE_X_FIELD_NUMBER: _ClassVar[int]
    SIZE_Y_FIELD_NUMBER: _ClassVar[int]
    SIZE_Z_FIELD_NUMBER: _ClassVar[int]
    QW_FIELD_NUMBER: _ClassVar[int]
    QX_FIELD_NUMBER: _ClassVar[int]
    QY_FIELD_NUMBER: _ClassVar[int]
    QZ_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    z: float
    size_x: float
    size_y: float
    size_z: float
    qw: float
    qx: float
    qy: float
    qz: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., z: _Optional[float] = ..., size_x: _Optional[float] = ..., size_y: _Optional[float] = ..., size_z: _Optional[float] = ..., qw: _Optional[float] = ..., qx: _Optional[float] = ..., qy: _Optional[float] = ..., qz: _Optional[float] = ...) -> None: ...

class RoiMaskLink(_message.Message):
    __slots__ = ("id", "value")
    ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    id: str
    value: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, id: _Optional[str] = ..., value: _Optional[_Iterable[int]] = ...) -> None: ...
