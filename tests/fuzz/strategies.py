"""Hypothesis strategies for any protobuf request message, derived from its descriptor.

Every field of every message is drawn from its type, so a field added to the
contract is fuzzed without touching this file. Values lean towards the edges
where decoders and validators break: empty and huge strings, integer bounds,
NaN and infinities, non-ASCII digits, NUL, ``$`` and ``.`` in map keys,
metadata nested around the documented depth limit and past the protobuf
decoder's limit. Strings with a known meaning (ids, names, blob URIs, page
tokens, queries ...) are drawn mostly from pools of real values of the seeded
world (``world.py``), written as ``{{placeholders}}`` that the test resolves
against the data of the run, so that the fuzzer reaches the code behind the
lookups instead of stopping at NOT_FOUND.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor as d
from google.protobuf.message import Message
from hypothesis import strategies as st

from framevault.v1 import metadata_pb2

F = d.FieldDescriptor

# --- scalar edges ----------------------------------------------------------

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT32_MAX, UINT64_MAX = 2**32 - 1, 2**64 - 1

_INT_RANGES = {
    F.TYPE_INT32: (INT32_MIN, INT32_MAX), F.TYPE_SINT32: (INT32_MIN, INT32_MAX),
    F.TYPE_SFIXED32: (INT32_MIN, INT32_MAX),
    F.TYPE_INT64: (INT64_MIN, INT64_MAX), F.TYPE_SINT64: (INT64_MIN, INT64_MAX),
    F.TYPE_SFIXED64: (INT64_MIN, INT64_MAX),
    F.TYPE_UINT32: (0, UINT32_MAX), F.TYPE_FIXED32: (0, UINT32_MAX),
    F.TYPE_UINT64: (0, UINT64_MAX), F.TYPE_FIXED64: (0, UINT64_MAX),
}
_INT_EDGES = [0, 1, -1, 2, 3, 7, 100, 255, 256, 999, 1000, 1001, 10_000, 10_001, 65_536, 2**24, 2**31 - 1, -(2**31),
              2**32, 2**53 + 1, 10**11, 10**12, 10**18, 2**62, INT64_MAX, INT64_MIN, UINT64_MAX, 2**63]


def integers_of(kind: int) -> st.SearchStrategy[int]:
    low, high = _INT_RANGES[kind]
    edges = sorted({v for v in _INT_EDGES + [low, high, low + 1, high - 1] if low <= v <= high}, key=abs)
    small = st.integers(max(low, 0), min(high, 100))
    return st.one_of(small, st.sampled_from(edges), small, st.integers(max(low, -5), min(high, 1100)),
                     st.integers(low, high))


_FLOAT_EDGES = [0.0, -0.0, 0.5, 1.0, -1.0, 1.5, 2.0, float("nan"), float("inf"), float("-inf"), 1e39, -1e39, 1e300,
                3.4028235e38, 5e-324, 1e-45, 2.0**63, 9.3e18]


def floats_of(kind: int) -> st.SearchStrategy[float]:
    width = 32 if kind == F.TYPE_FLOAT else 64
    return st.one_of(st.sampled_from(_FLOAT_EDGES), st.floats(width=width), st.floats(-2.0, 2.0, width=width))


# --- strings ---------------------------------------------------------------

HEX64 = "0123456789abcdef" * 4
_EDGE_TEXT = ["", " ", "a", "car", "x" * 256, "x" * 257, "é" * 200, "$gt", "$where", "a.b", ".", "..", "a\x00b",
              "\x00", "²", "٣", "１２", "-1", "0", "00", "1e400", "NaN", "Infinity", "null", "true", "{}", "[]",
              "*", "\\", '"', "'", "(", ")", "AND", "NOT", "Current", "a/b", "../..", "%00", "\u202e", "\ufeff",
              "🚗", "\U0010ffff", "x" * 4097, "y" * 70_000]


def edge_text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(_EDGE_TEXT), st.text(max_size=12), st.text(min_size=100, max_size=600))


def placeholder(name: str) -> str:
    """A value of the seeded world, resolved by ``World.resolve``."""
    return "{{" + name + "}}"


DATASET_IDS = [placeholder("dataset.id"), placeholder("playground.id")]
VERSION_IDS = [placeholder("published.id"), placeholder("published2.id"), placeholder("draft.id"),
               placeholder("playground_draft.id")]
OBJECT_IDS = ["000000000000000000000000", "ffffffffffffffffffffffff", "0123456789abcdef01234567", "0" * 23, "0" * 25,
              "zzzzzzzzzzzzzzzzzzzzzzzz", "{\"$ne\": null}"]
DATASET_NAMES = [placeholder("dataset.name"), placeholder("playground.name"), "no such dataset", "a" * 128, "a" * 129,
                 " lead", "trail ", "a:b/c(d)_e-f.g", "ünïcode"]
VERSION_NAMES = ["Current", "released", "released-2", "no such version", "a" * 129]
FRAME_IDS = [f"f{i:03d}" for i in range(4)] + ["d000", "no-such-frame", "x" * 512, "x" * 513]
LABELS = ["car", "person", "occluded", "", "x" * 257, "$gt", "a.b"]


def blob_uri(hash_: str, size: str) -> str:
    return f"blob:sha256/{hash_}/{size}"


def odd_sizes(real: int) -> list[str]:
    return [str(real), str(real + 1), str(max(real - 1, 0)), "0", "-1", "99999999999999999999", str(INT64_MAX),
            str(2**63), "²", "٣", "３", "1_0", " 1", "1e3", "0x10", "01", "", "+5"]


def hashes_of(blobs: list[bytes]) -> list[str]:
    return [hashlib.sha256(b).hexdigest() for b in blobs]


class Pools:
    """Strings and strategies keyed by field name, from the seeded world's blobs."""

    def __init__(self, blobs: list[bytes], queries: st.SearchStrategy[str]):
        self.blobs = blobs
        real = [(hashlib.sha256(b).hexdigest(), len(b)) for b in blobs]
        self.hashes = [h for h, _ in real] + [HEX64, HEX64.upper(), HEX64[:63], HEX64 + "0", "g" * 64, ""]
        uris = [blob_uri(h, s) for h, n in real for s in odd_sizes(n)]
        uris += [blob_uri(HEX64, "3"), blob_uri(real[0][0].upper(), str(real[0][1])), "blob:sha256//", "blob:",
                 "blob:sha256/" + real[0][0], "https://images.invalid/a.jpg", "s3://bucket/key.png",
                 "file:///etc/passwd", "ftp://x/y", "javascript:alert(1)", "", "http://", "s3://"]
        self.uris = uris
        names = [f"uploads/{{{{uuid}}}}/blobs/{h}/{s}" for h, n in real[:2] for s in odd_sizes(n)[:10]]
        names += ["uploads/not-a-uuid/blobs/" + real[0][0] + "/" + str(real[0][1]), "uploads//blobs//", "",
                  "blobs/" + real[0][0], "uploads/{{uuid}}/blobs/" + HEX64 + "/5497558138880"]
        self.resource_names = names
        self.queries = queries

    def text_for(self, field: d.FieldDescriptor) -> st.SearchStrategy[str]:
        """A string for ``field``: world values first, edges next."""
        owner, name = field.containing_type.name, field.name
        pool: list[str] | None = None
        extra: st.SearchStrategy[str] | None = None
        if owner == "DatasetRef" and name == "id":
            pool = DATASET_IDS + OBJECT_IDS
        elif owner == "VersionRef" and name == "id":
            pool = VERSION_IDS + OBJECT_IDS
        elif owner == "DatasetRef" and name == "name" or owner == "Dataset" and name == "name":
            pool = DATASET_NAMES
        elif owner in ("VersionRef", "Version") and name == "name" or name == "snapshot_name":
            pool = VERSION_NAMES
        elif name in ("frame_id", "frame_ids") or owner == "Frame" and name == "id":
            pool = FRAME_IDS
        elif name == "hash":
            pool = self.hashes
        elif name == "uri":
            pool = self.uris
        elif name == "resource_name":
            pool = self.resource_names
        elif name in ("page_token", "resume_cursor"):
            extra = tokens()
        elif name == "query":
            extra = self.queries
        elif name in ("key", "meta_keys"):
            pool = ["city", "weather.rain", "n", "$where", "a..b", ".a", "a.", "a\x00b", "", "x" * 300, "a.$gt"]
        elif name in ("labels", "from_labels", "to_label", "tags"):
            pool = LABELS
        elif name in ("content_type",):
            pool = ["image/jpeg", "image/png", "text/html", "text/html; charset=utf-8", "application/octet-stream",
                    "", "x" * 300, "a\r\nSet-Cookie: x=1"]
        elif name in ("sources", "source_id") or owner == "Source" and name == "id":
            pool = ["default", "front", "rear", "", "x" * 300]
        elif name in ("context_id", "id", "client_key"):
            pool = ["ctx", "ctx-2", ""]
        choices: list[st.SearchStrategy[str]] = []
        if pool:
            # World values twice as often as edges: most lookups should succeed.
            choices += [st.sampled_from(pool)] * 2
        if extra is not None:
            choices.append(extra)
        choices.append(edge_text())
        return st.one_of(*choices)


# --- page tokens and cursors -------------------------------------------------

# JSON values put in place of one value of a real token's payload.
TOKEN_JSON_EDGES: list[Any] = [2**70, -1, 1e20, 10**400, -(2**63) - 1, 2**63, 2**64, 64, 63, 40, 24, 1 << 40,
                               "", "x" * 5000, None, [], {}, True, 1.5, float("inf"), "$gt", {"$gt": ""}, [1] * 200]
TOKEN_NAMES = ["token.datasets", "token.versions", "token.frames", "token.view_frames", "token.view_frames_metadata",
               "cursor.sequential", "cursor.random", "cursor.frame", "cursor.diff"]


def tokens() -> st.SearchStrategy[str]:
    """Real tokens, the same with one payload value replaced (forged), and junk."""
    real = st.sampled_from(TOKEN_NAMES).map(placeholder)
    forged = st.builds(lambda n, leaf, v: placeholder(f"forge:{n}:{leaf}:{v}"), st.sampled_from(TOKEN_NAMES),
                       st.integers(0, 12), st.integers(0, len(TOKEN_JSON_EDGES) - 1))
    junk = st.one_of(st.sampled_from(["", "=", "..", "a.b", "eyJ2IjoxfQ", "eyJ2IjoxfQ.AAAA", "x" * 5000,
                                      "x" * (1024 * 1024 + 1)]), st.text(max_size=40))
    return st.one_of(real, forged, junk)


# --- metadata --------------------------------------------------------------

# Documented limit 20; the decoders stop at 100 protobuf levels (three per
# object level, two per list level).
META_DEPTHS = [1, 2, 3, 19, 20, 21, 22, 31, 32, 33, 34, 35, 40, 50, 51, 70]
META_KEYS = ["city", "n", "x", "weather", "$gt", "$where", "a.b", ".", "a\x00b", "", "x" * 256, "x" * 257, "²", "٣",
             "_id", "__proto__", "\u202e", "🚗"]


def metadata_leaf() -> st.SearchStrategy[metadata_pb2.MetadataValue]:
    V = metadata_pb2.MetadataValue
    return st.one_of(
        st.builds(lambda v: V(int_value=v), integers_of(F.TYPE_INT64)),
        st.builds(lambda v: V(double_value=v), floats_of(F.TYPE_DOUBLE)),
        st.builds(lambda v: V(string_value=v), st.one_of(st.sampled_from(["bremen", "$gt", "", "x" * 2000]),
                                                         edge_text())),
        st.builds(lambda v: V(bool_value=v), st.booleans()),
        st.just(V(null_value=0)),
        st.just(V()),
    )


def nested_value(depth: int, keys: list[str], lists: list[bool], leaf: metadata_pb2.MetadataValue
                 ) -> metadata_pb2.MetadataValue:
    """A value ``depth`` levels deep, each level an object or a list.

    Built in place from the top: the Python runtime copies through its
    decoder in constructors and MergeFrom, which refuses deep messages.
    """
    root = metadata_pb2.MetadataValue()
    current = root
    for level in range(depth - 1):
        if lists[level % len(lists)]:
            current = current.list_value.values.add()
        else:
            current = current.map_value.fields[keys[level % len(keys)]]
    current.CopyFrom(leaf)
    return root


@st.composite
def metadata(draw: st.DrawFn) -> metadata_pb2.Metadata:
    out = metadata_pb2.Metadata()
    for key in draw(st.lists(st.sampled_from(META_KEYS), max_size=3, unique=True)):
        if draw(st.booleans()):
            depth = draw(st.sampled_from(META_DEPTHS))
            lists = draw(st.lists(st.booleans(), min_size=1, max_size=3))
            out.fields[key].CopyFrom(nested_value(depth, ["k", "city", "$gt"], lists, draw(metadata_leaf())))
        else:
            out.fields[key].CopyFrom(draw(metadata_leaf()))
    return out


@st.composite
def metadata_value(draw: st.DrawFn) -> metadata_pb2.MetadataValue:
    if draw(st.booleans()):
        return draw(metadata_leaf())
    depth = draw(st.sampled_from(META_DEPTHS))
    return nested_value(depth, ["k"], draw(st.lists(st.booleans(), min_size=1, max_size=3)), draw(metadata_leaf()))


# --- field masks -----------------------------------------------------------

MASK_PATHS = ["name", "description", "tags", "meta", "mask_labels", "context_id", "timestamp", "sources", "rois",
              "blob", "meta.city", "meta.a.b", "meta.$gt", "meta.", "meta..x", "id", "etag", "sources.uri", "rois.labels",
              "frame_count", "status", "", "*", "nope", "meta.\x00", "x" * 300, "sources.meta.city"]


def field_masks() -> st.SearchStrategy[list[str]]:
    return st.lists(st.one_of(st.sampled_from(MASK_PATHS), edge_text()), max_size=3)


# --- messages --------------------------------------------------------------

# Message levels below which only empty messages are drawn (metadata nesting
# comes from the metadata strategies, not from recursion of Frame etc.).
MAX_MESSAGE_DEPTH = 6


class MessageStrategies:
    """Builds a strategy for any message type; special types have their own."""

    def __init__(self, pools: Pools):
        self.pools = pools
        self._special: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
            "framevault.v1.Metadata": metadata,
            "framevault.v1.MetadataValue": metadata_value,
        }

    def scalar(self, field: d.FieldDescriptor) -> st.SearchStrategy[Any]:
        kind = field.type
        if kind in _INT_RANGES:
            return integers_of(kind)
        if kind in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
            return floats_of(kind)
        if kind == F.TYPE_BOOL:
            return st.booleans()
        if kind == F.TYPE_STRING:
            return self.pools.text_for(field)
        if kind == F.TYPE_BYTES:
            return st.one_of(st.sampled_from(self.pools.blobs), st.binary(max_size=64),
                             st.sampled_from([b"", b"\x00" * 70_000]))
        if kind == F.TYPE_ENUM:
            known = [v.number for v in field.enum_type.values]
            return st.one_of(st.sampled_from(known), st.sampled_from([-1, 99, INT32_MAX, INT32_MIN]))
        raise AssertionError(f"unhandled field type {kind} of {field.full_name}")

    def message(self, descriptor: d.Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
        if descriptor.full_name in self._special:
            return self._special[descriptor.full_name]()
        return self._generic(descriptor, depth)

    def value_of(self, field: d.FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
        if field.type == F.TYPE_MESSAGE:
            return self.message(field.message_type, depth + 1)
        return self.scalar(field)

    def _generic(self, descriptor: d.Descriptor, depth: int) -> st.SearchStrategy[Message]:
        cls = message_class(descriptor)
        if descriptor.full_name == "google.protobuf.FieldMask":
            return st.builds(lambda paths: cls(paths=paths), field_masks())
        if depth >= MAX_MESSAGE_DEPTH:
            return st.just(cls())

        @st.composite
        def build(draw: st.DrawFn) -> Message:
            msg = cls()
            for field in descriptor.fields:
                if field.containing_oneof is not None and msg.WhichOneof(field.containing_oneof.name):
                    continue
                if not draw(st.integers(0, 2)):  # a third of the fields stays unset
                    continue
                assign(msg, field, draw, self, depth)
            return msg

        return build()


def assign(msg: Message, field: d.FieldDescriptor, draw: st.DrawFn, strategies: MessageStrategies,
           depth: int) -> None:
    """Sets ``field`` of ``msg`` to a drawn value (replacing what was there)."""
    if is_map(field):
        key_field, value_field = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        container = getattr(msg, field.name)
        container.clear()
        keys = st.one_of(st.sampled_from(META_KEYS + LABELS), strategies.scalar(key_field)) \
            if key_field.type == F.TYPE_STRING else strategies.scalar(key_field)
        for key in draw(st.lists(keys, max_size=3, unique=True)):
            value = draw(strategies.value_of(value_field, depth))
            if value_field.type == F.TYPE_MESSAGE:
                container[key].CopyFrom(value)
            else:
                container[key] = value
        return
    if field.is_repeated:
        container = getattr(msg, field.name)
        del container[:]
        values = draw(st.lists(strategies.value_of(field, depth), max_size=4))
        if field.type == F.TYPE_MESSAGE:
            for value in values:
                container.add().CopyFrom(value)
        else:
            container.extend(values)
        return
    value = draw(strategies.value_of(field, depth))
    if field.type == F.TYPE_MESSAGE:
        getattr(msg, field.name).CopyFrom(value)
    else:
        setattr(msg, field.name, value)


def is_map(field: d.FieldDescriptor) -> bool:
    return (field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry)


def message_class(descriptor: d.Descriptor) -> type[Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


# --- mutation of valid seeds --------------------------------------------------

def _set_fields(msg: Message) -> list[d.FieldDescriptor]:
    return [f for f, _ in msg.ListFields()]


@st.composite
def mutated(draw: st.DrawFn, seed: Message, strategies: MessageStrategies) -> Message:
    """``seed`` with one to three fields (anywhere in it) replaced by drawn values."""
    out = type(seed)()
    out.CopyFrom(seed)
    if not seed.DESCRIPTOR.fields:
        return out
    for _ in range(draw(st.integers(1, 3))):
        target, depth = out, 0
        # Walk down through set message fields, then replace one field.
        while True:
            fields = list(target.DESCRIPTOR.fields)
            present = [f for f in _set_fields(target) if f.type == F.TYPE_MESSAGE and not is_map(f)]
            if present and draw(st.integers(0, 3)):  # mostly deeper: the leaves are the interesting part
                field = draw(st.sampled_from(present))
                if field.is_repeated:
                    items = getattr(target, field.name)
                    target = items[draw(st.integers(0, len(items) - 1))]
                else:
                    target = getattr(target, field.name)
                depth += 1
                continue
            field = draw(st.sampled_from(fields))
            if field.containing_oneof is not None:
                target.ClearField(field.containing_oneof.name)
            assign(target, field, draw, strategies, depth)
            break
    return out


# --- view queries ------------------------------------------------------------

_QUERY_FIELDS = ["label", "confidence", "meta.city", "meta.n", "meta.x", "meta.a.b", "meta.$gt", "source.width",
                 "source.height", "source.content_type", "source.uri", "roi", "nope", "meta."]
_QUERY_VALUES = ["car", '"car"', "*", "0", "1", "0.5", "-1", "9223372036854775807", "9223372036854775808",
                 "-9223372036854775809", "1e300", "1e39", "-1e39", "1e-400", "NaN", "inf", "9" * 400, "²", "٣",
                 '"$gt"', "blob*", '"a\\"b"', "[1e39 TO 2]", "[* TO 5]", "{0 TO 1}", "[a TO 9" + "9" * 30 + "]",
                 "(label:a AND count:>9223372036854775807)", "(label:car)", "/re.*gex/", "car~2", '"unterminated']
_QUERY_OPS = [":", ":>", ":<", ":>=", ":<=", ":="]


@st.composite
def queries(draw: st.DrawFn, depth: int = 0) -> str:
    """Lucene-like queries over the documented fields, with edge values."""
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        left, right = draw(queries(depth + 1)), draw(queries(depth + 1))
        joiner = draw(st.sampled_from([" AND ", " OR ", " ", " AND NOT "]))
        return f"({left}{joiner}{right})" if draw(st.booleans()) else f"{left}{joiner}{right}"
    if draw(st.integers(0, 5)) == 0:
        return draw(st.one_of(st.sampled_from(["", "(", ")", "NOT", "AND", "label:", ":", "*:*", "*"]),
                              st.text(max_size=20)))
    field = draw(st.sampled_from(_QUERY_FIELDS))
    op = draw(st.sampled_from(_QUERY_OPS))
    value = draw(st.one_of(st.sampled_from(_QUERY_VALUES), st.integers().map(str),
                           st.floats().map(repr)))
    negate = "NOT " if draw(st.integers(0, 4)) == 0 else ""
    return f"{negate}{field}{op}{value}"
