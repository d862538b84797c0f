"""Frames and annotations: ``SingleFrame``, ``FrameGroup``, ``Annotation``.

These are plain Python objects a user builds and reads; they convert to and
from the ``framevault.v1.Frame`` message of the contract:

- a :class:`SingleFrame` is a frame with one source; its ``metadata`` is the
  frame's metadata;
- a :class:`FrameGroup` is a frame with several sources (``group["left"]``,
  ``group["right"]``), each member a :class:`SingleFrame` whose ``metadata``
  becomes its source's metadata; annotations added on a member belong to that
  source, annotations added on the group are global (they name no source);
- an :class:`Annotation` with labels and no geometry is a frame label.

Sources may be URIs (``s3://``, ``https://``, ``blob:sha256/...``) or local
files (a path or ``file://``): ``DatasetVersion.add_frames`` uploads local
files to the blob service and sends ``blob:`` URIs instead.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from framevault.api.metadata_values import metadata_fields, metadata_to_dict
from framevault.sdk.geometry import (
    GEOMETRY_FIELDS,
    GEOMETRY_OF_ONEOF,
    Keypoint,
    Number,
    finite_numbers,
    geometry_fields,
    normalize_box3d,
    normalize_keypoints,
    normalize_keypoints_3d,
    normalize_polygon,
    read_geometry,
)
from framevault.sdk.runtime import sync_twin
from framevault.sdk.sources import guess_content_type, local_copy
from framevault.v1 import frame_pb2

DEFAULT_SOURCE_ID = "default"
DEFAULT_MASK_ID = "default"

PathOrUri: TypeAlias = "str | os.PathLike[str]"


def _uri(value: PathOrUri | None) -> str:
    return os.fspath(value) if value is not None else ""


# --- annotations ------------------------------------------------------------


@dataclass
class Annotation:
    """An ROI: labels, optional confidence, at most one geometry, metadata.

    Geometry fields (at most one is set):
        box2d_xywh: ``(x, y, w, h)`` in pixels.
        poly2d_xy: polygon parts, each a flat ``[x1, y1, x2, y2, ...]`` list.
        ellipse2d_xyrrt: ``(cx, cy, rx, ry, theta)``, theta in radians.
        keypoints: ``[(x, y), ...]`` or ``[(x, y, visibility), ...]`` (COCO visibility).
        keypoints_3d: ``[(x, y, z), ...]``.
        box3d: ``(x, y, z, size_x, size_y, size_z, qw, qx, qy, qz)``.

    ``sources`` names the sources of a frame group the ROI belongs to; empty
    means the whole frame. ``label_ids`` is filled by a ``DataView`` with
    ``set_labels``.
    """

    labels: list[str] = field(default_factory=list)
    confidence: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    box2d_xywh: tuple[float, float, float, float] | None = None
    poly2d_xy: list[list[float]] | None = None
    ellipse2d_xyrrt: tuple[float, float, float, float, float] | None = None
    keypoints: list[Keypoint] | None = None
    keypoints_3d: list[tuple[float, float, float]] | None = None
    box3d: tuple[float, ...] | None = None
    sources: list[str] = field(default_factory=list)
    label_ids: list[int] = field(default_factory=list)

    @property
    def geometry_kind(self) -> str | None:
        """Which geometry is set (``"box2d_xywh"``, ``"poly2d_xy"`` ...), or None for a frame label."""
        attributes = self.__dict__
        roi = attributes.get("_roi")
        if roi is not None and attributes.keys().isdisjoint(GEOMETRY_FIELDS):
            # Read from the service and no geometry read or assigned yet: the proto says which,
            # without converting its coordinates.
            return GEOMETRY_OF_ONEOF.get(roi.WhichOneof("geometry"))
        for name in GEOMETRY_FIELDS:
            if getattr(self, name) is not None:
                return name
        return None

    @property
    def is_frame_label(self) -> bool:
        """True when the annotation classifies the whole frame (labels, no geometry)."""
        return self.geometry_kind is None

    @property
    def label(self) -> str | None:
        """The first label, or None."""
        return self.labels[0] if self.labels else None


    def to_proto(self) -> frame_pb2.Roi:
        """The ``framevault.v1.Roi`` of this annotation."""
        return frame_pb2.Roi(**self._proto_fields())

    def _attributes(self) -> dict[str, Any]:
        """Every field of this annotation by name: a built annotation's own ``__dict__`` (read directly,
        since this runs for every annotation of every frame sent), or for one read from the service the
        fields converted from its proto on the way (those nobody has read yet, see ``__getattr__``)."""
        attributes = self.__dict__
        if "_roi" in attributes:
            return {name: getattr(self, name) for name in _ROI_ATTRIBUTES}
        return attributes

    def _proto_fields(self) -> dict[str, Any]:
        """The ``framevault.v1.Roi`` of this annotation as constructor arguments (nested dicts):
        frames build all their ROIs in the one constructor call of the frame. (The constructor copies
        the lists it is given.)"""
        attributes = self._attributes()
        fields: dict[str, Any] = {"labels": attributes["labels"]}
        sources = attributes["sources"]
        if sources:
            fields["sources"] = sources
        roi_id = attributes["id"]
        if roi_id:
            fields["id"] = roi_id
        confidence = attributes["confidence"]
        if confidence is not None:
            fields["confidence"] = confidence
        metadata = attributes["metadata"]
        if metadata:
            fields["meta"] = {"fields": metadata_fields(metadata)}
        for kind in GEOMETRY_FIELDS:
            value = attributes[kind]
            if value is not None:
                fields.update(geometry_fields(kind, value))
                break
        return fields

    @classmethod
    def from_proto(cls, roi: frame_pb2.Roi) -> Annotation:
        """The annotation of a ``framevault.v1.Roi``.

        The annotation keeps a copy of ``roi`` and converts each field the first time it is read;
        it equals, prints and pickles as one built from the same values.
        """
        own = frame_pb2.Roi()
        own.CopyFrom(roi)
        return cls._over(own)

    @classmethod
    def _over(cls, roi: frame_pb2.Roi) -> Annotation:
        """The annotation of ``roi``, which the annotation keeps and nobody changes afterwards."""
        out = cls.__new__(cls)
        out.__dict__["_roi"] = roi
        return out

    if not TYPE_CHECKING:  # type checkers keep flagging attributes that do not exist
        def __getattr__(self, name: str) -> Any:
            # Reached only for fields not set yet: those of an annotation read from the service that
            # nobody has read (or assigned) so far.
            roi = self.__dict__.get("_roi")
            if roi is None or name not in _ROI_ATTRIBUTES:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            attributes = self.__dict__
            if name in GEOMETRY_FIELDS:
                geometry = read_geometry(roi)
                read = dict.fromkeys(GEOMETRY_FIELDS)
                if geometry is not None:
                    read[geometry[0]] = geometry[1]
                _keep_assigned(attributes, read)
            elif name == "labels":
                attributes[name] = roi.labels[:]
            elif name == "confidence":
                attributes[name] = roi.confidence if roi.HasField("confidence") else None
            elif name == "metadata":
                attributes[name] = metadata_to_dict(roi.meta) if roi.HasField("meta") else {}
            elif name == "id":
                attributes[name] = roi.id or None
            elif name == "sources":
                attributes[name] = roi.sources[:]
            else:
                attributes[name] = roi.label_ids[:]
            return attributes[name]


_ROI_ATTRIBUTES = frozenset(f.name for f in dataclasses.fields(Annotation))
# Without class-level defaults every unset field of an annotation read from the service reaches
# __getattr__; __init__ keeps its defaults (they live in its signature).
for _name in _ROI_ATTRIBUTES:
    if _name in Annotation.__dict__:
        delattr(Annotation, _name)


def make_annotation(
    *,
    box2d_xywh: Sequence[Number] | None = None,
    poly2d_xy: Sequence[Any] | None = None,
    ellipse2d_xyrrt: Sequence[Number] | None = None,
    keypoints: Sequence[Any] | None = None,
    keypoints_3d: Sequence[Any] | None = None,
    box3d: Sequence[Number] | None = None,
    labels: str | Sequence[str] | None = None,
    confidence: float | None = None,
    metadata: dict[str, Any] | None = None,
    id: str | None = None,
    sources: Sequence[str] = (),
) -> Annotation:
    """Builds an :class:`Annotation` from the arguments of ``add_annotation``.

    Raises:
        ValueError: more than one geometry, a malformed geometry, or neither
            geometry nor labels.
    """
    given = [name for name, value in (
        ("box2d_xywh", box2d_xywh), ("poly2d_xy", poly2d_xy), ("ellipse2d_xyrrt", ellipse2d_xyrrt),
        ("keypoints", keypoints), ("keypoints_3d", keypoints_3d), ("box3d", box3d),
    ) if value is not None]
    if len(given) > 1:
        raise ValueError(f"an annotation has at most one geometry, got {', '.join(given)}")
    label_list = [labels] if isinstance(labels, str) else list(labels or [])
    if not given and not label_list:
        raise ValueError("an annotation needs a geometry or labels (labels alone make a frame label)")
    if confidence is not None and not 0.0 <= float(confidence) <= 1.0:
        raise ValueError(f"confidence must be within [0, 1], got {confidence}")
    annotation = Annotation(
        labels=label_list,
        confidence=float(confidence) if confidence is not None else None,
        metadata=dict(metadata or {}),
        id=id,
        sources=list(sources),
    )
    if box2d_xywh is not None:
        annotation.box2d_xywh = finite_numbers(box2d_xywh, 4, "box2d_xywh")  # type: ignore[assignment]
    elif poly2d_xy is not None:
        annotation.poly2d_xy = normalize_polygon(poly2d_xy)
    elif ellipse2d_xyrrt is not None:
        annotation.ellipse2d_xyrrt = finite_numbers(ellipse2d_xyrrt, 5, "ellipse2d_xyrrt")  # type: ignore[assignment]
    elif keypoints is not None:
        annotation.keypoints = normalize_keypoints(keypoints)
    elif keypoints_3d is not None:
        annotation.keypoints_3d = normalize_keypoints_3d(keypoints_3d)
    elif box3d is not None:
        annotation.box3d = normalize_box3d(box3d)
    return annotation



# --- frames -----------------------------------------------------------------


class _Annotated:
    """What single frames and frame groups share: a list of annotations."""

    annotations: list[Annotation]

    def add_annotation(
        self,
        box2d_xywh: Sequence[Number] | None = None,
        poly2d_xy: Sequence[Any] | None = None,
        ellipse2d_xyrrt: Sequence[Number] | None = None,
        keypoints: Sequence[Any] | None = None,
        labels: str | Sequence[str] | None = None,
        confidence: float | None = None,
        metadata: dict[str, Any] | None = None,
        id: str | None = None,
        *,
        keypoints_3d: Sequence[Any] | None = None,
        box3d: Sequence[Number] | None = None,
    ) -> Annotation:
        """Adds an annotation and returns it.

        Give at most one geometry: ``box2d_xywh=(x, y, w, h)``,
        ``poly2d_xy`` (a flat list, a list of points, or a list of parts for
        a multi-part polygon), ``ellipse2d_xyrrt=(cx, cy, rx, ry, theta)``,
        ``keypoints=[(x, y[, visibility]), ...]``, ``keypoints_3d`` or
        ``box3d``. ``labels`` alone (no geometry) adds a frame label.

        Raises:
            ValueError: a malformed geometry, or neither geometry nor labels.
        """
        annotation = make_annotation(
            box2d_xywh=box2d_xywh, poly2d_xy=poly2d_xy, ellipse2d_xyrrt=ellipse2d_xyrrt, keypoints=keypoints,
            keypoints_3d=keypoints_3d, box3d=box3d, labels=labels, confidence=confidence, metadata=metadata, id=id,
        )
        self.annotations.append(annotation)
        return annotation

    def get_annotations(self, labels: str | Sequence[str] | None = None) -> list[Annotation]:
        """The annotations carrying any of ``labels`` (all of them when None)."""
        if labels is None:
            return list(self.annotations)
        wanted = {labels} if isinstance(labels, str) else set(labels)
        return [a for a in self.annotations if wanted.intersection(a.labels)]

    @property
    def frame_labels(self) -> list[str]:
        """Labels of the frame-label annotations (those without geometry)."""
        return [label for a in self.annotations if a.is_frame_label for label in a.labels]


@dataclass
class StoredInfo:
    """Output-only fields of a frame read from the service."""

    dataset_id: str = ""
    version_id: str = ""
    saved_in_version: str = ""
    saved: int = 0
    etag: str = ""

    @classmethod
    def from_proto(cls, frame: frame_pb2.Frame) -> StoredInfo:
        return cls(frame.dataset_id, frame.version_id, frame.saved_in_version, frame.saved, frame.etag)


class SingleFrame(_Annotated):
    """A frame with one source: an image, a video frame, a point cloud ...

    Args:
        source: where the raw data is: a URI (``s3://``, ``https://``,
            ``blob:sha256/...``) or a local file (path or ``file://``), which
            ``add_frames`` uploads to the blob service.
        width, height: size in pixels (None = unknown).
        timestamp: position inside the context in milliseconds (video: 0, 33,
            66 ...; stills: 0).
        context_id: grouping key (one video, one drive); the service defaults
            it to the source URI.
        preview_uri: a thumbnail a browser can show (URI or local file).
        metadata: free-form JSON-like metadata of the frame.
        mask_source: a mask file (URI or local file), or ``{mask_id: uri}``
            for several masks; the pixel-value-to-label mapping lives on the
            version (``DatasetVersion.set_masks_labels``).
        id: the frame id; the service derives it from the source URI when None,
            so adding the same URI again updates the frame.
        content_type: MIME type of the source (guessed from the extension when None).
        source_id: id of the source within the frame (``default``).
        source_timestamp: position inside the source video, when it differs
            from ``timestamp``.
        source_metadata: metadata of the source itself.
        blob: a small raw payload carried with the frame.
    """

    def __init__(
        self,
        source: PathOrUri | None = None,
        width: int | None = None,
        height: int | None = None,
        timestamp: int | None = None,
        context_id: str | None = None,
        preview_uri: PathOrUri | None = None,
        metadata: dict[str, Any] | None = None,
        mask_source: PathOrUri | dict[str, PathOrUri] | None = None,
        id: str | None = None,
        *,
        content_type: str | None = None,
        source_id: str = DEFAULT_SOURCE_ID,
        source_timestamp: int | None = None,
        source_metadata: dict[str, Any] | None = None,
        blob: bytes | None = None,
    ) -> None:
        self.source = _uri(source)
        self.width = width
        self.height = height
        self.timestamp = timestamp
        self.context_id = context_id
        self.preview_uri = _uri(preview_uri) or None
        self.preview_content_type: str | None = None
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.masks: dict[str, str] = {}
        self.mask_content_types: dict[str, str] = {}
        if isinstance(mask_source, dict):
            self.masks = {key: _uri(value) for key, value in mask_source.items()}
        elif mask_source is not None:
            self.masks = {DEFAULT_MASK_ID: _uri(mask_source)}
        self.id = id
        self.content_type = content_type
        self.source_id = source_id or DEFAULT_SOURCE_ID
        self.source_timestamp = source_timestamp
        self.source_metadata: dict[str, Any] = dict(source_metadata or {})
        self.blob = blob
        self.annotations: list[Annotation] = []
        self.stored = StoredInfo()

    @property
    def mask_source(self) -> str | None:
        """The default mask (or the only one), if any."""
        if DEFAULT_MASK_ID in self.masks:
            return self.masks[DEFAULT_MASK_ID]
        return next(iter(self.masks.values()), None)

    async def aget_local_source(self, cache_dir: str | os.PathLike[str] | None = None) -> Path:
        """A local file with the source's content: a ``blob:`` source is downloaded
        once into the cache (``~/.cache/framevault/blobs``), a local source is returned as is.

        Raises:
            ValueError: the source is neither a ``blob:`` URI nor a local file.
        """
        return await local_copy(self.source, cache_dir)

    get_local_source = sync_twin(aget_local_source)

    async def aget_local_mask_source(
        self, mask_id: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
    ) -> Path | None:
        """Like :meth:`aget_local_source` for a mask (default: the default or only mask); None without masks."""
        uri = self.masks.get(mask_id) if mask_id else self.mask_source
        return await local_copy(uri, cache_dir) if uri else None

    get_local_mask_source = sync_twin(aget_local_mask_source)

    def __repr__(self) -> str:
        return (f"SingleFrame(id={self.id!r}, source={self.source!r}, context_id={self.context_id!r}, "
                f"timestamp={self.timestamp!r}, annotations={self._annotation_count()})")

    # -- a frame read from the service: a view over its proto --

    # The proto a frame read from the service was made from; its fields become attributes on first
    # read (see __getattr__), so a frame costs only what its reader looks at.
    _proto: frame_pb2.Frame | None = None

    if not TYPE_CHECKING:  # type checkers keep flagging attributes that do not exist
        def __getattr__(self, name: str) -> Any:
            # Reached only for attributes not set yet, i.e. fields of a frame read from the service that
            # nobody has read (or assigned) so far.
            proto = self.__dict__.get("_proto")
            if proto is None or name not in _PROTO_ATTRIBUTES:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            attributes = self.__dict__
            if name == "annotations":
                attributes[name] = [Annotation._over(roi) for roi in proto.rois]
            elif name == "metadata":
                attributes[name] = metadata_to_dict(proto.meta)
            elif name == "source_metadata":
                attributes[name] = metadata_to_dict(proto.sources[0].meta) if proto.sources else {}
            elif name == "stored":
                attributes[name] = StoredInfo.from_proto(proto)
            else:
                _keep_assigned(attributes, _frame_attributes(proto))
            return attributes[name]

    def _annotation_count(self) -> int:
        if "annotations" not in self.__dict__ and self._proto is not None:
            return len(self._proto.rois)
        return len(self.annotations)

    # -- proto conversion --

    def to_source_proto(self, source_id: str | None = None, *, metadata: dict[str, Any] | None = None) -> frame_pb2.Source:
        """The ``framevault.v1.Source`` of this frame's raw data."""
        return frame_pb2.Source(**self._source_fields(source_id, metadata=metadata))

    def _source_fields(self, source_id: str | None = None, *, metadata: dict[str, Any] | None = None,
                       ) -> dict[str, Any]:
        # Constructor arguments as nested dicts: one constructor call builds the whole frame.
        uri = self.source
        content_type = self.content_type
        source_timestamp = self.source_timestamp
        fields: dict[str, Any] = {
            "id": source_id or self.source_id,
            "uri": uri,
            "content_type": known_or_guessed(content_type, uri),
            "width": self.width or 0,
            "height": self.height or 0,
            "timestamp": source_timestamp if source_timestamp is not None else (self.timestamp or 0),
        }
        source_meta = self.source_metadata if metadata is None else metadata
        if source_meta:
            fields["meta"] = {"fields": metadata_fields(source_meta)}
        preview_uri = self.preview_uri
        if preview_uri:
            fields["preview"] = {"uri": preview_uri,
                                 "content_type": known_or_guessed(self.preview_content_type, preview_uri)}
        if self.masks:
            mask_types = self.mask_content_types
            fields["masks"] = [
                {"id": mask_id, "uri": mask_uri, "content_type": known_or_guessed(mask_types.get(mask_id), mask_uri)}
                for mask_id, mask_uri in self.masks.items()
            ]
        return fields

    def to_proto(self) -> frame_pb2.Frame:
        """The ``framevault.v1.Frame`` of this single frame."""
        fields: dict[str, Any] = {
            "id": self.id or "",
            "context_id": self.context_id or "",
            "timestamp": self.timestamp or 0,
            "sources": [self._source_fields()],
            "rois": [a._proto_fields() for a in self.annotations],
        }
        if self.metadata:
            fields["meta"] = {"fields": metadata_fields(self.metadata)}
        if self.blob:
            fields["blob"] = self.blob
        return frame_pb2.Frame(**fields)

    @classmethod
    def from_source_proto(cls, source: frame_pb2.Source) -> SingleFrame:
        """A single frame holding one ``framevault.v1.Source`` (no frame-level fields)."""
        frame = cls()
        frame.__dict__.update(_source_attributes(source))
        frame.source_metadata = metadata_to_dict(source.meta)
        return frame

    @classmethod
    def from_proto(cls, proto: frame_pb2.Frame) -> SingleFrame:
        """The single frame of a ``framevault.v1.Frame`` with (at most) one source.

        The frame keeps a copy of ``proto`` and converts each field the first time it is read; it
        behaves as a frame built from the same values. (The copy is the frame's own: a frame kept
        from a stream does not hold on to the whole message it came in.)
        """
        frame = cls.__new__(cls)
        own = frame_pb2.Frame()
        own.CopyFrom(proto)
        frame.__dict__["_proto"] = own
        return frame


def _keep_assigned(attributes: dict[str, Any], read: dict[str, Any]) -> None:
    """Adds the attributes converted from a proto (``read``) to ``attributes``, keeping those already
    there (read earlier or assigned by the caller); two dict updates instead of a setdefault per key."""
    read.update(attributes)
    attributes.update(read)


def known_or_guessed(content_type: str | None, uri: str) -> str:
    """``content_type`` when given (even empty), else the type ``uri``'s extension names."""
    return content_type if content_type is not None else guess_content_type(uri)


# The attributes of a SingleFrame that a frame read from the service takes from its proto.
_PROTO_ATTRIBUTES = frozenset({
    "source", "width", "height", "timestamp", "context_id", "preview_uri", "preview_content_type", "metadata",
    "masks", "mask_content_types", "id", "content_type", "source_id", "source_timestamp", "source_metadata",
    "blob", "annotations", "stored",
})


def _source_attributes(source: frame_pb2.Source) -> dict[str, Any]:
    """The SingleFrame attributes a ``framevault.v1.Source`` determines (its metadata aside)."""
    preview = source.preview if source.HasField("preview") else None
    preview_uri = preview.uri if preview is not None else ""
    masks: dict[str, str] = {}
    mask_content_types: dict[str, str] = {}
    for mask in source.masks:
        masks[mask.id] = mask.uri
        mask_content_types[mask.id] = mask.content_type
    return {
        "source": source.uri,
        "width": source.width or None,
        "height": source.height or None,
        "content_type": source.content_type,
        "source_id": source.id or DEFAULT_SOURCE_ID,
        "source_timestamp": source.timestamp,
        "preview_uri": preview_uri or None,
        "preview_content_type": preview.content_type if preview is not None and preview_uri else None,
        "masks": masks,
        "mask_content_types": mask_content_types,
    }


_NO_SOURCE_ATTRIBUTES: dict[str, Any] = {
    "source": "", "width": None, "height": None, "content_type": None, "source_id": DEFAULT_SOURCE_ID,
    "source_timestamp": None, "preview_uri": None, "preview_content_type": None,
}


def _frame_attributes(proto: frame_pb2.Frame) -> dict[str, Any]:
    """The scalar and URI attributes of the SingleFrame of ``proto`` (what SingleFrame.from_proto gave eagerly)."""
    if proto.sources:
        attributes = _source_attributes(proto.sources[0])
        if attributes["source_timestamp"] == proto.timestamp:
            attributes["source_timestamp"] = None
    else:
        attributes = {**_NO_SOURCE_ATTRIBUTES, "masks": {}, "mask_content_types": {}}
    attributes["id"] = proto.id or None
    attributes["context_id"] = proto.context_id or None
    attributes["timestamp"] = proto.timestamp
    attributes["blob"] = bytes(proto.blob) or None
    return attributes


class FrameGroup(_Annotated, MutableMapping[str, SingleFrame]):
    """A frame with several sources of the same moment, keyed by source id.

    ``group["left"] = SingleFrame(source=..., width=..., height=...)`` adds a
    member; annotations added on a member belong to its source, annotations
    added with ``group.add_annotation(...)`` are global (every source). A
    member's ``metadata`` is its source's metadata; the group's ``metadata`` is
    the frame's.
    """

    def __init__(
        self,
        id: str | None = None,
        context_id: str | None = None,
        timestamp: int | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        blob: bytes | None = None,
    ) -> None:
        self.id = id
        self.context_id = context_id
        self.timestamp = timestamp
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.blob = blob
        self.annotations: list[Annotation] = []
        self.stored = StoredInfo()
        self._members: dict[str, SingleFrame] = {}

    def __getitem__(self, key: str) -> SingleFrame:
        return self._members[key]

    def __setitem__(self, key: str, frame: SingleFrame) -> None:
        if not isinstance(frame, SingleFrame):
            raise TypeError(f"members of a FrameGroup are SingleFrame objects, not {type(frame).__name__}")
        if not key:
            raise ValueError("member keys (source ids) must not be empty")
        self._members[key] = frame

    def __delitem__(self, key: str) -> None:
        del self._members[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __repr__(self) -> str:
        return (f"FrameGroup(id={self.id!r}, members={list(self._members)!r}, context_id={self.context_id!r}, "
                f"timestamp={self.timestamp!r}, annotations={len(self.annotations)})")

    @property
    def all_annotations(self) -> list[Annotation]:
        """Global annotations followed by every member's (members' carry their source id)."""
        out = list(self.annotations)
        for key, member in self._members.items():
            out += [_with_sources(a, [key]) for a in member.annotations]
        return out

    def to_proto(self) -> frame_pb2.Frame:
        """The ``framevault.v1.Frame`` of this group: one source per member."""
        fields: dict[str, Any] = {
            "id": self.id or "",
            "context_id": self.context_id or "",
            "timestamp": self.timestamp or 0,
            "sources": [member._source_fields(key, metadata={**member.source_metadata, **member.metadata})
                        for key, member in self._members.items()],
            "rois": [a._proto_fields() for a in self.all_annotations],
        }
        if self.metadata:
            fields["meta"] = {"fields": metadata_fields(self.metadata)}
        if self.blob:
            fields["blob"] = self.blob
        return frame_pb2.Frame(**fields)

    @classmethod
    def from_proto(cls, proto: frame_pb2.Frame) -> FrameGroup:
        """The group of a ``framevault.v1.Frame``; ROIs of exactly one member go to that member."""
        group = cls(id=proto.id or None, context_id=proto.context_id or None, timestamp=proto.timestamp,
                    metadata=metadata_to_dict(proto.meta), blob=bytes(proto.blob) or None)
        for source in proto.sources:
            member = SingleFrame.from_source_proto(source)
            member.metadata, member.source_metadata = member.source_metadata, {}
            member.timestamp = member.source_timestamp
            member.source_timestamp = None
            group._members[source.id or DEFAULT_SOURCE_ID] = member
        for roi in proto.rois:
            annotation = Annotation.from_proto(roi)
            if len(annotation.sources) == 1 and annotation.sources[0] in group._members:
                owner = group._members[annotation.sources[0]]
                annotation.sources = []
                owner.annotations.append(annotation)
            else:
                group.annotations.append(annotation)
        group.stored = StoredInfo.from_proto(proto)
        return group


def _with_sources(annotation: Annotation, sources: list[str]) -> Annotation:
    if annotation.sources:
        return annotation
    return dataclasses.replace(annotation, sources=sources)


Frame: TypeAlias = SingleFrame | FrameGroup
FrameLike: TypeAlias = SingleFrame | FrameGroup | frame_pb2.Frame
