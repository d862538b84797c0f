"""Runs one fuzzed call against the seeded world and raises on any problem."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence

import grpc
from google.protobuf.message import Message
from grpc import aio
from hypothesis import strategies as st

from .harness import Problem, Rpc, call, decodes, describe, failure, health_problems, judge
from .seeds import SEEDS, keep_published
from .world import World

# Set to a file path to log every fuzzed call (RPC, status, message, request).
TRACE_FILE = os.environ.get("FRAMEVAULT_FUZZ_TRACE", "")


class FuzzEnv:
    """The seeded world and the channels to the fuzz tier's services."""

    def __init__(self, world: World, metadata: aio.Channel, blob: aio.Channel,
                 sync_channels: dict[str, grpc.Channel]):
        self.world, self.metadata, self.blob = world, metadata, blob
        # Synchronous channels by service name, for client streams (see harness.call).
        self.sync_channels = sync_channels

    @property
    def channels(self) -> dict[str, aio.Channel]:
        return {"metadata service": self.metadata, "blob service": self.blob}

    def channel_for(self, service: str) -> aio.Channel:
        return self.metadata if service.endswith("MetadataService") else self.blob

    def __repr__(self) -> str:
        return "fuzz_env"


async def run_example(env: FuzzEnv, rpc: Rpc, requests: Sequence[Message]) -> None:
    """Sends fuzzed messages (with placeholders) and checks the oracle."""
    world = env.world
    await world.ensure()
    upload_id = str(uuid.uuid4())
    resolved = keep_published(rpc, [world.resolve(m, upload_id) for m in requests], world.values)
    await _check(env, rpc, resolved, decodable=True)


async def run_raw_example(env: FuzzEnv, rpc: Rpc, recipe: RawRecipe) -> None:
    """Sends bytes made from a resolved seed (or from nothing) by ``recipe``."""
    world = env.world
    await world.ensure()
    upload_id = str(uuid.uuid4())
    payloads = [recipe.bytes_from(keep_published(rpc, [world.resolve(m, upload_id)], world.values)[0]
                                  if m is not None else None) for m in recipe.seeds]
    await _check(env, rpc, payloads, decodable=all(decodes(rpc, p) for p in payloads))


async def _check(env: FuzzEnv, rpc: Rpc, requests: Sequence[Message | bytes], *, decodable: bool) -> None:
    world = env.world
    outcome = await call(env.channel_for(rpc.service), rpc, requests, env.sync_channels[rpc.service])
    if TRACE_FILE:
        with open(TRACE_FILE, "a", encoding="utf-8") as trace:
            trace.write(f"{rpc.name}\t{outcome.code.name}\t{outcome.message[:200]!r}\t{describe(requests, 300)}\n")
    problems = judge(rpc, outcome, decodable=decodable)
    problems += await health_problems(env.channels)
    changes = await world.published_changes()
    if changes:
        problems += [Problem("PublishedDataChanged", change) for change in changes]
        # Later examples are judged on intact data.
        await world.build()
    if problems:
        text = "\n".join(f"[{p.kind}] {p.text}" for p in problems)
        raise failure(problems[0].kind, f"{text}\nanswer: {outcome.code.name} {outcome.message}\n"
                                        f"request ({rpc.name}): {describe(requests)}")


# --- raw bytes -----------------------------------------------------------------

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _nested(depth: int, field_number: int) -> bytes:
    data = b""
    tag = _varint(field_number << 3 | 2)
    for _ in range(depth):
        data = tag + _varint(len(data)) + data
    return data


# Bytes no protobuf decoder accepts, or accepts only at its limits.
UNDECODABLE = [
    b"\x80",                                  # truncated varint tag
    b"\x0a\x05ab",                            # length past the end
    b"\x0a\xff\xff\xff\xff\x0f",              # huge length
    b"\x0b",                                  # start group, never ended
    b"\x0c",                                  # end group without start
    b"\x07",                                  # wire type 7
    b"\x00\x00",                              # field number 0
    b"\x08" + b"\xff" * 11,                   # overlong varint
    b"\x0a\x02\xff\xfe",                      # invalid UTF-8 where field 1 is a string
    b"\x12\x02\xc3\x28",                      # invalid UTF-8 in field 2
    b"\x1a\x01\x80",                          # invalid UTF-8 in field 3
    _nested(101, 1),
    _nested(2000, 1),
]


class RawRecipe:
    def __init__(self, seeds: list[Message | None], edits: list[tuple[int, float, bytes]]):
        self.seeds = seeds
        self.edits = edits

    def bytes_from(self, message: Message | None) -> bytes:
        data = message.SerializeToString() if message is not None else b""
        for kind, where, junk in self.edits:
            at = int(where * len(data))
            if kind == 0:
                data = data[:at]
            elif kind == 1 and data:
                at = min(at, len(data) - 1)
                data = data[:at] + bytes([data[at] ^ (junk[0] if junk else 0xFF)]) + data[at + 1:]
            elif kind == 2:
                data = data[:at] + junk + data[at:]
            else:
                data = data + junk
        return data

    def __repr__(self) -> str:
        seeds = ["None" if s is None else type(s).__name__ + "(" + describe([s], 300) + ")" for s in self.seeds]
        return f"RawRecipe(seeds=[{', '.join(seeds)}], edits={self.edits!r})"


def raw_recipes(rpc: Rpc) -> st.SearchStrategy[RawRecipe]:
    seed_messages = st.one_of(*SEEDS[rpc.name]).map(lambda s: s[0])
    junk = st.one_of(st.sampled_from(UNDECODABLE), st.binary(max_size=64))
    edit = st.tuples(st.integers(0, 3), st.floats(0, 1), junk)
    message = st.one_of(seed_messages, st.none())
    return st.builds(RawRecipe, st.lists(message, min_size=1, max_size=3 if rpc.client_streaming else 1),
                     st.lists(edit, min_size=1, max_size=3))
