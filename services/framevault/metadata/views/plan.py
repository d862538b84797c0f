"""A validated, resolved view: what every view call works from.

``build_plan`` checks the whole ``View`` message (all problems reported at
once, each under its field path), then resolves the versions; nothing else in
this package reads the request messages.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

from google.protobuf import field_mask_pb2

from framevault.common.errors import FieldErrors
from framevault.metadata.caller_metadata import split_key_path
from framevault.metadata.lineage import (
    VersionHandle,
    VersionReader,
    live_frame_counts,
    resolve_version_document,
    visible_filter,
)
from framevault.metadata.views import filters
from framevault.metadata.views.query import QueryError, canonical_field, parse_query
from framevault.metadata.views.rules import rules_to_filter
from framevault.metadata.views.shaping import (
    Projection,
    build_label_enumeration,
    build_label_mapping,
    build_projection,
)
from framevault.v1 import view_pb2

MAX_SELECTIONS = 64


class Order(Enum):
    SEQUENTIAL = "sequential"
    RANDOM = "random"
    # By one frame-metadata key (View.metadata_order); ListViewFrames only.
    METADATA = "metadata"


_ORDERS = {
    view_pb2.ITERATION_ORDER_UNSPECIFIED: Order.SEQUENTIAL,
    view_pb2.ITERATION_ORDER_SEQUENTIAL: Order.SEQUENTIAL,
    view_pb2.ITERATION_ORDER_RANDOM: Order.RANDOM,
    view_pb2.ITERATION_ORDER_METADATA: Order.METADATA,
}


@dataclass(frozen=True)
class MetadataOrder:
    """A validated View.metadata_order: the key's segments under ``meta``."""

    path: tuple[str, ...]
    descending: bool

    @property
    def field(self) -> str:
        """The key as a document field path (every segment passed ``key_problem``)."""
        return "meta." + ".".join(self.path)


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @property
    def sharded(self) -> bool:
        return self.count > 1


UNSHARDED = Shard()


@dataclass(frozen=True)
class SelectionPlan:
    index: int
    version: VersionHandle
    # Frames in the version when the call started; sizes the random buckets.
    frame_count: int
    # The selection's rules and query as one MongoDB query ({} = all frames).
    match: dict[str, Any]
    weight: float
    label_mapping: dict[str, str]

    def scope(self, shard: Shard) -> FrameScope:
        """The frames of this selection (and shard) as one MongoDB query."""
        parts: list[dict[str, Any]] = [visible_filter(self.version)]
        if self.match:
            parts.append(self.match)
        if shard.sharded:
            parts.append({"shuffle_key": {"$mod": [shard.count, shard.index]}})
        return FrameScope(self.version.dataset_id, parts[0] if len(parts) == 1 else {"$and": parts})


@dataclass(frozen=True)
class FrameScope:
    dataset_id: str
    query: dict[str, Any]


@dataclass(frozen=True)
class ViewPlan:
    selections: tuple[SelectionPlan, ...]
    order: Order
    seed: int
    infinite: bool
    max_frames: int
    projection: Projection
    label_enumeration: dict[str, int]
    # Set exactly when ``order`` is METADATA.
    metadata_order: MetadataOrder | None
    # Identifies the view (as sent, plus the versions it resolved to); binds
    # cursors to it.
    fingerprint: str


def validate_shard(shard_index: int, shard_count: int, errors: FieldErrors) -> Shard:
    if shard_count < 0:
        errors.add("shard_count", "must not be negative")
    if shard_index < 0:
        errors.add("shard_index", "must not be negative")
    elif shard_count <= 1 and shard_index != 0:
        errors.add("shard_index", "must be 0 when shard_count is 0 or 1")
    elif shard_count > 1 and shard_index >= shard_count:
        errors.add("shard_index", f"must be less than shard_count ({shard_count})")
    return Shard(shard_index, shard_count) if shard_count > 1 else UNSHARDED


@dataclass
class _CheckedSelection:
    match: dict[str, Any]
    weight: float
    mapping: dict[str, str]


async def build_plan(store: VersionReader, view: view_pb2.View, field: str = "view",
                     errors: FieldErrors | None = None) -> ViewPlan:
    """Validates ``view`` and resolves its versions; INVALID_ARGUMENT or
    NOT_FOUND naming the offending field. ``errors`` may already hold problems
    of the rest of the request: they are reported together."""
    errors = errors if errors is not None else FieldErrors()
    checked = _check_view(view, field, errors)
    projection = build_projection(view.projection, f"{field}.projection", errors)
    enumeration = build_label_enumeration(view.label_enumeration, f"{field}.label_enumeration", errors)
    order = _ORDERS.get(view.order)
    if order is None:
        errors.add(f"{field}.order", f"unknown order {view.order}")
    metadata_order = _check_metadata_order(view, order, field, errors)
    if view.max_frames < 0:
        errors.add(f"{field}.max_frames", "must not be negative")
    errors.raise_if_any()

    selections = [await _resolve_selection(store, i, selection, check, f"{field}.selections[{i}]")
                  for i, (selection, check) in enumerate(zip(view.selections, checked, strict=True))]
    fingerprint = hashlib.sha256(view.SerializeToString(deterministic=True))
    for plan in selections:
        fingerprint.update(b"\x00" + plan.version.id.encode())
    return ViewPlan(
        selections=tuple(selections),
        order=order or Order.SEQUENTIAL,
        seed=view.random_seed,
        infinite=view.infinite,
        max_frames=view.max_frames,
        projection=projection,
        label_enumeration=enumeration,
        metadata_order=metadata_order,
        fingerprint=fingerprint.hexdigest()[:32],
    )


async def build_selection_plan(store: VersionReader, selection: view_pb2.ViewSelection,
                               projection: field_mask_pb2.FieldMask, errors: FieldErrors) -> ViewPlan:
    """The sequential plan of one selection sent on its own (request fields ``selection`` and
    ``projection``), for the calls that list a selection's contexts; ``weight`` and
    ``label_mapping`` do not apply. Errors as ``build_plan``."""
    check = _check_selection(selection, "selection", errors)
    shape = build_projection(projection, "projection", errors)
    errors.raise_if_any()
    resolved = await _resolve_selection(store, 0, selection, check, "selection")
    fingerprint = hashlib.sha256(selection.SerializeToString(deterministic=True))
    fingerprint.update(b"\x00" + projection.SerializeToString(deterministic=True))
    fingerprint.update(b"\x00" + resolved.version.id.encode())
    return ViewPlan(selections=(dataclasses.replace(resolved, label_mapping={}),), order=Order.SEQUENTIAL, seed=0,
                    infinite=False, max_frames=0, projection=shape, label_enumeration={}, metadata_order=None,
                    fingerprint=fingerprint.hexdigest()[:32])


async def _resolve_selection(store: VersionReader, index: int, selection: view_pb2.ViewSelection,
                             check: _CheckedSelection, field: str) -> SelectionPlan:
    document = await resolve_version_document(store, selection.version, f"{field}.version")
    await live_frame_counts(store, [document])
    return SelectionPlan(
        index=index,
        version=VersionHandle.from_document(document),
        frame_count=int(document.get("frame_count", 0)),
        match=check.match,
        weight=check.weight,
        label_mapping=check.mapping,
    )


def _check_metadata_order(view: view_pb2.View, order: Order | None, field: str,
                          errors: FieldErrors) -> MetadataOrder | None:
    """The metadata order of ``view`` when its order is METADATA; its key path is checked as the
    query language checks a ``meta.<path>`` field, so caller keys only ever become field names."""
    if order is not Order.METADATA:
        if view.HasField("metadata_order"):
            errors.add(f"{field}.metadata_order", "applies only to order ITERATION_ORDER_METADATA")
        return None
    key_field = f"{field}.metadata_order.key"
    if len(view.selections) > 1:
        errors.add(f"{field}.selections", "a metadata order reads one selection")
    written = view.metadata_order.key
    if not written:
        errors.add(key_field, "required with order ITERATION_ORDER_METADATA (e.g. meta.speed)")
        return None
    name = canonical_field(written)
    if not name.startswith("meta."):
        errors.add(key_field, f"must be meta.<key path>, e.g. meta.speed (got {written!r})")
        return None
    path, problem = split_key_path(name.removeprefix("meta."))
    if problem:
        errors.add(key_field, f"{written!r}: {problem}")
        return None
    return MetadataOrder(path=path, descending=view.metadata_order.descending)


def _check_view(view: view_pb2.View, field: str, errors: FieldErrors) -> list[_CheckedSelection]:
    if not view.selections:
        errors.add(f"{field}.selections", "at least one selection")
    if len(view.selections) > MAX_SELECTIONS:
        errors.add(f"{field}.selections", f"at most {MAX_SELECTIONS} selections")
        return []
    return [_check_selection(s, f"{field}.selections[{i}]", errors) for i, s in enumerate(view.selections)]


def _check_selection(selection: view_pb2.ViewSelection, field: str, errors: FieldErrors) -> _CheckedSelection:
    if not selection.HasField("version"):
        errors.add(f"{field}.version", "required")
    parts = [rules_to_filter(selection.rules, f"{field}.rules", errors)]
    if selection.query:
        try:
            parts.append(parse_query(selection.query))
        except QueryError as exc:
            errors.add(f"{field}.query", str(exc))
    weight = selection.weight
    if not math.isfinite(weight) or weight < 0:
        errors.add(f"{field}.weight", "must be a finite number >= 0 (0 means 1)")
    return _CheckedSelection(
        match=filters.to_mongo(filters.all_of(parts)),
        weight=weight if weight > 0 else 1.0,
        mapping=build_label_mapping(selection.label_mapping, f"{field}.label_mapping", errors),
    )

