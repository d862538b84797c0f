"""Settings: typed defaults and FRAMEVAULT_* overrides."""

import copy
import dataclasses
import gc
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, get_type_hints

import grpc
import pymongo.errors
import pytest
from catalog.helpers import by_id, child_of, make_frame, new_dataset, publish, write_frames
from PIL import Image
from support import channel_to, free_port, security_env, start_blob_service
from views.client import iterate, view_of

from framevault.api.blob_client import BlobClient
from framevault.common.config import Secret, SecretUri, Settings, descriptions, env_name, flag_name
from framevault.common.errors import Unavailable
from framevault.common.server import RunningService, tune_garbage_collection
from framevault.common.streams import drain_briefly
from framevault.metadata.db import Database
from framevault.metadata.mongo_errors import translated
from framevault.metadata.transactions import in_transaction, with_retries
from framevault.metadata.views.engine import fetch_size
from framevault.stack.services import ServiceProcess
from framevault.v1 import blob_pb2, blob_pb2_grpc, metadata_service_pb2_grpc, view_pb2
from framevault.v1 import metadata_service_pb2 as ms

REPO = Path(__file__).resolve().parents[2]


def test_defaults_without_environment():
    settings = Settings.from_env({})
    assert settings.metadata_address == "127.0.0.1:50051"
    assert settings.blob_address == "127.0.0.1:50052"
    assert settings.s3_secure is False


def test_every_setting_has_an_env_override():
    environ = {
        "FRAMEVAULT_MONGODB_URI": "mongodb://db.example:27017/?replicaSet=rs0",
        "FRAMEVAULT_S3_ENDPOINT": "minio.example:9000",
        "FRAMEVAULT_S3_SECURE": "true",
        "FRAMEVAULT_S3_PART_SIZE_BYTES": "67108864",
        "FRAMEVAULT_GRPC_SHUTDOWN_GRACE_SECONDS": "2.5",
    }
    settings = Settings.from_env(environ)
    assert settings.mongodb_uri.get_secret_value() == environ["FRAMEVAULT_MONGODB_URI"]
    assert settings.s3_endpoint == "minio.example:9000"
    assert settings.s3_secure is True
    assert settings.s3_part_size_bytes == 64 * 1024 * 1024
    assert settings.grpc_shutdown_grace_seconds == 2.5


def test_malformed_override_names_the_variable():
    with pytest.raises(SystemExit, match="FRAMEVAULT_S3_PART_SIZE_BYTES"):
        Settings.from_env({"FRAMEVAULT_S3_PART_SIZE_BYTES": "lots"})


def test_flag_wins_over_env_and_env_over_default():
    environ = {"FRAMEVAULT_MONGODB_TIMEOUT_MS": "7000", "FRAMEVAULT_LOG_LEVEL": "DEBUG"}
    settings = Settings.from_args(["--mongodb-timeout-ms", "5000", "--s3-secure", "--grpc-shutdown-grace-seconds=1.5"],
                                  environ)
    assert settings.mongodb_timeout_ms == 5000
    assert settings.s3_secure is True
    assert settings.grpc_shutdown_grace_seconds == 1.5
    assert settings.log_level == "DEBUG"
    assert settings.mongodb_database == Settings().mongodb_database
    assert Settings.from_args(["--s3-secure", "false"], {"FRAMEVAULT_S3_SECURE": "true"}).s3_secure is False


def test_malformed_flag_is_a_usage_error_naming_the_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        Settings.from_args(["--s3-part-size-bytes", "lots"], {})
    assert exit_info.value.code == 2
    assert "--s3-part-size-bytes" in capsys.readouterr().err


@pytest.mark.parametrize("service", ["metadata", "blob"])
def test_help_lists_every_setting_as_a_flag(service):
    out = subprocess.run([sys.executable, "-m", f"framevault.{service}", "--help"],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    assert out.startswith(f"usage: python -m framevault.{service}")
    unwrapped = re.sub(r"\s+", "", out)
    for field in dataclasses.fields(Settings):
        assert flag_name(field.name) in out, field.name
        assert f"FRAMEVAULT_{field.name.upper()}" in out, field.name
        assert re.sub(r"\s+", "", descriptions()[field.name]) in unwrapped, field.name
    # Secrets have no built-in values to show; the former public default shows nowhere either.
    assert "hunter" not in out and "framevault-secret" not in out


def test_secrets_never_show_in_repr_or_str():
    settings = Settings.from_env({"FRAMEVAULT_S3_SECRET_KEY": "s3-hunter2", "FRAMEVAULT_VIEW_CURSOR_SECRET": "cur-hunter2"})
    assert settings.s3_secret_key.get_secret_value() == "s3-hunter2"
    assert settings.view_cursor_secret.get_secret_value() == "cur-hunter2"
    shown = [repr(settings), str(settings), f"{settings}", f"{settings.s3_secret_key}", str(settings.displayed()),
             repr(settings.view_cursor_secret)]
    for text in shown:
        assert "hunter2" not in text
    with_password = Settings(mongodb_uri="mongodb://fv:db-hunter2@m1:27017,m2:27017/?replicaSet=rs0")
    assert with_password.displayed()["mongodb_uri"] == "mongodb://fv:**********@m1:27017,m2:27017/?replicaSet=rs0"
    # The connection string is a secret itself: nothing that prints the settings shows its password.
    assert isinstance(with_password.mongodb_uri, SecretUri)
    assert with_password.mongodb_uri.get_secret_value() == "mongodb://fv:db-hunter2@m1:27017,m2:27017/?replicaSet=rs0"
    for text in (repr(with_password), str(with_password), str(with_password.mongodb_uri),
                 repr(with_password.mongodb_uri), json.dumps(with_password.displayed(), default=str)):
        assert "hunter2" not in text
    key_password = Settings.from_env(
        {"FRAMEVAULT_MONGODB_URI": "mongodb://m1/?tls=true&tlsCertificateKeyFilePassword=key-hunter2&w=1"})
    assert str(key_password.mongodb_uri) == "mongodb://m1/?tls=true&tlsCertificateKeyFilePassword=**********&w=1"
    # A plain string given in code becomes a Secret too.
    replaced = dataclasses.replace(settings, s3_secret_key="code-hunter2")
    assert isinstance(replaced.s3_secret_key, Secret)
    assert "hunter2" not in repr(replaced)
    assert copy.deepcopy(replaced).s3_secret_key.get_secret_value() == "code-hunter2"


def test_started_service_takes_its_address_from_the_flag_and_logs_no_secret(
        settings: Settings, stack_env: dict[str, str], blob_service: RunningService, tmp_path):
    env_port, flag_port = free_port(), free_port()
    env = {
        **os.environ, **stack_env, **security_env(settings),
        "FRAMEVAULT_MONGODB_DATABASE": settings.mongodb_database,
        "FRAMEVAULT_METADATA_ADDRESS": f"127.0.0.1:{env_port}",
        "FRAMEVAULT_BLOB_TARGET": f"127.0.0.1:{blob_service.port}",
        "FRAMEVAULT_METADATA_METRICS_ADDRESS": "",
        "FRAMEVAULT_LOG_LEVEL": "INFO",
        "FRAMEVAULT_LOG_FORMAT": "json",
        "FRAMEVAULT_VIEW_CURSOR_SECRET": "cursor-hunter2",
    }
    command = [sys.executable, "-m", "framevault.metadata", "--metadata-address", f"127.0.0.1:{flag_port}",
               "--s3-secret-key", "s3-hunter2"]
    log_path = tmp_path / "metadata.log"
    process = ServiceProcess.start("metadata", env, command=command, log_path=log_path)
    process = dataclasses.replace(process, address=f"127.0.0.1:{flag_port}")
    try:
        process.wait_serving()
    finally:
        process.stop()
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    started = next(r for r in records if r["event"] == "service_started")
    assert started["port"] == flag_port
    loaded = next(r for r in records if r["event"] == "settings_loaded")
    assert loaded["metadata_address"] == f"127.0.0.1:{flag_port}"
    assert loaded["s3_secret_key"] == loaded["view_cursor_secret"] == str(Secret("x"))
    assert "hunter2" not in log_path.read_text()


def test_garbage_collection_thresholds_come_from_settings():
    before = gc.get_threshold()
    try:
        tune_garbage_collection(Settings(gc_young_threshold=12_345, gc_middle_threshold=7, gc_old_threshold=9))
        assert gc.get_threshold() == (12_345, 7, 9)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_preview_source_limit_is_a_setting(settings: Settings):
    limited = dataclasses.replace(settings, blob_max_preview_source_bytes=1000)
    running = await start_blob_service(limited)
    try:
        async with channel_to(running.port) as channel:
            stub = blob_pb2_grpc.BlobServiceStub(channel)
            image = io.BytesIO()
            Image.effect_noise((64, 64), 64).convert("RGB").save(image, "PNG")
            assert len(image.getvalue()) > 1000
            digest = (await BlobClient(stub).upload_bytes(image.getvalue())).digest
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.CreatePreview(blob_pb2.CreatePreviewRequest(digest=blob_pb2.Digest(hash=digest.hash, size_bytes=digest.size), max_edge=16))
    finally:
        await running.stop(grace=1)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "over 1000 bytes" in (refused.value.details() or "")


async def test_remembered_lease_drafts_is_a_setting(settings: Settings):
    from bson import ObjectId

    from framevault.metadata.db import Database
    from framevault.metadata.frames.write_leases import _idle_leases

    database = Database(dataclasses.replace(settings, upload_remembered_lease_drafts=1))
    try:
        idle = _idle_leases(database)
        first, second = ObjectId(), ObjectId()
        idle.give_back("draft-1", first)
        idle.give_back("draft-2", second)
        assert idle.take("draft-1") is None
        assert idle.take("draft-2") == second
    finally:
        await database.close()


def _sample(kind: Any, default: Any) -> tuple[str, Any]:
    """A value of the setting's type that differs from its default: as the environment
    and the command line spell it, and as the setting then holds it."""
    if kind is bool:
        return ("false", False) if default else ("true", True)
    if kind is int:
        return str(default + 7), default + 7
    if kind is float:
        return str(default + 0.5), default + 0.5
    if kind is SecretUri:
        uri = "mongodb://sample-user:sample-password@sample-host:27017/?replicaSet=sample"
        return uri, SecretUri(uri)
    if kind is Secret:
        return "sample-secret", Secret("sample-secret")
    return "sample-value", "sample-value"


@pytest.mark.parametrize("field", dataclasses.fields(Settings), ids=lambda f: f.name)
def test_every_setting_has_an_env_override_and_a_flag(field: dataclasses.Field):
    raw, expected = _sample(get_type_hints(Settings)[field.name], field.default)
    assert expected != field.default
    from_env = Settings.from_env({env_name(field.name): raw})
    from_flag = Settings.from_args([flag_name(field.name), raw], {})
    for settings in (from_env, from_flag):
        assert getattr(settings, field.name) == expected
        assert type(getattr(settings, field.name)) is type(expected)
        # Everything else keeps its default.
        assert all(getattr(settings, other.name) == other.default for other in dataclasses.fields(Settings)
                   if other.name != field.name)


def test_every_setting_is_explained_where_it_is_declared():
    described = descriptions()
    assert set(described) == {f.name for f in dataclasses.fields(Settings)}
    unexplained = [name for name, text in described.items() if not text]
    assert not unexplained, f"add a comment saying what these do and their unit: {unexplained}"
    assert described["view_min_fetch_frames"].startswith("Frame documents fetched per query")
    assert described["log_format"] == '"json" for machines, "console" for people.'


def test_readme_names_only_real_settings():
    rows = [line for line in (REPO / "README.md").read_text().splitlines() if line.startswith("| `FRAMEVAULT_")]
    named = {name for row in rows for name in re.findall(r"FRAMEVAULT_[A-Z0-9_]+", row.split("|")[1])}
    assert named, "the README's settings table moved; point this test at it"
    known = {env_name(f.name) for f in dataclasses.fields(Settings)}
    assert named <= known, f"the README names settings that do not exist: {sorted(named - known)}"


def test_fetch_size_follows_the_settings():
    tuned = Settings(view_fetch_budget_frames=12, view_min_fetch_frames=2, view_max_fetch_frames=5)
    assert [fetch_size(selections, tuned) for selections in (1, 3, 6, 100)] == [5, 4, 2, 2]
    assert fetch_size(1, Settings(view_fetch_budget_frames=0, view_min_fetch_frames=0)) == 1
    defaults = Settings()
    assert [fetch_size(selections, defaults) for selections in (1, 8, 1000)] == [500, 250, 16]


@pytest.fixture(scope="module")
async def tuned_metadata(settings: Settings, blob_service: RunningService) -> AsyncIterator[Any]:
    """A metadata service with the smallest view fetches and DiffVersions messages of two changes."""
    from framevault.metadata.app import build_service

    tuned = dataclasses.replace(settings, blob_target=f"127.0.0.1:{blob_service.port}", view_fetch_budget_frames=1,
                                view_min_fetch_frames=1, view_max_fetch_frames=1, catalog_diff_message_changes=2)
    running = RunningService(build_service(tuned), tuned)
    await running.start()
    try:
        async with channel_to(running.port) as channel:
            yield metadata_service_pb2_grpc.MetadataServiceStub(channel)
    finally:
        await running.stop(grace=1)


async def test_views_fetched_one_frame_at_a_time_still_return_every_frame(tuned_metadata):
    stub = tuned_metadata
    _, first = await new_dataset(stub)
    _, second = await new_dataset(stub)
    await write_frames(stub, first.id, [make_frame(f"a{i}", context="ctx", timestamp=i) for i in range(5)])
    await write_frames(stub, second.id, [make_frame(f"b{i}", context="ctx", timestamp=i) for i in range(3)])
    selections = [view_pb2.ViewSelection(version=by_id(first.id)), view_pb2.ViewSelection(version=by_id(second.id))]

    sequential = await iterate(stub, view_of(*selections, order=view_pb2.ITERATION_ORDER_SEQUENTIAL), per_message=3)
    assert sequential.ids == ["a0", "b0", "a1", "b1", "a2", "b2", "a3", "a4"]
    resumed = await iterate(stub, view_of(*selections, order=view_pb2.ITERATION_ORDER_SEQUENTIAL),
                            cursor=sequential.cursors[0][1])
    assert resumed.ids == sequential.ids[3:]
    shuffled = await iterate(stub, view_of(*selections, order=view_pb2.ITERATION_ORDER_RANDOM, random_seed=7))
    assert sorted(shuffled.ids) == sorted(sequential.ids)


async def test_diff_messages_hold_the_configured_number_of_changes(tuned_metadata):
    stub = tuned_metadata
    _, current = await new_dataset(stub)
    base = await publish(stub, current.id)
    target = await child_of(stub, base)
    await write_frames(stub, target.id, [make_frame(f"f{i}") for i in range(5)])
    messages = [m async for m in stub.DiffVersions(ms.DiffVersionsRequest(base=by_id(base.id), target=by_id(target.id)))]
    assert [len(m.changes) for m in messages] == [2, 2, 1]
    assert [c.frame_id for m in messages for c in m.changes] == [f"f{i}" for i in range(5)]


async def test_transaction_retry_time_bounds_the_reruns_of_a_conflicting_unit(settings: Settings):
    conflict = pymongo.errors.OperationFailure(
        "write conflict", code=112, details={"errorLabels": ["TransientTransactionError"]})

    async def run(database: Database) -> list[int]:
        runs: list[int] = []

        async def work(session: Any) -> list[int]:
            runs.append(len(runs))
            if len(runs) == 1:
                with translated():
                    raise conflict
            return runs

        return await in_transaction(database, work)

    patient = Database(settings)
    impatient = Database(dataclasses.replace(settings, transaction_retry_seconds=0.0))
    try:
        assert await run(patient) == [0, 1]
        with pytest.raises(Exception) as given_up:
            await run(impatient)
        assert given_up.value.__cause__ is conflict
    finally:
        await patient.close()
        await impatient.close()


async def test_frame_write_attempts_is_a_setting():
    calls = 0

    async def always_unavailable() -> None:
        nonlocal calls
        calls += 1
        raise Unavailable("database unavailable")

    tuned = Settings(frame_write_attempts=2, upload_retry_base_delay_ms=1, upload_retry_max_delay_ms=1)
    with pytest.raises(Unavailable):
        await with_retries(always_unavailable, tuned)
    assert calls == 2


async def test_write_drain_stops_at_the_configured_bytes():
    remaining = [blob_pb2.WriteBlobRequest(data=b"x" * 10) for _ in range(3)]

    async def client_stream() -> AsyncIterator[blob_pb2.WriteBlobRequest]:
        while remaining:
            yield remaining.pop(0)

    requests = client_stream()
    tuned = Settings(blob_write_drain_max_bytes=10, blob_write_drain_idle_seconds=60.0, blob_write_drain_max_seconds=60.0)
    await drain_briefly(requests, tuned)
    assert len(remaining) == 2
    await drain_briefly(requests, Settings(blob_write_drain_idle_seconds=60.0, blob_write_drain_max_seconds=60.0))
    assert remaining == []
