"""The weekly report through the real graph: the daily pipeline builds the marts of a small demo,
then the report's weekly partition is materialized with Slack and e-mail pointed at local servers
that speak the real protocols (tests/report_servers.py).

The marts are built once for the module; each test gets its own reports folder (and so its own
delivery ledger), Dagster instance and servers.
"""

import email
import email.policy
import json
from datetime import date, datetime, timedelta

import dagster as dg
import duckdb
import pandas as pd
import pytest

from orchestration.experiments.tables import replace_table
from orchestration.reporting import charts
from orchestration.reporting.assets import REPORT_SELECTION
from orchestration.reporting.marts import read_marts
from orchestration.resources import EventSourceResource, WarehouseResource, build_resources
from tests.pipeline import CORE, materialize_days, query
from tests.report_servers import CHANNEL, PNG_MAGIC, slack_env, smtp_env

pytestmark = pytest.mark.e2e

WEEK = date(2026, 9, 7)  # the demo's first complete week (its data: 2026-09-01 .. 2026-09-14)
DELIVERY_VARIABLES = [
    "SLACK_BOT_TOKEN",
    "SLACK_CHANNEL",
    "SLACK_BASE_URL",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USER",
    "SMTP_PASSWORD",
    "SMTP_FROM",
    "REPORT_EMAIL_TO",
    "SMTP_STARTTLS",
    "SMTP_CA_FILE",
    "REPORT_BASE_URL",
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """The demo's marts (core, funnels, retention, active users), built by the daily pipeline."""
    path = tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DUCKDB_DATABASE", str(path))
        source = EventSourceResource(kind="demo", demo_persons=300, demo_days=14)
        # The core and metrics marts; the learning stage's table is made by hand below.
        marts = (
            CORE
            | dg.AssetSelection.assets(
                "funnel_conversion", "retention_cohorts", "active_users"
            ).upstream()
        )
        result = materialize_days(date(2026, 9, 1), date(2026, 9, 14), source, selection=marts)
        assert result.success
        # The learning and experiment stages' tables, as they would be after their runs.
        with duckdb.connect(str(path)) as con:
            con.execute(
                "create table main.ux_recommendations as select * from (values "
                "(2, 'Second: shorten the signup form'), (1, 'First: fix checkout on android')) "
                "t(rank, recommendation)"
            )
        # experiment_results in its real schema, through the experiments stage's own writer.
        rows = [
            ("new_onboarding", "control", True, None, None, None, None, None, None),
            ("new_onboarding", "treatment", False, 0.05, 0.12, 0.02, 0.08, 0.004, True),
            ("button_colour", "control", True, None, None, None, None, None, None),
            ("button_colour", "green", False, 0.004, 0.01, -0.03, 0.04, 0.71, False),
        ]
        columns = ["experiment_name", "variant", "is_control", "absolute_lift", "relative_lift",
                   "ci_low", "ci_high", "p_value_adjusted", "is_significant"]
        frame = pd.DataFrame(rows, columns=columns).assign(
            metric_name="activation", metric_type="conversion", is_guardrail=False,
            p_value=lambda f: f.p_value_adjusted)
        replace_table(WarehouseResource(database=str(path)), "experiment_results", frame)
        yield path


@pytest.fixture
def env(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("DUCKDB_DATABASE", str(warehouse))
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    for name in DELIVERY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def materialize_week(instance, selection=REPORT_SELECTION) -> dg.ExecuteInProcessResult:
    from orchestration.definitions import defs

    return dg.materialize(
        [*defs.assets, *(defs.asset_checks or [])],
        resources=build_resources(),
        partition_key=WEEK.isoformat(),
        selection=selection,
        instance=instance,
        raise_on_error=False,
    )


def metadata(instance, key: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def slack_fields(post: dict) -> dict[str, str]:
    return {
        f["text"].split("\n")[0]: f["text"]
        for block in post["blocks"]
        if block["type"] == "section"
        for f in block.get("fields", [])
    }


def mart_numbers(path) -> dict:
    """The week's numbers, queried from the marts with SQL (not through the report's code)."""
    start = datetime(WEEK.year, WEEK.month, WEEK.day)
    end = start + timedelta(days=7)
    [(active,)] = query(
        path,
        "select count(distinct person_id) from fct_events where event_time >= ? and event_time < ?",
        [start, end],
    )
    [(new,)] = query(
        path,
        "select count(*) from dim_users where first_seen_at >= ? and first_seen_at < ?",
        [start, end],
    )
    [(revenue,)] = query(
        path,
        "select coalesce(sum(try_cast(json_extract_string(properties, '$.revenue') as double)), 0)"
        " from fct_events where event_name = 'purchase' and event_time >= ? and event_time < ?",
        [start, end],
    )
    conversions = dict(
        query(
            path,
            "select funnel_name, arg_max(conversion_from_start, step_index) from funnel_conversion"
            " where segment_name = 'all' group by funnel_name",
        )
    )
    return {"active": active, "new": new, "revenue": revenue, "conversions": conversions}


def test_report_arrives_in_slack_and_email_with_the_marts_numbers_once(
    env, warehouse, slack, smtp_server, certificate, tmp_path
):
    controller, inbox = smtp_server
    for name, value in {**slack_env(slack), **smtp_env(controller, certificate)}.items():
        env.setenv(name, value)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize_week(instance)
    assert result.success

    # The report files, kept under REPORTS_DIR/<week>/.
    folder = tmp_path / "reports" / WEEK.isoformat()
    html = (folder / "report.html").read_text()
    on_disk = {p.name: p.read_bytes() for p in (folder / "charts").glob("*.png")}
    assert "data:image/png;base64," in html and (folder / "report.md").exists()

    # The Slack message carries the marts' numbers.
    numbers = mart_numbers(warehouse)
    assert numbers["active"] > 50 and numbers["new"] > 0 and numbers["conversions"]
    [post] = slack.method_calls("chat.postMessage")
    assert post["channel"] == CHANNEL
    fields = slack_fields(post)
    assert fields["*Active users*"].startswith(f"*Active users*\n{numbers['active']:,}  (")
    assert fields["*New persons*"].startswith(f"*New persons*\n{numbers['new']:,}")
    assert fields["*Revenue*"].startswith(f"*Revenue*\n{numbers['revenue']:,.2f}")
    for funnel, rate in numbers["conversions"].items():
        label = f"*{funnel} conversion*"
        assert fields[label].startswith(f"{label}\n{rate * 100:.1f}%")
    body = json.dumps(post["blocks"])
    assert "First: fix checkout on android" in body and "new_onboarding" in body
    assert "button_colour" not in body  # not significant

    # The chart files arrive, and they are the charts of the marts' rows.
    uploaded = {u["filename"]: u["data"] for u in slack.uploads.values()}
    assert uploaded[f"weekly-report-{WEEK}.html"].decode() == html
    funnels = [f"funnel_{name}.png" for name in sorted(numbers["conversions"])]
    lifts = ["experiment_button_colour.png", "experiment_new_onboarding.png"]
    assert set(on_disk) == {*funnels, *lifts, "retention_heatmap.png", "active_users.png"}
    for name, png in on_disk.items():
        assert png.startswith(PNG_MAGIC) and uploaded[name] == png
    with duckdb.connect(str(warehouse), read_only=True) as con:
        marts = read_marts(con, WEEK)
    assert charts.build_charts(WEEK, marts) == on_disk
    for funnel in numbers["conversions"]:
        users = [
            u
            for (u,) in query(
                warehouse,
                "select users from funnel_conversion where funnel_name = ? and segment_name = 'all'"
                " order by step_index",
                [funnel],
            )
        ]
        figure = charts.funnel_figure(marts["funnel_conversion"], funnel)
        assert charts.drawn_bar_heights(figure) == [users]
    dau = [
        d
        for (d,) in query(
            warehouse,
            "select dau from active_users where activity_date < ? order by activity_date",
            [WEEK + timedelta(days=7)],
        )
    ]
    lines = charts.active_users_figure(marts["active_users"], WEEK).axes[0].get_lines()
    assert list(lines[0].get_ydata()) == dau[-charts.ACTIVE_USERS_DAYS :]

    # The e-mail, with the same numbers and the charts inline.
    [(_, envelope)] = inbox.envelopes
    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    text_part, related = message.get_payload()
    assert f"| Active users | {numbers['active']:,} |" in text_part.get_content()
    images = {i.get_filename(): i.get_content() for i in related.get_payload()[1:]}
    assert images == on_disk

    # Metadata: the Slack ts and file ids (no secret), the headline numbers in the UI.
    slack_meta = metadata(instance, "weekly_report_slack")
    assert slack_meta["status"] == "posted"
    assert slack_meta["slack_ts"] == slack.channels[CHANNEL][0]["ts"]
    assert sorted(slack_meta["slack_file_ids"]) == sorted(slack.uploads)
    assert "xoxb" not in json.dumps({k: str(v) for k, v in slack_meta.items()})
    report_meta = metadata(instance, "weekly_report")
    assert report_meta["active_users"] == numbers["active"]
    assert "# Weekly product report" in report_meta["report"]

    # A retry of the same week (a new run, same reports folder) sends nothing again.
    again = materialize_week(instance)
    assert again.success
    assert len(slack.method_calls("chat.postMessage")) == 1
    assert len(slack.method_calls("files.completeUploadExternal")) == 1
    assert len(inbox.envelopes) == 1
    assert metadata(instance, "weekly_report_slack")["status"] == "already_sent"
    assert metadata(instance, "weekly_report_email")["status"] == "already_sent"


def test_a_429_from_slack_is_retried(env, slack):
    for name, value in slack_env(slack).items():
        env.setenv(name, value)
    slack.rate_limit["chat.postMessage"] = 1
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_week(instance).success
    assert len(slack.method_calls("chat.postMessage")) == 2  # the 429, then the post
    assert len(slack.channels[CHANNEL]) == 1
    assert metadata(instance, "weekly_report_slack")["status"] == "posted"


def test_no_credentials_builds_the_report_and_says_delivery_was_skipped(env, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_week(instance).success
    assert (tmp_path / "reports" / WEEK.isoformat() / "report.html").exists()
    assert metadata(instance, "weekly_report_slack") == {
        "status": "skipped — SLACK_BOT_TOKEN, SLACK_CHANNEL not set"
    }
    assert metadata(instance, "weekly_report_email") == {
        "status": "skipped — SMTP_HOST, SMTP_FROM, REPORT_EMAIL_TO not set"
    }


def test_a_failed_delivery_fails_its_step_keeps_the_report_and_reruns_alone(env, slack, tmp_path):
    for name, value in slack_env(slack).items():
        env.setenv(name, value)
    slack.fail["chat.postMessage"] = "not_in_channel"
    instance = dg.DagsterInstance.ephemeral()
    result = materialize_week(instance)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "weekly_report_slack"
    assert "not_in_channel" in failure.step_failure_data.error.message
    assert "xoxb" not in failure.step_failure_data.error.message
    assert (tmp_path / "reports" / WEEK.isoformat() / "report.html").exists()
    assert instance.get_latest_materialization_event(dg.AssetKey("weekly_report"))
    assert metadata(instance, "weekly_report_email")["status"].startswith("skipped")

    del slack.fail["chat.postMessage"]
    report_run = instance.get_latest_materialization_event(dg.AssetKey("weekly_report")).run_id
    rerun = materialize_week(instance, dg.AssetSelection.assets("weekly_report_slack"))
    assert rerun.success
    assert metadata(instance, "weekly_report_slack")["status"] == "posted"
    assert len(slack.channels[CHANNEL]) == 1
    # The report was not rebuilt: the delivery read the kept files.
    assert instance.get_latest_materialization_event(dg.AssetKey("weekly_report")).run_id == (
        report_run
    )
