"""One implementation, two faces: async methods and their synchronous twins.

The SDK is written once, as coroutines. Synchronous callers (plain scripts,
notebooks) reach the same coroutines through a private event loop running in
a daemon thread: :func:`run_sync` submits a coroutine there and waits. That
works even when the calling thread runs its own event loop, and keeps gRPC's
channels alive between calls.

gRPC aio channels belong to the loop that created them, so clients are kept
per event loop: :func:`current_client` returns the one of the running loop.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, ParamSpec, TypeVar

from framevault.sdk.client import FramevaultClient
from framevault.sdk.settings import ClientSettings

T = TypeVar("T")
P = ParamSpec("P")

_lock = threading.Lock()
_settings: ClientSettings | None = None
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FramevaultClient] = weakref.WeakKeyDictionary()
_private_loop: asyncio.AbstractEventLoop | None = None
_private_thread: threading.Thread | None = None


def configure(
    metadata_target: str | None = None,
    blob_target: str | None = None,
    **settings: Any,
) -> ClientSettings:
    """Sets where the services are (and any other :class:`ClientSettings` field).

    Unset values keep their previous value, which starts from the
    environment (``FRAMEVAULT_METADATA_TARGET``, ``FRAMEVAULT_BLOB_TARGET``).
    Clients created with the old settings are dropped; the private loop's
    client is closed. Call :func:`aclose` in async code to close the running
    loop's client as well.
    """
    global _settings
    with _lock:
        new = get_settings().replace(metadata_target=metadata_target, blob_target=blob_target, **settings)
        _settings = new
        stale = dict(_clients)
        _clients.clear()
    private = _private_loop
    for loop, client in stale.items():
        if loop is private and loop.is_running() and threading.current_thread() is not _private_thread:
            asyncio.run_coroutine_threadsafe(client.close(), loop).result()
    return new


def get_settings() -> ClientSettings:
    """The settings new clients are created with."""
    global _settings
    if _settings is None:
        _settings = ClientSettings.from_env()
    return _settings


def current_client() -> FramevaultClient:
    """The client of the running event loop, created on first use."""
    loop = asyncio.get_running_loop()
    with _lock:
        client = _clients.get(loop)
        if client is None:
            client = FramevaultClient(get_settings())
            _clients[loop] = client
        return client


async def aclose() -> None:
    """Closes the running loop's client (a new one is created on next use)."""
    loop = asyncio.get_running_loop()
    with _lock:
        client = _clients.pop(loop, None)
    if client is not None:
        await client.close()


def _ensure_private_loop() -> asyncio.AbstractEventLoop:
    global _private_loop, _private_thread
    with _lock:
        if _private_loop is None or not _private_thread or not _private_thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="framevault-sdk-loop", daemon=True)
            thread.start()
            _private_loop, _private_thread = loop, thread
        return _private_loop


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs ``coroutine`` on the private loop and waits for its result.

    Raises:
        RuntimeError: called from the private loop itself (an async SDK
            method must be awaited there instead).
    """
    loop = _ensure_private_loop()
    if threading.current_thread() is _private_thread:
        coroutine.close()
        raise RuntimeError("synchronous framevault calls cannot run inside the SDK's own loop; await the a* method")
    future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    try:
        return future.result()
    except KeyboardInterrupt:
        future.cancel()
        raise


class SyncIterator(Iterator[T]):
    """Drives an async iterator on the private loop.

    Each trip to the loop costs a thread hand-over both ways, so items cross
    in batches where the async side has them: with ``batched=True`` the async
    iterator yields lists of items (a page, a message) and ``next()`` returns
    them one by one; subclasses may hand over their own batches (see
    :meth:`_take`). ``close()`` (or leaving a ``with`` block) closes the async
    iterator, so a stream stops when the caller stops reading.
    """

    def __init__(self, iterator: AsyncIterator[Any], *, batched: bool = False) -> None:
        self._iterator = iterator
        self._batched = batched
        self._ready: deque[Any] = deque()

    def __iter__(self) -> SyncIterator[T]:
        return self

    def __next__(self) -> T:
        while not self._ready:
            batch = run_sync(self._take())
            if batch is None:
                raise StopIteration
            self._ready.extend(batch)
        return self._deliver(self._ready.popleft())

    async def _take(self) -> list[Any] | None:
        """The next items from the async iterator (runs on the private loop); None at its end."""
        try:
            item = await anext(self._iterator)
        except StopAsyncIteration:
            return None
        return list(item) if self._batched else [item]

    def _deliver(self, item: Any) -> T:
        """What ``next()`` returns for an item of :meth:`_take` (runs in the caller's thread)."""
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stops the underlying stream; items handed over and not yet returned are dropped."""
        self._ready.clear()
        closer = getattr(self._iterator, "aclose", None)
        if closer is not None:
            run_sync(closer())

    def __enter__(self) -> SyncIterator[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def sync_twin(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """The synchronous twin of an async SDK function: same arguments, same result."""

    @functools.wraps(method)
    def twin(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_sync(method(*args, **kwargs))

    name = method.__name__
    twin.__name__ = name[1:] if name.startswith("a") else name
    owner, _, _ = method.__qualname__.rpartition(".")
    twin.__qualname__ = f"{owner}.{twin.__name__}" if owner else twin.__name__
    twin.__doc__ = f"Synchronous form of ``{name}``.\n\n{method.__doc__ or ''}"
    return twin


def sync_classmethod(method: Any) -> Any:
    """The synchronous twin of an async classmethod (see :func:`sync_twin`)."""
    return classmethod(sync_twin(method.__func__))


def _shutdown() -> None:
    loop = _private_loop
    if loop is None or not loop.is_running():
        return
    client = _clients.get(loop)
    if client is not None:
        try:
            asyncio.run_coroutine_threadsafe(client.close(), loop).result(timeout=5)
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass
    loop.call_soon_threadsafe(loop.stop)


atexit.register(_shutdown)
