"""Sequential and random order of IterateFrames, against the real mongod."""

from __future__ import annotations

import random

from framevault.v1 import view_pb2

from .client import Stub, frame_ids, iterate, view_of
from .corpus import Corpus, make_frame, ref

SEQUENTIAL = view_pb2.ITERATION_ORDER_SEQUENTIAL
RANDOM = view_pb2.ITERATION_ORDER_RANDOM


async def _mixed_contexts(corpus: Corpus) -> tuple[object, list]:
    """Many contexts with equal timestamps inside them, plus frames whose
    context id defaulted to their source URI, written in shuffled order."""
    rng = random.Random(5)
    frames = []
    for c in range(25):
        for t in range(12):
            # Two frames per timestamp: the frame id breaks the tie.
            for suffix in ("b", "a"):
                frames.append(make_frame(f"f-{c:02d}-{t:02d}-{suffix}", context=f"video-{c:02d}", timestamp=t * 33 // 2))
    frames += [make_frame(f"still-{i:03d}") for i in range(40)]  # context id = their URI
    frames += [make_frame(f"late-{i}", context="video-07", timestamp=0) for i in range(3)]
    rng.shuffle(frames)
    version = await corpus.version(await corpus.dataset())
    await corpus.put_many(version, frames)
    return version, frames


async def test_sequential_order_groups_contexts_and_orders_timestamps(corpus: Corpus, metadata_stub: Stub) -> None:
    version, frames = await _mixed_contexts(corpus)
    expected = [f.id for f in sorted(frames, key=lambda f: (f.context_id, f.timestamp, f.id))]

    stream = await iterate(metadata_stub, view_of(view_pb2.ViewSelection(version=ref(version)), order=SEQUENTIAL),
                           per_message=37)

    assert stream.ids == expected
    assert len(stream.cursors) == -(-len(expected) // 37)
    assert all(frame.version_id == version.id and frame.dataset_id == version.dataset_id for frame in stream.frames)
    # Defaulted context ids are the source URIs and sort among the others.
    stills = [f for f in stream.frames if f.id.startswith("still-")]
    assert all(f.context_id == f.sources[0].uri for f in stills)


async def test_unspecified_order_is_sequential(corpus: Corpus, metadata_stub: Stub) -> None:
    version, frames = await _mixed_contexts(corpus)
    ids = await frame_ids(metadata_stub, view_of(view_pb2.ViewSelection(version=ref(version))))
    assert ids == [f.id for f in sorted(frames, key=lambda f: (f.context_id, f.timestamp, f.id))]


async def test_random_order_is_a_seeded_permutation_over_several_buckets(corpus: Corpus, metadata_stub: Stub) -> None:
    version = await corpus.version(await corpus.dataset())
    # 2500 frames: four shuffle buckets.
    await corpus.put_many(version, [make_frame(f"r{i:05d}", context=f"c{i % 7}", timestamp=i) for i in range(2500)])
    selection = view_pb2.ViewSelection(version=ref(version))

    first = await frame_ids(metadata_stub, view_of(selection, order=RANDOM, random_seed=42), per_message=500)
    again = await frame_ids(metadata_stub, view_of(selection, order=RANDOM, random_seed=42), per_message=77)
    other = await frame_ids(metadata_stub, view_of(selection, order=RANDOM, random_seed=43), per_message=500)

    assert first == again
    assert sorted(first) == sorted(other) == [f"r{i:05d}" for i in range(2500)]
    assert first != other
    # Far from the stored or the sequential order.
    displaced = sum(1 for i, frame_id in enumerate(first) if frame_id == f"r{i:05d}")
    assert displaced < 25


async def test_max_frames_stops_the_stream(corpus: Corpus, metadata_stub: Stub) -> None:
    version = await corpus.version(await corpus.dataset())
    await corpus.put_many(version, [make_frame(f"m{i:03d}", context="c", timestamp=i) for i in range(50)])
    selection = view_pb2.ViewSelection(version=ref(version))

    ids = await frame_ids(metadata_stub, view_of(selection, max_frames=17), per_message=5)
    assert ids == [f"m{i:03d}" for i in range(17)]
    ids = await frame_ids(metadata_stub, view_of(selection, max_frames=120, infinite=True), per_message=50)
    assert ids == [f"m{i:03d}" for i in range(50)] * 2 + [f"m{i:03d}" for i in range(20)]


async def test_infinite_random_reshuffles_every_cycle(corpus: Corpus, metadata_stub: Stub) -> None:
    version = await corpus.version(await corpus.dataset())
    names = [f"i{i:03d}" for i in range(60)]
    await corpus.put_many(version, [make_frame(n) for n in names])
    view = view_of(view_pb2.ViewSelection(version=ref(version)), order=RANDOM, random_seed=9, infinite=True,
                   max_frames=180)

    ids = await frame_ids(metadata_stub, view, per_message=25)

    cycles = [ids[0:60], ids[60:120], ids[120:180]]
    assert all(sorted(cycle) == names for cycle in cycles)
    assert cycles[0] != cycles[1] != cycles[2] != cycles[0]


async def test_empty_view_ends_even_when_infinite(corpus: Corpus, metadata_stub: Stub) -> None:
    version = await corpus.version(await corpus.dataset())
    for order in (SEQUENTIAL, RANDOM):
        view = view_of(view_pb2.ViewSelection(version=ref(version)), order=order, infinite=True)
        assert await frame_ids(metadata_stub, view) == []


async def test_large_frames_split_messages_at_the_size_limit(corpus: Corpus, metadata_stub: Stub) -> None:
    version = await corpus.version(await corpus.dataset())
    frames = [make_frame(f"big{i:03d}", context="c", timestamp=i) for i in range(100)]
    for frame in frames:
        frame.blob = bytes([frame.timestamp]) * 60_000
    await corpus.put_many(version, frames)

    stream = await iterate(metadata_stub, view_of(view_pb2.ViewSelection(version=ref(version))), per_message=1000)

    assert stream.ids == [f.id for f in frames]
    # About 6 MB of frames, in messages that end once they reach 2 MiB.
    assert len(stream.cursors) == 3
    assert stream.frames[99].blob == frames[99].blob
