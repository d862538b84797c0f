"""Fixtures of the view tests: the service's database and a corpus builder."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.metadata.db import Database

from .corpus import Corpus


@pytest.fixture(scope="session")
async def db(settings: Settings, metadata_service: RunningService) -> AsyncIterator[Database]:
    """The database the metadata service uses, with its indexes in place."""
    database = Database(settings)
    await database.prepare()
    yield database
    await database.close()


@pytest.fixture(scope="session")
def corpus(db: Database) -> Corpus:
    return Corpus(db)
