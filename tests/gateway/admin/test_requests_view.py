"""The request list and detail pages over real HTTP on the seeded log."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.gateway.admin.conftest import Admin

ROW = re.compile(r'<tr class="row d-(\w+)" data-href="/requests/(\d+)">')


def rows(page: httpx.Response) -> list[tuple[str, int]]:
    assert page.status_code == 200, page.text[:500]
    return [(d, int(i)) for d, i in ROW.findall(page.text)]


def html(admin: Admin) -> httpx.Client:
    client = admin.bearer()
    client.headers["Accept"] = "text/html"
    return client


def test_the_list_is_newest_first_and_keyset_paged(reading: Admin) -> None:
    with html(reading) as client:
        first = rows(client.get("/requests", params={"limit": 20}))
        assert len(first) == 20 and [i for _, i in first] == sorted((i for _, i in first), reverse=True)
        older = re.search(r'href="/requests\?([^"]+)" rel="next"', client.get("/requests?limit=20").text)
        assert older is not None and "before=" in older[1]
        second = rows(client.get(f"/requests?{older[1].replace('&amp;', '&')}"))
        assert second and max(i for _, i in second) < min(i for _, i in first)
        whole = client.get("/requests", params={"limit": 200})
    assert len(rows(whole)) == 43 and 'rel="next"' not in whole.text  # the last page links no further


def link(page: httpx.Response, rel: str) -> str | None:
    found = re.search(rf'href="/requests\?([^"]+)" rel="{rel}"', page.text)
    return found[1].replace("&amp;", "&") if found else None


@pytest.mark.parametrize("params", [{}, {"model": "smol-1"}, {"q": "bot"}])
def test_older_and_newer_links_walk_the_list_both_ways(reading: Admin, params: dict[str, str]) -> None:
    with html(reading) as client:
        page = client.get("/requests", params=params | {"limit": 7})
        assert link(page, "prev") is None and 'id="newest"' not in page.text  # the newest page
        pages = [rows(page)]
        while (older := link(page, "next")) is not None:
            assert "limit=7" in older and all(f"{k}={v}" in older for k, v in params.items())  # filters kept
            page = client.get(f"/requests?{older}")
            pages.append(rows(page))
            assert 'id="newest"' in page.text
        back = [rows(page)]
        while (newer := link(page, "prev")) is not None:
            page = client.get(f"/requests?{newer}")
            back.append(rows(page))
    assert back == pages[::-1] and len(pages) > 2 and all(len(p) == 7 for p in pages[:-1])
    with reading.bearer() as api:
        first = api.get("/api/requests", params=params | {"limit": 7}).json()
        second = api.get("/api/requests", params=params | {"limit": 7, "before": first["next_before"]}).json()
        again = api.get("/api/requests", params=params | {"limit": 7, "after": second["next_after"]}).json()
    assert first["next_after"] is None and again["requests"] == first["requests"]


@pytest.mark.parametrize(("params", "expected"), [
    ({"agent": "research-bot"}, 3),
    ({"session": "sess-hijack"}, 3),
    ({"decision": "block"}, 5),
    ({"rule": "detect.toolcalls.untrusted_value"}, 1),
    ({"tool": "send_email"}, 2),
    ({"model": "smol-1"}, 20),
    ({"host": "mail.internal"}, 1),
    ({"q": "hijack"}, 3),
    ({"agent": "research-bot", "decision": "block"}, 2),
    ({"since": "1h"}, 43),
    ({"until": "2000-01-01T00:00Z"}, 0),
])
def test_each_filter_narrows_the_list(reading: Admin, params: dict[str, str], expected: int) -> None:
    with html(reading) as client:
        page = client.get("/requests", params=params | {"limit": 200})
        assert len(rows(page)) == expected
        for value in params.values():  # the form keeps what was asked
            assert f'value="{value}"' in page.text or f'<option value="{value}" selected>' in page.text


def test_a_filter_that_does_not_parse_says_why(reading: Admin) -> None:
    with html(reading) as client:
        bad = client.get("/requests", params={"decision": "maybe"})
        assert bad.status_code == 400 and "decision must be one of allow, alert, hold, block" in bad.text
        assert client.get("/requests", params={"since": "last tuesday"}).status_code == 400
        assert client.get("/requests", params={"before": "1; DROP TABLE"}).status_code == 400
        assert client.get("/requests", params={"before": "5", "after": "5"}).status_code == 400
    with reading.bearer() as api:
        missing = api.get("/api/requests", params={"before": "99999999"})
        assert missing.status_code == 400 and missing.json()["reason"].startswith("no request with id")


def test_rows_show_the_kind_subject_and_top_detection(reading: Admin) -> None:
    with html(reading) as client:
        page = client.get("/requests", params={"session": "sess-hijack"}).text
    assert "MCP tools/call" in page and "LLM openai.chat" in page
    top = 'title="an argument comes from untrusted content: exfil@evil.example">detect.toolcalls.untrusted_value'
    assert top in page
    assert page.index("detect.mcp.tool_quarantined") < page.index("detect.toolcalls.untrusted_value")  # newest first


def test_the_detail_shows_the_decision_evidence_in_place_and_the_chain(reading: Admin) -> None:
    with reading.bearer() as api:
        (row,) = api.get("/api/requests", params={"rule": "detect.toolcalls.untrusted_value"}).json()["requests"]
    with html(reading) as client:
        page = client.get(f"/requests/{row['id']}").text
    assert "Blocked by" in page and 'href="#finding-2" class="rule">policy.tool_not_allowed' in page
    assert '<mark class="ev" data-finding="3" title="finding 3">exfil@evil.example</mark>' in page
    assert '<mark class="ev" data-finding="1" title="finding 1">IGNORE PREVIOUS INSTRUCTIONS' in page
    assert "Proposed call <code class=\"call\">send_email</code>" in page and "&#34;to&#34;: &#34;exfil@evil" in page
    assert "Tool results carried (1)" in page and "fetch_url" in page
    chain = re.findall(r"<tr><td>(\d+)</td><td>(request|response)</td>", page)
    assert [int(i) for i, _ in chain] == [row["id"], row["id"] + 1]
    assert page.count("sealed</td>") + page.count(">sealed<") >= 1 and "verify the whole chain" in page


def test_a_missing_request_is_404_and_bodies_are_escaped(reading: Admin) -> None:
    with html(reading) as client:
        assert client.get("/requests/999999").status_code == 404
        assert client.get("/requests/not-a-number").status_code == 404
        detail = client.get("/requests", params={"q": "hijack-3"}).text
        (row_id,) = re.findall(r'data-href="/requests/(\d+)"', detail)
        page = client.get(f"/requests/{row_id}").text
    assert "&#34;jsonrpc&#34;" in page and '"jsonrpc"' not in page  # the stored body, escaped
