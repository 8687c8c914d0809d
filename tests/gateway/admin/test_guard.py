"""The admin perimeter over real HTTP: who is refused and how, CSRF, origins, cookies, headers; form parsing."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.admin.guard import MAX_FORM, parse_form, safe_next
from gateway.errors import AccessDenied
from tests.gateway.admin.conftest import METRICS_TOKEN, Admin

PAGES = ["/", "/requests", "/requests/2", "/session?id=sess-hijack", "/models", "/integrity", "/approvals",
         "/api/requests", "/api/tools", "/metrics", "/static/admin.css", "/static/admin.js", "/nowhere"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_and_asset_is_refused_without_a_credential(admin: Admin, path: str) -> None:
    with httpx.Client(base_url=admin.url, timeout=10) as anonymous:
        browser = anonymous.get(path, headers={"Accept": "text/html"})
        assert browser.status_code == 303 and browser.headers["location"].startswith("/login?next=%2F")
        script = anonymous.get(path)
        assert script.status_code == 401 and script.headers["www-authenticate"].startswith("Bearer")
        forged = anonymous.get(path, headers={"Cookie": "modelgate_admin=" + "0" * 32 + ".AAAA"})
        assert forged.status_code == 401
        assert anonymous.get(path, headers={"Authorization": "Bearer not-the-token"}).status_code == 401


def test_only_the_login_page_is_open_and_it_serves_no_asset(admin: Admin) -> None:
    with httpx.Client(base_url=admin.url, timeout=10) as anonymous:
        page = anonymous.get("/login")
    assert page.status_code == 200 and 'name="secret"' in page.text
    assert "/static/" not in page.text  # its style is inline, under a nonce
    nonce = page.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
    assert f'<style nonce="{nonce}">' in page.text


def test_a_wrong_secret_is_refused_and_logins_are_throttled(admin: Admin) -> None:
    with httpx.Client(base_url=admin.url, timeout=10) as client:
        for _ in range(10):
            wrong = client.post("/login", data={"secret": "guess"})
            assert wrong.status_code == 401 and "not the admin token" in wrong.text
        assert client.post("/login", data={"secret": "guess"}).status_code == 429
        assert client.post("/login", data={"secret": admin.token}).status_code == 429  # even the right one, now


def test_login_sets_a_strict_httponly_cookie_and_logout_ends_the_session(admin: Admin) -> None:
    with httpx.Client(base_url=admin.url, timeout=10) as client:
        answer = client.post("/login", data={"secret": admin.token, "next": "//evil.example/"})
        assert answer.status_code == 303 and answer.headers["location"] == "/"  # never off this listener
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # plain HTTP on loopback: a Secure cookie would never come back
        page = client.get("/requests")
        assert page.status_code == 200
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        stolen = f"modelgate_admin={client.cookies['modelgate_admin']}"
        assert client.post("/logout", data={"csrf": csrf}).status_code == 303
        assert httpx.get(f"{admin.url}/requests", headers={"Cookie": stolen}).status_code == 401  # the cookie is dead


def test_posts_need_the_session_csrf_token_and_this_origin(admin: Admin) -> None:
    with admin.browser() as (client, csrf):
        form = {"server": "mail.internal:8443/mcp", "tool": "send_email"}
        assert client.post("/approvals/reject", data=form).status_code == 403
        assert client.post("/approvals/reject", data=form | {"csrf": "x" + csrf[1:]}).status_code == 403
        cross = client.post("/approvals/reject", data=form | {"csrf": csrf}, headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403 and "evil.example" in cross.text
        assert client.post("/integrity/verify", data={"csrf": csrf}).status_code == 303
        assert client.post("/integrity/verify", headers={"X-CSRF-Token": csrf}).status_code == 303
    assert admin.queue() == 1  # nothing was rejected by the refused posts


def test_the_metrics_token_opens_only_metrics_and_bearer_posts_need_no_csrf(admin_with_extras: Admin) -> None:
    admin = admin_with_extras
    scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    with httpx.Client(base_url=admin.url, timeout=10) as client:
        scrape = client.get("/metrics", headers=scraper)
        assert scrape.status_code == 200 and "modelgate_requests_total" in scrape.text
        assert client.get("/requests", headers=scraper).status_code == 401
        assert client.post("/api/tools/reject", headers=scraper, data={"server": "s", "tool": "t"}).status_code == 401
        assert client.post("/login", data={"secret": METRICS_TOKEN}).status_code == 401  # not a login either
    with admin.bearer() as bearer:
        assert bearer.post("/integrity/verify").status_code == 303


def test_the_password_opens_a_session_like_the_token(admin_with_extras: Admin) -> None:
    with httpx.Client(base_url=admin_with_extras.url, timeout=10) as client:
        assert client.post("/login", data={"secret": "correct horse battery staple"}).status_code == 303
        assert client.get("/requests").status_code == 200
        assert client.get("/requests", headers={"Authorization": "Bearer correct horse battery staple"}
                          ).status_code == 401  # a password is for people at the form, not a bearer token


def test_a_bad_bearer_is_not_rescued_by_a_good_cookie(admin: Admin) -> None:
    with admin.browser() as (client, _csrf):
        assert client.get("/requests").status_code == 200
        for wrong in ("Bearer wrong", "Basic Zm9vOmJhcg==", "Bearer"):
            refused = client.get("/requests", headers={"Authorization": wrong, "Accept": "application/json"})
            assert refused.status_code == 401


def test_forms_are_bounded_typed_and_unambiguous(admin: Admin) -> None:
    with admin.browser() as (client, csrf):
        big = client.post("/integrity/verify", content=b"csrf=" + b"a" * (MAX_FORM + 1),
                          headers={"content-type": "application/x-www-form-urlencoded"})
        assert big.status_code == 413
        typed = client.post("/integrity/verify", content=b'{"csrf": 1}', headers={"content-type": "application/json"})
        assert typed.status_code == 415
        twice = client.post("/integrity/verify", content=urlencode([("csrf", csrf), ("csrf", "x")]).encode(),
                            headers={"content-type": "application/x-www-form-urlencoded"})
        assert twice.status_code == 400 and "twice" in twice.text
        broken = client.post("/integrity/verify", content=b"csrf=%ff%fe",
                             headers={"content-type": "application/x-www-form-urlencoded"})
        assert broken.status_code == 400


def test_every_response_carries_a_strict_csp_and_is_not_cached(admin: Admin) -> None:
    with admin.bearer() as client:
        for path in ("/requests", "/static/admin.css", "/metrics"):
            answer = client.get(path)
            csp = answer.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
            assert answer.headers["x-frame-options"] == "DENY" and answer.headers["cache-control"] == "no-store"
            assert answer.headers["x-content-type-options"] == "nosniff"


@given(st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=60), max_size=20))
def test_a_form_reads_back_what_was_encoded(fields: dict[str, str]) -> None:
    body = urlencode(fields).encode()
    assert parse_form(body, "application/x-www-form-urlencoded; charset=utf-8") == fields


@given(st.binary(max_size=200))
def test_any_body_parses_or_is_refused_with_a_reason(body: bytes) -> None:
    try:
        parse_form(body, "application/x-www-form-urlencoded")
    except AccessDenied as exc:
        assert exc.status == 400 and exc.reason


@given(st.text(max_size=80))
def test_after_login_one_goes_only_to_a_path_here(value: str) -> None:
    target = safe_next(value)
    assert target.startswith("/") and not target.startswith(("//", "/\\"))
    assert target == "/" or target == value


@pytest.mark.parametrize("value", ["https://evil.example/", "//evil.example", "/\\evil.example", "/ok\r\nSet-Cookie: x",
                                   "javascript:alert(1)", ""])
def test_known_escapes_from_login_go_home(value: str) -> None:
    assert safe_next(value) == "/"
