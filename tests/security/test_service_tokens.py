"""Service tokens are verified once per token value, and never accepted past their expiry."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from framevault.auth import credentials
from framevault.auth.credentials import ServiceTokenMinter, ServiceTokenVerifier
from framevault.common.config import Settings
from framevault.common.errors import Unauthenticated


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signature and claims were checked, in order."""
    checked: list[str] = []
    decode = credentials._decode

    def counted(token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        checked.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(credentials, "_decode", counted)
    return checked


def _token(settings: Settings, audience: str = "metadata") -> str:
    return ServiceTokenMinter(settings, "blob", audience).token()


def test_a_verified_token_is_checked_again_only_after_its_expiry(settings: Settings, decodes: list[str]) -> None:
    clock = Clock()
    verifier = ServiceTokenVerifier(settings, "metadata", clock=clock)
    token = _token(settings)
    assert [verifier.verify(token).service for _ in range(3)] == ["blob"] * 3
    assert len(decodes) == 1
    # Past its exp the remembered answer no longer counts: the token is checked
    # again (here still valid by the signature check's clock, so accepted again).
    clock.offset = settings.service_token_seconds + 1
    assert verifier.verify(token).service == "blob"
    assert len(decodes) == 2


def test_a_remembered_token_is_refused_once_it_has_expired(settings: Settings) -> None:
    short = dataclasses.replace(settings, service_token_seconds=1, jwt_leeway_seconds=0)
    verifier = ServiceTokenVerifier(short, "metadata")
    minted = time.time()
    token = _token(short)
    assert verifier.verify(token).service == "blob"
    expiry = int(minted) + 1
    while time.time() < expiry + 0.05:
        time.sleep(0.05)
    with pytest.raises(Unauthenticated) as refused:
        verifier.verify(token)
    assert refused.value.reason == "CREDENTIAL_EXPIRED"


def test_refused_tokens_are_never_remembered(settings: Settings, decodes: list[str]) -> None:
    verifier = ServiceTokenVerifier(settings, "metadata")
    forged = _token(dataclasses.replace(settings, service_token_secret="another-secret"))
    misaddressed = _token(settings, audience="blob")
    for token, reason in ((forged, "CREDENTIAL_INVALID"), (misaddressed, "CREDENTIAL_WRONG_AUDIENCE")) * 2:
        with pytest.raises(Unauthenticated) as refused:
            verifier.verify(token)
        assert refused.value.reason == reason
    assert len(decodes) == 4


def test_each_token_value_is_verified_on_its_own(settings: Settings, decodes: list[str]) -> None:
    verifier = ServiceTokenVerifier(settings, "metadata")
    first = _token(settings)
    verifier.verify(first)
    forged = first[:-4] + ("AAAA" if not first.endswith("AAAA") else "BBBB")
    with pytest.raises(Unauthenticated):
        verifier.verify(forged)
    assert verifier.verify(first).service == "blob"
    assert len(decodes) == 2
