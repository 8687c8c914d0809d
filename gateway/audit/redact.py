"""Secrets are removed before anything reaches the audit database: bodies, headers, paths, evidence.

The log is read by reviewers and exported to other systems, so an agent's API key, a cloud credential
or a private key that passed through the gateway must not be copied into it. Redaction works on bytes
(a body need not be JSON, UTF-8 or complete) with patterns that err towards removing too much, and
reports how many matches of each kind it replaced so the record says that it happened.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["MARK", "Redacted", "redact_bytes", "redact_headers", "redact_text"]

MARK = "[REDACTED]"

# A JSON member whose name ends like a credential ("password", "client_secret", "access_token", "apiKey"),
# with a string or number value. "max_tokens" and "tokenizer" do not end so.
_SECRET_NAME = (
    r"(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
    r"|authorization|credentials?|cookie|session[_-]?key)"
)
_PATTERNS: tuple[tuple[str, bytes], ...] = tuple((kind, pattern.encode()) for kind, pattern in (
    ("private_key", r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----"
                    r"(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|.*\Z)"),
    ("json_secret", rf'(?i)"(?P<key>[^"\\]{{0,64}}?{_SECRET_NAME})"(?P<sep>\s*:\s*)'
                    r'(?P<value>"(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*)'),
    ("bearer", r"(?i)(?P<scheme>\b(?:bearer|basic|token|digest))[ \t]+[A-Za-z0-9._~+/=-]{16,}"),
    ("api_key", r"(?<![A-Za-z0-9])(?:sk|rk)-[A-Za-z0-9_-]{16,}"),
    ("api_key", r"(?<![A-Za-z0-9])mgk_[A-Za-z0-9_-]{20,}"),
    ("api_key", r"(?<![A-Za-z0-9])(?:gh[pousr]|github_pat)_[A-Za-z0-9_]{20,}"),
    ("api_key", r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}"),
    ("api_key", r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_-]{35}"),
    ("aws_key", r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Z0-9])"),
    # key=value in query strings, form bodies, .env files and YAML ("AWS_SECRET_ACCESS_KEY=...", "password: x").
    ("assignment", rf"(?i)(?P<key>(?<![A-Za-z0-9_\"'-])[A-Za-z0-9_.-]{{0,64}}?{_SECRET_NAME})"
                   r"(?P<sep>\s*[=:]\s*)(?!(?:bearer|basic|digest|token)\b)(?P<value>[^\s&\"',;\[]{4,})"),
))
_COMPILED = tuple((kind, re.compile(pattern)) for kind, pattern in _PATTERNS)
_MARK = MARK.encode()
_QUOTED_MARK = b'"' + _MARK + b'"'

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
    counts: Counter[str] = Counter()
    for kind, pattern in _COMPILED:
        data = pattern.sub(lambda match, kind=kind: _replace(kind, match, counts), data)
    return Redacted(data, dict(counts))


def _replace(kind: str, match: re.Match[bytes], counts: Counter[str]) -> bytes:
    if kind == "json_secret":
        if match["value"] == _QUOTED_MARK:
            return match[0]
        replaced = b'"' + match["key"] + b'"' + match["sep"] + _QUOTED_MARK
    elif kind == "assignment":
        replaced = match["key"] + match["sep"] + _MARK
    elif kind == "bearer":
        replaced = match["scheme"] + b" " + _MARK
    elif kind == "private_key":
        replaced = b"[REDACTED PRIVATE KEY]"
    else:
        replaced = _MARK
    counts[kind] += 1
    return replaced


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
        counts.update(found)
        out.append([name, redacted])
    return out, {k: v for k, v in counts.items() if v}
