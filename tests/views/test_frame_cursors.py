"""Per-frame cursors (IterateFramesRequest.frame_cursors): a consumer that
processed part of a message resumes exactly after any frame of it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from framevault.v1 import view_pb2

from .client import Stub, iterate, view_of
from .corpus import Corpus, make_frame, ref

SEQUENTIAL = view_pb2.ITERATION_ORDER_SEQUENTIAL
RANDOM = view_pb2.ITERATION_ORDER_RANDOM
PER_MESSAGE = 25


@dataclass
class Versions:
    # 1100 frames: two shuffle buckets.
    large: view_pb2.ViewSelection
    small: view_pb2.ViewSelection


@pytest.fixture(scope="module")
async def versions(corpus: Corpus) -> Versions:
    dataset = await corpus.dataset()
    large = await corpus.version(dataset, "large")
    await corpus.put_many(large, [make_frame(f"L{i:04d}", context=f"ctx{i % 7}", timestamp=(i // 14) * 10)
                                  for i in range(1100)])
    small = await corpus.version(dataset, "small")
    await corpus.put_many(small, [make_frame(f"S{i:03d}", context=f"ctx{i % 5}", timestamp=i) for i in range(60)])
    return Versions(view_pb2.ViewSelection(version=ref(large)), view_pb2.ViewSelection(version=ref(small)))


def _views(v: Versions) -> dict[str, tuple[view_pb2.View, tuple[int, int]]]:
    weighted = [v.small, view_pb2.ViewSelection(version=v.large.version, weight=0.1)]
    return {
        "sequential-merged": (view_of(v.small, v.large, order=SEQUENTIAL, max_frames=120), (0, 0)),
        "sequential-infinite": (view_of(v.small, order=SEQUENTIAL, infinite=True, max_frames=130), (0, 0)),
        "random": (view_of(v.large, order=RANDOM, random_seed=3, max_frames=120), (0, 0)),
        "random-weighted-infinite": (view_of(*weighted, order=RANDOM, random_seed=4, infinite=True,
                                             max_frames=140), (0, 0)),
        "random-sharded": (view_of(v.small, v.large, order=RANDOM, random_seed=5, max_frames=120), (1, 3)),
        # Selections that run out mid-message: their end is part of the state.
        "random-each-once": (view_of(v.small, order=RANDOM, random_seed=6), (0, 0)),
    }


@pytest.mark.parametrize("name", ["sequential-merged", "sequential-infinite", "random", "random-weighted-infinite",
                                  "random-sharded", "random-each-once"])
async def test_resuming_after_every_frame_equals_the_uninterrupted_stream(
    versions: Versions, metadata_stub: Stub, name: str
) -> None:
    view, shard = _views(versions)[name]
    whole = await iterate(metadata_stub, view, per_message=PER_MESSAGE, shard=shard, frame_cursors=True)
    plain = await iterate(metadata_stub, view, per_message=PER_MESSAGE, shard=shard)
    assert whole.ids == plain.ids and len(whole.ids) > PER_MESSAGE
    assert len(whole.frame_cursors) == len(whole.ids)

    # Every position of the second message, and the last frame of the stream.
    positions = [*range(PER_MESSAGE, min(2 * PER_MESSAGE, len(whole.ids))), len(whole.ids) - 1]
    for position in positions:
        rest = await iterate(metadata_stub, view, cursor=whole.frame_cursors[position], per_message=PER_MESSAGE,
                             shard=shard)
        assert rest.ids == whole.ids[position + 1:], position
        assert rest.selections == whole.selections[position + 1:], position


async def test_frame_cursors_only_when_asked_for(versions: Versions, metadata_stub: Stub) -> None:
    # iterate() asserts that messages carry none without frame_cursors.
    stream = await iterate(metadata_stub, view_of(versions.small), per_message=PER_MESSAGE)
    assert stream.ids and not stream.frame_cursors
