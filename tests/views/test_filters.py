"""Every filter kind, as structured rules and as a query string: both give
exactly the frames a plain Python reading of the rule selects."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from framevault.api.metadata_values import metadata_to_dict
from framevault.v1 import frame_pb2, metadata_pb2, view_pb2

from .client import Stub, frame_ids, view_of
from .corpus import Corpus, make_frame, ref, roi

LABELS = ("car", "truck", "person", "occluded", "$weird")
CITIES = ("bremen", "hamburg", "berlin", "Bonn")


def _corpus_frames() -> list[frame_pb2.Frame]:
    rng = random.Random(2024)
    frames = []
    for i in range(160):
        rois = []
        for _ in range(rng.choice((0, 1, 2, 3, 4))):
            labels = rng.sample(LABELS, rng.choice((1, 1, 2)))
            rois.append(roi(*labels, confidence=rng.choice((None, round(rng.random(), 2), 0.25, 0.75)))),
        meta: dict[str, Any] = {}
        if rng.random() < 0.8:
            meta["city"] = rng.choice(CITIES)
        if rng.random() < 0.8:
            meta["speed"] = rng.choice((rng.randrange(0, 120), float(rng.randrange(0, 120)), 50, 80, 30))
        if rng.random() < 0.6:
            weather: dict[str, Any] = {"rain": rng.random() < 0.5}
            if rng.random() < 0.5:
                weather["temp"] = rng.uniform(-5, 30)
            meta["weather"] = weather
        sources = []
        for source_id in rng.sample(("default", "front", "rear"), rng.choice((1, 2))):
            bucket = rng.choice(("bucket-a", "bucket-b", "bucket-ab"))
            sources.append(frame_pb2.Source(
                id=source_id, uri=f"s3://{bucket}/{i}-{source_id}.jpg",
                content_type=rng.choice(("image/jpeg", "image/png")),
                width=rng.choice((320, 640, 700, 1280)), height=rng.choice((240, 480, 720)),
            ))
        frames.append(make_frame(f"q{i:03d}", context=f"c{i % 4}", timestamp=i, rois=rois, meta=meta,
                                 sources=sources))
    return frames


FRAMES = _corpus_frames()


@pytest.fixture(scope="module")
async def selection(corpus: Corpus) -> view_pb2.ViewSelection:
    version = await corpus.version(await corpus.dataset())
    await corpus.put_many(version, FRAMES)
    return view_pb2.ViewSelection(version=ref(version))


# --- Python reading of the rules ----------------------------------------------


def _rois(frame: frame_pb2.Frame, labels: tuple[str, ...] = (), low: float | None = None,
          high: float | None = None) -> int:
    count = 0
    for r in frame.rois:
        if not set(labels) <= set(r.labels):
            continue
        if low is not None or high is not None:
            if not r.HasField("confidence"):
                continue
            if low is not None and r.confidence < low or high is not None and r.confidence > high:
                continue
        count += 1
    return count


def _meta(frame: frame_pb2.Frame, *path: str) -> Any:
    value: Any = metadata_to_dict(frame.meta)
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


_MISSING = object()


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _some_source(frame: frame_pb2.Frame, check: Callable[[frame_pb2.Source], bool]) -> bool:
    return any(check(s) for s in frame.sources)


def f32(value: float) -> float:
    import struct

    return struct.unpack("<f", struct.pack("<f", value))[0]


# --- the cases ------------------------------------------------------------------


def string(value: str) -> metadata_pb2.MetadataValue:
    return metadata_pb2.MetadataValue(string_value=value)


def integer(value: int) -> metadata_pb2.MetadataValue:
    return metadata_pb2.MetadataValue(int_value=value)


def roi_rule(**kw: Any) -> view_pb2.FilterRule:
    return view_pb2.FilterRule(roi=view_pb2.RoiRule(**kw))


def meta_rule(**kw: Any) -> view_pb2.FilterRule:
    return view_pb2.FilterRule(meta=view_pb2.MetadataRule(**kw))


def source_rule(**kw: Any) -> view_pb2.FilterRule:
    return view_pb2.FilterRule(source=view_pb2.SourceRule(**kw))


@dataclass
class Case:
    rules: list[view_pb2.FilterRule]
    queries: list[str]
    expected: Callable[[frame_pb2.Frame], bool]


CASES: dict[str, Case] = {
    "has-label": Case([roi_rule(labels=["car"])], ['label:"car"', "label:car", "roi:(label:car)"],
                      lambda f: _rois(f, ("car",)) >= 1),
    "labels-on-same-roi": Case([roi_rule(labels=["car", "occluded"])], ["roi:(label:car AND label:occluded)"],
                               lambda f: _rois(f, ("car", "occluded")) >= 1),
    "labels-on-any-rois": Case([roi_rule(labels=["car"]), roi_rule(labels=["occluded"])],
                               ["label:car AND label:occluded"],
                               lambda f: _rois(f, ("car",)) >= 1 and _rois(f, ("occluded",)) >= 1),
    "no-roi-has-label": Case([roi_rule(labels=["person"], max_count=0)],
                             ["NOT label:person", "-label:person", "roi:(label:person AND count:0)"],
                             lambda f: _rois(f, ("person",)) == 0),
    "confidence-range": Case([roi_rule(min_confidence=0.25, max_confidence=0.75)], ["confidence:[0.25 TO 0.75]"],
                             lambda f: _rois(f, (), f32(0.25), f32(0.75)) >= 1),
    "count-range": Case([roi_rule(labels=["car"], min_count=2, max_count=3)], ["roi:(label:car AND count:[2 TO 3])"],
                        lambda f: 2 <= _rois(f, ("car",)) <= 3),
    "count-at-most-one": Case([roi_rule(labels=["car"], min_count=0, max_count=1)],
                              ["roi:(label:car AND count:<=1)", "roi:(label:car AND count:[0 TO 1])"],
                              lambda f: _rois(f, ("car",)) <= 1),
    "count-with-confidence": Case(
        [roi_rule(labels=["truck"], min_confidence=0.5, min_count=2)],
        ["roi:(label:truck AND confidence:>=0.5 AND count:>=2)"],
        lambda f: _rois(f, ("truck",), f32(0.5)) >= 2),
    "count-upper-confidence-ignores-ground-truth": Case(
        [roi_rule(max_confidence=0.5, min_count=2)], ["roi:(confidence:<=0.5 AND count:[2 TO *])"],
        lambda f: _rois(f, (), None, f32(0.5)) >= 2),
    "dollar-label-is-a-value": Case([roi_rule(labels=["$weird"], min_count=2)],
                                    ['roi:(label:"$weird" AND count:>=2)'],
                                    lambda f: _rois(f, ("$weird",)) >= 2),
    "meta-equals-string": Case([meta_rule(key="city", equals=string("bremen"))],
                               ['meta.city:"bremen"', "meta.city:bremen"],
                               lambda f: _meta(f, "city") == "bremen"),
    "meta-equals-number": Case([meta_rule(key="speed", equals=integer(50))], ["meta.speed:50", "meta.speed:50.0"],
                               lambda f: _number(_meta(f, "speed")) and _meta(f, "speed") == 50),
    "meta-nested-equals": Case([meta_rule(key="weather.rain", equals=metadata_pb2.MetadataValue(bool_value=True))],
                               ["meta.weather.rain:true"], lambda f: _meta(f, "weather", "rain") is True),
    "meta-number-range": Case(
        [meta_rule(key="speed", range=view_pb2.ValueRange(min=integer(30), max=integer(80), max_exclusive=True))],
        ["meta.speed:[30 TO 80}", "meta.speed:>=30 AND meta.speed:<80"],
        lambda f: _number(_meta(f, "speed")) and 30 <= _meta(f, "speed") < 80),
    "meta-string-range": Case(
        [meta_rule(key="city", range=view_pb2.ValueRange(min=string("b"), max=string("c"), max_exclusive=True))],
        ["meta.city:[b TO c}"], lambda f: isinstance(_meta(f, "city"), str) and "b" <= _meta(f, "city") < "c"),
    "meta-open-range": Case(
        [meta_rule(key="weather.temp", range=view_pb2.ValueRange(min=metadata_pb2.MetadataValue(double_value=10.5)))],
        ["meta.weather.temp:>=10.5", "meta.weather.temp:[10.5 TO *]"],
        lambda f: _number(_meta(f, "weather", "temp")) and _meta(f, "weather", "temp") >= 10.5),
    "meta-exists": Case([meta_rule(key="weather.temp", exists=True)],
                        ["_exists_:meta.weather.temp", "meta.weather.temp:*"],
                        lambda f: _meta(f, "weather", "temp") is not _MISSING),
    "meta-missing": Case([meta_rule(key="city", exists=False)], ["NOT _exists_:meta.city", "NOT meta.city:*"],
                         lambda f: _meta(f, "city") is _MISSING),
    "source-width": Case([source_rule(width=view_pb2.IntRange(min=600, max=700))],
                         ["source.width:[600 TO 700]"],
                         lambda f: _some_source(f, lambda s: 600 <= s.width <= 700)),
    "source-height": Case([source_rule(height=view_pb2.IntRange(min=700))], ["source.height:>=700"],
                          lambda f: _some_source(f, lambda s: s.height >= 700)),
    "source-exact-width": Case([source_rule(width=view_pb2.IntRange(min=640, max=640))], ["source.width:640"],
                               lambda f: _some_source(f, lambda s: s.width == 640)),
    "source-content-type": Case([source_rule(content_type="image/png")], ['source.content_type:"image/png"'],
                                lambda f: _some_source(f, lambda s: s.content_type == "image/png")),
    "source-uri-prefix": Case([source_rule(uri_prefix="s3://bucket-a/")],
                              ['source.uri:"s3://bucket-a/*"', r"source.uri:s3\:\/\/bucket-a\/*"],
                              lambda f: _some_source(f, lambda s: s.uri.startswith("s3://bucket-a/"))),
    "source-id": Case([source_rule(source_id="front")], ["source.id:front"],
                      lambda f: _some_source(f, lambda s: s.id == "front")),
    "one-source-meets-all": Case(
        [source_rule(width=view_pb2.IntRange(min=1280), content_type="image/png")],
        ['source:(width:>=1280 AND content_type:"image/png")'],
        lambda f: _some_source(f, lambda s: s.width >= 1280 and s.content_type == "image/png")),
    "rules-are-anded": Case(
        [roi_rule(labels=["car"]), meta_rule(key="city", equals=string("bremen")), source_rule(source_id="default")],
        ["label:car AND meta.city:bremen AND source.id:default"],
        lambda f: _rois(f, ("car",)) >= 1 and _meta(f, "city") == "bremen"
        and _some_source(f, lambda s: s.id == "default")),
}


def _expected(case: Case) -> list[str]:
    return sorted(f.id for f in FRAMES if case.expected(f))


@pytest.mark.parametrize("name", sorted(CASES))
async def test_rules_and_queries_select_the_same_frames(
    selection: view_pb2.ViewSelection, metadata_stub: Stub, name: str
) -> None:
    case = CASES[name]
    expected = _expected(case)
    assert 0 < len(expected) < len(FRAMES), "the corpus must exercise the rule"

    by_rules = view_pb2.ViewSelection(version=selection.version, rules=case.rules)
    assert sorted(await frame_ids(metadata_stub, view_of(by_rules), per_message=1000)) == expected
    for query in case.queries:
        by_query = view_pb2.ViewSelection(version=selection.version, query=query)
        assert sorted(await frame_ids(metadata_stub, view_of(by_query), per_message=1000)) == expected, query


@pytest.mark.parametrize(("query", "expected"), [
    ("label:person OR meta.city:hamburg", lambda f: _rois(f, ("person",)) >= 1 or _meta(f, "city") == "hamburg"),
    ("label:(car OR truck) AND NOT (meta.city:bremen OR meta.city:berlin)",
     lambda f: (_rois(f, ("car",)) or _rois(f, ("truck",))) and _meta(f, "city") not in ("bremen", "berlin")),
    ("+label:car AND -label:truck", lambda f: _rois(f, ("car",)) >= 1 and _rois(f, ("truck",)) == 0),
    ("meta.city:bremen OR meta.city:hamburg AND label:car",  # AND binds tighter
     lambda f: _meta(f, "city") == "bremen" or (_meta(f, "city") == "hamburg" and _rois(f, ("car",)) >= 1)),
])
async def test_boolean_queries(selection: view_pb2.ViewSelection, metadata_stub: Stub, query: str,
                               expected: Callable[[frame_pb2.Frame], bool]) -> None:
    by_query = view_pb2.ViewSelection(version=selection.version, query=query)
    ids = sorted(await frame_ids(metadata_stub, view_of(by_query), per_message=1000))
    assert ids == sorted(f.id for f in FRAMES if expected(f))


async def test_rules_and_query_of_one_selection_are_anded(
    selection: view_pb2.ViewSelection, metadata_stub: Stub
) -> None:
    both = view_pb2.ViewSelection(version=selection.version, rules=[roi_rule(labels=["car"])], query="meta.city:bremen")
    ids = sorted(await frame_ids(metadata_stub, view_of(both), per_message=1000))
    assert ids == sorted(f.id for f in FRAMES if _rois(f, ("car",)) and _meta(f, "city") == "bremen")
