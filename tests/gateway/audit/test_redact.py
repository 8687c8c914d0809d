"""Redaction: every kind of secret is replaced, counted, and never survives, whatever surrounds it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.redact import MARK, redact_bytes, redact_headers, redact_text

CASES = [
    (b'{"password": "hunter2", "max_tokens": 100}', b'{"password": "[REDACTED]", "max_tokens": 100}',
     {"json_secret": 1}),
    (b'{"apiKey":"abc","client_secret": 12345,"tokenizer":"bpe"}',
     b'{"apiKey":"[REDACTED]","client_secret": "[REDACTED]","tokenizer":"bpe"}', {"json_secret": 2}),
    (b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", b"Authorization: Bearer [REDACTED]", {"bearer": 1}),
    (b"key sk-proj-abcdefghijklmnopqrstuvwxyz0123 ok", b"key [REDACTED] ok", {"api_key": 1}),
    (b"mgk_0123456789abcdefghijklmnopqrstuvwxyz", b"[REDACTED]", {"api_key": 1}),
    (b"ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", b"[REDACTED]", {"api_key": 1}),
    (b"id AKIAIOSFODNN7EXAMPLE.", b"id [REDACTED].", {"aws_key": 1}),
    (b"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nREGION=eu",
     b"AWS_SECRET_ACCESS_KEY=[REDACTED]\nREGION=eu", {"assignment": 1}),
    (b"/v1/models?api_key=abcd1234&limit=5", b"/v1/models?api_key=[REDACTED]&limit=5", {"assignment": 1}),
    (b'db:\n  password: "s3cret value"\n', b"db:\n  password: [REDACTED]\n", {"assignment": 1}),
    (b"-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nafter",
     b"[REDACTED PRIVATE KEY]\nafter", {"private_key": 1}),
    (b'{"k": "-----BEGIN PRIVATE KEY-----\\nMIIabc', b'{"k": "[REDACTED PRIVATE KEY]', {"private_key": 1}),
    (b"\xff\xfe not utf-8, password=s3cr3tpass", b"\xff\xfe not utf-8, password=[REDACTED]", {"assignment": 1}),
]


@pytest.mark.parametrize(("raw", "expected", "counts"), CASES)
def test_each_kind_of_secret(raw: bytes, expected: bytes, counts: dict[str, int]) -> None:
    result = redact_bytes(raw)
    assert (result.value, result.counts) == (expected, counts)


@pytest.mark.parametrize("clean", [
    b'{"model": "smol", "max_tokens": 64, "messages": [{"role": "user", "content": "a token of thanks"}]}',
    b"task-abcdefghijklmnopqrstuvwxyz is a word, not a key; XAKIAIOSFODNN7EXAMPLE neither",
    b"",
])
def test_ordinary_text_is_left_alone(clean: bytes) -> None:
    assert redact_bytes(clean).value == clean and redact_bytes(clean).counts == {}


def test_headers_keep_the_scheme_and_redact_credentials_by_name() -> None:
    headers, counts = redact_headers([("Authorization", "Bearer x"), ("Cookie", "a=b"), ("X-Api-Key", "k"),
                                      ("X-Trace", "sk-abcdefghijklmnopqrstu"), ("Content-Type", "json")])
    assert headers == [["Authorization", f"Bearer {MARK}"], ["Cookie", MARK], ["X-Api-Key", MARK],
                       ["X-Trace", MARK], ["Content-Type", "json"]]
    assert counts == {"header": 3, "api_key": 1}


def test_text_with_undecodable_bytes_is_redacted_and_made_valid() -> None:
    text, counts = redact_text("/x?token=abcdefgh&\udcff")
    assert text == "/x?token=[REDACTED]&\ufffd\ufffd\ufffd" and counts == {"assignment": 1}


SECRETS = st.sampled_from([
    "sk-" + "a1B2c3D4e5F6g7H8i9J0", "AKIAABCDEFGHIJKLMNOP", "mgk_" + "Z" * 30, "ghp_" + "q" * 36,
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----",
])
SEPARATORS = st.sampled_from([" ", "\n", '"', "(", ", ", "\t"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), SEPARATORS, SECRETS, SEPARATORS, st.binary(max_size=300))
def test_no_secret_survives_whatever_surrounds_it(before: bytes, left: str, secret: str, right: str,
                                                  after: bytes) -> None:
    data = before + left.encode() + secret.encode() + right.encode() + after
    result = redact_bytes(data)
    assert secret.encode() not in result.value
    assert sum(result.counts.values()) >= 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_redaction_never_fails_and_a_second_pass_finds_nothing(data: bytes) -> None:
    once = redact_bytes(data)
    twice = redact_bytes(once.value)
    assert twice.value == once.value and twice.counts == {}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40).filter(lambda s: '"' not in s and "\\" not in s), st.text(min_size=1, max_size=40))
def test_a_json_password_never_survives(prefix: str, value: str) -> None:
    import json

    document = json.dumps({f"{prefix}password": value, "other": 1}).encode()
    result = redact_bytes(document)
    assert json.loads(result.value)[f"{prefix}password"] == MARK
