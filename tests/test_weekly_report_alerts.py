"""The run-failure sensor: a failed scheduled run is posted to Slack (the local stand-in) naming the
asset and the check that failed; runs not launched by a schedule, or no credentials: no post."""

import json

import dagster as dg
import duckdb
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    SCHEDULE_NAME_TAG,
)

from orchestration.reporting.assets import HAS_EVENTS_CHECK
from orchestration.reporting.schedules import REPORT_KEYS
from orchestration.reporting.sensors import slack_on_scheduled_run_failure
from tests.report_servers import CHANNEL, slack_env

SCHEDULED = {SCHEDULE_NAME_TAG: "daily_analytics_pipeline"}


def failed_gate_run(instance, tmp_path, monkeypatch, tags) -> dg.DagsterRun:
    """analytics_pipeline over a day where most records break the contract: the gate fails."""
    from orchestration.definitions import defs

    bad = [
        {
            "event_id": f"b{i}",
            "event_name": None,
            "event_time": "2026-09-05T10:00:00Z",
            "anonymous_id": "a",
        }
        for i in range(10)
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in bad) + "\n")
    monkeypatch.setenv("ANALYTICS_SOURCE", "file")  # what the event_source resource reads
    monkeypatch.setenv("ANALYTICS_SOURCE_PATH", str(path))
    result = defs.resolve_job_def("analytics_pipeline").execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey("raw_events")],
        tags={
            ASSET_PARTITION_RANGE_START_TAG: "2026-09-05",
            ASSET_PARTITION_RANGE_END_TAG: "2026-09-05",
            **tags,
        },
        raise_on_error=False,
    )
    assert not result.success
    return instance.get_run_by_id(result.run_id)


def evaluate_sensor(instance, run) -> None:
    [failure] = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name=slack_on_scheduled_run_failure.name,
        dagster_event=failure.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
    ).for_run_failure()
    slack_on_scheduled_run_failure(context)


def alert_text(slack) -> str:
    [post] = slack.method_calls("chat.postMessage")
    assert post["channel"] == CHANNEL
    return post["blocks"][0]["text"]["text"]


def test_failed_scheduled_pipeline_run_is_posted_naming_asset_and_check(
    duckdb_path, slack, monkeypatch, tmp_path
):
    for name, value in slack_env(slack).items():
        monkeypatch.setenv(name, value)
    instance = dg.DagsterInstance.ephemeral()
    run = failed_gate_run(instance, tmp_path, monkeypatch, SCHEDULED)
    evaluate_sensor(instance, run)
    text = alert_text(slack)
    assert "`analytics_pipeline (daily_analytics_pipeline)`" in text
    assert "*Assets:* `raw_events`" in text
    assert "*Checks:* `raw_events:raw_events_expectations`" in text
    assert "*Failed steps:* `raw_events`" in text
    assert run.run_id[:8] in text


def test_a_failed_weekly_report_check_is_posted_and_stops_delivery(
    duckdb_path, slack, monkeypatch, tmp_path
):
    """A week without events: the blocking check fails, nothing is sent, the alert names both."""
    from orchestration.definitions import defs

    for name, value in slack_env(slack).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    with duckdb.connect(str(duckdb_path)) as con:  # the marts, empty
        con.execute(
            "create table fct_events (event_id varchar, event_name varchar, "
            "event_time timestamp, person_id varchar, properties varchar);"
            "create table dim_users (person_id varchar, first_seen_at timestamp);"
            "create table funnel_conversion (funnel_name varchar, step_index integer, "
            "step_name varchar, segment_name varchar, segment_value varchar, users bigint, "
            "conversion_from_start double, conversion_from_previous double, dropped_off bigint);"
            "create table retention_cohorts (granularity varchar, cohort_start date, "
            "period_number integer, cohort_users bigint, retained_users bigint, "
            "retention_rate double, is_complete boolean);"
            "create table active_users (activity_date date, dau bigint, wau bigint, mau bigint, "
            "stickiness double);"
        )
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("weekly_report_job").execute_in_process(
        instance=instance,
        partition_key="2026-09-07",
        asset_selection=REPORT_KEYS,
        tags={SCHEDULE_NAME_TAG: "weekly_report_schedule"},
        raise_on_error=False,
    )
    assert not result.success
    assert slack.method_calls("chat.postMessage") == []  # the blocking check stopped delivery
    evaluate_sensor(instance, instance.get_run_by_id(result.run_id))
    text = alert_text(slack)
    assert "`weekly_report_job (weekly_report_schedule)`" in text
    assert "`weekly_report`" in text
    assert f"`weekly_report:{HAS_EVENTS_CHECK}`" in text


def test_unscheduled_runs_and_missing_credentials_post_nothing(
    duckdb_path, slack, monkeypatch, tmp_path
):
    instance = dg.DagsterInstance.ephemeral()
    for name, value in slack_env(slack).items():
        monkeypatch.setenv(name, value)
    evaluate_sensor(
        instance, failed_gate_run(instance, tmp_path, monkeypatch, {})
    )  # started by hand
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    evaluate_sensor(
        instance, failed_gate_run(instance, tmp_path, monkeypatch, SCHEDULED)
    )  # no token
    assert slack.calls == []


def test_sensor_is_on_by_default():
    from orchestration.definitions import defs

    sensor = defs.get_sensor_def("slack_on_scheduled_run_failure")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
