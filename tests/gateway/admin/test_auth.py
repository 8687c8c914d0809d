"""Admin credentials, sessions, CSRF tokens and the login throttle, without a server."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.admin.auth import AdminCredentials, LoginThrottle, Sessions, admin_token
from gateway.errors import AccessDenied, AdminError


def test_the_token_is_generated_once_private_and_kept(tmp_path: Path) -> None:
    first = admin_token(tmp_path / "home")
    path = tmp_path / "home" / "admin-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) >= 40
    assert admin_token(tmp_path / "home") == first


def test_a_token_others_can_read_or_a_stub_is_refused(tmp_path: Path) -> None:
    admin_token(tmp_path)
    (tmp_path / "admin-token").chmod(0o644)
    with pytest.raises(AdminError, match="readable by others"):
        admin_token(tmp_path)
    (tmp_path / "admin-token").write_text("short\n")
    (tmp_path / "admin-token").chmod(0o600)
    with pytest.raises(AdminError, match="no usable token"):
        admin_token(tmp_path)


def test_credentials_say_which_secret_matched() -> None:
    creds = AdminCredentials("t" * 40, password="pw-for-people", metrics_token="m" * 20)
    assert creds.check_login("t" * 40) == "token" and creds.check_login("pw-for-people") == "password"
    assert creds.check_bearer("m" * 20, metrics=True) == "metrics"
    for wrong in ("", "t" * 39, "pw-for-people ", "\udcff"):
        with pytest.raises(AccessDenied):
            creds.check_login(wrong)
    with pytest.raises(AccessDenied):
        creds.check_bearer("m" * 20, metrics=False)
    with pytest.raises(AccessDenied):
        creds.check_bearer("pw-for-people", metrics=False)
    with pytest.raises(AccessDenied):
        AdminCredentials("t" * 40).check_login("")  # no password configured: an empty one never matches


def test_sessions_are_signed_end_at_logout_and_expire() -> None:
    now = [1000.0]
    sessions = Sessions(lifetime_s=60, clock=lambda: now[0])
    sid, cookie = sessions.open()
    assert sessions.check(cookie) == sid
    other = Sessions(clock=lambda: now[0])
    with pytest.raises(AccessDenied, match="not one this gateway issued"):
        other.check(cookie)  # another process's key
    with pytest.raises(AccessDenied):
        sessions.check(cookie[:-2] + "AA")
    with pytest.raises(AccessDenied):
        sessions.check(sid)  # an id without its MAC
    now[0] += 61
    with pytest.raises(AccessDenied, match="ended"):
        sessions.check(cookie)
    sid2, cookie2 = sessions.open()
    sessions.close(sid2)
    with pytest.raises(AccessDenied, match="ended"):
        sessions.check(cookie2)


def test_csrf_tokens_belong_to_their_session() -> None:
    sessions = Sessions()
    a, _ = sessions.open()
    b, _ = sessions.open()
    sessions.check_csrf(a, sessions.csrf_token(a))
    for wrong in (sessions.csrf_token(b), None, "", sessions.csrf_token(a)[:-1]):
        with pytest.raises(AccessDenied) as refused:
            sessions.check_csrf(a, wrong)
        assert refused.value.status == 403


def test_failed_logins_are_limited_per_address_for_a_window() -> None:
    now = [0.0]
    throttle = LoginThrottle(failures=3, window_s=10, clock=lambda: now[0])
    for _ in range(3):
        throttle.check("10.0.0.1")
        throttle.failed("10.0.0.1")
    with pytest.raises(AccessDenied) as refused:
        throttle.check("10.0.0.1")
    assert refused.value.status == 429
    throttle.check("10.0.0.2")  # another address is not affected
    now[0] = 10.5
    throttle.check("10.0.0.1")  # the window passed
