"""What a view does to each streamed frame: projection, label mapping, label
enumeration (in that order: mapping and enumeration see the projected ROIs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from framevault.common.errors import FieldErrors
from framevault.metadata.views.rules import label_problem
from framevault.v1 import frame_pb2

MAX_PROJECTION_PATHS = 64
MAX_MAPPING_LABELS = 10_000
MAX_ENUMERATION_LABELS = 100_000

# Always returned whatever the projection: they identify and order a frame.
ALWAYS_PROJECTED = ("id", "context_id", "timestamp")

# Frame field → document field it is read from (None: not stored, computed).
_DOCUMENT_FIELD: dict[str, str | None] = {
    "id": "frame_id",
    "context_id": "context_id",
    "timestamp": "timestamp",
    "sources": "sources",
    "rois": "rois",
    "meta": "meta",
    "blob": "blob",
    "num_frames": "num_frames",
    "dataset_id": "dataset_id",
    "version_id": None,
    "saved_in_version": "version_id",
    "saved": "saved",
    "etag": "etag",
}
# Read for ordering, cursors and sharding even when not returned.
ITERATION_FIELDS = ("frame_id", "context_id", "timestamp", "shuffle_key", "dataset_id", "version_id")

ProjectionTree = dict[str, "ProjectionTree"]


@dataclass(frozen=True)
class Projection:
    """The Frame paths to return; ``tree`` None returns everything."""

    tree: ProjectionTree | None = None

    def document_fields(self) -> list[str] | None:
        """Top-level document fields to fetch (None: all of them)."""
        if self.tree is None:
            return None
        fields = set(ITERATION_FIELDS)
        for name in self.tree:
            stored = _DOCUMENT_FIELD.get(name)
            if stored:
                fields.add(stored)
        return sorted(fields)

    def shape(self, encoded: bytes) -> frame_pb2.Frame:
        """The projection of the frame ``encoded`` (Frame protobuf bytes,
        ``frame_documents.encoded_frame``)."""
        frame = frame_pb2.Frame.FromString(encoded)
        if self.tree is None:
            return frame
        projected = frame_pb2.Frame()
        _copy_paths(frame, projected, self.tree)
        return projected


def build_projection(mask: field_mask_pb2.FieldMask, field: str, errors: FieldErrors) -> Projection:
    if not mask.paths:
        return Projection()
    if len(mask.paths) > MAX_PROJECTION_PATHS:
        errors.add(f"{field}.paths", f"at most {MAX_PROJECTION_PATHS} paths")
        return Projection()
    tree: ProjectionTree = {name: {} for name in ALWAYS_PROJECTED}
    for i, path in enumerate(mask.paths):
        problem = _path_problem(path)
        if problem:
            errors.add(f"{field}.paths[{i}]", problem)
            continue
        _add_path(tree, path.split("."))
    return Projection(tree)


def _path_problem(path: str) -> str | None:
    message_type: Any = frame_pb2.Frame.DESCRIPTOR
    segments = path.split(".")
    for depth, segment in enumerate(segments):
        if message_type is None or message_type.GetOptions().map_entry:
            return f"{'.'.join(segments[:depth])!r} has no sub-fields to select"
        field = message_type.fields_by_name.get(segment)
        if field is None:
            return f"unknown field {segment!r} of {message_type.name}"
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        message_type = None if is_map else field.message_type
    return None


def _add_path(tree: ProjectionTree, segments: list[str]) -> None:
    node = tree
    for i, segment in enumerate(segments):
        if segment in node and not node[segment]:
            return  # an ancestor is selected whole
        if i == len(segments) - 1:
            node[segment] = {}
        else:
            node = node.setdefault(segment, {})


def _copy_paths(source: Message, target: Message, tree: ProjectionTree) -> None:
    fields = source.DESCRIPTOR.fields_by_name
    for name, children in tree.items():
        field = fields[name]
        value = getattr(source, name)
        repeated = field.is_repeated
        if field.message_type is None:
            if repeated:
                getattr(target, name).extend(value)
            elif not field.has_presence or source.HasField(name):
                setattr(target, name, value)
        elif repeated:
            if not children or field.message_type.GetOptions().map_entry:
                _copy_whole(getattr(target, name), value)
            else:
                for element in value:
                    _copy_paths(element, getattr(target, name).add(), children)
        elif source.HasField(name):
            if children:
                _copy_paths(value, getattr(target, name), children)
                getattr(target, name).SetInParent()
            else:
                getattr(target, name).CopyFrom(value)


def _copy_whole(target: Any, value: Any) -> None:
    if hasattr(value, "items"):  # a map field
        for key, item in value.items():
            target[key].CopyFrom(item)
    else:
        target.extend(value)


# --- labels -------------------------------------------------------------------


def build_label_mapping(rules: Any, field: str, errors: FieldErrors) -> dict[str, str]:
    """``from label → to label`` of a selection's LabelMappingRule list."""
    mapping: dict[str, str] = {}
    total = 0
    for i, rule in enumerate(rules):
        rule_field = f"{field}[{i}]"
        problem = label_problem(rule.to_label)
        if problem:
            errors.add(f"{rule_field}.to_label", problem)
        if not rule.from_labels:
            errors.add(f"{rule_field}.from_labels", "at least one label to replace")
        total += len(rule.from_labels)
        for j, label in enumerate(rule.from_labels):
            problem = label_problem(label)
            if problem:
                errors.add(f"{rule_field}.from_labels[{j}]", problem)
            elif mapping.get(label, rule.to_label) != rule.to_label:
                errors.add(f"{rule_field}.from_labels[{j}]", f"{label!r} is already mapped to {mapping[label]!r}")
            else:
                mapping[label] = rule.to_label
    if total > MAX_MAPPING_LABELS:
        errors.add(field, f"at most {MAX_MAPPING_LABELS} labels mapped per selection")
    return mapping


def build_label_enumeration(values: Mapping[str, int], field: str, errors: FieldErrors) -> dict[str, int]:
    if len(values) > MAX_ENUMERATION_LABELS:
        errors.add(field, f"at most {MAX_ENUMERATION_LABELS} labels")
        return {}
    for label in values:
        problem = label_problem(label)
        if problem:
            errors.add(f"{field}[{label!r}]" if label else field, problem)
    return dict(values)


def relabel(frame: frame_pb2.Frame, mapping: Mapping[str, str], enumeration: Mapping[str, int]) -> None:
    """Maps labels (a mapped label equal to one already on the ROI is not
    repeated), then writes ``label_ids`` when an enumeration is set."""
    if not mapping and not enumeration:
        return
    for roi in frame.rois:
        if mapping:
            mapped = list(dict.fromkeys(mapping.get(label, label) for label in roi.labels))
            if mapped != list(roi.labels):
                roi.ClearField("labels")
                roi.labels.extend(mapped)
        if enumeration:
            roi.ClearField("label_ids")
            roi.label_ids.extend(enumeration.get(label, -1) for label in roi.labels)
