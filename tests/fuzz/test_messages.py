"""Fuzzed request messages (and message sequences) of every RPC of both services.

For every call: no INTERNAL or UNKNOWN (also not inside per-item statuses),
every INVALID_ARGUMENT names a request field in a BadRequest violation, both
services answer SERVING afterwards, and the published versions read exactly
as before. One test per RPC, so each RPC gets its own example budget and its
failures are reported (and shrunk) on their own.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .harness import ALL_RPCS
from .runner import FuzzEnv, run_example
from .seeds import requests_for

pytestmark = pytest.mark.fuzz



@pytest.mark.parametrize("rpc_name", sorted(ALL_RPCS))
@given(data=st.data())
async def test_fuzzed_requests(fuzz_env: FuzzEnv, rpc_name: str, data: st.DataObject) -> None:
    rpc = ALL_RPCS[rpc_name]
    requests = data.draw(requests_for(rpc), label=f"{rpc_name} requests")
    await run_example(fuzz_env, rpc, requests)
