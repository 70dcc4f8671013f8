"""``python -m orchestration.run``: run the whole pipeline once over every day the source has.

One run of the ``analytics_pipeline`` job covers the source's days as a partition range (the raw
extract's backfill policy is a single run), recorded in the instance under ``DAGSTER_HOME`` so that
``make dev`` shows it. Then a run of ``weekly_report_job`` builds (and, with credentials, delivers)
the report of the last complete week of the data; the marts are fresh, so only the report's assets
run. Without Slack or SMTP settings the delivery says it was skipped and the run still succeeds.
Exits non-zero when a run fails, naming the failed steps.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, time, timedelta

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from orchestration import settings
from orchestration.ingest.sources import build_source


def _report(result, label: str) -> bool:
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    skipped = [e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"]
    print(f"{label} run {result.run_id}: {'succeeded' if result.success else 'FAILED'}")
    if failed:
        print("Failed steps: " + ", ".join(failed))
    if skipped:
        print("Skipped steps: " + ", ".join(skipped))
    return result.success


def report_week(last_day: date) -> date | None:
    """The last complete week up to ``last_day`` (its Monday): the week must have ended by the end
    of the last day of data. None when it is before the report's first partition."""
    from orchestration.reporting.assets import weekly_partitions
    from orchestration.reporting.schedules import last_complete_week

    week = last_complete_week(datetime.combine(last_day + timedelta(days=1), time.min, UTC))
    return None if week.isoformat() < weekly_partitions.get_first_partition_key() else week


def execute_weekly_report(defs, instance, week: date):
    """One run of ``weekly_report_job`` for ``week`` that builds only the report's assets (the
    marts are fresh after a pipeline run); its result."""
    from orchestration.reporting.schedules import REPORT_KEYS

    return defs.resolve_job_def("weekly_report_job").execute_in_process(
        instance=instance,
        partition_key=week.isoformat(),
        asset_selection=REPORT_KEYS,
        raise_on_error=False,
    )


def run_weekly_report(defs, instance, last_day: date) -> bool:
    """Build and deliver the report of the last complete week up to ``last_day``."""
    from orchestration.reporting.schedules import REPORT_KEYS

    week = report_week(last_day)
    if week is None:
        print(f"No complete week of data up to {last_day}: no weekly report")
        return True
    print(f"Building the weekly report for the week of {week}")
    result = execute_weekly_report(defs, instance, week)
    for key in REPORT_KEYS:
        record = instance.get_latest_materialization_event(key)
        if record is None or record.run_id != result.run_id:
            continue
        metadata = record.asset_materialization.metadata
        shown = metadata.get("status") or metadata.get("path")
        print(f"  {key.to_user_string()}: {getattr(shown, 'value', shown)}")
    return _report(result, "Weekly report")


def partition_range(days: list, start: str) -> tuple[str, str]:
    """The first and last partition keys covering ``days`` (dates), clipped to the partitions'
    start."""
    if not days:
        raise SystemExit("the source has no data: nothing to run")
    first, last = min(days).isoformat(), max(days).isoformat()
    if last < start:
        raise SystemExit(f"the source's data ends {last}, before ANALYTICS_START_DATE {start}")
    return max(first, start), last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", help="first day (YYYY-MM-DD); default: the source's first day")
    parser.add_argument("--end", help="last day (YYYY-MM-DD); default: the source's last day")
    args = parser.parse_args(argv)

    settings.apply_defaults()
    from orchestration.definitions import defs

    source = build_source()  # the same environment the event_source resource reads
    first, last = partition_range(source.available_days(), settings.get("ANALYTICS_START_DATE"))
    first, last = args.start or first, args.end or last
    print(f"Running analytics_pipeline over {first} .. {last} (source: {source.name})")

    with dg.DagsterInstance.get() as instance:
        result = defs.get_job_def("analytics_pipeline").execute_in_process(
            instance=instance,
            tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
            raise_on_error=False,
        )
        ok = _report(result, "Pipeline")
        # A report of marts that failed to build would be wrong: only after a good run.
        if ok:
            ok = run_weekly_report(defs, instance, date.fromisoformat(last))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
