"""framevault SDK: versioned datasets of annotated frames.

Names follow the frame stores computer-vision teams already know::

    from framevault.sdk import DatasetVersion, SingleFrame, DataView

    DatasetVersion.create_new_dataset(dataset_name="drives")
    version = DatasetVersion.get_version(dataset_name="drives")   # the draft "Current"
    frame = SingleFrame(source="images/0001.jpg", width=640, height=480)
    frame.add_annotation(box2d_xywh=(10, 20, 100, 50), labels=["car"])
    failed = version.add_frames([frame])

    view = DataView()
    view.add_query(dataset_name="drives", roi_query="car")
    for frame in view.get_iterator():
        ...

Every call has an async twin with a leading ``a`` (``await
version.aadd_frames(...)``). Service addresses come from
``FRAMEVAULT_METADATA_TARGET`` / ``FRAMEVAULT_BLOB_TARGET`` or
:func:`configure`.
"""

from framevault.sdk.blobs import BlobTransfer, parse_digest
from framevault.sdk.client import FramevaultClient
from framevault.sdk.dataset import Dataset, DatasetVersion
from framevault.sdk.dataview import DataView, IterationOrder, ViewIterator
from framevault.sdk.errors import (
    AbortedError,
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    FramevaultError,
    InvalidArgumentError,
    NotFoundError,
    PreconditionViolation,
    ResourceInfo,
    UnavailableError,
)
from framevault.sdk.frame_codec import frame_from_proto, frame_to_proto
from framevault.sdk.frames import Annotation, Frame, FrameGroup, SingleFrame
from framevault.sdk.runtime import aclose, configure, current_client, get_settings
from framevault.sdk.settings import ClientSettings
from framevault.sdk.upload import FailedFrame, UploadTotals
from framevault.sdk.version_history import ChangeKind, DiffPage, FrameChange, MergeConflict, MergeResult, MergeStrategy
from framevault.sdk.version_state import VersionStatus
from framevault.sdk.version_statistics import VersionStatistics

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "Annotation",
    "BlobTransfer",
    "ChangeKind",
    "ClientSettings",
    "DataView",
    "Dataset",
    "DatasetVersion",
    "DeadlineExceededError",
    "DiffPage",
    "FailedFrame",
    "FailedPreconditionError",
    "FieldViolation",
    "Frame",
    "FrameChange",
    "FrameGroup",
    "FramevaultClient",
    "FramevaultError",
    "InvalidArgumentError",
    "IterationOrder",
    "MergeConflict",
    "MergeResult",
    "MergeStrategy",
    "NotFoundError",
    "PreconditionViolation",
    "ResourceInfo",
    "SingleFrame",
    "UnavailableError",
    "UploadTotals",
    "VersionStatistics",
    "VersionStatus",
    "ViewIterator",
    "aclose",
    "configure",
    "current_client",
    "frame_from_proto",
    "frame_to_proto",
    "get_settings",
    "parse_digest",
]
