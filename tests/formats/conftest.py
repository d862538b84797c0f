"""Fixtures of the format tests: the SDK on the session's services, and FiftyOne in its own
environment with a database of the stack's mongod (dropped at the end of the session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest

from framevault.common.config import Settings

try:
    from tests.formats.fiftyone_env import fiftyone_environ, fiftyone_tool
    from tests.sdk.helpers import sdk
except ModuleNotFoundError:  # tests/ itself is on sys.path when it is not a package
    from sdk.helpers import sdk  # type: ignore[no-redef]

    from formats.fiftyone_env import fiftyone_environ, fiftyone_tool  # type: ignore[no-redef]

__all__ = ["sdk"]

SOURCE_DATASET = "fv-third-party-source"


@pytest.fixture(scope="session")
def fiftyone_env(settings: Settings) -> Iterator[dict[str, str]]:
    """The environment of FiftyOne processes: the stack's mongod, a database of this session's own."""
    uri = settings.mongodb_uri.get_secret_value()
    database = f"{settings.mongodb_database}_fiftyone"
    yield fiftyone_environ(uri, database)
    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=10_000) as client:
        client.drop_database(database)


@pytest.fixture(scope="session")
def third_party(tmp_path_factory: pytest.TempPathFactory, fiftyone_env: dict[str, str]) -> tuple[Path, Any]:
    """A FiftyOne dataset (``SOURCE_DATASET``) and its COCO, YOLO and VOC exports written by FiftyOne,
    with its labels in pixels by image name."""
    out = tmp_path_factory.mktemp("third-party")
    expected = fiftyone_tool(fiftyone_env, "make", str(out), SOURCE_DATASET)
    return out, expected
