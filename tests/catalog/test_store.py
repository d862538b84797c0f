"""The catalog's MongoDB store through the protocol the domain sees, against
the service's database: lookups match every field they are given, and a
lookup given no field is refused instead of matching any document."""

from __future__ import annotations

import pytest

from framevault.metadata.catalog.mongo_store import MongoCatalogStore
from framevault.metadata.catalog.store import CatalogStore
from framevault.metadata.db import Database

from .helpers import new_dataset


async def test_lookups_match_every_given_field(metadata_stub, db: Database):
    store: CatalogStore = MongoCatalogStore(db)
    dataset, draft = await new_dataset(metadata_stub)
    other, _ = await new_dataset(metadata_stub)

    assert (await store.find_dataset(name=dataset.name))["_id"] == dataset.id
    assert (await store.find_dataset(dataset_id=dataset.id, name=dataset.name))["_id"] == dataset.id
    assert await store.find_dataset(dataset_id=dataset.id, name=other.name) is None
    assert (await store.find_version(dataset_id=dataset.id, name=draft.name))["_id"] == draft.id
    assert (await store.find_version(version_id=draft.id, dataset_id=dataset.id))["_id"] == draft.id
    assert await store.find_version(version_id=draft.id, dataset_id=other.id) is None


async def test_a_lookup_without_fields_is_refused(metadata_stub, db: Database):
    store: CatalogStore = MongoCatalogStore(db)
    await new_dataset(metadata_stub)  # there is a document a match-all query would find
    with pytest.raises(ValueError):
        await store.find_dataset()
    with pytest.raises(ValueError):
        await store.find_version(dataset_id=None, name=None)
    with pytest.raises(ValueError):
        await store.purge_revisions()
