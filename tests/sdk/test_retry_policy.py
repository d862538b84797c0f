"""The one retry policy: attempts, codes, jittered backoff, the server's RetryInfo."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc import aio

from framevault.api.blob_client import UPLOAD_RETRY
from framevault.api.retry import STATUS_DETAILS_KEY, RetryPolicy, codes, server_retry_delay
from framevault.sdk.client import retry_policy
from framevault.sdk.settings import ClientSettings


def _rpc_error(code: grpc.StatusCode, retry_seconds: float | None = None) -> aio.AioRpcError:
    status = status_pb2.Status(code=code.value[0], message="busy")
    if retry_seconds is not None:
        info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
            seconds=int(retry_seconds), nanos=int(round((retry_seconds % 1) * 1e9))))
        status.details.add().Pack(info)
    trailing = aio.Metadata((STATUS_DETAILS_KEY, status.SerializeToString()))
    return aio.AioRpcError(code, aio.Metadata(), trailing, details="busy")


def test_delay_grows_exponentially_within_the_jittered_upper_half() -> None:
    policy = RetryPolicy(max_attempts=10, initial_backoff_seconds=0.1, max_backoff_seconds=5.0)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 3.2), (7, 5.0), (9, 5.0)]:
        assert policy.ceiling(attempt) == pytest.approx(ceiling)
        for _ in range(50):
            assert ceiling / 2 <= policy.delay(attempt) <= ceiling


def test_full_jitter_may_wait_from_zero() -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff_seconds=1.0, max_backoff_seconds=1.0, jitter=1.0)
    assert all(0.0 <= policy.delay(1) <= 1.0 for _ in range(50))


def test_server_delay_is_a_lower_bound() -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff_seconds=0.1, max_backoff_seconds=0.2)
    assert policy.delay(1, server_delay=1.5) == 1.5
    assert policy.delay(1, server_delay=None) <= 0.1


def test_retries_only_retryable_codes_and_only_up_to_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff_seconds=0.1, max_backoff_seconds=1.0,
                         retryable_codes=codes(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED))
    assert policy.retries(grpc.StatusCode.UNAVAILABLE, 1)
    assert policy.retries(grpc.StatusCode.ABORTED, 2)
    assert not policy.retries(grpc.StatusCode.UNAVAILABLE, 3)
    assert not policy.retries(grpc.StatusCode.INVALID_ARGUMENT, 1)
    assert not policy.retries(None, 1)


def test_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0, initial_backoff_seconds=0.1, max_backoff_seconds=1.0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(max_attempts=1, initial_backoff_seconds=0.1, max_backoff_seconds=1.0, jitter=1.5)


def test_grpc_service_config_carries_the_same_numbers() -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff_seconds=0.05, max_backoff_seconds=2.0)
    assert json.loads(json.dumps(policy.grpc_retry_policy())) == {
        "maxAttempts": 5,
        "initialBackoff": "0.05s",
        "maxBackoff": "2s",
        "backoffMultiplier": 2.0,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }


def test_server_retry_delay_reads_retry_info() -> None:
    assert server_retry_delay(_rpc_error(grpc.StatusCode.UNAVAILABLE, 0.5)) == pytest.approx(0.5)
    assert server_retry_delay(_rpc_error(grpc.StatusCode.UNAVAILABLE)) is None
    bare = aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, aio.Metadata(), aio.Metadata())
    assert server_retry_delay(bare) is None


def test_sdk_policy_takes_backoff_from_client_settings() -> None:
    settings = ClientSettings(retry_initial_backoff_seconds=0.25, retry_max_backoff_seconds=1.0)
    policy = retry_policy(settings, settings.unary_attempts, [grpc.StatusCode.UNAVAILABLE])
    assert policy.max_attempts == settings.unary_attempts
    assert policy.ceiling(1) == 0.25 and policy.ceiling(4) == 1.0
    assert retry_policy(settings, 0, []).max_attempts == 1


def test_blob_upload_policy_keeps_its_codes_and_attempts() -> None:
    assert UPLOAD_RETRY.max_attempts == 8
    assert UPLOAD_RETRY.retryable_codes == {
        grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED}
