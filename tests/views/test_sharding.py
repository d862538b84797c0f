"""Sharding: worker i of n gets a disjoint share; together the shares are the view."""

from __future__ import annotations

from collections import Counter

import pytest

from framevault.v1 import view_pb2

from .client import Stub, iterate, view_of
from .corpus import Corpus, make_frame, ref, roi


@pytest.mark.parametrize("order", [view_pb2.ITERATION_ORDER_SEQUENTIAL, view_pb2.ITERATION_ORDER_RANDOM])
async def test_shards_are_disjoint_and_complete(corpus: Corpus, metadata_stub: Stub, order: int) -> None:
    dataset = await corpus.dataset()
    first, second = await corpus.version(dataset, "a"), await corpus.version(dataset, "b")
    await corpus.put_many(first, [make_frame(f"a{i:04d}", context=f"c{i % 9}", timestamp=i,
                                             rois=[roi("car" if i % 3 else "bus")]) for i in range(1200)])
    await corpus.put_many(second, [make_frame(f"b{i:03d}", context="c0", timestamp=i) for i in range(300)])
    view = view_of(
        view_pb2.ViewSelection(version=ref(first), query='label:"car"'),
        view_pb2.ViewSelection(version=ref(second), weight=2),
        order=order, random_seed=3,
    )
    whole = await iterate(metadata_stub, view, per_message=500)
    assert len(whole.ids) == 800 + 300

    shares = [await iterate(metadata_stub, view, per_message=333, shard=(i, 4)) for i in range(4)]

    tagged = [(s, frame_id) for share in shares for s, frame_id in zip(share.selections, share.ids, strict=True)]
    assert Counter(tagged) == Counter(zip(whole.selections, whole.ids, strict=True))
    assert all(len(share.ids) > 150 for share in shares)
    if order == view_pb2.ITERATION_ORDER_SEQUENTIAL:
        # Each share keeps the view's order (selections merged by key).
        for share in shares:
            keys = [(f.context_id, f.timestamp, f.id) for f in share.frames]
            assert keys == sorted(keys)


async def test_a_shard_resumes_within_its_share(corpus: Corpus, metadata_stub: Stub) -> None:
    version = await corpus.version(await corpus.dataset())
    await corpus.put_many(version, [make_frame(f"s{i:03d}") for i in range(400)])
    view = view_of(view_pb2.ViewSelection(version=ref(version)), order=view_pb2.ITERATION_ORDER_RANDOM, random_seed=1)

    share = await iterate(metadata_stub, view, per_message=40, shard=(2, 3))
    taken, cursor = share.cursors[3]
    rest = await iterate(metadata_stub, view, cursor=cursor, per_message=7, shard=(2, 3))

    assert share.ids[:taken] + rest.ids == share.ids
