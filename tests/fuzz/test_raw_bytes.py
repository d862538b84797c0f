"""Raw request bytes of every RPC: seeds cut, flipped and spliced, and bytes
no decoder accepts, sent with an identity serializer. The same oracle as for
messages; an undecodable request is a caller mistake (INVALID_ARGUMENT)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .harness import ALL_RPCS
from .runner import FuzzEnv, raw_recipes, run_raw_example

pytestmark = pytest.mark.fuzz



@pytest.mark.parametrize("rpc_name", sorted(ALL_RPCS))
@given(data=st.data())
async def test_raw_request_bytes(fuzz_env: FuzzEnv, rpc_name: str, data: st.DataObject) -> None:
    rpc = ALL_RPCS[rpc_name]
    recipe = data.draw(raw_recipes(rpc), label=f"{rpc_name} bytes")
    await run_raw_example(fuzz_env, rpc, recipe)
