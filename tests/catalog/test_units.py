"""Pure catalog logic: names, page tokens, merge bases, change classification."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from framevault.common.errors import FieldErrors, InvalidArgument
from framevault.metadata.catalog import page_tokens
from framevault.metadata.catalog.ancestry import common_prefix_length, merge_base
from framevault.metadata.catalog.diff import ADDED, CHANGED, REMOVED, FrameDifference, change_scope, classify
from framevault.metadata.catalog.merge import OURS, THEIRS, decide
from framevault.metadata.catalog.validation import check_meta_key_path, name_problem
from framevault.metadata.catalog.versions import default_snapshot_name

from .helpers import mint_page_token


@pytest.mark.parametrize("name", ["Current", "a", "x" * 128, "snapshot 2026-11-25T10:00:00Z", "Ünïcödé 名前 (v2)/a:b_c-d.e"])
def test_valid_names(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["", "x" * 129, " a", "a ", "a\tb", "a;b", "a$b", "a\x00b", "a\nb", "😀"])
def test_invalid_names(name):
    assert name_problem(name) is not None


def test_default_snapshot_names_are_valid_names():
    moment = dt.datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=dt.UTC)
    assert default_snapshot_name(moment) == "snapshot 2026-11-25T10:00:00Z"
    assert default_snapshot_name(moment, precise=True) == "snapshot 2026-11-25T10:00:00.123Z"
    assert name_problem(default_snapshot_name(moment, precise=True)) is None


TOKENS = page_tokens.PageTokens("secret")
VERSION_KEY = [page_tokens.as_time, page_tokens.as_id]


def test_page_tokens_round_trip_and_refuse_edits():
    query = page_tokens.query_digest("versions", "abc")
    created = dt.datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=dt.UTC)
    token = TOKENS.encode([created, "0123456789abcdef01234567"], query)
    assert TOKENS.decode(token, query, VERSION_KEY) == [created, "0123456789abcdef01234567"]
    with pytest.raises(InvalidArgument):
        TOKENS.decode(token, page_tokens.query_digest("versions", "other"), VERSION_KEY)
    with pytest.raises(InvalidArgument):
        TOKENS.decode(token, query, [page_tokens.as_text, page_tokens.as_text])
    with pytest.raises(InvalidArgument):
        page_tokens.PageTokens("another secret").decode(token, query, VERSION_KEY)
    body, mac = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["s"]["after"][0] -= 1
    edited = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=") + "." + mac
    for garbage in ("", "%%%", "eyJ2IjoxfQ", "a" * 20000, edited):
        with pytest.raises(InvalidArgument) as caught:
            TOKENS.decode(garbage, query, VERSION_KEY)
        assert caught.value.violations[0].field == "page_token"


def test_page_tokens_are_not_view_cursors():
    from framevault.common.tokens import VIEW_CURSOR, TokenCodec

    cursor = TokenCodec("secret", VIEW_CURSOR).encode("page", "q", {"after": ["a"]})
    with pytest.raises(InvalidArgument):
        TOKENS.decode(cursor, "q", [page_tokens.as_text])


def test_minted_page_tokens_with_possible_keys_are_accepted():
    assert TOKENS.decode(mint_page_token("secret", ["a", 2**63 - 1], "q"), "q",
                         [page_tokens.as_text, page_tokens.as_int64]) == ["a", 2**63 - 1]


@pytest.mark.parametrize(("shape", "value"), [
    ([page_tokens.as_int64], 2**63),
    ([page_tokens.as_int64], -(2**63) - 1),
    ([page_tokens.as_int64], 1e3),
    ([page_tokens.as_int64], True),
    ([page_tokens.as_time], 10**20),
    ([page_tokens.as_time], -(10**15)),
    ([page_tokens.as_id], "0123456789ABCDEF01234567"),
    ([page_tokens.as_id], {"$gt": ""}),
    ([page_tokens.as_text], "\ud800"),
    ([page_tokens.as_text], "x" * 5000),
    ([page_tokens.as_text], ["a"]),
    ([page_tokens.as_text, page_tokens.as_text], "a"),
])
def test_signed_page_tokens_with_impossible_keys_are_refused(shape, value):
    # Minted with the right secret (a default one is public): still refused.
    token = mint_page_token("secret", [value], "q")
    with pytest.raises(InvalidArgument) as caught:
        TOKENS.decode(token, "q", shape)
    assert caught.value.violations[0].field == "page_token"


def test_page_token_times_span_every_stored_time():
    for moment in (dt.datetime(1, 1, 1, tzinfo=dt.UTC), dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC),
                   dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC)):
        assert TOKENS.decode(TOKENS.encode([moment], "q"), "q", [page_tokens.as_time]) == [moment]


def test_meta_key_paths_are_checked_per_segment():
    errors = FieldErrors()
    assert check_meta_key_path("env.weather", "k", errors) == ("env", "weather")
    assert check_meta_key_path("env.$gt", "k", errors) is None
    assert check_meta_key_path("a..b", "k", errors) is None
    assert [v.field for v in errors.violations] == ["k", "k"]


def test_common_prefix_and_change_scope():
    assert common_prefix_length(["r", "a", "b"], ["r", "a", "c", "d"]) == 2
    assert common_prefix_length(["r"], ["s"]) == 0
    assert change_scope(["r", "a", "b"], ["r", "a", "c", "d"]) == ["b", "c", "d"]
    assert change_scope(["r", "a"], ["r", "a"]) == []
    assert change_scope([], ["r", "a"]) == ["r", "a"]


def test_merge_base_is_the_nearest_common_ancestor():
    # r ─ a ─ b ─ m(b, c) ─ n
    #      └─ c ─ d
    parents = {"r": [], "a": ["r"], "b": ["a"], "c": ["a"], "m": ["b", "c"], "d": ["c"], "n": ["m"]}
    order = {v: i for i, v in enumerate(["r", "a", "b", "c", "m", "d", "n"])}
    assert merge_base("b", "c", parents, order) == "a"
    assert merge_base("n", "d", parents, order) == "c"
    assert merge_base("d", "n", parents, order) == "c"
    assert merge_base("b", "b", parents, order) == "b"
    assert merge_base("r", "n", parents, order) == "r"
    assert merge_base("x", "r", {**parents, "x": []}, {**order, "x": 9}) is None


def test_criss_cross_merge_base_is_deterministic():
    # Two best common ancestors (b and c): the later one wins.
    parents = {"r": [], "b": ["r"], "c": ["r"], "x": ["b", "c"], "y": ["c", "b"]}
    order = {"r": 0, "b": 1, "c": 2, "x": 3, "y": 4}
    assert merge_base("x", "y", parents, order) == "c"


def revision(rid: str, etag: str) -> dict:
    return {"_id": rid, "etag": etag}


def test_classify():
    assert classify(None, None) is None
    assert classify(None, revision("1", "e")) == ADDED
    assert classify(revision("1", "e"), None) == REMOVED
    assert classify(revision("1", "e"), revision("2", "e")) is None
    assert classify(revision("1", "e"), revision("2", "f")) == CHANGED


def change(kind: int, etag: str | None = None) -> FrameDifference:
    return FrameDifference("f", kind, None, None if etag is None else revision("x", etag))


def test_decide_conflicts():
    assert decide(None, change(ADDED, "e"), OURS) == (True, None)
    assert decide(change(CHANGED, "e"), change(CHANGED, "e"), OURS) == (False, None)
    assert decide(change(REMOVED), change(REMOVED), OURS) == (False, None)
    take, conflict = decide(change(CHANGED, "e"), change(REMOVED), THEIRS)
    assert take and (conflict.ours, conflict.theirs) == (CHANGED, REMOVED)
    take, conflict = decide(change(ADDED, "e"), change(ADDED, "f"), OURS)
    assert not take and (conflict.ours, conflict.theirs) == (ADDED, ADDED)
