"""The SSE decoder: WHATWG parsing, exact raw bytes per frame at any split, bounded events; the encoder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import SSEError
from gateway.protocols.sse import Frame, SSEDecoder, SSEEvent, encode_comment, encode_event


def decode(data: bytes, cuts: list[int] | None = None, **kwargs: int) -> list[Frame]:
    decoder = SSEDecoder(**kwargs)
    bounds = [0, *sorted(set(cuts or [])), len(data)]
    frames = [f for a, b in zip(bounds, bounds[1:], strict=False) for f in decoder.feed(data[a:b])]
    return frames + decoder.close()


def events(data: bytes) -> list[SSEEvent]:
    return [f.event for f in decode(data) if f.event is not None]


def test_fields_comments_and_multiline_data() -> None:
    data = b": keep-alive\nevent: update\nid: 7\nretry: 1500\ndata: line one\ndata:line two\ndata\n\n"
    assert events(data) == [SSEEvent("line one\nline two\n", "update", "7", 1500)]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_endings(newline: bytes) -> None:
    data = newline.join([b"data: a", b"", b"event: x", b"data: b", b"", b""])
    assert events(data) == [SSEEvent("a"), SSEEvent("b", "x")]


def test_mixed_line_endings_and_a_cr_split_from_its_lf() -> None:
    data = b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"
    for cut in range(len(data) + 1):
        frames = decode(data, [cut])
        assert b"".join(f.raw for f in frames) == data
        assert [f.event.data for f in frames if f.event] == ["a", "b", "c"]
        assert [f.raw for f in frames] == [b"data: a\r\n\r\n", b"data: b\r\r", b"data: c\n\n"]


def test_a_block_without_data_dispatches_nothing() -> None:
    frames = decode(b"event: x\nid: 3\n\n: only a comment\n\n\n")
    assert [f.event for f in frames] == [None, None, None]
    assert events(b"event: x\n\ndata: y\n\n") == [SSEEvent("y")]  # the name does not carry over


def test_only_one_space_after_the_colon_is_removed_and_unknown_fields_are_ignored() -> None:
    assert events(b"data:  two spaces\nfoo: bar\n\n") == [SSEEvent(" two spaces")]


def test_id_with_nul_and_non_digit_retry_are_ignored() -> None:
    assert events(b"id: a\x00b\nretry: 10s\ndata: x\n\n") == [SSEEvent("x")]


def test_a_leading_bom_is_ignored_but_kept_in_the_raw_bytes() -> None:
    frames = decode(b"\xef\xbb\xbfdata: x\n\n")
    assert frames[0].event == SSEEvent("x") and frames[0].raw.startswith(b"\xef\xbb\xbf")
    assert events(b"data: x\n\n\xef\xbb\xbfdata: y\n\n") == [SSEEvent("x")]  # only at the very start


def test_an_unterminated_last_event_is_handed_over_as_incomplete() -> None:
    frames = decode(b"data: x\n\ndata: tail")
    assert frames[-1] == Frame(b"data: tail", SSEEvent("tail"), complete=False)
    assert decode(b"data: x\n\n: partial comment")[-1].event is None


def test_invalid_utf8_is_an_error() -> None:
    with pytest.raises(SSEError, match="not UTF-8"):
        decode(b"data: \xc3\x28\n\n")


def test_a_multibyte_character_split_across_chunks_decodes() -> None:
    data = "data: café ☕\n\n".encode()
    for cut in range(len(data) + 1):
        assert [f.event.data for f in decode(data, [cut]) if f.event] == ["café ☕"]


def test_an_event_over_the_limit_is_an_error_whether_or_not_it_is_terminated() -> None:
    with pytest.raises(SSEError, match="larger than 100 bytes"):
        decode(b"data: " + b"x" * 200 + b"\n\n", max_event_bytes=100)
    decoder = SSEDecoder(max_event_bytes=100)
    decoder.feed(b"data: " + b"x" * 90)
    with pytest.raises(SSEError):
        decoder.feed(b"x" * 20)


def test_many_small_events_in_one_chunk_are_not_limited_together() -> None:
    data = b"data: x\n\n" * 1000
    assert len(decode(data, max_event_bytes=100)) == 1000


def test_encode_event_splits_lines_and_refuses_line_breaks_in_names() -> None:
    assert encode_event("a\nb\r\nc", event="e", id="1") == b"event: e\nid: 1\ndata: a\ndata: b\ndata: c\n\n"
    assert encode_comment("hi") == b": hi\n\n"
    with pytest.raises(ValueError):
        encode_event("x", event="a\nb")


_line_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=20)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30),
                          st.none() | _line_text.filter(lambda s: s != ""), st.none() | _line_text)),
       st.lists(st.integers(0, 2000), max_size=6))
def test_encoded_events_decode_to_themselves_at_any_split(items, cuts: list[int]) -> None:
    data = b"".join(encode_event(d, event=e, id=i) for d, e, i in items)
    frames = decode(data, [c for c in cuts if c <= len(data)])
    assert b"".join(f.raw for f in frames) == data
    expected = [SSEEvent("\n".join(d.replace("\r\n", "\n").replace("\r", "\n").split("\n")), e or "message", i)
                for d, e, i in items]
    assert [f.event for f in frames] == expected


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=6))
def test_arbitrary_bytes_give_frames_that_rebuild_the_input_or_an_sse_error(data: bytes, cuts: list[int]) -> None:
    try:
        frames = decode(data, [c for c in cuts if c <= len(data)], max_event_bytes=200)
    except SSEError:
        return
    assert b"".join(f.raw for f in frames) == data
    assert frames == decode(data, max_event_bytes=200)
