"""PyTorch datasets over a ``DataView``.

:class:`FrameDataset` streams a view (an ``IterableDataset``): each
DataLoader worker of each rank reads its own shard, so every frame is read
once per epoch with no coordination; random views get a new permutation per
epoch (:meth:`FrameDataset.set_epoch`); sources and masks are fetched ahead
within a byte budget and decoded in the worker. Read it through
:class:`FrameLoader` (a ``DataLoader``) to save and restore the position with
``state_dict()`` / ``load_state_dict()``: the position advances when a batch
reaches the training loop, so a job restarted from a saved state neither
repeats nor skips a frame.

:class:`FrameListDataset` holds a small view's frames (``DataView.to_list``)
for random access.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from framevault.sdk.dataset import DatasetVersion
from framevault.sdk.dataview import DataView, IterationOrder, ViewIterator
from framevault.sdk.frames import Annotation, Frame, FrameGroup
from framevault.sdk.runtime import SyncIterator, configure, get_settings, run_sync
from framevault.sdk.settings import ClientSettings
from framevault.sdk.training.decode import MaskLabelMap, decode_image, enumerate_mask_labels
from framevault.sdk.training.fetch import ByteBudget, FetchedFrame, fetch_frame, frame_size, prefetch
from framevault.sdk.training.sharding import (
    LoaderState,
    ShardLayout,
    distributed_rank_and_world_size,
    epoch_seed,
)

DEFAULT_PREFETCH_BYTES = 64 * 1024 * 1024
DEFAULT_PREFETCH_FRAMES = 16


@dataclass
class FrameSample:
    """One decoded frame: its pixels, label maps and ROIs.

    ``images`` maps each source id to a ``C x H x W`` uint8 tensor;
    ``label_maps`` maps the source ids that have a mask to an ``H x W`` int64
    tensor of class ids (``-1``: no label). ``rois`` are the frame's
    annotations (of every source, for a frame group) with their ``label_ids``
    when the view has a label enumeration.
    """

    frame: Frame
    images: dict[str, torch.Tensor] = field(default_factory=dict)
    label_maps: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def image(self) -> torch.Tensor:
        """The image of the frame's first source.

        Raises:
            ValueError: the frame has no source with content.
        """
        for image in self.images.values():
            return image
        raise ValueError(f"frame {self.frame.id!r} has no source to decode")

    @property
    def label_map(self) -> torch.Tensor | None:
        """The label map of the first source's mask, or None without masks."""
        return next(iter(self.label_maps.values()), None)

    @property
    def rois(self) -> list[Annotation]:
        frame = self.frame
        return frame.all_annotations if isinstance(frame, FrameGroup) else list(frame.annotations)


Transform = Callable[[FrameSample], Any]


class _SampleDecoder:
    """Decodes fetched frames into samples; reads each version's mask labels once per process."""

    def __init__(self, class_ids: Mapping[str, int] | None) -> None:
        self.class_ids = dict(class_ids) if class_ids is not None else None
        self._label_maps: dict[str, MaskLabelMap] = {}

    def label_map_of(self, frame: Frame) -> MaskLabelMap:
        version_id = frame.stored.version_id
        if not version_id:
            raise ValueError(f"frame {frame.id!r} came without its version_id (a projection must keep it "
                             "to read the version's mask labels)")
        label_map = self._label_maps.get(version_id)
        if label_map is None:
            mask_labels = run_sync(DatasetVersion.aget_version(version_id=version_id)).mask_labels
            class_ids = self.class_ids if self.class_ids is not None else enumerate_mask_labels(mask_labels)
            label_map = self._label_maps[version_id] = MaskLabelMap(mask_labels, class_ids)
        return label_map

    def __call__(self, fetched: FetchedFrame) -> FrameSample:
        sample = FrameSample(fetched.frame)
        for source_id, data in fetched.sources.items():
            sample.images[source_id] = torch.from_numpy(decode_image(data)).permute(2, 0, 1)
        if fetched.masks:
            label_map = self.label_map_of(fetched.frame)
            for source_id, data in fetched.masks.items():
                sample.label_maps[source_id] = torch.from_numpy(label_map(data))
        return sample


@dataclass(frozen=True)
class _CreatorSettings:
    """The SDK settings of the process that made a dataset, and that process."""

    settings: ClientSettings = field(default_factory=get_settings)
    pid: int = field(default_factory=os.getpid)

    def apply_in_worker(self) -> None:
        """Points a worker process's SDK at the creator's settings (a new process starts from the environment)."""
        if os.getpid() != self.pid and get_settings() != self.settings:
            configure(**{f.name: getattr(self.settings, f.name) for f in fields(self.settings)})


@dataclass
class Delivery:
    """A sample and where its shard stands once the sample is delivered."""

    shard_index: int
    cursor: str
    sample: Any


class FrameDataset(IterableDataset[Any]):
    """A view's frames, decoded, sharded by rank x DataLoader worker.

    Args:
        view: the frames (its order, seed, labels and mapping rules apply, as
            they are when the dataset is made).
        transform: called with each :class:`FrameSample` in the worker; what it
            returns is what the training loop gets (default: the sample).
        rank, world_size: this process among the job's processes (default:
            ``torch.distributed`` when initialized, else ``RANK`` / ``WORLD_SIZE``, else 0 of 1).
        class_ids: label -> class id of the label maps' pixels (default: the
            view's label enumeration when it has one, else each version's mask
            labels numbered 0, 1, ... in the order they are listed).
        decode: False hands the transform a :class:`FetchedFrame` (raw bytes) instead of a sample.
        masks: fetch and decode each source's default mask.
        prefetch_bytes: at most this many source and mask bytes are held by a
            worker at once (fetching, fetched, being decoded); a single larger
            frame is fetched alone.
        prefetch_frames: at most this many frames fetched ahead.
        cache_dir: the content-addressed cache ``blob:`` contents are downloaded into
            (default ``~/.cache/framevault/blobs``).
    """

    def __init__(
        self,
        view: DataView,
        transform: Transform | None = None,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        class_ids: Mapping[str, int] | None = None,
        decode: bool = True,
        masks: bool = True,
        prefetch_bytes: int = DEFAULT_PREFETCH_BYTES,
        prefetch_frames: int = DEFAULT_PREFETCH_FRAMES,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if prefetch_bytes < 1 or prefetch_frames < 1:
            raise ValueError("prefetch_bytes and prefetch_frames must be >= 1")
        detected_rank, detected_world = distributed_rank_and_world_size()
        self.rank = detected_rank if rank is None else rank
        self.world_size = detected_world if world_size is None else world_size
        ShardLayout(self.rank, self.world_size, 1)  # validates rank and world size now
        self.view = view.to_proto()
        self.random_order = view.iteration_order is IterationOrder.random
        self.transform = transform
        self.class_ids = dict(class_ids) if class_ids is not None else (view.get_labels() or None)
        self.decode = decode
        self.masks = masks
        self.prefetch_bytes = prefetch_bytes
        self.prefetch_frames = prefetch_frames
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
        self.settings = _CreatorSettings()
        self.peak_prefetch_bytes = 0
        """In the process that read: the most source and mask bytes held at once."""
        self._state = LoaderState()

    # -- epochs and position --

    @property
    def epoch(self) -> int:
        return self._state.epoch

    def set_epoch(self, epoch: int) -> None:
        """Starts ``epoch`` (a new order in random mode); the current unfinished epoch goes on where it stands."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch != self._state.epoch or self._state.complete:
            self._state.start_epoch(epoch)

    def state_dict(self) -> dict[str, Any]:
        """The epoch and, per shard of this rank, the cursor after the last frame delivered (JSON-ready)."""
        return self._state.to_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continues from a state saved by :meth:`state_dict` (same rank, world size and worker count).

        Raises:
            ValueError: the state is not one, or was saved with another shard layout.
        """
        restored = LoaderState.from_dict(state, None)
        saved = restored.layout
        if saved is not None and (saved.rank, saved.world_size) != (self.rank, self.world_size):
            raise ValueError(f"state: saved by rank {saved.rank} of {saved.world_size}, restored into rank "
                             f"{self.rank} of {self.world_size}; the shards would not be the same")
        self._state = restored

    def begin_iteration(self, workers_per_rank: int) -> None:
        """Called before reading: a finished epoch rolls over to the next; the shard layout is fixed."""
        layout = ShardLayout(self.rank, self.world_size, workers_per_rank)
        if self._state.complete:
            self._state.start_epoch(self._state.epoch + 1)
        if self._state.layout is not None and self._state.layout != layout and self._state.cursors:
            LoaderState.from_dict(self._state.to_dict(), layout)  # raises, naming both layouts
        self._state.layout = layout

    def delivered(self, shard_index: int, cursor: str, frames: int) -> None:
        self._state.advance(shard_index, cursor, frames)

    def finish_epoch(self) -> None:
        self._state.complete = True

    def epoch_view(self) -> Any:
        """The view of the current epoch: in random order, seeded for the epoch."""
        view = type(self.view)()
        view.CopyFrom(self.view)
        if self.random_order:
            view.random_seed = epoch_seed(self.view.random_seed, self._state.epoch)
        return view

    # -- reading --

    def deliveries(self) -> SyncIterator[list[Delivery]]:
        """This worker's shard, from where the state says it stands: fetched frames with their cursors, in groups."""
        self.settings.apply_in_worker()
        info = get_worker_info()
        worker_id, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        layout = ShardLayout(self.rank, self.world_size, workers)
        if self._state.layout is not None and self._state.layout != layout:
            raise ValueError(f"the state is for {self._state.layout.workers_per_rank} workers per rank, "
                             f"the DataLoader has {workers}")
        shard_index = layout.shard_index(worker_id)
        resume = "" if self._state.complete else self._state.cursors.get(shard_index, "")
        iterator = ViewIterator(self.epoch_view(), shard_index, layout.shard_count, resume)
        return SyncIterator(self._deliver(iterator, shard_index))

    async def _deliver(self, iterator: ViewIterator, shard_index: int) -> AsyncIterator[list[Delivery]]:
        budget = ByteBudget(self.prefetch_bytes)

        async def frames() -> AsyncIterator[tuple[Frame, str]]:
            async for frame in iterator:
                yield frame, iterator.cursor

        try:
            async for group in prefetch(frames(), budget, max_frames_ahead=self.prefetch_frames,
                                        with_masks=self.masks, cache_dir=self.cache_dir):
                yield [Delivery(shard_index, fetched.cursor, fetched) for fetched in group]
        finally:
            self.peak_prefetch_bytes = max(self.peak_prefetch_bytes, budget.peak)
            await iterator.aclose()

    def _samples(self) -> Any:
        decoder = _SampleDecoder(self.class_ids)
        with self.deliveries() as groups:
            for group in groups:
                for delivery in group:
                    # Decoding runs in this thread while the SDK's loop keeps fetching the next frames.
                    sample: Any = decoder(delivery.sample) if self.decode else delivery.sample
                    if self.transform is not None:
                        sample = self.transform(sample)
                    yield Delivery(delivery.shard_index, delivery.cursor, sample)

    def __iter__(self) -> Any:
        if get_worker_info() is not None:
            # A worker of a plain DataLoader: its position stays in the worker (use FrameLoader to keep it).
            for delivery in self._samples():
                yield delivery.sample
            return
        self.begin_iteration(1)
        for delivery in self._samples():
            self.delivered(delivery.shard_index, delivery.cursor, 1)
            yield delivery.sample
        self.finish_epoch()


class _DeliveryStream(IterableDataset[Delivery]):
    """What FrameLoader's workers read: samples with the cursor of their shard."""

    def __init__(self, frames: FrameDataset) -> None:
        self.frames = frames

    def __iter__(self) -> Any:
        return self.frames._samples()


@dataclass
class DeliveredBatch:
    """A collated batch with the shard it came from (a batch holds one worker's frames) and that shard's cursor."""

    shard_index: int
    cursor: str
    frames: int
    payload: Any


class _CollateDeliveries:
    """Collates the samples with the user's function and keeps the cursor of the batch's last frame."""

    def __init__(self, collate: Callable[[list[Any]], Any] | None) -> None:
        self.collate = collate

    def __call__(self, items: Delivery | Sequence[Delivery]) -> DeliveredBatch:
        if isinstance(items, Delivery):  # batch_size=None: one sample at a time, no collation
            return DeliveredBatch(items.shard_index, items.cursor, 1,
                                  self.collate(items.sample) if self.collate else items.sample)
        samples = [item.sample for item in items]
        last = items[-1]
        return DeliveredBatch(last.shard_index, last.cursor, len(items),
                              self.collate(samples) if self.collate else samples)


def worker_context() -> multiprocessing.context.BaseContext:
    """The forkserver context, its server preloading this module (and so torch) once."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])  # type: ignore[attr-defined]
    return context


class FrameLoader(DataLoader[Any]):
    """A ``DataLoader`` over a :class:`FrameDataset` that keeps the dataset's position.

    ``collate_fn`` gets a list of what the dataset's transform returned
    (default: the list itself). Workers are forked from a ``forkserver``
    that has imported torch and this module, unless ``multiprocessing_context``
    says otherwise: the training process itself holds gRPC channels and the
    SDK's event-loop thread, which a child forked from it cannot use, and
    ``spawn`` imports torch again in every worker of every epoch. A batch advances the position when the training loop receives
    it; ``state_dict()`` is the dataset's.

    Raises:
        ValueError: ``persistent_workers`` (workers must start from the position at each epoch).
    """

    def __init__(
        self,
        dataset: FrameDataset,
        batch_size: int | None = 1,
        *,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        multiprocessing_context: Any = None,
        persistent_workers: bool = False,
        **options: Any,
    ) -> None:
        if persistent_workers:
            raise ValueError("persistent_workers: a FrameLoader's workers start from the saved position each epoch")
        if num_workers > 0 and multiprocessing_context is None:
            multiprocessing_context = worker_context()
        self.frames = dataset
        self.workers_per_rank = max(1, num_workers)
        super().__init__(
            _DeliveryStream(dataset), batch_size=batch_size, num_workers=num_workers,
            collate_fn=_CollateDeliveries(collate_fn), multiprocessing_context=multiprocessing_context, **options,
        )

    def __iter__(self) -> Any:
        self.frames.begin_iteration(self.workers_per_rank)
        for batch in super().__iter__():
            self.frames.delivered(batch.shard_index, batch.cursor, batch.frames)
            yield batch.payload
        self.frames.finish_epoch()

    def state_dict(self) -> dict[str, Any]:
        return self.frames.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.frames.load_state_dict(state)


class FrameListDataset(Dataset[Any]):
    """A small view's frames for random access: frames are listed once, bytes fetched and decoded per item.

    Args: as :class:`FrameDataset` (``view``, ``transform``, ``class_ids``,
    ``masks``, ``cache_dir``).

    Raises:
        ValueError: the view is infinite without a frame limit.
    """

    def __init__(
        self,
        view: DataView,
        transform: Transform | None = None,
        *,
        class_ids: Mapping[str, int] | None = None,
        masks: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.frames: list[Frame] = view.to_list()
        self.transform = transform
        self.class_ids = dict(class_ids) if class_ids is not None else (view.get_labels() or None)
        self.masks = masks
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
        self.settings = _CreatorSettings()
        self._decoder: _SampleDecoder | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Any:
        self.settings.apply_in_worker()
        if self._decoder is None:
            self._decoder = _SampleDecoder(self.class_ids)
        frame = self.frames[index]
        fetched = run_sync(fetch_frame(frame, "", frame_size(frame, self.masks), self.masks, self.cache_dir))
        sample: Any = self._decoder(fetched)
        return self.transform(sample) if self.transform is not None else sample
