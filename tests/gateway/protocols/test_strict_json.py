"""Strict JSON: what two parsers could read differently is refused; everything else reads as json does."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import ProtocolError
from gateway.protocols.strict_json import dumps, loads


@pytest.mark.parametrize(("text", "why"), [
    (b'{"method": "ping", "method": "tools/call"}', "duplicate key 'method'"),
    (b'{"a": {"b": 1, "b": 2}}', "duplicate key 'b'"),
    (b"[NaN]", "NaN is not JSON"),
    (b'{"t": -Infinity}', "-Infinity is not JSON"),
    (b"[1e400]", "overflows to infinity"),
    (b'"\\ud800"', "lone surrogate"),
    (b'{"\\udfff": 1}', "lone surrogate"),
    (b"\xef\xbb\xbf{}", "BOM"),
    ('{"a": 1}'.encode("utf-16"), "not UTF-8"),  # the BOM
    ('{"a": 1}'.encode("utf-16-le"), "invalid JSON"),  # valid UTF-8, NULs between the characters
    (b'{"a": "\xff"}', "not UTF-8"),
    (b"[" * 65 + b"]" * 65, "nested deeper than 64"),
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64"),
    (b"1" * 5000, "digits"),
    (b'{"a": 1,}', "invalid JSON"),
    (b'"\x01"', "invalid JSON"),  # raw control character in a string
    (b"", "invalid JSON"),
])
def test_refused(text: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=why.replace("[", r"\[")):
        loads(text)


def test_accepted_edge_cases() -> None:
    assert loads('"\\ud83d\\ude00"') == "😀"  # a surrogate pair is one character
    assert loads(b"[" * 64 + b"]" * 64) is not None
    assert loads('{"s": "[[[[{{{{"}') == {"s": "[[[[{{{{"}  # brackets in strings do not nest
    assert loads('{"s": "\\"[[[["}') == {"s": '"[[[['}
    assert loads(b" \n 12.5e3 ") == 12500.0


def test_depth_limit_is_configurable() -> None:
    with pytest.raises(ProtocolError, match="deeper than 3"):
        loads("[[[[]]]]", max_depth=3)
    assert loads("[[[]]]", max_depth=3) == [[[]]]


def test_a_large_flat_body_parses_quickly() -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 1000}] * 4000}).encode()  # ~4 MB
    start = time.perf_counter()
    loads(body)
    assert time.perf_counter() - start < 5


def test_dumps_is_compact_and_keeps_unicode() -> None:
    assert dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(_json, st.booleans())
def test_valid_json_reads_as_the_standard_library_reads_it(value, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # hypothesis text can hold lone surrogates; strict JSON refuses them
        with pytest.raises(ProtocolError):
            loads(text)
        return
    assert loads(text.encode()) == json.loads(text)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_protocol_error(data: bytes) -> None:
    try:
        loads(data)
    except ProtocolError:
        pass
