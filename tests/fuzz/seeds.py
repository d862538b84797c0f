"""Valid requests of every RPC against the seeded world, and the request strategies.

A request strategy mixes three sources: a valid seed mutated in one to three
places (reaches the deep code: the lookups succeed, one value is odd), a seed
as it is, and a message generated from the descriptor alone. Client streams
are sequences: seed sequences mutated message by message, with messages
dropped, repeated or added.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message
from hypothesis import strategies as st

from framevault.v1 import blob_pb2, dataset_pb2, frame_pb2, view_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .harness import Rpc
from .strategies import MessageStrategies, Pools, mutated, queries
from .world import BLOBS, SEED_VIEWS, blob_uri_of, digest_of, meta, seed_frame

POOLS = Pools(BLOBS, queries())
MESSAGES = MessageStrategies(POOLS)

Sequence = list[Message]


def ref(placeholder: str) -> dataset_pb2.VersionRef:
    return dataset_pb2.VersionRef(id="{{" + placeholder + "}}")


def dataset_ref(placeholder: str) -> dataset_pb2.DatasetRef:
    return dataset_pb2.DatasetRef(id="{{" + placeholder + "}}")


def fresh_name(prefix: str) -> st.SearchStrategy[str]:
    return st.uuids().map(lambda u: f"{prefix}-{u.hex[:12]}")


def one(*messages: Message) -> list[st.SearchStrategy[Sequence]]:
    return [st.just([m]) for m in messages]


def _upload(frames_per_message: list[list[frame_pb2.Frame]], version: str = "draft.id") -> Sequence:
    return [ms.UploadFramesRequest(options=ms.UploadOptions(version=ref(version), upload_retries=2)),
            *[ms.UploadFramesRequest(items=[ms.UploadItem(client_key=f"k{i}", frame=f) for i, f in enumerate(fs)])
              for fs in frames_per_message]]


@st.composite
def write_blob(draw: st.DrawFn) -> Sequence:
    """A valid WriteBlob sequence of a new (drawn) blob, or of a stored one."""
    data = draw(st.one_of(st.binary(min_size=1, max_size=300), st.sampled_from(BLOBS)))
    cuts = sorted(draw(st.lists(st.integers(1, max(len(data) - 1, 1)), max_size=2, unique=True)))
    bounds = [0, *[c for c in cuts if c < len(data)], len(data)]
    digest = digest_of(data)
    name = f"uploads/{{{{uuid}}}}/blobs/{digest.hash}/{digest.size_bytes}"
    out = []
    for i, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
        out.append(blob_pb2.WriteBlobRequest(resource_name=name if i == 0 else "", write_offset=start,
                                             data=data[start:end], finish_write=end == len(data)))
    return out or [blob_pb2.WriteBlobRequest(resource_name=name, finish_write=True)]


@st.composite
def batch_update(draw: st.DrawFn) -> Sequence:
    data = draw(st.lists(st.binary(max_size=200), min_size=1, max_size=3))
    return [blob_pb2.BatchUpdateBlobsRequest(requests=[
        blob_pb2.BatchUpdateBlobsRequest.Request(digest=digest_of(b), data=b) for b in data])]


def _frames_with_blobs() -> list[frame_pb2.Frame]:
    inline = frame_pb2.Frame(sources=[frame_pb2.Source(inline_content=b"inline fuzz bytes", content_type="image/png")],
                             meta=meta(city="bremen"))
    by_uri = seed_frame("", 5)
    by_uri.sources[0].uri = blob_uri_of(BLOBS[1])
    return [seed_frame("d001", 7), inline, by_uri]


def _seeds() -> dict[str, list[st.SearchStrategy[Sequence]]]:
    pub, pub2, draft = ref("published.id"), ref("published2.id"), ref("draft.id")
    playground = dataset_ref("playground.id")
    guarded = dataset_ref("dataset.id")
    seq, rnd, qry = SEED_VIEWS["sequential"], SEED_VIEWS["random"], SEED_VIEWS["query"]
    digests = [digest_of(b) for b in BLOBS]
    return {
        # --- MetadataService ---
        "CreateDataset": [fresh_name("fz").map(lambda n: [ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(
            name=n, description="d", tags=["fuzz"], meta=meta(city="bremen")))])] + one(
            ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name="{{dataset.name}}"), fail_if_exists=True)),
        "GetDataset": one(ms.GetDatasetRequest(dataset=guarded),
                          ms.GetDatasetRequest(dataset=dataset_pb2.DatasetRef(name="{{dataset.name}}"))),
        "ListDatasets": one(ms.ListDatasetsRequest(page_size=1, page_token="{{token.datasets}}"),
                            ms.ListDatasetsRequest(name_prefix="fuzz-", tags=["fuzz"])),
        "UpdateDataset": one(ms.UpdateDatasetRequest(
            dataset_ref=playground, dataset=dataset_pb2.Dataset(description="changed", meta=meta(n=1), tags=["t"]),
            update_mask={"paths": ["description", "meta", "tags"]})),
        "DeleteDataset": one(ms.DeleteDatasetRequest(dataset=playground),
                             ms.DeleteDatasetRequest(dataset=guarded)),
        "CreateVersion": [fresh_name("v").map(lambda n: [ms.CreateVersionRequest(
            dataset=guarded, parent=pub2, version=dataset_pb2.Version(name=n, meta=meta(n=1)))]),
            fresh_name("root").map(lambda n: [ms.CreateVersionRequest(
                dataset=playground, version=dataset_pb2.Version(name=n, mask_labels=[
                    dataset_pb2.MaskLabel(value=[1, 2, 3], labels=["car"])]))])],
        "GetVersion": one(ms.GetVersionRequest(version=pub), ms.GetVersionRequest(version=dataset_pb2.VersionRef(
            dataset=dataset_pb2.DatasetRef(name="{{dataset.name}}"), name="released"))),
        "ListVersions": one(ms.ListVersionsRequest(dataset=guarded, page_size=1, page_token="{{token.versions}}")),
        "UpdateVersion": one(
            ms.UpdateVersionRequest(version_ref=draft, version=dataset_pb2.Version(
                description="x", meta=meta(n=2), mask_labels=[dataset_pb2.MaskLabel(value=[0, 0, 255], labels=["sky"])]),
                update_mask={"paths": ["description", "meta", "mask_labels"]}),
            ms.UpdateVersionRequest(version_ref=pub, version=dataset_pb2.Version(description="y", meta=meta(n=3)),
                                    update_mask={"paths": ["description", "meta"]})),
        "PublishVersion": one(ms.PublishVersionRequest(version=ref("playground_draft.id")),
                              ms.PublishVersionRequest(version=pub)),
        "SnapshotVersion": [fresh_name("snap").map(lambda n: [ms.SnapshotVersionRequest(
            version=ref("playground_draft.id"), snapshot_name=n, description="s")])],
        "DeleteVersion": one(ms.DeleteVersionRequest(version=dataset_pb2.VersionRef(dataset=guarded, id="{{draft.id}}")),
                             ms.DeleteVersionRequest(version=dataset_pb2.VersionRef(
                                 dataset=dataset_pb2.DatasetRef(id="000000000000000000000000"),
                                 id="{{published.id}}"))),
        "DiffVersions": one(ms.DiffVersionsRequest(base=pub, target=draft, include_frames=True),
                            ms.DiffVersionsRequest(base=pub, target=pub2),
                            ms.DiffVersionsRequest(base=pub, target=draft, max_changes=2,
                                                   resume_cursor="{{cursor.diff}}", include_frames=True)),
        "MergeVersions": [fresh_name("merge").map(lambda n: [ms.MergeVersionsRequest(
            ours=pub2, theirs=pub, strategy=ms.MERGE_STRATEGY_OURS, version=dataset_pb2.Version(name=n))])],
        "GetVersionStatistics": one(ms.GetVersionStatisticsRequest(version=pub, meta_keys=["city", "n", "x"])),
        "GetFrame": one(ms.GetFrameRequest(version=pub, frame_id="f001")),
        "UpdateFrame": one(
            ms.UpdateFrameRequest(version=draft, frame=seed_frame("d001", 8), update_mask={"paths": ["meta", "rois"]}),
            ms.UpdateFrameRequest(version=draft, frame=seed_frame("d002", 9))),
        "DeleteFrames": one(ms.DeleteFramesRequest(version=draft, frame_ids=["d002", "no-such-frame"])),
        "CountFrames": one(ms.CountFramesRequest(version=pub)),
        "ListFrames": one(ms.ListFramesRequest(version=pub, page_size=4, page_token="{{token.frames}}")),
        "UploadFrames": [st.just(_upload([_frames_with_blobs()])),
                         st.just(_upload([[seed_frame("d000", 3)], [seed_frame("d003", 4), seed_frame("", 6)]]))],
        "IterateFrames": one(
            ms.IterateFramesRequest(view=seq, frames_per_message=3, resume_cursor="{{cursor.sequential}}"),
            ms.IterateFramesRequest(view=rnd, frames_per_message=3, resume_cursor="{{cursor.random}}"),
            ms.IterateFramesRequest(view=seq, frames_per_message=3, frame_cursors=True,
                                    resume_cursor="{{cursor.frame}}"),
            ms.IterateFramesRequest(view=seq, frames_per_message=3, resume_cursor="{{cursor.sequential}}",
                                    resume_offset=2),
            ms.IterateFramesRequest(view=rnd, frames_per_message=3, resume_offset=3),
            ms.IterateFramesRequest(view=qry, shard_index=1, shard_count=2),
            ms.IterateFramesRequest(view=view_pb2.View(selections=[
                view_pb2.ViewSelection(version=pub, rules=[view_pb2.FilterRule(
                    roi=view_pb2.RoiRule(labels=["car"], min_confidence=0.1, max_count=3))], weight=2),
                view_pb2.ViewSelection(version=draft, rules=[view_pb2.FilterRule(meta=view_pb2.MetadataRule(
                    key="n", range=view_pb2.ValueRange(min=meta(v=1).fields["v"], max=meta(v=9).fields["v"])))],
                    label_mapping=[view_pb2.LabelMappingRule(from_labels=["car"], to_label="vehicle")])],
                order=view_pb2.ITERATION_ORDER_RANDOM, random_seed=3, max_frames=20,
                projection={"paths": ["rois", "meta.city"]}, label_enumeration={"vehicle": 1}))),
        "CountViewFrames": one(ms.CountViewFramesRequest(view=qry)),
        "ListViewFrames": one(
            ms.ListViewFramesRequest(view=seq, page_size=3, page_token="{{token.view_frames}}"),
            ms.ListViewFramesRequest(view=SEED_VIEWS["metadata"], page_size=2,
                                     page_token="{{token.view_frames_metadata}}"),
            ms.ListViewFramesRequest(view=view_pb2.View(
                selections=qry.selections, order=view_pb2.ITERATION_ORDER_METADATA,
                metadata_order=view_pb2.MetadataOrder(key="metadata.city"), projection={"paths": ["meta"]}),
                page_size=1)),
        "ListContexts": one(ms.ListContextsRequest(selection=qry.selections[0], page_size=1,
                                                   projection={"paths": ["rois"]})),
        "ListContextFrames": one(ms.ListContextFramesRequest(selection=seq.selections[0], context_id="c1",
                                                             page_size=2, descending=True)),
        "ListReferencedBlobs": one(ms.ListReferencedBlobsRequest(batch_size=2)),
        # --- BlobService ---
        "GetCapabilities": one(blob_pb2.GetCapabilitiesRequest()),
        "FindMissingBlobs": one(blob_pb2.FindMissingBlobsRequest(digests=digests)),
        "BatchUpdateBlobs": [batch_update()],
        "BatchReadBlobs": one(blob_pb2.BatchReadBlobsRequest(digests=digests)),
        "WriteBlob": [write_blob()],
        "QueryWriteStatus": [write_blob().map(lambda s: [blob_pb2.QueryWriteStatusRequest(
            resource_name=s[0].resource_name)])],
        "StartDirectUpload": [write_blob().map(lambda s: [blob_pb2.StartDirectUploadRequest(
            resource_name=s[0].resource_name, part_numbers=[1], expires_in_seconds=60)])],
        "CompleteDirectUpload": [write_blob().map(lambda s: [blob_pb2.CompleteDirectUploadRequest(
            resource_name=s[0].resource_name)])],
        "ReadBlob": one(blob_pb2.ReadBlobRequest(digest=digests[1], offset=5, limit=10)),
        "GetDownloadUrl": one(blob_pb2.GetDownloadUrlRequest(digest=digests[2], expires_in_seconds=60,
                                                             content_type="image/png")),
        "CreatePreview": one(blob_pb2.CreatePreviewRequest(digest=digests[2], max_edge=2,
                                                           format=blob_pb2.PREVIEW_FORMAT_PNG)),
        "DeleteBlobs": one(blob_pb2.DeleteBlobsRequest(digests=[digests[0], digest_of(b"never stored")])),
        "CollectGarbage": one(blob_pb2.CollectGarbageRequest(dry_run=True),
                              blob_pb2.CollectGarbageRequest(grace_period_seconds=3600)),
    }


SEEDS = _seeds()


@st.composite
def mutated_sequence(draw: st.DrawFn, seed: Sequence, rpc: Rpc) -> Sequence:
    out = [draw(mutated(m, MESSAGES)) if draw(st.booleans()) else m for m in seed]
    if rpc.client_streaming:
        edit = draw(st.integers(0, 5))
        if edit == 1 and len(out) > 1:
            del out[draw(st.integers(0, len(out) - 1))]
        elif edit == 2:
            out.insert(draw(st.integers(0, len(out))), draw(st.sampled_from(out)))
        elif edit == 3:
            out.append(draw(MESSAGES.message(rpc.request.DESCRIPTOR)))
    if out == seed:  # mutate at least one message
        i = draw(st.integers(0, len(out) - 1))
        out[i] = draw(mutated(out[i], MESSAGES))
    return out


def requests_for(rpc: Rpc) -> st.SearchStrategy[Sequence]:
    seeds = st.one_of(*SEEDS[rpc.name])
    generated = st.lists(MESSAGES.message(rpc.request.DESCRIPTOR), min_size=1,
                         max_size=4 if rpc.client_streaming else 1)
    mutants = seeds.flatmap(lambda s: mutated_sequence(s, rpc))
    # Mostly mutants: they pass the lookups and reach the code behind them.
    return st.one_of(mutants, mutants, mutants, seeds, generated)


Guard = Callable[[Sequence, dict[str, str]], Sequence]


def keep_published(rpc: Rpc, requests: Sequence, values: dict[str, str]) -> Sequence:
    """The one legitimate way to delete published versions is DeleteDataset
    with ``force``: it stays off unless the playground (no published version)
    is named, so a changed published version is always a bug."""
    if rpc.name != "DeleteDataset":
        return requests
    out = []
    for request in requests:
        assert isinstance(request, ms.DeleteDatasetRequest)
        names_playground = request.dataset.id == values["playground.id"] or \
            request.dataset.name == values["playground.name"]
        if request.force and not names_playground:
            request = ms.DeleteDatasetRequest(dataset=request.dataset, force=False)
        out.append(request)
    return out
