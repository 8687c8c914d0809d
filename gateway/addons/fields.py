"""A flow's headers read and rewritten in one pass over mitmproxy's raw fields.

Each lookup by name in mitmproxy's ``Headers`` (``get``, ``in``, ``del``, ``[]=``) scans every field,
lower-casing and converting each on the way; the addons made a dozen of them a request. These helpers
read or replace ``headers.fields`` once, with mitmproxy's meaning: names are case-insensitive, and text
is decoded as mitmproxy decodes it (UTF-8, undecodable bytes as surrogates).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from mitmproxy import http

__all__ = ["joined", "rewrite", "text_fields"]


def joined(headers: http.Headers, names: Collection[bytes]) -> dict[bytes, str]:
    """The value of each of ``names`` (lower case) that is present; repeated fields joined by ", ", as
    ``headers.get`` joins them."""
    found: dict[bytes, list[bytes]] = {}
    for name, value in headers.fields:
        if (key := name.lower()) in names:
            found.setdefault(key, []).append(value)
    return {key: b", ".join(values).decode("utf-8", "surrogateescape") for key, values in found.items()}


def text_fields(headers: http.Headers) -> list[tuple[str, str]]:
    """Every field as text, in order: ``headers.items(multi=True)`` as a list."""
    return [(name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            for name, value in headers.fields]


def rewrite(headers: http.Headers, drop: Collection[bytes], add: Iterable[tuple[str, str]] = ()) -> None:
    """Remove every field whose lower-cased name is in ``drop``, then append ``add``."""
    kept = tuple(field for field in headers.fields if field[0].lower() not in drop)
    headers.fields = kept + tuple((name.encode("utf-8", "surrogateescape"),
                                   value.encode("utf-8", "surrogateescape")) for name, value in add)
