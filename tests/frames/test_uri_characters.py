"""Which characters a frame's URIs may hold: every whitespace character and NUL
are refused wherever the URI is (source, preview, mask), printable text of any
script is not. Most URIs are printable ASCII and are decided without the
regular expression; these cases pin both ways to the same answer."""

from __future__ import annotations

import pytest

from framevault.metadata.frames.validation import FrameLimits, check_frame
from framevault.v1 import frame_pb2

LIMITS = FrameLimits(max_inline_bytes=1024)
REFUSED = "must not contain NUL or whitespace"
# ASCII whitespace, NUL, the ASCII separators Python counts as whitespace, and Unicode spaces.
FORBIDDEN = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x00", "\x1c", "\x1f", "\x85", "\u00a0", "\u2003",
             "\u2028", "\u3000"]
# Printable, not whitespace: accepted wherever they stand.
ALLOWED = ["~", "%20", "é", "\u00ad", "日本", "\U0001f600"]


def _frame(uri: str, where: str) -> frame_pb2.Frame:
    plain = "s3://bucket/a.jpg"
    source = frame_pb2.Source(uri=uri if where == "source" else plain)
    if where == "preview":
        source.preview.uri = uri
    if where == "mask":
        source.masks.add(id="m", uri=uri)
    return frame_pb2.Frame(id="f", sources=[source])


PATHS = {"source": "frames[3].sources[0].uri", "preview": "frames[3].sources[0].preview.uri",
         "mask": "frames[3].sources[0].masks[0].uri"}


@pytest.mark.parametrize("where", sorted(PATHS))
@pytest.mark.parametrize("character", FORBIDDEN, ids=[f"U+{ord(c):04X}" for c in FORBIDDEN])
def test_whitespace_and_nul_are_refused_in_every_uri(character: str, where: str) -> None:
    for uri in (f"s3://bucket/a{character}b.jpg", f"blob:sha256/{'ab' * 32}/10{character}"):
        violations = check_frame(_frame(uri, where), "frames[3]", LIMITS).violations
        assert [(v.field, v.description) for v in violations] == [(PATHS[where], REFUSED)]


@pytest.mark.parametrize("where", sorted(PATHS))
@pytest.mark.parametrize("text", ALLOWED)
def test_printable_text_of_any_script_is_accepted(text: str, where: str) -> None:
    assert check_frame(_frame(f"https://example.org/{text}.jpg", where), "frames[3]", LIMITS).violations == []
