"""Server-side SVG charts: every bar where its count puts it, names escaped, an empty window said so."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from gateway.admin.charts import Series, stacked_bars

T0 = datetime(2025, 1, 1, tzinfo=UTC)
BUCKETS = [T0 + timedelta(hours=h) for h in range(4)]


def test_bars_stack_and_carry_their_counts() -> None:
    svg = str(stacked_bars("Requests", BUCKETS, [Series("allow", [1, 0, 3, 0], "c-allow"),
                                                 Series("block", [1, 0, 0, 2], "c-block")]))
    titles = re.findall(r"<rect class=\"([\w-]+)\"[^>]*height=\"([\d.]+)\"><title>([^<]*)</title>", svg)
    assert [(c, t) for c, _, t in titles] == [
        ("c-allow", "allow: 1 at 2025-01-01 00:00 UTC"), ("c-block", "block: 1 at 2025-01-01 00:00 UTC"),
        ("c-allow", "allow: 3 at 2025-01-01 02:00 UTC"), ("c-block", "block: 2 at 2025-01-01 03:00 UTC")]
    heights = {t: float(h) for _, h, t in titles}
    assert heights["allow: 3 at 2025-01-01 02:00 UTC"] == 3 * heights["allow: 1 at 2025-01-01 00:00 UTC"]
    assert "nothing in this window" not in svg and svg.startswith("<svg") and "style=" not in svg


def test_names_are_escaped_and_an_empty_window_says_so() -> None:
    svg = str(stacked_bars("<b>x</b>", BUCKETS, [Series('a"><script>', [0, 0, 0, 0], "c0")]))
    assert "<script>" not in svg and "<b>" not in svg and "nothing in this window" in svg
    assert "<rect" not in svg


def test_the_axis_reads_in_round_numbers() -> None:
    svg = str(stacked_bars("t", BUCKETS, [Series("s", [7, 130, 0, 1], "c0")]))
    assert re.findall(r'text-anchor="end">([^<]+)<', svg) == ["0", "50", "100", "150", "200"]
