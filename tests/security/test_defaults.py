"""Security is on by default and no secret has a working built-in value: a service started with the
defaults refuses to start and names the setting it misses; local-dev only when set explicitly."""

from __future__ import annotations

import dataclasses

import pytest
import structlog

from framevault.auth.startup import security_enabled
from framevault.common.config import Secret, Settings


def test_security_is_on_by_default_and_no_secret_has_a_default() -> None:
    defaults = Settings()
    assert defaults.security_mode == "on"
    for name in ("view_cursor_secret", "s3_secret_key", "api_key_pepper", "service_token_secret",
                 "gateway_session_secret"):
        assert getattr(defaults, name) == Secret(""), name


@pytest.mark.parametrize(("service", "missing"), [
    ("metadata", ["view_cursor_secret", "api_key_pepper", "service_token_secret"]),
    ("blob", ["service_token_secret", "s3_secret_key"]),
])
def test_each_missing_secret_is_named_until_all_are_set(service: str, missing: list[str]) -> None:
    settings = Settings()
    for name in missing:
        with pytest.raises(SystemExit, match=f"FRAMEVAULT_{name.upper()}"):
            security_enabled(settings, service)
        settings = dataclasses.replace(settings, **{name: f"private-{name}"})
    assert security_enabled(settings, service)


@pytest.mark.parametrize(("name", "public"), [("s3_secret_key", "framevault-secret"),
                                              ("view_cursor_secret", "framevault-view-cursor-default-secret")])
def test_a_former_published_default_is_no_private_value(name: str, public: str) -> None:
    settings = Settings(view_cursor_secret="c", api_key_pepper="p", service_token_secret="s", s3_secret_key="k")
    service = "blob" if name == "s3_secret_key" else "metadata"
    with pytest.raises(SystemExit, match=f"FRAMEVAULT_{name.upper()}"):
        security_enabled(dataclasses.replace(settings, **{name: public}), service)


@pytest.mark.parametrize("service", ["metadata", "blob"])
def test_local_dev_only_when_set_and_then_it_says_so(service: str) -> None:
    with structlog.testing.capture_logs() as logs:
        assert not security_enabled(Settings(security_mode="local-dev"), service)
    assert [entry["event"] for entry in logs] == ["security_off"]
