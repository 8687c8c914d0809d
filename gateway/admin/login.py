"""The login form (the one page served without a session) and logout.

The login page is self-contained: its few style rules are inline under a per-response CSP nonce, so
that no asset is served to a caller who has not logged in.
"""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.admin.auth import COOKIE, SESSION_S
from gateway.admin.guard import CSP, safe_next
from gateway.admin.render import page
from gateway.errors import AccessDenied

__all__ = ["login", "login_form", "logout"]


def login_form(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    nonce = secrets.token_urlsafe(16)
    response = page(request, "login.html", status=status, nonce=nonce, error=error,
                    next=safe_next(request.query_params.get("next") or request.state.form.get("next")))
    response.headers["content-security-policy"] = CSP.replace("style-src 'self'", f"style-src 'nonce-{nonce}'")
    return response


def login(request: Request) -> Response:
    ctx = request.app.state.admin
    client = request.client.host if request.client else "?"
    try:
        ctx.throttle.check(client)
        ctx.credentials.check_login(request.state.form.get("secret", ""))
    except AccessDenied as exc:
        if exc.status == 401:
            ctx.throttle.failed(client)
        return login_form(request, error=exc.reason, status=exc.status)
    _sid, cookie = ctx.sessions.open()
    response = RedirectResponse(safe_next(request.state.form.get("next")), status_code=303)
    response.set_cookie(COOKIE, cookie, max_age=SESSION_S, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


def logout(request: Request) -> Response:
    principal = request.state.principal
    if principal.session is not None:
        request.app.state.admin.sessions.close(principal.session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
