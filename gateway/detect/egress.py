"""Secrets and encoded data leaving in a tool call's arguments or an outbound request body.

A hijacked agent's last step is to move something out: an API key it found in a config file, a private
key, a session token, or a blob of encoded data. The patterns are the issuers' documented prefixes
(OpenAI ``sk-``, Anthropic ``sk-ant-``, GitHub ``ghp_``/``github_pat_``, AWS ``AKIA``/``ASIA``, Slack
``xox?-``, Google ``AIza``, Stripe ``sk_live_``), PEM private-key armour, JWTs and bearer tokens; each
pattern starts with a literal so that scanning a body costs memchr passes. Evidence never repeats a
secret: it shows its kind, its first characters, its last four and its length, because findings are
written to the audit log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.detect.values import clip

__all__ = ["Leak", "blobs", "mask", "secrets"]

_SECRETS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Anthropic API key", re.compile(r"sk-ant-[A-Za-z0-9_-]{20,}")),
    ("OpenAI API key", re.compile(r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")),
    ("GitHub token", re.compile(r"gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}")),
    ("AWS access key id", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])")),
    ("Slack token", re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}")),
    ("Google API key", re.compile(r"AIza[0-9A-Za-z_-]{35}")),
    ("Stripe secret key", re.compile(r"[rs]k_live_[0-9A-Za-z]{20,}")),
    ("private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
    ("JSON Web Token", re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("bearer token", re.compile(r"(?i:bearer)\s+[A-Za-z0-9._~+/-]{20,}=*")),
)
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4}){64,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?|[A-Za-z0-9_-]{344,}")
_HEX = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{128,}(?![0-9A-Fa-f])")


@dataclass(frozen=True, slots=True)
class Leak:
    """Something that should not leave: what it is and a masked excerpt."""

    kind: str
    excerpt: str
    secret: str = ""
    """The matched text itself, for comparing with what the user wrote; never shown."""


def mask(secret: str) -> str:
    """``sk-pr…3f9a (51 chars)``: enough to find the secret in a vault, not enough to use it."""
    if len(secret) <= 12:
        return f"{secret[:2]}… ({len(secret)} chars)"
    return f"{secret[:5]}…{secret[-4:]} ({len(secret)} chars)"


def secrets(text: str) -> list[Leak]:
    """Credentials in ``clip(text)``, one per kind."""
    text = clip(text)
    found = []
    for kind, pattern in _SECRETS:
        if (match := pattern.search(text)) is not None:
            found.append(Leak(kind, mask(match.group()), match.group()))
    return found


def blobs(text: str) -> list[Leak]:
    """Long base64 (at least 256 characters) or hex (at least 128 digits) runs: encoded data on its way out."""
    text = clip(text)
    if len(text) < 128:
        return []
    found = []
    if (match := _BASE64.search(text)) is not None and not match.group().isdigit():
        found.append(Leak("base64 data", f"{len(match.group())} characters at offset {match.start()}"))
    if (match := _HEX.search(text)) is not None and not match.group().isdigit():
        found.append(Leak("hex data", f"{len(match.group())} digits at offset {match.start()}"))
    return found
