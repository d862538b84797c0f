"""Fixtures of the fuzzing tier: its own pair of services, database and bucket.

The fuzzer deletes blobs, runs garbage collection and creates datasets by the
hundred, so it gets services of its own (wired to each other, garbage
collection included) rather than sharing the session's with other tests.

Hypothesis profiles: ``ci`` (default) runs a fixed number of examples per RPC
with a derandomized seed, so a CI run is reproducible and bounded; ``deep``
(``FRAMEVAULT_FUZZ_PROFILE=deep``) runs many more with fresh randomness and
prints a ``@reproduce_failure`` blob for each failure. ``FRAMEVAULT_FUZZ_EXAMPLES``
overrides the number of examples per test of either profile.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from grpc import aio
from hypothesis import HealthCheck, Phase, settings
from support import (
    admin_token_of,
    channel_to,
    free_port,
    own_admin_key_file,
    start_blob_service,
    sync_channel_to,
)

from framevault.common.config import Settings
from framevault.common.server import RunningService

from .runner import FuzzEnv
from .world import World

_SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
              HealthCheck.large_base_example, HealthCheck.differing_executors]
# Each example is several calls (the fuzzed ones, health checks, the published versions read back), so
# the CI budget is what bounds the tier's time: 10 per test, over 40 RPCs and two tests each, with every
# RPC's seeds and mutants behind them; long runs take the deep profile.
settings.register_profile("ci", max_examples=int(os.environ.get("FRAMEVAULT_FUZZ_EXAMPLES", "10")),
                          derandomize=True, database=None, deadline=None, print_blob=False,
                          suppress_health_check=_SLOW_DATA, phases=[Phase.explicit, Phase.generate, Phase.shrink])
settings.register_profile("deep", max_examples=int(os.environ.get("FRAMEVAULT_FUZZ_EXAMPLES", "500")),
                          derandomize=False, database=None, deadline=None, print_blob=True,
                          suppress_health_check=_SLOW_DATA)
settings.load_profile(os.environ.get("FRAMEVAULT_FUZZ_PROFILE", "ci"))



# The services' message limits; metadata limits far above the clients'
# defaults, so that an oversized error trailer arrives and is judged by its
# size (deterministically) instead of being dropped by the client's soft
# limit at random.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                   ("grpc.max_send_message_length", 64 * 1024 * 1024),
                   ("grpc.max_metadata_size", 4 * 1024 * 1024),
                   ("grpc.absolute_max_metadata_size", 4 * 1024 * 1024)]


def _sync_channel(port: int, token: str) -> grpc.Channel:
    return sync_channel_to(port, token=token, options=CHANNEL_OPTIONS)


def _channel(port: int, token: str) -> aio.Channel:
    return channel_to(port, options=CHANNEL_OPTIONS, token=token)


# One bucket for every fuzzing session, emptied after each: a bucket holds
# volumes of the local S3 server, which has a fixed number of them.
FUZZ_BUCKET = "fvfuzz"


@pytest.fixture(scope="session")
def fuzz_settings(settings: Settings) -> Iterator[Settings]:
    """Settings of the tier's services: a bucket and database of their own."""
    from minio import Minio
    from minio.deleteobjects import DeleteObject
    from pymongo import MongoClient

    s3 = Minio(settings.s3_endpoint, access_key=settings.s3_access_key, secret_key=settings.s3_secret_key.get_secret_value(),
               secure=settings.s3_secure, region=settings.s3_region)
    if not s3.bucket_exists(FUZZ_BUCKET):
        s3.make_bucket(FUZZ_BUCKET)
    metadata_port = free_port()
    # A database of its own, so its own admin key.
    fuzz = own_admin_key_file(Settings(**{
        **settings.__dict__, "mongodb_database": f"fvfuzz_{uuid.uuid4().hex[:10]}", "s3_bucket": FUZZ_BUCKET,
        "metadata_address": f"127.0.0.1:{metadata_port}", "metadata_target": f"127.0.0.1:{metadata_port}"}))
    yield fuzz
    leftovers = [DeleteObject(o.object_name) for o in s3.list_objects(FUZZ_BUCKET, recursive=True)]
    errors = list(s3.remove_objects(FUZZ_BUCKET, leftovers)) if leftovers else []
    assert not errors, errors
    with MongoClient(fuzz.mongodb_uri.get_secret_value()) as client:
        client.drop_database(fuzz.mongodb_database)


@pytest.fixture(scope="session")
async def fuzz_env(fuzz_settings: Settings) -> AsyncIterator[FuzzEnv]:
    from framevault.metadata.app import build_service

    blob = await start_blob_service(fuzz_settings)
    metadata_settings = Settings(**{**fuzz_settings.__dict__, "blob_target": f"127.0.0.1:{blob.port}"})
    metadata = RunningService(build_service(metadata_settings), metadata_settings)
    try:
        await metadata.start()
        token = admin_token_of(metadata_settings)
        async with _channel(metadata.port, token) as metadata_channel, _channel(blob.port, token) as blob_channel:
            world = World(metadata_channel, blob_channel, fuzz_settings.view_cursor_secret.get_secret_value())
            await world.build()
            sync_channels = {"framevault.v1.MetadataService": _sync_channel(metadata.port, token),
                             "framevault.v1.BlobService": _sync_channel(blob.port, token)}
            try:
                yield FuzzEnv(world, metadata_channel, blob_channel, sync_channels)
            finally:
                for channel in sync_channels.values():
                    channel.close()
    finally:
        await metadata.stop(grace=1)
        await blob.stop(grace=1)
