"""Projection, label mapping per selection and label enumeration."""

from __future__ import annotations

from google.protobuf import field_mask_pb2

from framevault.v1 import frame_pb2, view_pb2

from .client import Stub, iterate, view_of
from .corpus import Corpus, make_frame, ref, roi


async def _version(corpus: Corpus) -> view_pb2.VersionRef:
    version = await corpus.version(await corpus.dataset())
    await corpus.put_many(version, [
        make_frame("f1", context="c", timestamp=1, rois=[roi("car", confidence=0.5), roi("truck", "car"), roi("person")],
                   meta={"city": "bremen"}),
        make_frame("f2", context="c", timestamp=2, rois=[roi("bicycle")]),
    ])
    return ref(version)


async def test_mapping_applies_per_selection_and_enumeration_to_all(corpus: Corpus, metadata_stub: Stub) -> None:
    version = await _version(corpus)
    mapped = view_pb2.ViewSelection(version=version, label_mapping=[
        view_pb2.LabelMappingRule(from_labels=["car", "truck"], to_label="vehicle"),
        view_pb2.LabelMappingRule(from_labels=["person"], to_label="pedestrian"),
    ])
    plain = view_pb2.ViewSelection(version=version)
    view = view_of(mapped, plain, label_enumeration={"vehicle": 1, "pedestrian": 2, "car": 7})

    stream = await iterate(metadata_stub, view)

    by_selection = {(s, f.id): f for s, f in zip(stream.selections, stream.frames, strict=True)}
    mapped_f1 = by_selection[(0, "f1")]
    assert [list(r.labels) for r in mapped_f1.rois] == [["vehicle"], ["vehicle"], ["pedestrian"]]
    assert [list(r.label_ids) for r in mapped_f1.rois] == [[1], [1], [2]]
    assert mapped_f1.rois[0].confidence == frame_pb2.Roi(confidence=0.5).confidence
    plain_f1 = by_selection[(1, "f1")]
    assert [list(r.labels) for r in plain_f1.rois] == [["car"], ["truck", "car"], ["person"]]
    assert [list(r.label_ids) for r in plain_f1.rois] == [[7], [-1, 7], [-1]]
    assert [list(r.label_ids) for r in by_selection[(0, "f2")].rois] == [[-1]]


async def test_without_enumeration_no_label_ids(corpus: Corpus, metadata_stub: Stub) -> None:
    stream = await iterate(metadata_stub, view_of(view_pb2.ViewSelection(version=await _version(corpus))))
    assert all(not r.label_ids for f in stream.frames for r in f.rois)


async def test_projection_returns_only_chosen_fields(corpus: Corpus, metadata_stub: Stub) -> None:
    version = await _version(corpus)
    full = (await iterate(metadata_stub, view_of(view_pb2.ViewSelection(version=version)))).frames[0]
    view = view_of(view_pb2.ViewSelection(version=version),
                   projection=field_mask_pb2.FieldMask(paths=["sources.uri", "rois.labels", "etag"]),
                   label_enumeration={"car": 3})

    frame = (await iterate(metadata_stub, view)).frames[0]

    expected = frame_pb2.Frame(id="f1", context_id="c", timestamp=1, etag=full.etag,
                               sources=[frame_pb2.Source(uri=full.sources[0].uri)],
                               rois=[frame_pb2.Roi(labels=list(r.labels)) for r in full.rois])
    for r in expected.rois:
        r.label_ids.extend(3 if label == "car" else -1 for label in r.labels)
    assert frame == expected


async def test_projection_of_whole_messages_and_output_fields(corpus: Corpus, metadata_stub: Stub) -> None:
    version = await _version(corpus)
    view = view_of(view_pb2.ViewSelection(version=version),
                   projection=field_mask_pb2.FieldMask(paths=["meta", "version_id", "rois.confidence"]))

    frame = (await iterate(metadata_stub, view)).frames[0]

    assert frame.meta.fields["city"].string_value == "bremen"
    assert frame.version_id == version.id
    assert not frame.sources and not frame.dataset_id and not frame.etag
    assert [r.HasField("confidence") for r in frame.rois] == [True, False, False]
    assert not any(r.labels or r.HasField("box") for r in frame.rois)
