"""Secrets are removed before anything reaches the audit database: bodies, headers, paths, evidence.

The log is read by reviewers and exported to other systems, so an agent's API key, a cloud credential
or a private key that passed through the gateway must not be copied into it. Redaction works on bytes
(a body need not be JSON, UTF-8 or complete) with patterns that err towards removing too much, and
reports how many matches of each kind it replaced so the record says that it happened.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = ["MARK", "Redacted", "redact_bytes", "redact_headers", "redact_text"]

MARK = "[REDACTED]"

# Python's regular expressions test every position of an alternation, which costs milliseconds on a
# 10 kB body; so the literals a secret starts with are found with bytes.find (in a lowercased copy for
# names), and small patterns are matched only where one occurs.
#
# A credential's name is matched where it ends ("client_secret", "access_token", "apiKey"; not
# "max_tokens"): as a JSON member's name, or in key=value / key: value (query strings, forms, .env, YAML).
_NAMES = tuple(name.encode() for name in (
    "password", "passwd", "passphrase", "secret", "token", "api_key", "api-key", "apikey", "access_key",
    "access-key", "accesskey", "private_key", "private-key", "privatekey", "authorization", "credential",
    "credentials", "cookie", "session_key", "session-key", "sessionkey",
))
_JSON_VALUE = re.compile(rb'"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*)')
_ASSIGNED_VALUE = re.compile(rb"""\s*[=:]\s*(?!(?i:bearer|basic|digest|token)\b)("(?:[^"\\]|\\.)*"|'[^']*'"""
                             rb"""|[^\s&"',;\[]{4,})""")
_SCHEMES = (b"bearer", b"basic", b"token", b"digest")
_CREDENTIAL = re.compile(rb"[ \t]+[A-Za-z0-9._~+/=-]{16,}")
_KEY_PREFIXES: tuple[tuple[bytes, re.Pattern[bytes]], ...] = tuple((prefix, re.compile(rest)) for prefix, rest in (
    (b"sk-", rb"[A-Za-z0-9_-]{16,}"), (b"rk-", rb"[A-Za-z0-9_-]{16,}"), (b"mgk_", rb"[A-Za-z0-9_-]{20,}"),
    (b"ghp_", rb"[A-Za-z0-9_]{20,}"), (b"gho_", rb"[A-Za-z0-9_]{20,}"), (b"ghu_", rb"[A-Za-z0-9_]{20,}"),
    (b"ghs_", rb"[A-Za-z0-9_]{20,}"), (b"ghr_", rb"[A-Za-z0-9_]{20,}"), (b"github_pat_", rb"[A-Za-z0-9_]{20,}"),
    (b"xox", rb"[abposr]-[A-Za-z0-9-]{10,}"), (b"AIza", rb"[0-9A-Za-z_-]{35}"),
))
_AWS_KEY = re.compile(rb"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Z0-9])")
_AWS_STARTS = (b"AKIA", b"ASIA", b"ABIA", b"ACCA", b"A3T")
_AWS_HINT = re.compile(rb"A(?:KIA|SIA|BIA|CCA|3T)")
"""What every match of ``_AWS_KEY`` starts with (one literal to scan for): the pattern runs only where one occurs."""
_PRIVATE_KEY_START = b"-----BEGIN "
# On a short input one search for every literal above is quicker than a find for each (header values and
# paths are short); on a body it would cost a regular expression's pass per position, as said above.
_SHORT = 64
_LOWER_TRIGGER = re.compile(b"|".join(re.escape(t) for t in (*_NAMES, *_SCHEMES)))
_EXACT_TRIGGER = re.compile(b"|".join(re.escape(t) for t in (*(p for p, _ in _KEY_PREFIXES), *_AWS_STARTS,
                                                              _PRIVATE_KEY_START)))
_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
                          rb"(?s:.*?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|.*\Z)")
_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_MARK = MARK.encode()
_QUOTED_MARK = b'"' + _MARK + b'"'

Span = tuple[int, int, bytes, str]

_SENSITIVE_HEADER = re.compile(
    r"(?i)^(?:cookie|set-cookie|.*(?:authorization|api[-_]?key|token|secret|password|passwd|credential|auth).*)$"
)
_AUTH_SCHEMES = ("bearer", "basic", "digest", "token")


@dataclass(frozen=True)
class Redacted:
    """What redaction left and how many secrets of each kind it replaced."""

    value: bytes
    counts: dict[str, int] = field(default_factory=dict)


def redact_bytes(data: bytes) -> Redacted:
    """``data`` with every secret replaced; a second pass finds nothing more."""
    lower = data.lower()
    if len(data) <= _SHORT and not _LOWER_TRIGGER.search(lower) and not _EXACT_TRIGGER.search(data):
        return Redacted(data)  # a header value, a path: no name, scheme or prefix that a secret needs
    spans = [*_named(data, lower), *_schemes(data, lower), *_prefixed(data)]
    if _AWS_HINT.search(data):
        spans += [(m.start(), m.end(), _MARK, "aws_key") for m in _AWS_KEY.finditer(data)
                  if _starts_word(data, m.start())]
    if _PRIVATE_KEY_START in data:
        spans += [(m.start(), m.end(), b"[REDACTED PRIVATE KEY]", "private_key") for m in _PRIVATE_KEY.finditer(data)]
    if not spans:
        return Redacted(data)
    spans.sort(key=lambda span: (span[0], -span[1]))
    counts: Counter[str] = Counter()
    out, position = [], 0
    for start, end, replacement, kind in spans:
        if start < position:
            continue  # inside a secret already replaced
        out += (data[position:start], replacement)
        position = end
        counts[kind] += 1
    out.append(data[position:])
    return Redacted(b"".join(out), dict(counts))


def _starts_word(data: bytes, at: int) -> bool:
    return at == 0 or data[at - 1] not in _ALNUM


def _named(data: bytes, lower: bytes) -> Iterator[Span]:
    for name in _NAMES:
        at = lower.find(name)
        while at != -1:
            end = at + len(name)
            at = lower.find(name, at + 1)
            if match := _JSON_VALUE.match(data, end):
                if match[1] != _QUOTED_MARK:
                    yield match.start(1), match.end(1), _QUOTED_MARK, "json_secret"
            elif (match := _ASSIGNED_VALUE.match(data, end)) and match[1] not in (_MARK, _QUOTED_MARK):
                yield match.start(1), match.end(1), _MARK, "assignment"


def _schemes(data: bytes, lower: bytes) -> Iterator[Span]:
    for scheme in _SCHEMES:
        at = lower.find(scheme)
        while at != -1:
            end = at + len(scheme)
            if _starts_word(data, at) and (match := _CREDENTIAL.match(data, end)):
                yield at, match.end(), data[at:end] + b" " + _MARK, "bearer"
            at = lower.find(scheme, at + 1)


def _prefixed(data: bytes) -> Iterator[Span]:
    for prefix, rest in _KEY_PREFIXES:
        at = data.find(prefix)
        while at != -1:
            if _starts_word(data, at) and (match := rest.match(data, at + len(prefix))):
                yield at, match.end(), _MARK, "api_key"
            at = data.find(prefix, at + 1)


def redact_text(text: str) -> tuple[str, dict[str, int]]:
    """``redact_bytes`` for a string (a path, a header value, a finding's evidence)."""
    result = redact_bytes(text.encode("utf-8", "surrogatepass"))
    return result.value.decode("utf-8", "replace"), result.counts


def redact_headers(headers: Iterable[tuple[str, str]]) -> tuple[list[list[str]], dict[str, int]]:
    """Headers as ``[name, value]`` pairs, credentials replaced (an Authorization keeps its scheme)."""
    counts: Counter[str] = Counter()
    out: list[list[str]] = []
    for name, value in headers:
        if _SENSITIVE_HEADER.match(name):
            scheme = value.split(None, 1)[0] if " " in value.strip() else ""
            kept = f"{scheme} {MARK}" if scheme.lower() in _AUTH_SCHEMES else MARK
            if value != kept:
                counts["header"] += 1
            out.append([name, kept])
            continue
        redacted, found = redact_text(value)
        if found:
            counts.update(found)
        out.append([name, redacted])
    return out, {k: v for k, v in counts.items() if v}
