"""The admin listener's perimeter: every request is authenticated here before any route sees it.

``AdminGuard`` is plain ASGI around the whole app. Only ``/login`` is open. A request either carries
``Authorization: Bearer`` (the admin token; the metrics token on ``/metrics`` only), or the session
cookie; a browser without either is sent to the login form, anything else gets 401. A wrong bearer
token is refused, never ignored in favour of a cookie. For every POST the guard reads the body
(bounded), parses the form, checks that the ``Origin`` (when sent) is this listener, and checks the
session's CSRF token; the route gets the parsed form in ``request.state.form``. Every response carries a
strict Content-Security-Policy (no inline script or style, nothing from elsewhere) and is not cached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from gateway.admin.auth import COOKIE, AdminCredentials, Principal, Sessions
from gateway.errors import AccessDenied

__all__ = ["CSP", "MAX_FORM", "AdminGuard", "parse_form", "safe_next"]

MAX_FORM = 64 * 1024
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"), (b"cache-control", b"no-store")]
_OPEN = frozenset({"/login"})
_SAFE = frozenset({"GET", "HEAD"})
_MAX_FIELDS = 32

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def parse_form(body: bytes, content_type: str) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict; AccessDenied (400/415) for anything else.

    A field given twice is refused: which copy counts would be the parser's guess.
    """
    media = content_type.partition(";")[0].strip().lower()
    if not body:
        return {}
    if media != "application/x-www-form-urlencoded":
        raise AccessDenied(f"the admin listener takes form posts, not {media or 'an untyped body'}", status=415)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True,
                          max_num_fields=_MAX_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise AccessDenied(f"malformed form: {exc}", status=400) from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise AccessDenied(f"the form field {name!r} is given twice", status=400)
        form[name] = value
    return form


def safe_next(value: str | None) -> str:
    """A path on this listener to go to after login; anything else (another site, a scheme) is ``/``."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 0x21 or c == "\\" for c in value):
        return "/"
    return value


class AdminGuard:
    def __init__(self, app: App, *, credentials: AdminCredentials, sessions: Sessions) -> None:
        self.app, self.credentials, self.sessions = app, credentials, sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _secured(send)
        request = Request(scope)
        try:
            principal = self._principal(request)
            if principal is None and scope["path"] not in _OPEN:
                raise AccessDenied("log in first")
            form: dict[str, str] = {}
            if scope["method"] not in _SAFE:
                _same_origin(request)
                body = await _read(receive)
                form = parse_form(body, request.headers.get("content-type", ""))
                if principal is not None and principal.session is not None:
                    self.sessions.check_csrf(principal.session, form.get("csrf") or request.headers.get("x-csrf-token"))
                receive = _replay(body)
        except AccessDenied as exc:
            await _refusal(request, exc)(scope, receive, send)
            return
        scope.setdefault("state", {}).update(principal=principal, form=form)
        await self.app(scope, receive, send)

    def _principal(self, request: Request) -> Principal | None:
        client = request.client.host if request.client else "?"
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, secret = authorization.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise AccessDenied("use Authorization: Bearer <admin token>")
            via = self.credentials.check_bearer(secret.strip(), metrics=request.url.path == "/metrics")
            return Principal(via, None, client)
        cookie = request.cookies.get(COOKIE)
        if cookie is None:
            return None
        try:
            return Principal("session", self.sessions.check(cookie), client)
        except AccessDenied:
            if request.url.path in _OPEN:
                return None  # a stale cookie must not stop the login that replaces it
            raise


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser, or one that sends no Origin on same-origin posts; the CSRF token decides
    expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin != expected:
        raise AccessDenied(f"a post from {origin[:80]} to this listener is refused", status=403)


async def _read(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise AccessDenied("the client went away", status=400)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM:
            raise AccessDenied(f"a form is at most {MAX_FORM} bytes", status=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _refusal(request: Request, denied: AccessDenied) -> Response:
    wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
    if denied.status == 401 and wants_page:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response: Response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    else:
        response = PlainTextResponse(f"modelgate admin: {denied.reason}\n", status_code=denied.status)
        if denied.status == 401:
            response.headers["www-authenticate"] = 'Bearer realm="modelgate admin"'
    if COOKIE in request.cookies and denied.status == 401:
        response.delete_cookie(COOKIE, path="/")
    return response


def _secured(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {name.lower() for name, _ in headers}
            if b"content-security-policy" not in names:
                headers.append((b"content-security-policy", CSP.encode()))
            headers += [(name, value) for name, value in _HEADERS if name not in names]
            message["headers"] = headers
        await send(message)

    return wrapped
