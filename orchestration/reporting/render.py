"""The report as a self-contained HTML file (charts inline as data URIs) and as Markdown."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import jinja2

from orchestration.reporting.content import DropOff, ReportData, format_number

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f}%"


def _pvalue(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def drop_off_sentence(d: DropOff) -> str:
    where = f"from {d.previous_step_name} to {d.step_name}" if d.previous_step_name else d.step_name
    rate = ""
    if d.conversion_from_previous is not None:
        rate = f" ({d.conversion_from_previous * 100:.1f}% carried on)"
    return f"{d.funnel_name}: {d.dropped_off:,} users dropped off {where}{rate}."


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.globals.update(
        fmt=format_number,
        pct=_pct,
        pvalue=_pvalue,
        drop_off_sentence=drop_off_sentence,
        cell=_md_cell,
    )
    return env


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(
    data: ReportData,
    charts: Mapping[str, bytes],
    *,
    image_uris: Mapping[str, str] | None = None,
) -> str:
    """One HTML document with every chart embedded, so it opens anywhere without its folder.

    ``image_uris`` replaces the data URIs with given ones (the e-mail passes ``cid:`` URIs).
    """
    images = [(name, data_uri(png)) for name, png in charts.items()]
    if image_uris is not None:
        images = list(image_uris.items())
    return _environment(True).get_template("report.html.j2").render(data=data, images=images)


def render_markdown(data: ReportData, chart_names: list[str] | None = None) -> str:
    """Markdown; charts, if named, are linked as ``charts/<name>`` (where ``write_report`` puts
    them)."""
    return (
        _environment(False)
        .get_template("report.md.j2")
        .render(data=data, charts=list(chart_names or []))
    )


@dataclass(frozen=True)
class ReportPaths:
    directory: Path
    html: Path
    markdown: Path
    charts: dict[str, Path]


def _atomic_write(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def write_report(
    reports_dir: Path | str, week: date, html: str, markdown: str, charts: Mapping[str, bytes]
) -> ReportPaths:
    """Write ``<reports_dir>/<week>/report.html``, ``report.md`` and ``charts/*.png``.

    A rebuilt week overwrites its files (each replaced atomically); charts that are no longer
    produced are removed so the folder matches the report.
    """
    directory = Path(reports_dir) / week.isoformat()
    chart_dir = directory / "charts"
    chart_dir.mkdir(parents=True, exist_ok=True)
    chart_paths: dict[str, Path] = {}
    for name, png in charts.items():
        if Path(name).name != name:
            raise ValueError(f"chart name must be a plain file name: {name!r}")
        chart_paths[name] = chart_dir / name
        _atomic_write(chart_paths[name], png)
    for stale in chart_dir.glob("*.png"):
        if stale.name not in chart_paths:
            stale.unlink()
    html_path, md_path = directory / "report.html", directory / "report.md"
    _atomic_write(html_path, html.encode("utf-8"))
    _atomic_write(md_path, markdown.encode("utf-8"))
    return ReportPaths(directory, html_path, md_path, chart_paths)
