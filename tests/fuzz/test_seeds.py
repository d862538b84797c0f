"""The fuzzer's own coverage: every RPC of both services has seeds and a strategy."""

from __future__ import annotations

from .harness import ALL_RPCS, BLOB_RPCS, METADATA_RPCS
from .seeds import SEEDS


def test_seeds_cover_every_rpc() -> None:
    assert METADATA_RPCS and BLOB_RPCS
    assert sorted(SEEDS) == sorted(ALL_RPCS), "add seeds for new RPCs in tests/fuzz/seeds.py"
