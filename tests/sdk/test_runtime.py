"""Sync twins of async SDK calls, and one client per event loop (pure, no services)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from framevault.sdk import runtime
from framevault.sdk.settings import ClientSettings


async def aplus(a: int, b: int) -> int:
    """Adds on whatever loop runs it."""
    await asyncio.sleep(0)
    return a + b


plus = runtime.sync_twin(aplus)


class Thing:
    @classmethod
    async def amake(cls, value: int) -> tuple[type, int, str]:
        await asyncio.sleep(0)
        return cls, value, threading.current_thread().name

    make = runtime.sync_classmethod(amake)


def test_sync_twin_keeps_name_doc_and_result() -> None:
    assert plus(2, 3) == 5
    assert plus.__name__ == "plus"
    assert "Synchronous form of ``aplus``" in (plus.__doc__ or "")
    cls, value, thread = Thing.make(4)
    assert (cls, value, thread) == (Thing, 4, "framevault-sdk-loop")


async def test_sync_twin_works_while_the_caller_runs_a_loop() -> None:
    # The caller's loop is blocked for the duration, but nothing deadlocks:
    # the work runs on the private loop.
    assert plus(1, 1) == 2


def test_sync_iterator_drives_and_closes_an_async_generator() -> None:
    closed = []

    async def numbers() -> AsyncIterator[int]:
        try:
            for i in range(10):
                yield i
        finally:
            closed.append(True)

    with runtime.SyncIterator(numbers()) as iterator:
        assert [next(iterator) for _ in range(3)] == [0, 1, 2]
    assert closed == [True]
    assert list(runtime.SyncIterator(numbers())) == list(range(10))


async def test_each_loop_has_its_own_client() -> None:
    here = runtime.current_client()
    assert runtime.current_client() is here

    async def on_private_loop() -> int:
        return id(runtime.current_client())

    private = runtime.sync_twin(on_private_loop)
    assert await asyncio.to_thread(private) != id(here)
    await runtime.aclose()
    assert runtime.current_client() is not here
    await runtime.aclose()


def test_configure_overrides_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"FRAMEVAULT_METADATA_TARGET": "meta:1", "FRAMEVAULT_BLOB_TARGET": "blob:2"}
    settings = ClientSettings.from_env(env, call_timeout_seconds=5.0, blob_target=None)
    assert (settings.metadata_target, settings.blob_target, settings.call_timeout_seconds) == ("meta:1", "blob:2", 5.0)
    previous = runtime.get_settings()
    try:
        assert runtime.configure(metadata_target="elsewhere:9").metadata_target == "elsewhere:9"
    finally:
        runtime.configure(metadata_target=previous.metadata_target, blob_target=previous.blob_target)


def test_sync_call_inside_the_private_loop_is_refused() -> None:
    async def nested() -> int:
        return plus(1, 2)

    with pytest.raises(RuntimeError, match="await the a"):
        runtime.run_sync(nested())
