"""Deterministic randomness of views: frame ranks, bucket permutations, draws.

Everything is a pure function of (seed, selection, cycle, counter), so an
iteration can be resumed from a few integers and no permutation is ever
materialised. See README.md, "Random order".
"""

from __future__ import annotations

import hashlib
import math

KEY_BITS = 63  # shuffle_key is a non-negative int63
TARGET_BUCKET_FRAMES = 1024
MAX_BUCKET_BITS = 24
_ROUNDS = 4


def _digest(*parts: object, size: int = 32) -> bytes:
    text = "/".join(str(p) for p in parts).encode()
    return hashlib.blake2b(text, digest_size=size, person=b"fv-view-order").digest()


def bucket_bits_for(frame_count: int) -> int:
    """log2 of the bucket count: about TARGET_BUCKET_FRAMES frames per bucket."""
    if frame_count <= TARGET_BUCKET_FRAMES:
        return 0
    return min(MAX_BUCKET_BITS, math.ceil(math.log2(frame_count / TARGET_BUCKET_FRAMES)))


class CycleOrder:
    """The order of one selection in one cycle of a random iteration."""

    def __init__(self, seed: int, selection: int, cycle: int, bucket_bits: int):
        self.bucket_bits = bucket_bits
        key = _digest("cycle", seed, selection, cycle, size=48)
        self._rank_key = key[:16]
        self._round_keys = tuple(int.from_bytes(key[16 + 8 * i: 24 + 8 * i], "big") for i in range(_ROUNDS))

    @property
    def bucket_count(self) -> int:
        return 1 << self.bucket_bits

    def bucket(self, ordinal: int) -> int:
        """The ordinal-th bucket visited: a keyed bijection on [0, 2^bits).

        Each round (multiply by an odd number, xor-shift, add) is invertible
        modulo 2^bits, so the composition is a permutation.
        """
        bits = self.bucket_bits
        if bits == 0:
            return 0
        mask = (1 << bits) - 1
        shift = (bits + 1) // 2
        x = ordinal & mask
        for round_key in self._round_keys:
            x = (x * (round_key | 1)) & mask
            x ^= x >> shift
            x = (x + (round_key >> 32)) & mask
        return x

    def key_range(self, bucket: int) -> tuple[int, int | None]:
        """``[low, high)`` of shuffle keys in ``bucket``; high None = to the end."""
        width_bits = KEY_BITS - self.bucket_bits
        low = bucket << width_bits
        return low, None if bucket == self.bucket_count - 1 else (bucket + 1) << width_bits

    def rank(self, frame_id: str) -> tuple[int, str]:
        """Order of a frame inside its bucket (the id breaks hash ties)."""
        digest = hashlib.blake2b(frame_id.encode(), digest_size=8, key=self._rank_key).digest()
        return int.from_bytes(digest, "big"), frame_id


def uniform(seed: int, draw: int) -> float:
    """The draw-th number in [0, 1) of the mixing sequence of ``seed``."""
    return (int.from_bytes(_digest("mix", seed, draw, size=8), "big") >> 11) / float(1 << 53)
