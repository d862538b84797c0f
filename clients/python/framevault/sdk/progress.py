"""Progress bars (tqdm), on by default only where someone can see them."""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm


def progress_enabled(requested: bool | None) -> bool:
    """``requested`` if given, else whether stderr is a terminal."""
    if requested is not None:
        return requested
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress_bar(enabled: bool | None, *, desc: str, unit: str, total: float | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr; disabled bars cost nothing and accept the same calls."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=not progress_enabled(enabled),
        dynamic_ncols=True,
        leave=True,
        **kwargs,
    )


class LazyBar:
    """A bar created on first use, so nothing is drawn for work that never happens."""

    def __init__(self, enabled: bool | None, **kwargs: Any) -> None:
        self._enabled = enabled
        self._kwargs = kwargs
        self._bar: tqdm | None = None

    def get(self) -> tqdm:
        if self._bar is None:
            self._bar = progress_bar(self._enabled, **self._kwargs)
        return self._bar

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> LazyBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
