"""Where client and service transport settings come from, and which combinations are refused (no services)."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import grpc
import pytest
import structlog

from framevault.api.transport import is_loopback, target_host_port
from framevault.common.config import Settings
from framevault.common.tls import TransportSettingsError, calls_use_tls, channel_credentials, server_credentials
from framevault.sdk.client import FramevaultClient
from framevault.sdk.settings import ClientSettings, SettingsError, env_name

# A valid value of each type for the every-field-has-a-variable test.
SAMPLE_VALUES: dict[object, tuple[str, object]] = {
    str: ("sample.example:1", "sample.example:1"), int: ("7", 7), float: ("2.5", 2.5), bool | None: ("true", True),
    # Plain booleans default to on, so the variable must turn them off to show it is read.
    bool: ("false", False),
}


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_every_client_setting_has_an_environment_variable() -> None:
    hints = typing.get_type_hints(ClientSettings)
    for field in dataclasses.fields(ClientSettings):
        raw, expected = SAMPLE_VALUES[hints[field.name]]
        settings = ClientSettings.from_env({env_name(field.name): raw, "FRAMEVAULT_CONFIG": ""})
        assert getattr(settings, field.name) == expected, field.name


def test_explicit_over_environment_over_config_file_over_defaults(tmp_path: Path) -> None:
    config = write_config(tmp_path / "client.toml", """
metadata_target = "file:1"
blob_target = "file:2"
ca_file = "certs/ca.pem"
call_timeout_seconds = 12
token_file = "/abs/token"
""")
    env = {"FRAMEVAULT_CONFIG": str(config), "FRAMEVAULT_BLOB_TARGET": "env:2", "FRAMEVAULT_CALL_TIMEOUT_SECONDS": "9"}
    settings = ClientSettings.from_env(env, call_timeout_seconds=3.0, metadata_target=None)
    assert settings.metadata_target == "file:1"  # None is no explicit value: the file's stays
    assert settings.blob_target == "env:2"
    assert settings.call_timeout_seconds == 3.0
    # Relative paths are the config file's folder's; absolute ones stay.
    assert settings.ca_file == str(tmp_path / "certs" / "ca.pem")
    assert settings.token_file == "/abs/token"
    assert settings.unary_attempts == ClientSettings.unary_attempts
    assert ClientSettings.from_env(env).call_timeout_seconds == 9.0
    assert ClientSettings.from_env({"FRAMEVAULT_CONFIG": str(config)}).call_timeout_seconds == 12.0


def test_the_default_config_file_is_in_the_user_config_folder(tmp_path: Path) -> None:
    write_config(tmp_path / "framevault" / "client.toml", 'metadata_target = "xdg:1"\n')
    assert ClientSettings.from_env({"XDG_CONFIG_HOME": str(tmp_path)}).metadata_target == "xdg:1"
    # An empty FRAMEVAULT_CONFIG reads no file at all.
    assert ClientSettings.from_env({"XDG_CONFIG_HOME": str(tmp_path), "FRAMEVAULT_CONFIG": ""}).metadata_target == (
        ClientSettings.metadata_target)


@pytest.mark.parametrize(("text", "message"), [
    ('ca_fil = "x.pem"\n', "unknown setting 'ca_fil'"),
    ("unary_attempts = 2.5\n", "unary_attempts = 2.5 is not a whole number"),
    ('plaintext = "yes"\n', "plaintext = 'yes' is not a boolean"),
    ("metadata_target = \n", "client config file"),
])
def test_a_bad_config_file_is_refused_naming_the_setting(tmp_path: Path, text: str, message: str) -> None:
    config = write_config(tmp_path / "client.toml", text)
    with pytest.raises(SettingsError, match=message.replace(".", r"\.")):
        ClientSettings.from_env({}, config_file=config)


def test_a_bad_environment_value_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="FRAMEVAULT_PLAINTEXT: 'maybe' is not a valid boolean"):
        ClientSettings.from_env({"FRAMEVAULT_PLAINTEXT": "maybe", "FRAMEVAULT_CONFIG": ""})


def test_the_token_is_not_shown() -> None:
    assert "very-secret" not in repr(ClientSettings(token="very-secret"))


def test_tls_unless_plaintext_is_explicit() -> None:
    # TLS by default, as the services refuse plaintext unless it is allowed explicitly.
    assert ClientSettings().uses_tls
    assert ClientSettings(ca_file="ca.pem").uses_tls
    assert ClientSettings(client_cert_file="c.pem").uses_tls
    assert ClientSettings(plaintext=False).uses_tls
    assert not ClientSettings(ca_file="ca.pem", plaintext=True).uses_tls


def test_the_token_comes_from_the_token_file_unless_given(tmp_path: Path) -> None:
    token_file = tmp_path / "admin.key"
    token_file.write_text("fv_key_from_file\n")
    assert ClientSettings(token_file=str(token_file)).bearer_token() == "fv_key_from_file"
    assert ClientSettings(token="given", token_file=str(token_file)).bearer_token() == "given"
    with pytest.raises(SettingsError, match="token_file"):
        ClientSettings(token_file=str(tmp_path / "missing")).bearer_token()


async def test_a_token_is_never_sent_in_plaintext_to_another_host() -> None:
    with pytest.raises(SettingsError, match="a token is sent only over TLS or to this machine"):
        FramevaultClient(ClientSettings(metadata_target="metadata.example:50051", token="secret", plaintext=True))
    # To this machine it may: it never leaves the host.
    await FramevaultClient(ClientSettings(token="secret", plaintext=True)).close()


async def test_unreadable_or_mismatched_client_tls_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="ca_file \\(FRAMEVAULT_CA_FILE\\): cannot read"):
        FramevaultClient(ClientSettings(ca_file=str(tmp_path / "missing.pem")))
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("hello")
    with pytest.raises(SettingsError, match="is not a PEM file"):
        FramevaultClient(ClientSettings(ca_file=str(not_pem)))
    with pytest.raises(SettingsError, match="client_key_file \\(FRAMEVAULT_CLIENT_KEY_FILE\\) is required"):
        FramevaultClient(ClientSettings(client_cert_file=str(not_pem)))


@pytest.mark.parametrize(("target", "loopback", "host_port"), [
    ("127.0.0.1:50051", True, ("127.0.0.1", 50051)),
    ("localhost:1", True, ("localhost", 1)),
    ("[::1]:7", True, ("::1", 7)),
    ("dns:///localhost:9", True, ("localhost", 9)),
    ("ipv4:127.0.0.2:3", True, ("127.0.0.2", 3)),
    ("unix:/tmp/fv.sock", True, None),
    ("10.0.0.1:50051", False, ("10.0.0.1", 50051)),
    ("metadata.example:50051", False, ("metadata.example", 50051)),
])
def test_loopback_targets(target: str, loopback: bool, host_port: tuple[str, int] | None) -> None:
    assert is_loopback(target) is loopback
    if host_port is not None:
        assert target_host_port(target) == host_port


def service_settings(**changes: object) -> Settings:
    return dataclasses.replace(Settings(), **changes)  # type: ignore[arg-type]


def test_a_service_without_certificate_refuses_to_start_unless_plaintext_is_allowed() -> None:
    with pytest.raises(TransportSettingsError, match="FRAMEVAULT_TLS_CERT_FILE.*FRAMEVAULT_ALLOW_PLAINTEXT=true"):
        server_credentials(service_settings(allow_plaintext=False), "blob")
    with structlog.testing.capture_logs() as logs:
        assert server_credentials(service_settings(allow_plaintext=True), "blob") is None
    assert [(entry["event"], entry["log_level"]) for entry in logs] == [("plaintext_listening", "warning")]


def test_a_service_with_default_settings_refuses_plaintext() -> None:
    with pytest.raises(TransportSettingsError, match="FRAMEVAULT_TLS_CERT_FILE.*FRAMEVAULT_ALLOW_PLAINTEXT=true"):
        server_credentials(Settings(), "metadata")
    assert calls_use_tls(Settings())


@pytest.mark.parametrize(("changes", "message"), [
    ({"tls_cert_file": "server.pem"}, "tls_key_file \\(FRAMEVAULT_TLS_KEY_FILE\\) is required when tls_cert_file"),
    ({"tls_key_file": "server.key"}, "tls_cert_file \\(FRAMEVAULT_TLS_CERT_FILE\\) is required when tls_key_file"),
    ({"tls_client_ca_file": "ca.pem"}, "tls_client_ca_file \\(FRAMEVAULT_TLS_CLIENT_CA_FILE\\) needs tls_cert_file"),
    ({"tls_cert_file": "/missing/server.pem", "tls_key_file": "/missing/server.key"},
     "FRAMEVAULT_TLS_KEY_FILE\\): cannot read '/missing/server.key'"),
])
def test_contradictory_or_unreadable_service_tls_settings_stop_the_start(changes: dict[str, str],
                                                                         message: str) -> None:
    with pytest.raises(TransportSettingsError, match=message):
        server_credentials(service_settings(**changes), "metadata")


def test_service_channels_use_tls_with_any_tls_setting_or_without_plaintext(tmp_path: Path) -> None:
    assert not calls_use_tls(service_settings(allow_plaintext=True))
    assert calls_use_tls(service_settings(allow_plaintext=False))
    assert calls_use_tls(service_settings(tls_ca_file="ca.pem"))
    assert calls_use_tls(service_settings(tls_cert_file="server.pem"))
    with pytest.raises(TransportSettingsError, match="tls_client_key_file \\(FRAMEVAULT_TLS_CLIENT_KEY_FILE\\)"):
        channel_credentials(service_settings(tls_client_cert_file="client.pem"), "blob:1")
    # Plaintext where allowed, logged; system roots when no CA file is given.
    with structlog.testing.capture_logs() as logs:
        assert channel_credentials(service_settings(allow_plaintext=True), "blob:1") is None
    assert [entry["event"] for entry in logs] == ["plaintext_calls"]
    assert isinstance(channel_credentials(service_settings(allow_plaintext=False), "blob:1"),
                      grpc.ChannelCredentials)
