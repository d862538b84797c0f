"""Training on framevault views with PyTorch (``pip install 'framevault[torch]'``).

::

    from framevault.sdk import DataView
    from framevault.sdk.training import FrameDataset, FrameLoader

    view = DataView(iteration_order="random")
    view.add_query(dataset_name="drives", version_name="v1")
    dataset = FrameDataset(view, transform=my_transform)      # rank / world size from torch.distributed
    loader = FrameLoader(dataset, batch_size=16, num_workers=4, collate_fn=my_collate)
    dataset.load_state_dict(saved)                             # after a restart
    for epoch in range(dataset.epoch, epochs):
        dataset.set_epoch(epoch)                               # a new order per epoch in random mode
        for batch in loader:
            ...
            saved = loader.state_dict()                        # the position after this batch

The base SDK does not import this package, so it installs and imports without torch.
"""

try:
    import numpy  # noqa: F401
    import PIL  # noqa: F401
    import torch  # noqa: F401
except ImportError as missing:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"framevault.sdk.training needs PyTorch, NumPy and Pillow ({missing.name} is missing): "
        "pip install 'framevault[torch]'"
    ) from missing

from framevault.sdk.training.datasets import (
    DeliveredBatch,
    FrameDataset,
    FrameListDataset,
    FrameLoader,
    FrameSample,
)
from framevault.sdk.training.decode import UNLABELED, MaskLabelMap, decode_image
from framevault.sdk.training.fetch import ByteBudget, FetchedFrame
from framevault.sdk.training.sharding import LoaderState, ShardLayout, epoch_seed

__all__ = [
    "UNLABELED",
    "ByteBudget",
    "DeliveredBatch",
    "FetchedFrame",
    "FrameDataset",
    "FrameListDataset",
    "FrameLoader",
    "FrameSample",
    "LoaderState",
    "MaskLabelMap",
    "ShardLayout",
    "decode_image",
    "epoch_seed",
]
