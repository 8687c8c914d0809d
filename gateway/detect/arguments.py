"""Arguments that attack the tool itself: shell and SQL injection, path traversal, requests to internal hosts.

These are judged on the argument alone, whoever supplied it, because they are dangerous whatever the
agent's intent: a file name carrying ``; curl ... | sh`` or a URL pointing at the cloud metadata service
has no legitimate use. Where an argument is *meant* to be code (a shell tool's ``command``, a SQL tool's
``query``), ordinary syntax (``&&``, ``UNION SELECT``) is left alone and only destructive or
exfiltrating forms are reported.

Decisions on paths: one ``../`` is what a relative link looks like (``../README.md``) and is fine; a
path that climbs two levels is reported (medium), three or more, or percent-encoded climbing, is high;
well-known secret files (``/etc/shadow``, ``~/.ssh/``, ``.aws/credentials``, ``/proc/self/environ``...)
are high in a path-like argument and medium in prose.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from gateway.findings import Severity
from gateway.hosts import is_internal
from policies.hosts import normalize_destination

__all__ = ["Hit", "dangerous"]

_COMMAND_KEYS = frozenset(("command", "cmd", "shell", "script", "exec", "run", "code", "bash", "powershell",
                           "commandline", "command_line"))
_IDENTIFIER_KEYS = frozenset(("file", "filename", "path", "dir", "directory", "folder", "host", "hostname", "ip",
                              "address", "domain", "url", "uri", "branch", "ref", "tag", "package", "module", "name",
                              "id", "target", "repo", "repository", "image", "container", "pod", "namespace", "user",
                              "username", "arg", "args", "argument", "option", "flag", "pattern", "glob", "src",
                              "source", "dest", "destination", "location", "version", "server", "endpoint"))
_SQL_KEYS = frozenset(("query", "sql", "statement", "q", "where", "filter"))
_HOST_KEYS = frozenset(("host", "hostname", "ip", "server", "endpoint", "domain"))

_SUBSTITUTION = re.compile(r"\$\([^)]{0,200}\)|`[^`\n]{1,200}`|\$\{[^}\n]{0,60}\}|<\([^)]{0,200}\)")
_CHAINING = re.compile(r"(?:;|&&|\|\||\|)\s*(?:[a-z_./-]+/)?(?:sh|bash|zsh|dash|nc|ncat|curl|wget|python[0-9.]*|"
                       r"perl|ruby|php|node|base64|tee|xargs|rm|cat|chmod|chown|echo|eval|exec|sudo|su|id|whoami|"
                       r"uname|env|printenv|ls|cp|mv|dd|scp|ssh|telnet|powershell|cmd)\b|\n\s*[a-z]{2,}\s", re.I)
_DANGEROUS_COMMAND = re.compile(
    r"\b(?:curl|wget)\b[^\n|;&]{0,200}\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b|/dev/(?:tcp|udp)/|\bnc(?:at)?\b[^\n|;&]{0,60}"
    r"\s-[a-z]*e\b|\brm\s+-[a-z]*r[a-z]*\s+(?:/|~|\*|\$home)(?:\s|$)|\bmkfs(?:\.\w+)?\b|\bdd\s+[^\n]*of=/dev/"
    r"|\bchmod\s+(?:-r\s+)?0?777\s+/|\bbase64\s+(?:-d|--decode)\b[^\n]{0,100}\|\s*(?:ba)?sh\b|:\(\)\s*\{\s*:\|:\s*&\s*\}"
    r"|\bhistory\s+-c\b|>\s*~?/?\.ssh/authorized_keys|\bcrontab\s+-r\b|\biptables\s+-f\b|\bsetenforce\s+0\b",
    re.I,
)
_SQL_ATTACK = re.compile(
    r"'\s*(?:or|and)\s+(?:'[^']{0,40}'\s*=\s*'|\d+\s*=\s*\d+|true\b)|\bor\s+1\s*=\s*1\b"
    r"|;\s*(?:drop|truncate|alter|grant|shutdown|exec(?:ute)?)\s|;\s*delete\s+from\s"
    r"|'\s*(?:--|#|/\*)|\b(?:sleep|pg_sleep|benchmark)\s*\(\s*\d|\bwaitfor\s+delay\b|\bxp_cmdshell\b"
    r"|\bload_file\s*\(|\binto\s+(?:out|dump)file\b",
    re.I,
)
_UNION = re.compile(r"\bunion\s+(?:all\s+)?select\b|\binformation_schema\b", re.I)
_ENCODED_CLIMB = re.compile(r"%2e%2e|%252e|\.\.%2f|\.\.%5c|%c0%ae|%c0%af|\.\.\\\\", re.I)
_SECRET_PATH = re.compile(
    r"/etc/(?:shadow|gshadow|sudoers|master\.passwd|passwd)\b|/proc/(?:self|\d+)/(?:environ|cmdline|mem|maps)\b"
    r"|(?:^|[\s/\\~'\"=])\.ssh(?:[/\\]|\b)|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\.aws[/\\](?:credentials|config)\b"
    r"|\.kube[/\\]config\b|\.docker[/\\]config\.json\b|\.git-credentials\b|\.netrc\b|\.npmrc\b|\.pypirc\b"
    r"|(?:^|[/\\])\.env(?:\.[a-z]+)?$|/var/run/secrets/|\bwindows[/\\]system32[/\\]config\b|\.bash_history\b"
    r"|\bwallet\.dat\b|\.gnupg\b|\.password-store\b|/etc/ssl/private\b",
    re.I | re.M,
)
_URL = re.compile(r"\b(?:https?|ftp|gopher|file|dict|ldap|tftp|sftp|wss?)://[^\s'\"<>`]{1,2048}", re.I)
_METADATA = frozenset(("metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                       "instance-data.ec2.internal"))
_METADATA_ADDRESSES = tuple(ipaddress.ip_network(n) for n in ("169.254.169.254/32", "fd00:ec2::254/128",
                                                               "100.100.100.200/32", "192.0.0.192/32",
                                                               "169.254.170.2/32"))


@dataclass(frozen=True, slots=True)
class Hit:
    """One dangerous argument: the rule (``shell_injection``, ``sql_injection``, ``path_traversal``, ``ssrf``)."""

    rule: str
    severity: Severity
    score: float
    reason: str
    evidence: str


def dangerous(key: str, text: str, executes: bool) -> list[Hit]:
    """What is dangerous about argument ``key`` = ``text`` (``executes``: the tool runs commands)."""
    words = set(re.split(r"[^a-z0-9]+", key.lower()))
    hits: list[Hit] = []
    hits += _shell(key, text, words, executes)
    hits += _sql(key, text, words)
    hits += _paths(key, text, words, executes)
    hits += _ssrf(key, text, words)
    return hits


def _shell(key: str, text: str, words: set[str], executes: bool) -> list[Hit]:
    command = executes or bool(words & _COMMAND_KEYS)
    if not command and words & _IDENTIFIER_KEYS:  # a command may chain commands; a name or a path may not
        if (match := _SUBSTITUTION.search(text) or _CHAINING.search(text)) is not None:
            return [Hit("shell_injection", "high", 0.85, f"{key!r} is a name or path but carries shell syntax",
                        _excerpt(text, match))]
    if (match := _DANGEROUS_COMMAND.search(text)) is not None:
        severity: Severity = "high" if command else "medium"  # in prose it may be an example being discussed
        return [Hit("shell_injection", severity, 0.9 if command else 0.6,
                    f"{key!r} carries a destructive or remote-code command", _excerpt(text, match))]
    return []


def _sql(key: str, text: str, words: set[str]) -> list[Hit]:
    if (match := _SQL_ATTACK.search(text)) is not None:
        return [Hit("sql_injection", "high", 0.85, f"{key!r} carries an SQL injection form", _excerpt(text, match))]
    if not words & _SQL_KEYS and (match := _UNION.search(text)) is not None:
        return [Hit("sql_injection", "medium", 0.6, f"{key!r} is not a query but carries SQL",
                    _excerpt(text, match))]
    return []


def _paths(key: str, text: str, words: set[str], executes: bool) -> list[Hit]:
    pathlike = executes or bool(words & (_IDENTIFIER_KEYS | _COMMAND_KEYS))
    hits = []
    if (match := _SECRET_PATH.search(text)) is not None:
        hits.append(Hit("path_traversal", "high" if pathlike else "medium", 0.85 if pathlike else 0.55,
                        f"{key!r} names a secret file", _excerpt(text, match)))
    if (match := _ENCODED_CLIMB.search(text)) is not None:
        hits.append(Hit("path_traversal", "high", 0.85, f"{key!r} climbs directories in encoded form",
                        _excerpt(text, match)))
    elif "../" in text or "..\\" in text:
        climbs = _climbs(text)
        if climbs >= 2:
            severity: Severity = "high" if climbs >= 3 else "medium"
            hits.append(Hit("path_traversal", severity, 0.8 if climbs >= 3 else 0.55,
                            f"{key!r} climbs {climbs} directories up", text[:120]))
    return hits[:1]


def _climbs(text: str) -> int:
    """How far above its starting folder the deepest path in ``text`` goes."""
    deepest = 0
    for token in re.findall(r"[^\s'\"<>|;,]*\.\.[/\\][^\s'\"<>|;,]*", unquote(text[:4096])):
        normal = posixpath.normpath(token.replace("\\", "/"))
        deepest = max(deepest, len(re.match(r"(?:\.\./)*", normal + "/").group()) // 3)
    return deepest


def _ssrf(key: str, text: str, words: set[str]) -> list[Hit]:
    targets = [m.group() for m in _URL.finditer(text[:8192])][:16]
    bare = text.strip()
    if words & _HOST_KEYS and len(bare) < 256 and " " not in bare and ("." in bare or ":" in bare
                                                                    or bare.lower() in _METADATA | {"localhost"}):
        targets.append(bare)
    for target in targets:
        if (hit := _internal(key, target)) is not None:
            return [hit]
    return []


def _internal(key: str, target: str) -> Hit | None:
    scheme, _, rest = target.partition("://") if "://" in target else ("", "", target)
    scheme = scheme.lower()
    if scheme in ("file", "gopher", "dict", "ldap", "tftp"):
        return Hit("ssrf", "high", 0.85, f"{key!r} is a {scheme}:// URL, which reaches local files or services",
                   target[:120])
    try:
        host = urlsplit(f"//{rest}").hostname
        dest = normalize_destination(host) if host else None
    except ValueError:
        return None
    if dest is None:
        return None
    if (dest in _METADATA if isinstance(dest, str) else any(dest in n for n in _METADATA_ADDRESSES
                                                            if n.version == dest.version)):
        return Hit("ssrf", "critical", 1.0, f"{key!r} points at a cloud metadata service ({dest})", target[:120])
    if is_internal(dest):
        return Hit("ssrf", "high", 0.8, f"{key!r} points at an internal address ({dest})", target[:120])
    return None


def _excerpt(text: str, match: re.Match[str]) -> str:
    start = max(0, match.start() - 30)
    return ("…" if start else "") + text[start : match.end() + 30][:120]
