"""The admin web app: routes, the guard around them, and the errors a reviewer can act on.

Page handlers are plain functions (Starlette runs them in its thread pool, so database reads never
block the admin listener's loop); the decisions that write the audit log are coroutines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.admin import approvals_view, requests_view, status_view
from gateway.admin.auth import AdminCredentials, LoginThrottle, Sessions
from gateway.admin.guard import AdminGuard
from gateway.admin.integrity import IntegrityChecker
from gateway.admin.login import login, login_form, logout
from gateway.admin.render import error_page
from gateway.admin.timeline import session_page
from gateway.audit.db import AuditDatabase
from gateway.audit.holds import HeldCallStore
from gateway.audit.pins import DatabasePinStore
from gateway.audit.process import AuditLog
from gateway.errors import AuditUnavailable, GatewayError
from gateway.holds import Holds
from gateway.metrics import GatewayMetrics

__all__ = ["AdminContext", "admin_app"]

_STATIC = Path(__file__).resolve().parent / "static"


@dataclass
class AdminContext:
    """What the pages read and write: the gateway's own database, writer, pins, held calls and counters."""

    db: AuditDatabase
    writer: AuditLog
    pins: DatabasePinStore
    held: HeldCallStore
    metrics: GatewayMetrics
    integrity: IntegrityChecker
    credentials: AdminCredentials
    holds: Holds | None = None
    """The calls this gateway holds (None: the admin runs beside no proxy), to wake one that was decided."""
    sessions: Sessions = field(default_factory=Sessions)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)


async def _gateway_error(request: Request, exc: Exception) -> Response:
    """A filter that does not parse, a record that is not there: 400 with the reason; a database down: 503."""
    status = 503 if isinstance(exc, AuditUnavailable) else 400
    return error_page(request, status, getattr(exc, "reason", str(exc)))


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_page(request, 404, f"nothing at {request.url.path}")


def admin_app(context: AdminContext) -> Starlette:
    """The app for one gateway; every route but ``/login`` requires the admin credential."""
    routes = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", status_view.dashboard_page),
        Route("/requests", requests_view.list_page),
        Route("/requests/{id:int}", requests_view.detail_page),
        Route("/session", session_page),
        Route("/models", status_view.models_page),
        Route("/integrity", status_view.integrity_page),
        Route("/integrity/verify", status_view.verify_now, methods=["POST"]),
        Route("/approvals", approvals_view.approvals_page),
        Route("/approvals/calls/{action:str}", approvals_view.decide_call_form, methods=["POST"]),
        Route("/approvals/{action:str}", approvals_view.decide, methods=["POST"]),
        Route("/metrics", status_view.metrics),
        Route("/api/requests", requests_view.list_api),
        Route("/api/tools", approvals_view.pins_api),
        Route("/api/tools/{action:str}", approvals_view.decide_api, methods=["POST"]),
        Route("/api/calls", approvals_view.calls_api),
        Route("/api/calls/{action:str}", approvals_view.decide_call_api, methods=["POST"]),
        Mount("/static", StaticFiles(directory=_STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(AdminGuard, credentials=context.credentials, sessions=context.sessions)],
        exception_handlers={GatewayError: _gateway_error, 404: _not_found},
    )
    app.state.admin = context
    return app
