"""Values worth following from what an agent reads to what it does: addresses, accounts, links, numbers.

A hijacked agent gives itself away by acting on a value that only untrusted content supplied: the
attacker's email address as a recipient, their IBAN as a payee, their site as a URL to fetch. So the
same extractor runs over trusted text (user and system messages), untrusted text (tool results,
fetched pages) and tool-call arguments, and values are compared in one normal form:

    email    lower-cased; no provider-specific folding (gmail dots and ``+tags`` stay significant: a
             different spelling is a different string to the model as well)
    domain   the host of a URL, a ``www.`` name or a bare name under a common TLD; lower-case, without
             ``www.`` and the trailing dot
    iban     upper-case without spaces, when the ISO 13616 check digits are right
    account  IBAN-shaped but failing the checksum (made-up and test accounts are still accounts)
    card     13-19 digits passing Luhn, separators removed
    phone    international (``+``) or North-American grouping, digits only
    crypto   Ethereum (``0x`` + 40 hex) and Bitcoin (bech32, base58) addresses, lower-cased
    number   a run of 8-20 digits (account numbers, long ids); dates and times do not qualify

Only the first ``HEAD_CHARS`` and the last ``TAIL_CHARS`` characters of a text are scanned (48 KiB and
16 KiB), and at most ``MAX_VALUES`` values are kept per text: the cost of an event is bounded whatever
its size. Content hidden in the middle of a huge tool result is not followed (the injection detector
still scans it on its own terms).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["HEAD_CHARS", "MAX_VALUES", "TAIL_CHARS", "Kind", "Value", "bounded", "clip", "extract", "fold", "host_of"]

Kind = Literal["email", "domain", "iban", "account", "card", "phone", "crypto", "number"]

HEAD_CHARS = 48 * 1024
TAIL_CHARS = 16 * 1024
MAX_VALUES = 256

_TLDS = (
    "com|net|org|edu|gov|mil|int|io|co|ai|app|dev|info|biz|me|us|uk|de|fr|es|it|nl|ru|cn|jp|in|br|au|ca|ch|eu|"
    "xyz|site|online|top|link|ly|gl|to|sh|cc|tv|gg|pro|tech|shop|store|cloud|page|email|click|live|news|blog|"
    "club|space|website|host|fun|icu|buzz|zip|mov"
)
# Every pattern starts with a literal or runs over the lower-cased text without IGNORECASE: Python's regex
# engine scans for a literal at memchr speed but pays per position for a character class.
_AT = re.compile("@")
_SCHEME = re.compile("://")
_WWW = re.compile(r"www\.")
_TLD = re.compile(r"\.(?:" + _TLDS + r")(?![a-z0-9-])")
_NUMERIC = re.compile(  # over the text with every digit made "0" (see _numbers)
    r"0x[0a-f]{40}(?![0a-z])"
    r"|0(?:[ ().-]{0,2}0){7,23}"
    r"|00[a-z0]{10,30}(?![a-z0])"  # the rest of a compact IBAN after its country code
    r"|0[a-km-z0]{25,34}(?![a-z0])"  # a base58 Bitcoin address (starts with 1 or 3, has a letter: checked below)
)
_ZEROS = str.maketrans("123456789", "000000000")
_BECH32 = re.compile(r"bc1[a-z0-9]{25,59}(?![a-z0-9])")
_LOCAL_REVERSED = re.compile(r"[a-z0-9._%+-]{0,63}[a-z0-9]")
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?){0,8}")
_EMAIL_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?){0,8}"
                         r"\.[a-z]{2,24}(?![a-z0-9-])")
_LABELS_REVERSED = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.?){1,8}")
_SCHEME_REVERSED = re.compile(r"[a-z]{2,6}")
_URL_REST = re.compile(r"[^\s'\"<>`{}|\\^\[\]]{1,2048}")
_IBAN = re.compile(r"[a-z]{2}[0-9]{2}(?:[ ]?[a-z0-9]{4}){2,7}(?:[ ]?[a-z0-9]{1,3})?(?![a-z0-9])")
_PHONE = re.compile(r"\+[0-9]{1,3}(?:[ .-]?\(?[0-9]{1,4}\)?){2,5}|\([0-9]{3}\) ?[0-9]{3}[ .-][0-9]{4}"
                    r"|[0-9]{3}[.-][0-9]{3}[.-][0-9]{4}")
_CARD_GROUPS = re.compile(r"[0-9]{4}([ -])[0-9]{4}\1[0-9]{4}\1[0-9]{4}")
_TRAILING = ".,;:!?)]}'\""
_WORD = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True, slots=True)
class Value:
    """One value found in a text: its kind, its normal form and where it was (offsets into the scanned text)."""

    kind: Kind
    value: str
    start: int
    end: int


def clip(text: str) -> str:
    """The part of ``text`` that is scanned: its head and its tail, joined by a line break."""
    if len(text) > HEAD_CHARS + TAIL_CHARS:
        return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]
    return text


def bounded(text: str) -> str:
    """``clip(text)`` lower-cased: what the value patterns run over."""
    return clip(text).lower()


def fold(text: str) -> str:
    """``clip(text)`` for phrase comparison: case-folded, every run of whitespace and backslashes one space.

    Escaped line breaks and tabs (``\\n``, ``\\t``) and other backslashes go too, because quoted YAML and
    JSON escape them: the same sentence must compare equal however the tool serialised it.
    """
    low = clip(text).casefold()
    if "\\" in low:
        low = low.replace("\\n", " ").replace("\\t", " ").replace("\\r", " ").replace("\\", " ")
    return " ".join(low.split())


def extract(text: str, *, scanned: bool = False) -> list[Value]:
    """The values in ``text`` (``scanned``: already ``bounded``), in order of appearance, at most ``MAX_VALUES``."""
    low = text if scanned else bounded(text)
    emails = _emails(low)
    found = [*emails, *_urls(low), *_domains(low, {e.end for e in emails}), *_numbers(low), *_bech32(low)]
    found.sort(key=lambda v: (v.start, -v.end))
    kept: list[Value] = []
    reach = -1
    for value in found:
        if value.start >= reach:  # a domain inside a URL or an email is that URL or email
            kept.append(value)
            reach = value.end
            if len(kept) >= MAX_VALUES:
                break
    return kept


def host_of(url: str) -> str | None:
    """The normalised host of a URL (with or without a scheme); None when there is none."""
    try:
        host = urlsplit(url if "://" in url[:16] else f"http://{url}").hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".")
    return host[4:] if host.startswith("www.") else host


def _emails(low: str) -> list[Value]:
    found = []
    for at in _AT.finditer(low):
        i = at.start()
        local = _LOCAL_REVERSED.match(_behind(low, i, 64))
        host = _EMAIL_HOST.match(low, i + 1)
        if local is None or host is None:
            continue
        start = i - local.end()
        if start > 0 and (low[start - 1] in _WORD or low[start - 1] in ".%+-"):
            continue
        found.append(Value("email", low[start : host.end()], start, host.end()))
    return found


def _urls(low: str) -> list[Value]:
    found = []
    for mark in _SCHEME.finditer(low):
        i = mark.start()
        scheme = _SCHEME_REVERSED.match(_behind(low, i, 6))
        rest = _URL_REST.match(low, i + 3)
        if scheme is None or rest is None:
            continue
        start, end = i - scheme.end(), len(rest.group().rstrip(_TRAILING)) + i + 3
        if (host := host_of(low[start:end])) is not None:
            found.append(Value("domain", host, start, end))
    for mark in _WWW.finditer(low):
        start = mark.start()
        if start and (low[start - 1] in _WORD or low[start - 1] in ".@/-"):
            continue
        rest = _URL_REST.match(low, start)
        end = start + len(rest.group().rstrip(_TRAILING)) if rest else start
        if (host := host_of(low[start:end])) is not None and "." in host:
            found.append(Value("domain", host, start, end))
    return found


def _domains(low: str, email_ends: set[int]) -> list[Value]:
    found = []
    for tld in _TLD.finditer(low):
        i = tld.start()
        if tld.end() in email_ends:
            continue
        labels = _LABELS_REVERSED.match(_behind(low, i, 253))
        if labels is None or labels.group().endswith("."):
            continue
        start = i - labels.end()
        before = low[start - 1] if start else " "
        after = low[tld.end()] if tld.end() < len(low) else " "
        if before in _WORD or before in ".@/:-" or after == "@" or (after == "." and low[tld.end() + 1 : tld.end() + 2]
                                                                   .isalnum()):
            continue
        rest = _URL_REST.match(low, tld.end()) if after in "/?#" else None
        end = tld.end() + (len(rest.group().rstrip(_TRAILING)) if rest else 0)
        found.append(Value("domain", low[start : tld.end()], start, end))
    return found


def _bech32(low: str) -> list[Value]:
    return [Value("crypto", m.group(), m.start(), m.end()) for m in _BECH32.finditer(low)
            if not m.start() or low[m.start() - 1] not in _WORD]


def _behind(low: str, i: int, n: int) -> str:
    """The ``n`` characters before ``i``, nearest first: a backward scan as a forward match."""
    return low[max(0, i - n) : i][::-1]


def _numbers(low: str) -> list[Value]:
    """Numeric values; the pattern runs over the text with digits made "0" so that it starts with a literal."""
    found = []
    for match in _NUMERIC.finditer(low.translate(_ZEROS)):
        start, end = match.span()
        raw = low[start:end]
        if raw[4:5] == "-" and raw[7:8] == "-" and raw[:4].isdigit():
            continue  # an ISO date (and its time)
        before = low[start - 2 : start] if start >= 2 else ""
        if len(before) == 2 and before.isalpha() and before.isascii() and (start < 3 or low[start - 3] not in _WORD):
            if (iban := _IBAN.match(low, start - 2)) is not None:
                compact = iban.group().replace(" ", "").upper()
                kind: Kind = "iban" if _iban_valid(compact) else "account"
                if kind == "iban" or sum(c.isdigit() for c in compact) >= 8:
                    found.append(Value(kind, compact, start - 2, iban.end()))
                continue
        prev = low[start - 1] if start else " "
        if prev in _WORD or prev in ".,:/-":
            continue
        if (value := _numeric(prev, raw, low, start)) is not None:
            found.append(value)
    return found


def _numeric(prev: str, raw: str, low: str, start: int) -> Value | None:
    if raw.startswith("0x") and len(raw) == 42:
        return Value("crypto", raw, start, start + len(raw))
    if raw[0] in "13" and len(raw) >= 26 and raw.isalnum() and not raw.isdigit():
        return Value("crypto", raw, start, start + len(raw))
    if not raw.replace(" ", "").replace("-", "").replace(".", "").replace("(", "").replace(")", "").isdigit():
        return None
    begin = start - 1 if prev in "+(" else start
    phone = _PHONE.match(low, begin)
    if phone is not None and phone.end() >= start + len(raw.rstrip(" .-(")):
        return Value("phone", "".join(c for c in phone.group() if c.isdigit()), begin, phone.end())
    raw = raw.rstrip(" .-(")
    digits = "".join(c for c in raw if c.isdigit())
    if 13 <= len(digits) <= 19 and _luhn(digits) and set(raw) <= set("0123456789 -"):
        return Value("card", digits, start, start + len(raw))
    if raw.isdigit() and 8 <= len(raw) <= 20 and not low[start + len(raw) : start + len(raw) + 2][:1].isalnum():
        return Value("number", raw, start, start + len(raw))
    if len(digits) == 16 and _CARD_GROUPS.fullmatch(raw):
        return Value("number", digits, start, start + len(raw))  # card-shaped but failing Luhn: a made-up card
    return None


def _iban_valid(iban: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, mod 97 must be 1."""
    if not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
    except ValueError:
        return False


def _luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
