"""Canonical JSON and the record hash: the bytes a verifier in any language must reproduce."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.canonical import GENESIS, canonical_dumps, format_time, record_hash

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def test_the_canonical_form() -> None:
    assert canonical_dumps({"b": [1, True, None], "a": "é\n\x01\"\\"}) == '{"a":"é\\n\\u0001\\"\\\\","b":[1,true,null]}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "lone \udcff surrogate", {"k": "\ud800"}])
def test_values_without_a_canonical_form_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        canonical_dumps(value)


@given(json_values)
def test_canonical_text_is_stable_through_a_round_trip(value: object) -> None:
    try:
        text = canonical_dumps(value)
    except ValueError:
        return  # lone surrogates in generated text
    assert canonical_dumps(json.loads(text)) == text


def test_the_record_hash_is_sha256_of_the_whole_canonical_record() -> None:
    at = datetime(2025, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)
    data = {"request_id": "r1", "findings": [], "x": "ü"}
    text = canonical_dumps(data)
    whole = canonical_dumps({"v": 1, "instance": "i", "seq": 7, "kind": "request", "at": "2025-01-31T12:00:00.123456Z",
                             "request_id": "r1", "session": None, "prev": GENESIS, "data": data})
    expected = hashlib.sha256(whole.encode()).hexdigest()
    assert record_hash(instance="i", seq=7, kind="request", at=at, request_id="r1", session=None, prev=GENESIS,
                       data_text=text) == expected
    # Every field is covered.
    assert record_hash(instance="i", seq=8, kind="request", at=at, request_id="r1", session=None, prev=GENESIS,
                       data_text=text) != expected


def test_times_are_utc_with_microseconds_and_need_a_zone() -> None:
    at = datetime(2025, 1, 31, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(at) == "2025-01-31T12:00:00.000000Z"
    with pytest.raises(ValueError, match="timezone"):
        format_time(datetime(2025, 1, 31))
