"""Dashboard, models and integrity pages over real HTTP on the seeded log."""

from __future__ import annotations

import re
import time

from tests.gateway.admin.conftest import Admin

HTML = {"Accept": "text/html"}


def test_the_dashboard_counts_and_draws_the_seeded_traffic(reading: Admin) -> None:
    with reading.bearer() as client:
        page = client.get("/", headers=HTML).text
        assert re.search(r'id="kpi-requests">43<', page) and re.search(r'id="kpi-blocked">5<', page)
        assert re.search(r'id="kpi-queue">1<', page)
        assert page.count('<svg class="chart"') == 3
        assert "<title>block: 5 at " in page  # one hour's bucket holds the whole seed
        assert 'href="/requests?rule=policy.rate_limited">policy.rate_limited</a> <span class="sub">3<' in page
        for window in ("1h", "7d", "30d"):
            assert client.get("/", params={"window": window}, headers=HTML).status_code == 200
        assert client.get("/", params={"window": "forever"}, headers=HTML).status_code == 400


def test_models_show_provenance_and_a_simulated_attestation_plainly(reading: Admin) -> None:
    with reading.bearer() as client:
        page = client.get("/models", headers=HTML).text
    assert "SmolLM2-135M-Instruct-Q8_0.gguf" in page and ">loaded</span>" in page
    assert ">SIMULATED</span>" in page and "(SIMULATED: no hardware root of trust)" in page
    assert "1 files, 145,000,000 bytes" in page and 'data-copy="' + "ef" * 32 + '"' in page
    assert "launch_digest" in page and "No SBOM in the load record" in page  # the older load
    refused = page[:page.index("SmolLM2-135M-Instruct-Q8_0.gguf")]  # newest first: the refused load, with its SBOM
    assert ">refused</span>" in refused and "content differs from the signed file" in refused
    assert "smollm2-135m-instruct 1.0 · HuggingFaceTB" in refused and "Apache-2.0" in refused
    assert "LlamaForCausalLM · 134515008 parameters" in refused and "7 listed: json, safetensors, text" in refused
    assert "urn:uuid:6f1d2c7e-0b7a-4d36-9d0e-3c1f2a4b5c6d</code> · CycloneDX 1.6" in refused
    assert 'data-copy="' + "56" * 32 + '"' in refused


def test_integrity_runs_in_the_background_and_shows_the_checkpoint(reading: Admin) -> None:
    with reading.bearer() as client:
        before = client.get("/integrity", headers=HTML).text
        assert "Not verified since this gateway started." in before and "the database agrees" in before
        assert client.post("/integrity/verify").status_code == 303
        deadline = time.monotonic() + 30
        while "Verifying since" in (page := client.get("/integrity", headers=HTML).text) or "id=\"verify-result\"" \
                not in page:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert "OK: every record, seal, witness checkpoint" in page and "(this gateway)" in page


def test_metrics_are_served_while_the_database_cannot_be_read(admin: Admin) -> None:
    with admin.bearer() as client:
        assert "modelgate_mcp_tools_quarantined 1" in client.get("/metrics").text
        with admin.writer.database.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE mcp_tool_pins RENAME TO gone")
        scrape = client.get("/metrics")
        assert scrape.status_code == 200 and "modelgate_audit_records_total" in scrape.text
        assert "modelgate_mcp_tools_quarantined" not in scrape.text
        assert client.get("/approvals").status_code == 503  # a page that needs it says why
