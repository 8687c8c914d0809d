"""The addons' one-pass header helpers mean what mitmproxy's own ``Headers`` lookups mean."""

from __future__ import annotations

from mitmproxy import http

from gateway.addons.fields import joined, rewrite, text_fields

RAW = ((b"Host", b"example.com"), (b"Authorization", b"Bearer one"), (b"X-Api-Key", b"k\xff1"),
       (b"x-api-key", b"k2"), (b"Accept-Encoding", b"gzip"), (b"Caf\xc3\xa9", b"cr\xc3\xa8me"))


def test_joined_reads_as_headers_get_does_repeated_and_undecodable_fields_included() -> None:
    headers = http.Headers(RAW)
    names = (b"authorization", b"x-api-key", b"accept-encoding", b"host", b"absent")
    found = joined(headers, frozenset(names))
    assert found == {name: headers[name.decode()] for name in names if name.decode() in headers}
    assert found[b"x-api-key"] == "k\udcff1, k2"  # mitmproxy's decoding: undecodable bytes as surrogates


def test_text_fields_are_items_multi_and_rewrite_drops_every_copy_then_appends() -> None:
    headers = http.Headers(RAW)
    assert text_fields(headers) == list(headers.items(multi=True))
    rewrite(headers, frozenset({b"x-api-key", b"authorization"}), (("X-Modelgate-Request-Id", "abc"),))
    assert "x-api-key" not in headers and "authorization" not in headers
    assert headers.fields[-1] == (b"X-Modelgate-Request-Id", b"abc")
    assert headers.fields[:-1] == (RAW[0], RAW[4], RAW[5])  # the others kept, in order, byte for byte
