"""A Slack alert when a scheduled run of the pipeline or of the weekly report fails.

Only runs that a schedule launched (tag ``dagster/schedule_name``) are reported: they are the ones
nobody is watching, while a run started from the UI or ``make run`` shows its failure to the person
who started it. The alert names the failed steps, the assets that did not materialize and the
checks that failed, read from the run's events in the instance. ``run_failure_sensor`` keeps a
cursor, so each failed run is reported once. Without ``SLACK_BOT_TOKEN``/``SLACK_CHANNEL`` the
sensor logs that and posts nothing.
"""

import os
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.storage.tags import SCHEDULE_NAME_TAG

from orchestration.jobs import analytics_pipeline
from orchestration.reporting.schedules import weekly_report_job
from orchestration.reporting.slack import SlackReporter, SlackSettings

MAX_NAMES = 15  # a failed dbt step can leave dozens of models unbuilt


@dataclass
class RunFailure:
    failed_steps: list[str] = field(default_factory=list)
    assets: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    error: str | None = None


def _capped(names: list[str]) -> list[str]:
    if len(names) <= MAX_NAMES:
        return names
    return [*names[:MAX_NAMES], f"… and {len(names) - MAX_NAMES} more"]


def describe_failure(instance: dg.DagsterInstance, run_id: str) -> RunFailure:
    """What failed in the run: step failures, assets that failed to materialize, failed checks."""
    events = instance.all_logs(
        run_id,
        of_type={
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.ASSET_FAILED_TO_MATERIALIZE,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        },
    )
    failure = RunFailure()
    assets: dict[str, None] = {}
    for entry in events:
        event = entry.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            failure.failed_steps.append(event.step_key)
            if failure.error is None and event.step_failure_data.error is not None:
                failure.error = event.step_failure_data.error.message.strip()
        elif event.event_type == dg.DagsterEventType.ASSET_FAILED_TO_MATERIALIZE:
            assets[event.asset_key.to_user_string()] = None
        else:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                asset = evaluation.asset_key.to_user_string()
                assets.setdefault(asset, None)
                failure.checks.append(f"{asset}:{evaluation.check_name}")
    failure.assets = _capped(list(assets))
    failure.checks = _capped(failure.checks)
    return failure


def run_url(run_id: str) -> str | None:
    base = os.environ.get("DAGSTER_UI_URL", "").strip()
    return f"{base.rstrip('/')}/runs/{run_id}" if base else None


def alert_failed_run(instance: dg.DagsterInstance, run: dg.DagsterRun, log=None) -> str | None:
    """Post the alert for a failed scheduled run; the message ts, or None when not posted."""
    if SCHEDULE_NAME_TAG not in run.tags:
        if log:
            log.info(f"Run {run.run_id} was not launched by a schedule: no alert")
        return None
    slack = SlackSettings.from_env()
    if slack is None:
        if log:
            missing = ", ".join(SlackSettings.missing())
            log.info(f"Run {run.run_id} failed; no Slack alert: {missing} not set")
        return None
    failure = describe_failure(instance, run.run_id)
    return SlackReporter(slack).post_failure_alert(
        run_id=run.run_id,
        job_name=f"{run.job_name} ({run.tags[SCHEDULE_NAME_TAG]})",
        failed_steps=failure.failed_steps,
        assets=failure.assets,
        checks=failure.checks,
        error=failure.error,
        run_url=run_url(run.run_id),
    )


@dg.run_failure_sensor(
    name="slack_on_scheduled_run_failure",
    monitored_jobs=[analytics_pipeline, weekly_report_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts to SLACK_CHANNEL when a scheduled pipeline or weekly report run fails, "
    "naming the failed assets and checks.",
)
def slack_on_scheduled_run_failure(context: dg.RunFailureSensorContext) -> None:
    ts = alert_failed_run(context.instance, context.dagster_run, context.log)
    if ts:
        context.log.info(f"Alert posted for run {context.dagster_run.run_id} (ts {ts})")
