"""Settings: typed defaults and FRAMEVAULT_* overrides."""

import pytest

from framevault.common.config import Settings


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
