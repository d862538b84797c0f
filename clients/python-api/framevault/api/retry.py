"""One retry policy for every call that is tried again: attempts, backoff, codes.

A :class:`RetryPolicy` answers two questions for a failed attempt: may another
attempt be made (:meth:`RetryPolicy.retries`), and how long to wait before it
(:meth:`RetryPolicy.delay`). The wait grows exponentially from
``initial_backoff`` up to ``max_backoff`` and is drawn at random from the upper
``jitter`` fraction of that ceiling, so callers failing together do not retry
in step; a ``google.rpc.RetryInfo`` delay sent by the server is a lower bound.
Channels that leave retries to gRPC take the same numbers through
:meth:`RetryPolicy.grpc_retry_policy`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2

# The trailer carrying a google.rpc.Status with the rich error details.
STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts every attempt, the first included."""

    max_attempts: int
    initial_backoff_seconds: float
    max_backoff_seconds: float
    multiplier: float = 2.0
    # The delay is drawn from [ceiling * (1 - jitter), ceiling]: 0.5 spreads
    # retries over the upper half, 1.0 is full jitter.
    jitter: float = 0.5
    retryable_codes: frozenset[grpc.StatusCode] = field(
        default_factory=lambda: frozenset({grpc.StatusCode.UNAVAILABLE}))

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")

    def ceiling(self, attempt: int) -> float:
        """The longest wait after failed attempt ``attempt`` (1-based)."""
        return min(self.max_backoff_seconds, self.initial_backoff_seconds * self.multiplier ** (attempt - 1))

    def delay(self, attempt: int, server_delay: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based), at least what the server asked."""
        ceiling = self.ceiling(attempt)
        return max(random.uniform(ceiling * (1.0 - self.jitter), ceiling), server_delay or 0.0)

    def is_retryable(self, code: grpc.StatusCode | None) -> bool:
        return code in self.retryable_codes

    def retries(self, code: grpc.StatusCode | None, attempt: int) -> bool:
        """Whether failed attempt ``attempt`` (1-based) with ``code`` is followed by another."""
        return self.is_retryable(code) and attempt < self.max_attempts

    def grpc_retry_policy(self) -> dict[str, object]:
        """The ``retryPolicy`` of a gRPC service config with these numbers (gRPC applies its own jitter)."""
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": _duration(self.initial_backoff_seconds),
            "maxBackoff": _duration(self.max_backoff_seconds),
            "backoffMultiplier": self.multiplier,
            "retryableStatusCodes": sorted(code.name for code in self.retryable_codes),
        }


def _duration(seconds: float) -> str:
    """A protobuf JSON duration ("0.05s"), as gRPC service configs spell it."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def codes(*status_codes: grpc.StatusCode) -> frozenset[grpc.StatusCode]:
    return frozenset(status_codes)


def server_retry_delay(error: grpc.RpcError) -> float | None:
    """The ``google.rpc.RetryInfo`` delay in seconds that a failed call carries, if any."""
    trailing = getattr(error, "trailing_metadata", None)
    metadata: Iterable[tuple[str, object]] = (trailing() if callable(trailing) else None) or ()
    for key, value in metadata:
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                return float(info.retry_delay.ToTimedelta().total_seconds())
    return None
