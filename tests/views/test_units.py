"""Pure logic of views: query parsing, filter compilation, cursors, shuffling."""

from __future__ import annotations

import json

import pytest

from framevault.common.errors import FieldErrors, InvalidArgument
from framevault.common.tokens import VIEW_CURSOR, TokenCodec
from framevault.metadata.views import filters
from framevault.metadata.views.filters import Bound, MetaEquals, MetaExists, MetaRange, RoiCount, SourceMatch
from framevault.metadata.views.query import QueryError, parse_query
from framevault.metadata.views.rules import rules_to_filter
from framevault.metadata.views.shuffle import CycleOrder, bucket_bits_for, uniform
from framevault.v1 import view_pb2

# --- query strings ------------------------------------------------------------


@pytest.mark.parametrize(("query", "node"), [
    ('label:"Car"', RoiCount(labels=("Car",))),
    ("roi:(label:a AND label:b AND count:0)", RoiCount(labels=("a", "b"), min_count=0, max_count=0)),
    ("roi:(label:a AND count:{1 TO 4})", RoiCount(labels=("a",), min_count=2, max_count=3)),
    ("meta.weather.rain:true", MetaEquals(("weather", "rain"), True)),
    ("meta.n:\\-3", MetaEquals(("n",), -3)),
    ('meta.n:"3"', MetaEquals(("n",), "3")),
    ("meta.n:null", MetaEquals(("n",), None)),
    ("meta.n:[-3 TO 2.5}", MetaRange(("n",), Bound(-3), Bound(2.5, inclusive=False))),
    ("meta.n:<10", MetaRange(("n",), None, Bound(10, inclusive=False))),
    ("_exists_:meta.a.b", MetaExists(("a", "b"), True)),
    ('source.uri:"s3://x/*"', SourceMatch(uri_prefix="s3://x/")),
    ('source.uri:"s3://x/a.jpg"', SourceMatch(uri="s3://x/a.jpg")),
    ("source:(width:>=10 AND width:<=20 AND id:front)", SourceMatch(min_width=10, max_width=20, source_id="front")),
])
def test_queries_parse_to_filter_nodes(query: str, node: filters.Filter) -> None:
    assert parse_query(query) == node


def test_confidence_bounds_are_float32_like_stored_confidences() -> None:
    node = parse_query("confidence:[0.9 TO 1]")
    rule = rules_to_filter([view_pb2.FilterRule(roi=view_pb2.RoiRule(min_confidence=0.9, max_confidence=1))],
                           "rules", FieldErrors())
    assert node == rule
    assert isinstance(node, RoiCount) and node.min_confidence == Bound(0.8999999761581421)


@pytest.mark.parametrize(("query", "position", "fragment"), [
    ("", 0, "empty"),
    ("label:a label:b", 8, "missing operator"),
    ("roi:(bare)", 5, "only field:value terms joined by AND"),
    ("label:a AND meta.$x:1", 12, "'$'"),
    ("roi:(label:a OR label:b)", 5, "only field:value terms joined by AND"),
    ("roi:label:a", 0, "group"),
    ("roi:(colour:red)", 5, "unknown field 'colour'"),
    ("label:(meta.x:1)", 7, "inside the group"),
    ("meta.x:[1 TO b]", 7, "both be numbers or both be strings"),
    ("source.width:[5 TO 1]", 13, "empty"),
    ("source.uri:s3*x*", 11, "trailing"),
    ("roi:(label:a AND count:\\-1)", 23, "negative"),
    ("label:/re/", 6, "regex"),
    ("(" * 40 + "label:a" + ")" * 40, 33, "nesting"),
])
def test_bad_queries_report_a_position(query: str, position: int, fragment: str | None) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    assert caught.value.position == position, caught.value
    if fragment:
        assert fragment in caught.value.message


@pytest.mark.parametrize(("reference", "query"), [
    ("Car", "label:Car"),
    ('label.keyword:"Car" AND NOT label.keyword:"occluded"', 'label:"Car" AND NOT label:"occluded"'),
    ("Car OR (Bus AND confidence:[0.5 TO 1])", "label:Car OR (label:Bus AND confidence:[0.5 TO 1])"),
    ("rois.label:truck", "label:truck"),
    ("labels.keyword:(car OR bus) AND rois.confidence:>=0.5", "label:(car OR bus) AND confidence:>=0.5"),
    ("roi:(label.keyword:car AND rois.confidence:>0.5)", "roi:(label:car AND confidence:>0.5)"),
    ('width:[640 TO *] AND sources.content_type:"image/png"', 'source.width:[640 TO *] AND source.content_type:"image/png"'),
    ("src.id:front OR height:720 OR uri:s3\\://x/*", "source.id:front OR source.height:720 OR source.uri:s3\\://x/*"),
    ('metadata.city:"bremen" AND meta_data.weather.rain:true AND _exists_:metadata.speed',
     'meta.city:"bremen" AND meta.weather.rain:true AND _exists_:meta.speed'),
    ('(car) AND (meta.city:"bremen") AND (width:640)', '(label:car) AND (meta.city:"bremen") AND (source.width:640)'),
])
def test_reference_product_spellings_mean_the_same(reference: str, query: str) -> None:
    assert parse_query(reference) == parse_query(query)


@pytest.mark.parametrize(("query", "position", "fragment"), [
    ("label.keyword:a label.keyword:b", 16, "missing operator"),
    ("metadata.$x:1", 0, "'metadata.$x'"),
    ("rois.label:car AND sources.depth:3", 19, "unknown field 'sources.depth'"),
    ("label.keyword:car*", 14, "wildcards"),
    ("meta.a:1 AND car~", 13, "fuzzy"),
])
def test_reference_spellings_report_positions_in_the_query_as_written(query: str, position: int,
                                                                      fragment: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    assert caught.value.position == position, caught.value
    assert fragment in caught.value.message


def test_long_queries_are_refused() -> None:
    with pytest.raises(QueryError, match="limited"):
        parse_query("label:a OR " * 1000 + "label:b")


# --- compilation ----------------------------------------------------------------


def test_count_rule_keeps_labels_literal_inside_expressions() -> None:
    compiled = filters.to_mongo(RoiCount(labels=("$rois", "$$ROOT"), min_count=2, max_count=5))
    text = json.dumps(compiled)
    assert '{"$literal": ["$rois", "$$ROOT"]}' in text
    # The cheap pre-filter and the exact count.
    assert compiled["$and"][0] == {"rois": {"$elemMatch": {"labels": {"$all": ["$rois", "$$ROOT"]}}}}
    assert "$expr" in compiled["$and"][1]


def test_count_rule_shapes() -> None:
    assert filters.to_mongo(RoiCount()) == {"rois.0": {"$exists": True}}
    assert filters.to_mongo(RoiCount(min_count=0)) == {}
    assert filters.to_mongo(RoiCount(labels=("a",), min_count=0, max_count=0)) == {
        "$nor": [{"rois": {"$elemMatch": {"labels": {"$eq": "a"}}}}]}
    upper_only = filters.to_mongo(RoiCount(labels=("a",), min_count=0, max_count=2))
    assert list(upper_only) == ["$expr"] and "$lte" in upper_only["$expr"]
    # A confidence bound inside an expression requires a number: a missing
    # confidence would otherwise compare below every bound.
    bounded = json.dumps(filters.to_mongo(RoiCount(max_confidence=Bound(0.5), min_count=2)))
    assert '"$isNumber": "$$roi.confidence"' in bounded


def test_equality_is_literal_and_null_means_present() -> None:
    assert filters.to_mongo(MetaEquals(("a",), {"$gt": 1})) == {"meta.a": {"$eq": {"$gt": 1}}}
    assert filters.to_mongo(MetaEquals(("a",), None)) == {"meta.a": {"$type": "null"}}


def test_uri_prefix_is_escaped() -> None:
    assert filters.to_mongo(SourceMatch(uri_prefix="s3://a.b/(x)*")) == {
        "sources": {"$elemMatch": {"uri": {"$regex": r"^s3://a\.b/\(x\)\*"}}}}


def test_boolean_nodes() -> None:
    a, b = MetaExists(("a",), True), MetaExists(("b",), False)
    assert filters.to_mongo(filters.AnyOf((a, b))) == {"$or": [{"meta.a": {"$exists": True}},
                                                               {"meta.b": {"$exists": False}}]}
    assert filters.to_mongo(filters.Negation(a)) == {"$nor": [{"meta.a": {"$exists": True}}]}
    assert filters.to_mongo(filters.AnyOf((a, filters.MATCH_ALL))) == {}
    assert filters.to_mongo(filters.Negation(filters.MATCH_ALL)) == {"_id": {"$exists": False}}


# --- cursors --------------------------------------------------------------------


def test_cursor_round_trip_and_binding() -> None:
    codec = TokenCodec("secret", VIEW_CURSOR)
    token = codec.encode("iterate", "view:0/1", {"n": 3, "p": [["c", 1, "f"]]})
    assert codec.decode(token, kind="iterate", binding="view:0/1", field="resume_cursor") == {
        "n": 3, "p": [["c", 1, "f"]]}
    for kind, binding in (("list", "view:0/1"), ("iterate", "view:1/2"), ("iterate", "other:0/1")):
        with pytest.raises(InvalidArgument) as caught:
            codec.decode(token, kind=kind, binding=binding, field="resume_cursor")
        assert caught.value.violations[0].field == "resume_cursor"


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    lambda t: "x" + t,
    lambda t: t.replace(".", ""),
    lambda t: t + ".x",
    lambda t: "!!!." + t.split(".")[1],
    lambda t: TokenCodec("another key", VIEW_CURSOR).encode("iterate", "view:0/1", {"n": 3}),
])
def test_altered_cursors_are_rejected(mangle: object) -> None:
    codec = TokenCodec("secret", VIEW_CURSOR)
    token = codec.encode("iterate", "view:0/1", {"n": 3})
    with pytest.raises(InvalidArgument):
        codec.decode(mangle(token), kind="iterate", binding="view:0/1", field="resume_cursor")  # type: ignore[operator]


# --- shuffling ------------------------------------------------------------------


@pytest.mark.parametrize("bits", [0, 1, 2, 5, 10, 13])
def test_bucket_orders_are_permutations(bits: int) -> None:
    order = CycleOrder(seed=123, selection=0, cycle=4, bucket_bits=bits)
    assert sorted(order.bucket(i) for i in range(1 << bits)) == list(range(1 << bits))


def test_bucket_orders_depend_on_seed_selection_and_cycle() -> None:
    orders = {
        tuple(CycleOrder(seed, selection, cycle, 8).bucket(i) for i in range(256))
        for seed, selection, cycle in ((1, 0, 0), (2, 0, 0), (1, 1, 0), (1, 0, 1))
    }
    assert len(orders) == 4


def test_bucket_ranges_tile_the_key_space() -> None:
    order = CycleOrder(0, 0, 0, 3)
    ranges = [order.key_range(b) for b in range(8)]
    assert ranges[0][0] == 0 and ranges[-1][1] is None
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(7))


def test_bucket_sizing_and_draws() -> None:
    assert bucket_bits_for(0) == 0 and bucket_bits_for(1024) == 0 and bucket_bits_for(1025) == 1
    assert bucket_bits_for(10**12) == 24
    draws = [uniform(9, i) for i in range(20000)]
    assert all(0 <= d < 1 for d in draws) and abs(sum(draws) / len(draws) - 0.5) < 0.01
    assert draws == [uniform(9, i) for i in range(20000)]
