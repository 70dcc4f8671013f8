"""The weekly report as Dagster assets: one build, one asset per delivery channel.

``weekly_report`` reads the marts, writes ``<REPORTS_DIR>/<week>/report.html`` (charts inline),
``report.md``, ``charts/*.png`` and ``report.json`` (the numbers), and shows the report in the UI.
``weekly_report_slack`` and ``weekly_report_email`` read those files back, so a failed delivery
fails its own step, keeps the built report, and can be re-run alone (from the UI: materialize the
one asset for the week) without rebuilding or resending to the other channel. Without credentials
a delivery materializes with ``status: skipped — <variables> not set``: plain, not a failure.

Partitions are UTC weeks starting Monday (the marts' times are UTC), the first one being the
Monday on or before ``ANALYTICS_START_DATE``.
"""

import json
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from orchestration import settings
from orchestration.reporting import charts as report_charts
from orchestration.reporting.content import ReportData, build_report_data
from orchestration.reporting.email import EmailDeliveryError, EmailSettings, send_report_email
from orchestration.reporting.ledger import DeliveryLedger
from orchestration.reporting.marts import (
    REPORT_TABLES,
    read_experiments,
    read_marts,
    read_ux_recommendations,
    report_slices,
)
from orchestration.reporting.render import render_html, render_markdown, write_report
from orchestration.reporting.slack import SlackDeliveryError, SlackReporter, SlackSettings
from orchestration.resources import WarehouseResource, partition_start_date

GROUP = "reporting"
# The tables the report reads, as its upstream assets: experiment_results is downstream of the
# blocking SRM check, so a broken experiment assignment never reaches a reader.
REPORT_DEPS = list(REPORT_TABLES)
HAS_EVENTS_CHECK = "weekly_report_week_has_events"


def first_report_week(start: date) -> date:
    """The Monday on or before ``start``."""
    return start - timedelta(days=start.weekday())


weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=first_report_week(partition_start_date()).isoformat(), day_offset=1
)


def reports_dir() -> Path:
    return Path(settings.get("REPORTS_DIR"))


def delivery_ledger() -> DeliveryLedger:
    return DeliveryLedger(reports_dir() / "deliveries.json")


def report_url(week: date) -> str | None:
    """A link to the full report, when ``REPORT_BASE_URL`` says where REPORTS_DIR is served."""
    base = os.environ.get("REPORT_BASE_URL", "").strip()
    return f"{base.rstrip('/')}/{week.isoformat()}/report.html" if base else None


@dataclass(frozen=True)
class BuiltReport:
    data: ReportData
    html: str
    markdown: str
    charts: dict[str, bytes]
    directory: Path


def load_report(week: date) -> BuiltReport:
    """The report ``weekly_report`` wrote for the week; fails plainly when it was not built."""
    directory = reports_dir() / week.isoformat()
    numbers = directory / "report.json"
    if not numbers.exists():
        raise dg.Failure(
            description=f"No weekly report for {week} in {directory}: materialize weekly_report "
            "for this week first."
        )
    return BuiltReport(
        data=ReportData.from_dict(json.loads(numbers.read_text(encoding="utf-8"))),
        html=(directory / "report.html").read_text(encoding="utf-8"),
        markdown=(directory / "report.md").read_text(encoding="utf-8"),
        charts={p.name: p.read_bytes() for p in sorted((directory / "charts").glob("*.png"))},
        directory=directory,
    )


def _headline_metadata(data: ReportData) -> dict[str, float]:
    return {h.key: h.value for h in data.headlines if h.value is not None}


@dg.asset(
    pool="duckdb_writer",
    key="weekly_report",
    group_name=GROUP,
    partitions_def=weekly_partitions,
    deps=REPORT_DEPS,
    kinds={"python", "html"},
    check_specs=[
        dg.AssetCheckSpec(
            HAS_EVENTS_CHECK,
            asset="weekly_report",
            blocking=True,
            description="The report week has events: an empty week is not sent to anyone.",
        )
    ],
    description="The week's headline numbers with week-over-week change, biggest drop-off, top "
    "UX recommendations, significant experiments and charts, as HTML (images inline) and "
    "Markdown under REPORTS_DIR/<week>/.",
)
def weekly_report(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource
) -> dg.MaterializeResult:
    week = date.fromisoformat(context.partition_key)
    with duckdb.reading(*report_slices(week)) as con:
        marts = read_marts(con, week)
        ux = read_ux_recommendations(con)
        experiments = read_experiments(con)
    if experiments is None:
        context.log.info("experiment_results not in the warehouse: the report lists none")
    data = build_report_data(week, marts, ux_recommendations=ux, experiments=experiments)
    charts = report_charts.build_charts(week, marts)
    html = render_html(data, charts)
    paths = write_report(reports_dir(), week, html, render_markdown(data, list(charts)), charts)
    (paths.directory / "report.json").write_text(
        json.dumps(data.to_dict(), indent=2), encoding="utf-8"
    )
    active = data.headline("active_users").value or 0
    summary_png = charts["active_users.png"]
    return dg.MaterializeResult(
        metadata={
            **_headline_metadata(data),
            "report": dg.MetadataValue.md(render_markdown(data)),
            "chart": dg.MetadataValue.md(report_charts.markdown_image(summary_png, "active users")),
            "path": dg.MetadataValue.path(str(paths.html)),
            "charts": dg.MetadataValue.json(sorted(charts)),
            "ux_recommendations": len(data.ux_recommendations),
            "significant_experiments": len(data.experiments),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=HAS_EVENTS_CHECK,
                passed=active > 0,
                metadata={"active_users": active},
                description=None if active > 0 else f"no events in the week of {week}",
            )
        ],
    )


def _skipped(context: dg.AssetExecutionContext, missing: list[str]) -> dg.MaterializeResult:
    status = f"skipped — {', '.join(missing)} not set"
    context.log.warning(f"Weekly report delivery {status}")
    return dg.MaterializeResult(metadata={"status": status})


@dg.asset(
    key="weekly_report_slack",
    group_name=GROUP,
    partitions_def=weekly_partitions,
    deps=[weekly_report],
    kinds={"slack"},
    description="The week's summary posted to SLACK_CHANNEL (Block Kit) with the HTML report and "
    "charts in its thread; once per week and channel.",
)
def weekly_report_slack(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    slack = SlackSettings.from_env()
    if slack is None:
        return _skipped(context, SlackSettings.missing())
    week = date.fromisoformat(context.partition_key)
    built = load_report(week)
    try:
        delivery = SlackReporter(slack).post_report(
            built.data,
            ledger=delivery_ledger(),
            html=built.html,
            charts=built.charts,
            report_url=report_url(week),
        )
    except SlackDeliveryError as error:
        raise dg.Failure(
            description=f"{error}. The report is kept in {built.directory}; re-run "
            "weekly_report_slack for this week once fixed (nothing is posted twice).",
        ) from error
    context.log.info(f"Slack: {delivery.status} (ts {delivery.ts}) in {delivery.channel}")
    return dg.MaterializeResult(metadata={"status": delivery.status, **delivery.metadata()})


@dg.asset(
    key="weekly_report_email",
    group_name=GROUP,
    partitions_def=weekly_partitions,
    deps=[weekly_report],
    kinds={"email"},
    description="The report e-mailed over SMTP (STARTTLS) to REPORT_EMAIL_TO: HTML with inline "
    "charts and a plain-text part; once per week and recipient list.",
)
def weekly_report_email(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    mail = EmailSettings.from_env()
    if mail is None:
        return _skipped(context, EmailSettings.missing())
    week = date.fromisoformat(context.partition_key)
    built = load_report(week)
    try:
        sent = send_report_email(
            built.data,
            markdown=built.markdown,
            charts=built.charts,
            settings=mail,
            ledger=delivery_ledger(),
        )
    except EmailDeliveryError as error:
        raise dg.Failure(
            description=f"{error}. The report is kept in {built.directory}; re-run "
            "weekly_report_email for this week once fixed.",
        ) from error
    context.log.info(f"E-mail: {sent['status']} to {len(mail.recipients)} recipients")
    return dg.MaterializeResult(
        metadata={
            "status": str(sent["status"]),
            "message_id": str(sent.get("message_id") or ""),
            "recipients": dg.MetadataValue.json(list(mail.recipients)),
        }
    )


weekly_report_assets = [weekly_report, weekly_report_slack, weekly_report_email]
REPORT_SELECTION = dg.AssetSelection.assets(*weekly_report_assets)
