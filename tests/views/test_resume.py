"""Resuming at random cut points gives exactly the uninterrupted stream."""

from __future__ import annotations

import random
from dataclasses import dataclass

import grpc
import pytest

from framevault.v1 import metadata_service_pb2 as ms
from framevault.v1 import view_pb2

from .client import Stub, iterate, view_of, violated_fields
from .corpus import Corpus, make_frame, ref

SEQUENTIAL = view_pb2.ITERATION_ORDER_SEQUENTIAL
RANDOM = view_pb2.ITERATION_ORDER_RANDOM


@dataclass
class Versions:
    large: view_pb2.ViewSelection
    small: view_pb2.ViewSelection


@pytest.fixture(scope="module")
async def versions(corpus: Corpus) -> Versions:
    dataset = await corpus.dataset()
    large = await corpus.version(dataset, "large")
    # 1300 frames: two shuffle buckets; several contexts with equal timestamps.
    await corpus.put_many(large, [make_frame(f"L{i:04d}", context=f"ctx{i % 13}", timestamp=(i // 26) * 10)
                                  for i in range(1300)])
    small = await corpus.version(dataset, "small")
    await corpus.put_many(small, [make_frame(f"S{i:03d}", context=f"ctx{i % 5}", timestamp=i) for i in range(150)])
    return Versions(view_pb2.ViewSelection(version=ref(large)), view_pb2.ViewSelection(version=ref(small)))


def _views(v: Versions) -> dict[str, tuple[view_pb2.View, tuple[int, int]]]:
    weighted = [v.large, view_pb2.ViewSelection(version=v.small.version, weight=3)]
    return {
        "sequential": (view_of(v.large, order=SEQUENTIAL), (0, 0)),
        "sequential-merged": (view_of(v.large, v.small, order=SEQUENTIAL), (0, 0)),
        "sequential-infinite": (view_of(v.small, order=SEQUENTIAL, infinite=True, max_frames=400), (0, 0)),
        "random": (view_of(v.large, order=RANDOM, random_seed=11), (0, 0)),
        "random-weighted": (view_of(*weighted, order=RANDOM, random_seed=12), (0, 0)),
        "random-infinite": (view_of(*weighted, order=RANDOM, random_seed=13, infinite=True, max_frames=1800), (0, 0)),
        "random-sharded": (view_of(v.large, v.small, order=RANDOM, random_seed=14), (1, 3)),
    }


@pytest.mark.parametrize("name", ["sequential", "sequential-merged", "sequential-infinite", "random",
                                  "random-weighted", "random-infinite", "random-sharded"])
async def test_resume_at_random_cut_points_equals_the_uninterrupted_stream(
    versions: Versions, metadata_stub: Stub, name: str
) -> None:
    view, shard = _views(versions)[name]
    whole = await iterate(metadata_stub, view, per_message=100, shard=shard)
    assert whole.ids

    rng = random.Random(name)
    resumed_ids: list[str] = []
    resumed_selections: list[int] = []
    cursor = ""
    reopenings = 0
    while True:
        # Read a few messages of a random size, then drop the connection and
        # continue from the cursor of a message that was received.
        part = await iterate(metadata_stub, view, cursor=cursor, per_message=rng.randint(1, 90), shard=shard,
                             limit=rng.randint(1, 4))
        if not part.ids:
            break
        reopenings += 1
        kept_frames, cursor = part.cursors[rng.randrange(len(part.cursors))]
        resumed_ids += part.ids[:kept_frames]
        resumed_selections += part.selections[:kept_frames]

    assert resumed_ids == whole.ids
    assert resumed_selections == whole.selections
    assert reopenings > 5


async def test_the_last_cursor_of_a_finished_stream_resumes_to_nothing(versions: Versions, metadata_stub: Stub) -> None:
    for view, shard in _views(versions).values():
        whole = await iterate(metadata_stub, view, per_message=1000, shard=shard)
        rest = await iterate(metadata_stub, view, cursor=whole.cursors[-1][1], shard=shard)
        assert rest.ids == []


@pytest.mark.parametrize("name", ["sequential", "sequential-merged", "sequential-infinite", "random",
                                  "random-weighted", "random-infinite", "random-sharded"])
async def test_resuming_after_any_frame_of_a_message_equals_the_uninterrupted_stream(
    versions: Versions, metadata_stub: Stub, name: str
) -> None:
    """Per-frame cursors (IterateFramesRequest.frame_cursors) resume exactly
    after their frame, also in the middle of a message."""
    view, shard = _views(versions)[name]
    per_message = 25
    whole = await iterate(metadata_stub, view, per_message=per_message, shard=shard, frame_cursors=True)
    plain = await iterate(metadata_stub, view, per_message=per_message, shard=shard)
    assert whole.ids == plain.ids and len(whole.frame_cursors) == len(whole.ids)

    # Every position of the second message (and the stream's last frame),
    # each followed for two messages.
    for position in [*range(per_message, 2 * per_message), len(whole.ids) - 1]:
        rest = await iterate(metadata_stub, view, cursor=whole.frame_cursors[position], per_message=per_message,
                             shard=shard, limit=2)
        expected = slice(position + 1, position + 1 + min(2 * per_message, len(whole.ids) - position - 1))
        assert rest.ids == whole.ids[expected], position
        assert rest.selections == whole.selections[expected], position


async def test_frame_cursors_only_when_asked_for(versions: Versions, metadata_stub: Stub) -> None:
    # iterate() also asserts that messages carry none without frame_cursors.
    stream = await iterate(metadata_stub, view_of(versions.small), per_message=25)
    assert stream.ids and not stream.frame_cursors


@pytest.mark.parametrize("name", ["sequential", "sequential-merged", "sequential-infinite", "random",
                                  "random-weighted", "random-infinite", "random-sharded"])
async def test_a_message_cursor_and_an_offset_resume_after_any_frame_of_the_next_message(
    versions: Versions, metadata_stub: Stub, name: str
) -> None:
    """resume_offset k after the cursor of message m resumes right after the k-th frame of message
    m + 1 (from the view's start without a cursor), without per-frame cursors."""
    view, shard = _views(versions)[name]
    per_message = 25
    whole = await iterate(metadata_stub, view, per_message=per_message, shard=shard)
    assert all(count == per_message * (i + 1) for i, (count, _) in enumerate(whole.cursors[:-1]))

    # The first message, the second one, a whole message (its offset ends where its cursor does)
    # and the stream's last frame.
    for position in [0, 1, *range(per_message, 2 * per_message), len(whole.ids) - 1]:
        message = position // per_message
        base = whole.cursors[message - 1][1] if message else ""
        offset = position + 1 - message * per_message
        rest = await iterate(metadata_stub, view, cursor=base, offset=offset, per_message=per_message,
                             shard=shard, limit=2)
        expected = slice(position + 1, position + 1 + min(2 * per_message, len(whole.ids) - position - 1))
        assert rest.ids == whole.ids[expected], position
        assert rest.selections == whole.selections[expected], position
        if not rest.ids:
            continue
        # The first message says where it starts; that cursor resumes the same frames.
        assert rest.start_cursors[0] and not any(rest.start_cursors[1:]), position
        again = await iterate(metadata_stub, view, cursor=rest.start_cursors[0], per_message=per_message,
                              shard=shard, limit=2)
        assert again.ids == rest.ids, position


async def test_an_offset_past_the_end_resumes_to_nothing(versions: Versions, metadata_stub: Stub) -> None:
    for view, shard in _views(versions).values():
        whole = await iterate(metadata_stub, view, per_message=1000, shard=shard)
        assert (await iterate(metadata_stub, view, cursor=whole.cursors[-1][1], offset=5, shard=shard)).ids == []


async def test_without_an_offset_no_message_carries_a_start_cursor(versions: Versions, metadata_stub: Stub) -> None:
    whole = await iterate(metadata_stub, view_of(versions.small), per_message=25)
    assert len(whole.start_cursors) == 6 and not any(whole.start_cursors)


@pytest.mark.parametrize("offset", [-1, -(2**31), 1001, 2**31 - 1])
async def test_an_offset_out_of_range_is_refused_naming_it(versions: Versions, metadata_stub: Stub,
                                                           offset: int) -> None:
    whole = await iterate(metadata_stub, view_of(versions.small), per_message=25, limit=1)
    request = ms.IterateFramesRequest(view=view_of(versions.small), resume_cursor=whole.cursors[0][1],
                                      resume_offset=offset)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in metadata_stub.IterateFrames(request, timeout=60):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["resume_offset"]
