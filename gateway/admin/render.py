"""Pages from the package's Jinja2 templates, autoescaped: everything shown comes from agents' traffic.

The environment escapes every value (``autoescape=True``) and fails on an undefined name rather than
printing nothing; the only markup that is not escaped is what ``highlight`` and ``charts`` build,
which escape their own input.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

__all__ = ["environment", "error_page", "page"]


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value:%Y-%m-%d %H:%M:%S}.{value.microsecond // 1000:03d}"


def _ms(latency_us: int | None) -> str:
    if latency_us is None:
        return "-"
    return f"{latency_us / 1000:.1f} ms" if latency_us < 10_000_000 else f"{latency_us / 1e6:.1f} s"


def _short(digest: str | None, length: int = 12) -> str:
    return "-" if not digest else digest[:length] + ("…" if len(digest) > length else "")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def environment() -> Environment:
    env = Environment(loader=PackageLoader("gateway.admin", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=_when, ms=_ms, short=_short, pretty=_pretty)
    return env


_ENV = environment()


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the caller, its CSRF token and the current path beside ``context``."""
    principal = request.state.principal
    sessions = request.app.state.admin.sessions
    csrf = sessions.csrf_token(principal.session) if principal is not None and principal.session else ""
    html = _ENV.get_template(template).render(principal=principal, csrf=csrf, path=request.url.path, **context)
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, status: int, reason: str) -> Response:
    """The reason, as JSON for the API and for callers that do not take HTML, else as a page."""
    if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"ok": False, "reason": reason}, status_code=status)
    return page(request, "error.html", status=status, reason=reason)
