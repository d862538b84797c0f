"""Client streams the blob service answers before reading them to the end:
the drain every service applies (``framevault.common.streams``), which
WriteBlob also runs when the blob exists and it answers at once."""

from __future__ import annotations

from framevault.common.streams import drain_briefly

__all__ = ["drain_briefly"]
