"""HTML (self-contained) and Markdown renderings carry the numbers; files land under reports/."""

from __future__ import annotations

import base64
import re

import pandas as pd

from orchestration.reporting.content import build_report_data
from orchestration.reporting.render import render_html, render_markdown, write_report
from tests.test_report_content import WEEK, report_marts

CHARTS = {
    "funnel_signup.png": b"\x89PNG\r\n\x1a\nsignup",
    "active_users.png": b"\x89PNG\r\n\x1a\nau",
}


def test_html_is_self_contained_and_carries_the_numbers():
    data = build_report_data(WEEK, report_marts())
    html = render_html(data, CHARTS)
    sources = re.findall(r'<img alt="([^"]+)" src="([^"]+)"', html)
    assert [name for name, _ in sources] == list(CHARTS)
    for name, src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == CHARTS[name]
    assert "http://" not in html and "https://" not in html
    for text in (
        "2026-09-14 to 2026-09-20",
        "15.00",
        "-25.0%",
        "+100.0%",
        "22.5%",
        "-17.5 pp",
        "30.0%",
        "signup: 60 users dropped off from visit to signup (40.0% carried on).",
    ):
        assert text in html, text
    assert "No UX recommendations are available for this week." in html
    assert "No experiment has a significant result this week." in html


def test_html_escapes_recommendation_text():
    data = build_report_data(WEEK, report_marts(), ux_recommendations=["<script>x</script>"])
    html = render_html(data, {})
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_markdown_carries_the_numbers_and_optional_sections():
    experiments = pd.DataFrame(
        {
            "experiment": ["new|checkout"],
            "metric": ["conversion"],
            "variant": ["B"],
            "relative_lift": [0.12],
            "p_value": [0.0004],
        }
    )
    data = build_report_data(
        WEEK, report_marts(), ux_recommendations=["Shorten signup"], experiments=experiments
    )
    md = render_markdown(data, list(CHARTS))
    assert "| Active users | 4 | 2 | +100.0% |" in md
    assert "| Revenue | 15.00 | 20.00 | -25.0% |" in md
    assert "| D7 retention | 22.5% | 40.0% | -17.5 pp |" in md
    assert "1. Shorten signup" in md
    assert "| new\\|checkout | conversion | B | +12.0% | <0.001 |" in md
    assert "![funnel_signup.png](charts/funnel_signup.png)" in md


def test_write_report_puts_files_under_the_week(tmp_path):
    data = build_report_data(WEEK, report_marts())
    html, md = render_html(data, CHARTS), render_markdown(data, list(CHARTS))
    paths = write_report(tmp_path / "reports", WEEK, html, md, CHARTS)
    assert paths.directory == tmp_path / "reports" / "2026-09-14"
    assert paths.html.read_text() == html and paths.markdown.read_text() == md
    assert {n: p.read_bytes() for n, p in paths.charts.items()} == CHARTS
    # A rebuild with fewer charts leaves no stale chart behind.
    paths = write_report(tmp_path / "reports", WEEK, html, md, {"active_users.png": b"x"})
    assert sorted(p.name for p in (paths.directory / "charts").iterdir()) == ["active_users.png"]
