"""Opaque HTTP: a bounded text view of readable bodies, none of binary ones; the generic refusal."""

from __future__ import annotations

import json

import pytest

from gateway.protocols import Headers, Limits, RawRequest, RawResponse, normalise_request, normalise_response
from gateway.protocols import http as opaque


def event(body: bytes, media: str | None, limits: Limits | None = None):
    headers = Headers({"content-type": media} if media else {})
    raw = RawRequest("PUT", "https", "files.example.com", 443, "/upload?x=1", headers, body)
    return normalise_request(raw, request_id="r", agent="a", direction="forward", limits=limits)


@pytest.mark.parametrize(("body", "media", "view"), [
    (b"token=abc&user=me", "application/x-www-form-urlencoded", "token=abc&user=me"),
    (b"<a>1</a>", "application/xml", "<a>1</a>"),
    (b"caf\xe9", "text/plain; charset=latin-1", "café"),
    (b"caf\xe9", "text/plain; charset=rot13", "caf\ufffd"),  # not a text codec: UTF-8 with replacement
    (b"plain words", None, "plain words"),
    (b'{"k": "v"}', "application/problem+json", '{"k": "v"}'),
])
def test_readable_bodies_get_a_view(body: bytes, media: str | None, view: str) -> None:
    got = event(body, media)
    assert got.protocol == "http" and got.messages[0].role == "body" and got.messages[0].text == view


@pytest.mark.parametrize(("body", "media"), [(b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xfe\x00", None),
                                             (b"", "text/plain")])
def test_binary_or_empty_bodies_get_none(body: bytes, media: str | None) -> None:
    assert event(body, media).messages == ()


def test_the_view_is_bounded_and_says_so() -> None:
    got = event(b"x" * 500, "text/plain", Limits(max_text_chars=100))
    assert got.messages[0].text == "x" * 100 + "[... 400 more characters not kept]"
    assert got.body_size == 500 and got.path == "/upload?x=1" and got.method == "PUT"


def test_response_view_and_error() -> None:
    request = event(b"", None)
    ok = normalise_response(RawResponse(200, Headers({"content-type": "text/plain"}), b"done"), request)
    assert (ok.text, ok.error, ok.body_size) == ("done", None, 4)
    failed = normalise_response(RawResponse(500, Headers({}), b""), request)
    assert failed.error == "HTTP 500"


def test_error_reply() -> None:
    reply = opaque.error_reply(403, "egress to files.example.com is not allowed")
    assert reply.status == 403 and json.loads(reply.body)["error"]["type"] == "modelgate_refused"
