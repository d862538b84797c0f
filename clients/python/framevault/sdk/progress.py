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
