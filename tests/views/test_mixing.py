"""Several selections: weighted mixing (random order), merging (sequential)."""

from __future__ import annotations

import math
from collections import Counter

from framevault.v1 import view_pb2

from .client import Stub, iterate, view_of
from .corpus import Corpus, make_frame, ref

RANDOM = view_pb2.ITERATION_ORDER_RANDOM


async def _two_versions(corpus: Corpus, sizes: tuple[int, int]) -> tuple[view_pb2.VersionRef, view_pb2.VersionRef]:
    dataset = await corpus.dataset()
    refs = []
    for name, size in zip(("a", "b"), sizes, strict=True):
        version = await corpus.version(dataset, name)
        await corpus.put_many(version, [make_frame(f"{name}{i:04d}", context=f"{name}-ctx", timestamp=i)
                                        for i in range(size)])
        refs.append(ref(version))
    return refs[0], refs[1]


async def test_infinite_mixing_follows_the_weights(corpus: Corpus, metadata_stub: Stub) -> None:
    a, b = await _two_versions(corpus, (300, 200))
    total = 6000
    view = view_of(view_pb2.ViewSelection(version=a, weight=3), view_pb2.ViewSelection(version=b, weight=1),
                   order=RANDOM, random_seed=20240601, infinite=True, max_frames=total)

    stream = await iterate(metadata_stub, view, per_message=1000)

    assert len(stream.ids) == total
    share = stream.selections.count(0) / total
    sigma = math.sqrt(0.75 * 0.25 / total)
    assert abs(share - 0.75) < 4 * sigma, share
    # Frames are tagged with the selection they came from.
    assert all(frame_id[0] == "ab"[s] for s, frame_id in zip(stream.selections, stream.ids, strict=True))
    # Every selection cycles on its own: the small one went round about 7.5 times.
    counts = Counter(stream.ids)
    assert set(counts) == {f"a{i:04d}" for i in range(300)} | {f"b{i:04d}" for i in range(200)}
    assert max(counts[f"b{i:04d}"] for i in range(200)) - min(counts[f"b{i:04d}"] for i in range(200)) <= 1


async def test_each_frame_once_mixing_drops_exhausted_selections(corpus: Corpus, metadata_stub: Stub) -> None:
    a, b = await _two_versions(corpus, (300, 300))
    view = view_of(view_pb2.ViewSelection(version=a, weight=3), view_pb2.ViewSelection(version=b, weight=1),
                   order=RANDOM, random_seed=77)

    stream = await iterate(metadata_stub, view, per_message=1000)

    assert sorted(stream.ids) == sorted([f"a{i:04d}" for i in range(300)] + [f"b{i:04d}" for i in range(300)])
    head = stream.selections[:200]
    assert abs(head.count(0) / 200 - 0.75) < 4 * math.sqrt(0.75 * 0.25 / 200)
    # Selection 0 runs out first (after about 400 frames); then only 1 is left.
    last_a = max(i for i, s in enumerate(stream.selections) if s == 0)
    assert 330 < last_a < 470
    assert set(stream.selections[last_a + 1:]) == {1}


async def test_zero_weight_means_one(corpus: Corpus, metadata_stub: Stub) -> None:
    a, b = await _two_versions(corpus, (100, 100))
    implicit = view_of(view_pb2.ViewSelection(version=a), view_pb2.ViewSelection(version=b), order=RANDOM,
                       random_seed=5)
    explicit = view_of(view_pb2.ViewSelection(version=a, weight=1), view_pb2.ViewSelection(version=b, weight=1),
                       order=RANDOM, random_seed=5)
    assert (await iterate(metadata_stub, implicit)).ids == (await iterate(metadata_stub, explicit)).ids


async def test_sequential_order_merges_selections_by_context_and_timestamp(corpus: Corpus, metadata_stub: Stub) -> None:
    dataset = await corpus.dataset()
    first, second = await corpus.version(dataset, "one"), await corpus.version(dataset, "two")
    await corpus.put_many(first, [make_frame(f"x{i}", context=f"ctx{i % 3}", timestamp=i * 10) for i in range(30)])
    await corpus.put_many(second, [make_frame(f"y{i}", context=f"ctx{i % 4}", timestamp=i * 7) for i in range(30)])
    # The same version twice: a frame in two selections comes twice, first selection first.
    view = view_of(view_pb2.ViewSelection(version=ref(first)), view_pb2.ViewSelection(version=ref(second)),
                   view_pb2.ViewSelection(version=ref(first), query="meta.missing:*"),
                   view_pb2.ViewSelection(version=ref(first), weight=5))

    stream = await iterate(metadata_stub, view, per_message=13)

    keys = [(f.context_id, f.timestamp, f.id, s) for f, s in zip(stream.frames, stream.selections, strict=True)]
    assert keys == sorted(keys)
    assert Counter(stream.selections) == {0: 30, 1: 30, 3: 30}
