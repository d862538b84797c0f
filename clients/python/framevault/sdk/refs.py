"""References to datasets and versions, by id or by name."""

from __future__ import annotations

from framevault.v1 import dataset_pb2

DEFAULT_DRAFT_NAME = "Current"


def dataset_ref(dataset_name: str | None = None, dataset_id: str | None = None) -> dataset_pb2.DatasetRef:
    """A DatasetRef by id (preferred when given) or name.

    Raises:
        ValueError: neither given.
    """
    if dataset_id:
        return dataset_pb2.DatasetRef(id=dataset_id)
    if dataset_name:
        return dataset_pb2.DatasetRef(name=dataset_name)
    raise ValueError("name the dataset: dataset_name or dataset_id")


def version_ref(
    dataset_name: str | None = None,
    version_name: str | None = None,
    *,
    dataset_id: str | None = None,
    version_id: str | None = None,
) -> dataset_pb2.VersionRef:
    """A VersionRef by version id, or by dataset and version name (default: the draft ``Current``).

    Raises:
        ValueError: neither a version id nor a dataset given.
    """
    if version_id:
        ref = dataset_pb2.VersionRef(id=version_id)
        if dataset_id or dataset_name:
            ref.dataset.CopyFrom(dataset_ref(dataset_name, dataset_id))
        return ref
    return dataset_pb2.VersionRef(
        dataset=dataset_ref(dataset_name, dataset_id), name=version_name or DEFAULT_DRAFT_NAME
    )
