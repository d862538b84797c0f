"""Settings: typed defaults and FRAMEVAULT_* overrides."""

import copy
import dataclasses
import gc
import io
import json
import os
import subprocess
import sys

import grpc
import pytest
from PIL import Image
from support import channel_to, free_port, start_blob_service

from framevault.api.blob_client import BlobClient
from framevault.common.config import Secret, Settings, flag_name
from framevault.common.server import RunningService, tune_garbage_collection
from framevault.stack.services import ServiceProcess
from framevault.v1 import blob_pb2, blob_pb2_grpc


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
    assert settings.mongodb_uri == environ["FRAMEVAULT_MONGODB_URI"]
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
    for field in dataclasses.fields(Settings):
        assert flag_name(field.name) in out, field.name
        assert f"FRAMEVAULT_{field.name.upper()}" in out, field.name
    assert "hunter" not in out and Settings().s3_secret_key.get_secret_value() not in out


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
    # A plain string given in code becomes a Secret too.
    replaced = dataclasses.replace(settings, s3_secret_key="code-hunter2")
    assert isinstance(replaced.s3_secret_key, Secret)
    assert "hunter2" not in repr(replaced)
    assert copy.deepcopy(replaced).s3_secret_key.get_secret_value() == "code-hunter2"


def test_started_service_takes_its_address_from_the_flag_and_logs_no_secret(
        settings: Settings, stack_env: dict[str, str], blob_service: RunningService, tmp_path):
    env_port, flag_port = free_port(), free_port()
    env = {
        **os.environ, **stack_env,
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
