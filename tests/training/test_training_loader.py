"""The PyTorch datasets over a DataView, with real torch against the session's services.

The loaders run synchronously in a thread (``asyncio.to_thread``): the services
run on this test's event loop, which must stay free to answer them. Workers are
real DataLoader worker processes.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from framevault.sdk import ClientSettings, DataView, SingleFrame, parse_digest
from framevault.sdk.training import FrameDataset, FrameListDataset, FrameLoader, FrameSample

from .corpus import Corpus, expected_label_map, make_corpus

RANKS = 2
WORKERS = 2
FRAMES = 23  # not a multiple of the shard count or the batch size


def random_view(corpus: Corpus) -> DataView:
    view = DataView(iteration_order="random", random_seed=11)
    view.add_query(dataset_name=corpus.dataset_name)
    return view


def frame_ids(batch: list[FrameSample]) -> list[str]:
    return [sample.frame.id or "" for sample in batch]


def rank_datasets(corpus: Corpus) -> list[FrameDataset]:
    return [FrameDataset(random_view(corpus), rank=rank, world_size=RANKS) for rank in range(RANKS)]


def read_epoch(loaders: list[FrameLoader], epoch: int) -> list[list[str]]:
    """Every rank's frames of one epoch, in the order its training loop got them."""
    out = []
    for loader in loaders:
        loader.frames.set_epoch(epoch)
        out.append([frame_id for batch in loader for frame_id in frame_ids(batch)])
    return out


async def test_ranks_times_workers_read_every_frame_once_per_epoch_and_reshuffle(
        sdk: ClientSettings, tmp_path: Path) -> None:
    corpus = await make_corpus(tmp_path, FRAMES)

    def run() -> list[list[list[str]]]:
        loaders = [FrameLoader(dataset, batch_size=3, num_workers=WORKERS) for dataset in rank_datasets(corpus)]
        return [read_epoch(loaders, epoch) for epoch in range(2)]

    epochs = await asyncio.to_thread(run)
    for per_rank in epochs:
        delivered = Counter(frame_id for rank in per_rank for frame_id in rank)
        assert delivered == Counter(corpus.frame_ids)  # each frame exactly once, across all ranks and workers
        assert all(per_rank), "every rank gets frames"
    first, second = ([frame_id for rank in per_rank for frame_id in rank] for per_rank in epochs)
    assert first != second, "a second epoch in random mode reorders"


async def test_restart_from_a_saved_state_completes_the_epoch_exactly(sdk: ClientSettings, tmp_path: Path) -> None:
    corpus = await make_corpus(tmp_path, FRAMES)
    epoch = 1  # past epoch 0, so the restored epoch's own order matters

    def uninterrupted() -> list[list[str]]:
        loaders = [FrameLoader(dataset, batch_size=2, num_workers=WORKERS) for dataset in rank_datasets(corpus)]
        return read_epoch(loaders, epoch)

    def interrupted(batches_before_stop: int) -> tuple[list[list[str]], list[list[str]], list[dict[str, Any]]]:
        heads, states = [], []
        for dataset in rank_datasets(corpus):
            dataset.set_epoch(epoch)
            loader = FrameLoader(dataset, batch_size=2, num_workers=WORKERS)
            batches = iter(loader)
            heads.append([frame_id for _ in range(batches_before_stop) for frame_id in frame_ids(next(batches))])
            states.append(json.loads(json.dumps(loader.state_dict())))  # as a job would write it to disk
            batches.close()  # the job dies here
        tails = []
        for rank, (dataset, state) in enumerate(zip(rank_datasets(corpus), states, strict=True)):
            dataset.load_state_dict(state)
            assert dataset.epoch == epoch
            dataset.set_epoch(epoch)  # the training loop's own call after restart keeps the position
            loader = FrameLoader(dataset, batch_size=2, num_workers=WORKERS)
            tails.append([frame_id for batch in loader for frame_id in frame_ids(batch)])
            assert dataset.state_dict()["complete"], rank
        return heads, tails, states

    full = await asyncio.to_thread(uninterrupted)
    heads, tails, states = await asyncio.to_thread(interrupted, 3)
    for rank in range(RANKS):
        assert len(heads[rank]) == 6 and states[rank]["frames_delivered"] == 6
        assert not set(heads[rank]) & set(tails[rank]), "no frame is repeated after the restart"
        assert Counter(heads[rank] + tails[rank]) == Counter(full[rank]), "no frame is skipped"
    assert Counter(f for rank in range(RANKS) for f in heads[rank] + tails[rank]) == Counter(corpus.frame_ids)


async def test_state_of_another_shard_layout_is_refused(sdk: ClientSettings, tmp_path: Path) -> None:
    corpus = await make_corpus(tmp_path, 4, masks=False)

    def run() -> tuple[str, str]:
        dataset = FrameDataset(random_view(corpus), rank=0, world_size=RANKS)
        loader = FrameLoader(dataset, batch_size=1, num_workers=0)
        batches = iter(loader)
        next(batches)
        state = loader.state_dict()
        batches.close()
        other_rank = FrameDataset(random_view(corpus), rank=1, world_size=RANKS)
        try:
            other_rank.load_state_dict(state)
            rank_error = ""
        except ValueError as error:
            rank_error = str(error)
        more_workers = FrameDataset(random_view(corpus), rank=0, world_size=RANKS)
        more_workers.load_state_dict(state)
        try:
            next(iter(FrameLoader(more_workers, batch_size=1, num_workers=WORKERS)))
            worker_error = ""
        except ValueError as error:
            worker_error = str(error)
        return rank_error, worker_error

    rank_error, worker_error = await asyncio.to_thread(run)
    assert "saved by rank 0 of 2, restored into rank 1 of 2" in rank_error
    assert "with 1 workers" in worker_error and "with 2 workers" in worker_error


def describe(sample: FrameSample) -> dict[str, Any]:
    """A user transform: what a detection model would take from a sample."""
    return {"id": sample.frame.id, "image": sample.image, "label_map": sample.label_map,
            "boxes": torch.tensor([roi.box2d_xywh for roi in sample.rois]),
            "labels": [roi.labels for roi in sample.rois]}


def stack_batch(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A user collate: images and label maps stacked, ROIs kept per frame."""
    return {"ids": [item["id"] for item in items], "images": torch.stack([item["image"] for item in items]),
            "label_maps": torch.stack([item["label_map"] for item in items]),
            "boxes": [item["boxes"] for item in items], "labels": [item["labels"] for item in items]}


async def test_images_masks_and_rois_reach_the_transform_and_collate(sdk: ClientSettings, tmp_path: Path) -> None:
    corpus = await make_corpus(tmp_path, 5)

    def run() -> list[dict[str, Any]]:
        view = DataView()
        view.add_query(dataset_name=corpus.dataset_name)
        return list(FrameLoader(FrameDataset(view, describe), batch_size=2, collate_fn=stack_batch))

    batches = await asyncio.to_thread(run)
    assert [len(batch["ids"]) for batch in batches] == [2, 2, 1]
    for batch in batches:
        assert batch["images"].dtype == torch.uint8 and batch["label_maps"].dtype == torch.int64
        for position, frame_id in enumerate(batch["ids"]):
            index = corpus.frame_ids.index(frame_id)
            pixels = np.array(Image.open(corpus.image_paths[frame_id]).convert("RGB"))
            assert torch.equal(batch["images"][position], torch.from_numpy(pixels).permute(2, 0, 1))
            assert np.array_equal(batch["label_maps"][position].numpy(), expected_label_map((24, 16), index))
            assert batch["boxes"][position].tolist() == [[1.0, 2.0, 3.0 + index, 4.0]]
            assert batch["labels"][position] == [["person" if index % 2 else "car"]]


async def test_label_maps_use_the_given_class_ids(sdk: ClientSettings, tmp_path: Path) -> None:
    corpus = await make_corpus(tmp_path, 2)
    view = DataView()
    view.add_query(dataset_name=corpus.dataset_name)

    def run() -> list[FrameSample]:
        dataset = FrameListDataset(view, class_ids={"pedestrian": 5, "void": 2})
        return [dataset[index] for index in range(len(dataset))]

    samples = await asyncio.to_thread(run)
    for sample in samples:
        index = corpus.frame_ids.index(sample.frame.id or "")
        # (255, 0, 0) is ["person", "pedestrian"]: its first label with a class id counts.
        by_value = {0: -1, 1: 5, 3: 2, -1: -1}
        expected = np.vectorize(by_value.get)(expected_label_map((24, 16), index))
        assert sample.label_map is not None and np.array_equal(sample.label_map.numpy(), expected)


async def test_map_style_dataset_gives_random_access_through_a_dataloader(sdk: ClientSettings, tmp_path: Path) -> None:
    corpus = await make_corpus(tmp_path, 6)
    view = DataView()
    view.add_query(dataset_name=corpus.dataset_name)

    def run() -> tuple[int, list[str], list[str]]:
        dataset = FrameListDataset(view, describe)
        loader = torch.utils.data.DataLoader(dataset, batch_size=2, shuffle=True, num_workers=WORKERS,
                                             multiprocessing_context="spawn", collate_fn=stack_batch)
        shuffled = [frame_id for batch in loader for frame_id in batch["ids"]]
        return len(dataset), shuffled, [dataset[5]["id"], dataset[0]["id"]]

    length, shuffled, picked = await asyncio.to_thread(run)
    assert length == 6 and sorted(shuffled) == sorted(corpus.frame_ids)
    assert set(picked) <= set(corpus.frame_ids) and picked[0] != picked[1]


def blob_size(uri: str) -> tuple[str, int]:
    digest = parse_digest(uri)
    return digest.hash, digest.size


async def test_prefetch_holds_at_most_its_byte_budget(sdk: ClientSettings, tmp_path: Path) -> None:
    size = (48, 48)  # noise PNGs of ~7 KB, masks of a few hundred bytes
    corpus = await make_corpus(tmp_path, 12, size)
    frame_bytes = {f: corpus.image_paths[f].stat().st_size + corpus.mask_paths[f].stat().st_size
                   for f in corpus.frame_ids}
    largest = max(frame_bytes.values())
    budget = 3 * largest
    view = DataView()
    view.add_query(dataset_name=corpus.dataset_name)

    def run(prefetch_bytes: int) -> tuple[list[str], int, int]:
        cache = tmp_path / f"cache-{prefetch_bytes}"
        delivered: set[str] = set()
        held_most = 0

        def count_held(sample: FrameSample) -> str:
            # The bytes fetched so far (blobs in the cache, complete or being written) of frames not
            # handed over before this one: what the loader holds while this frame is decoded.
            nonlocal held_most
            frame = sample.frame
            assert isinstance(frame, SingleFrame) and frame.mask_source
            sizes = dict(blob_size(uri) for uri in (frame.source, frame.mask_source))
            fetched = {path.name.lstrip(".").partition(".")[0] for path in cache.glob("sha256/*/*")}
            held = sum(known for digest, known in all_sizes.items() if digest in fetched and digest not in delivered)
            held_most = max(held_most, held)
            delivered.update(sizes)
            return frame.id or ""

        dataset = FrameDataset(view, count_held, prefetch_bytes=prefetch_bytes, prefetch_frames=8, cache_dir=cache)
        ids = list(dataset)
        return ids, held_most, dataset.peak_prefetch_bytes

    all_sizes = dict(blob_size(uri) for frame in await view.ato_list() if isinstance(frame, SingleFrame)
                     for uri in (frame.source, frame.mask_source or ""))
    ids, held, peak = await asyncio.to_thread(run, budget)
    assert sorted(ids) == corpus.frame_ids
    assert held <= budget and peak <= budget, "the bytes fetched ahead and held never exceed the budget"
    assert held > largest, "frames are fetched ahead while one is consumed"
    # A budget below one frame still reads everything, one frame at a time.
    ids, held, peak = await asyncio.to_thread(run, 1)
    assert sorted(ids) == corpus.frame_ids and held <= largest and peak <= largest
