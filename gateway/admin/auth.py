"""Who may use the admin listener: the admin token or password, session cookies, CSRF tokens.

- The admin token lives in the state folder (``admin-token``, 0600, generated when absent); a folder
  whose token others can read is refused. A password (``GatewayConfig.admin_password``) is a second
  credential for people; either opens a session. ``Authorization: Bearer <token>`` works on every route
  (the CLI, scripts); ``/metrics`` also takes the separate metrics token, and only it.
- A login sets one cookie: a random session id with its HMAC, HttpOnly, SameSite=Strict, Path=/ (and
  Secure behind TLS). Sessions are kept in memory: logout ends one, a restart ends all, twelve hours
  end any.
- Every POST made with a session carries the session's CSRF token (an HMAC of its id) in a form field
  or the ``X-CSRF-Token`` header; Bearer requests need none, as no browser sends them by itself.
- Failed logins are limited per client address, so a password cannot be guessed at speed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import AccessDenied, AdminError

__all__ = ["COOKIE", "SESSION_S", "AdminCredentials", "LoginThrottle", "Principal", "Sessions", "admin_token"]

COOKIE = "modelgate_admin"
SESSION_S = 12 * 3600
_MAX_SESSIONS = 1024
_TOKEN_FILE = "admin-token"


def admin_token(home: Path) -> str:
    """The admin token in ``home``, created (0600) if absent; AdminError if others can read it."""
    path = home / _TOKEN_FILE
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    try:
        mode = path.stat().st_mode
        token = path.read_text().strip()
    except OSError as exc:
        raise AdminError(f"cannot read the admin token {path}: {exc.strerror or exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AdminError(f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
    if len(token) < 16:
        raise AdminError(f"{path} holds no usable token (at least 16 characters); delete it to get a new one")
    return token


@dataclass(frozen=True)
class AdminCredentials:
    token: str
    password: str | None = None
    metrics_token: str | None = None

    def check_login(self, secret: str) -> str:
        """Which credential ``secret`` is ("token" or "password"); AccessDenied if neither."""
        if _same(secret, self.token):
            return "token"
        if self.password and _same(secret, self.password):
            return "password"
        raise AccessDenied("that is not the admin token or password")

    def check_bearer(self, secret: str, *, metrics: bool) -> str:
        """A Bearer credential: the admin token anywhere, the metrics token on ``/metrics`` only."""
        if _same(secret, self.token):
            return "token"
        if metrics and self.metrics_token and _same(secret, self.metrics_token):
            return "metrics"
        raise AccessDenied("the bearer token is not valid here")


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request."""

    via: str
    """session, token or metrics."""
    session: str | None = None
    """The session id, for cookie-authenticated requests (its CSRF token derives from it)."""
    client: str = ""

    @property
    def who(self) -> str:
        return f"session {self.session[:8]} from {self.client}" if self.session else f"{self.via} from {self.client}"


class Sessions:
    """Signed session cookies with the sessions themselves held here, so that they can end."""

    def __init__(self, *, lifetime_s: float = SESSION_S, clock: Callable[[], float] = time.time) -> None:
        self._key = secrets.token_bytes(32)
        self._lifetime = lifetime_s
        self._clock = clock
        self._live: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def open(self) -> tuple[str, str]:
        """A new session: (its id, the cookie value)."""
        sid = secrets.token_hex(16)
        with self._lock:
            self._live[sid] = self._clock() + self._lifetime
            while len(self._live) > _MAX_SESSIONS:
                self._live.popitem(last=False)
        return sid, f"{sid}.{self._mac('session', sid)}"

    def check(self, cookie: str) -> str:
        """The session id of a cookie value; AccessDenied if forged, ended or expired."""
        sid, _, mac = cookie.partition(".")
        if not sid or not hmac.compare_digest(mac, self._mac("session", sid)):
            raise AccessDenied("the session cookie is not one this gateway issued")
        with self._lock:
            expires = self._live.get(sid)
            if expires is None or expires <= self._clock():
                self._live.pop(sid, None)
                raise AccessDenied("the session ended; log in again")
        return sid

    def close(self, sid: str) -> None:
        with self._lock:
            self._live.pop(sid, None)

    def csrf_token(self, sid: str) -> str:
        return self._mac("csrf", sid)

    def check_csrf(self, sid: str, token: str | None) -> None:
        """AccessDenied (403) unless ``token`` is the session's CSRF token."""
        if not token or not hmac.compare_digest(token, self.csrf_token(sid)):
            raise AccessDenied("missing or wrong CSRF token: reload the page and try again", status=403)

    def _mac(self, purpose: str, sid: str) -> str:
        digest = hmac.new(self._key, f"{purpose}\0{sid}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class LoginThrottle:
    """At most ``failures`` failed logins per client address per ``window_s``."""

    def __init__(self, *, failures: int = 10, window_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._failures, self._window, self._clock = failures, window_s, clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """AccessDenied (429) while the address has used up its failures."""
        with self._lock:
            recent = self._recent(client)
            if len(recent) >= self._failures:
                raise AccessDenied(f"too many failed logins from {client}; wait {self._window:.0f} seconds",
                                   status=429)

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client).append(self._clock())
            if len(self._seen) > 10_000:  # bound the memory an address scan can take
                self._seen = {k: v for k, v in self._seen.items() if v}

    def _recent(self, client: str) -> deque[float]:
        recent = self._seen.setdefault(client, deque())
        while recent and recent[0] <= self._clock() - self._window:
            recent.popleft()
        return recent


def _same(given: str, expected: str) -> bool:
    """Constant-time equality of two secrets of any length (both hashed first)."""
    return hmac.compare_digest(hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest(),
                               hashlib.sha256(expected.encode()).digest())
