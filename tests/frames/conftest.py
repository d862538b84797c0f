"""Fixtures of the frame tests: a direct handle on the service's database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.metadata.db import Database


@pytest.fixture(scope="session")
async def frames_db(settings: Settings, metadata_service: RunningService) -> AsyncIterator[Database]:
    """The database the metadata service uses, to check what was (not) stored.

    Integration modules use it first thing: the service prepares its
    collections in the background at start, and a write racing that is a
    (retried) conflict, which would blur the attempt counts the tests check.
    """
    database = Database(settings)
    await database.prepare()
    yield database
    await database.close()

