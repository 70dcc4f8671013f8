"""The project's Dagster definitions: assembled here, defined in one module per stage."""

import dagster as dg

from orchestration import settings

settings.apply_defaults()

from orchestration.behaviour.assets import behaviour_assets  # noqa: E402
from orchestration.experiments.assets import experiment_assets, experiment_checks  # noqa: E402
from orchestration.ingest.assets import raw_events  # noqa: E402
from orchestration.jobs import analytics_pipeline, daily_schedule  # noqa: E402
from orchestration.learning.assets import learning_assets  # noqa: E402
from orchestration.learning.checks import learning_checks  # noqa: E402
from orchestration.reporting.assets import weekly_report_assets  # noqa: E402
from orchestration.reporting.schedules import weekly_report_job, weekly_report_schedule  # noqa: E402
from orchestration.reporting.sensors import slack_on_scheduled_run_failure  # noqa: E402
from orchestration.resources import build_resources  # noqa: E402
from orchestration.transform.assets import analytics_dbt_models  # noqa: E402


def build_definitions() -> dg.Definitions:
    """The definitions, with resources built from the environment as it is now (``defs`` is
    built once, when this module is imported; the bench builds them again for each run)."""
    return dg.Definitions(
        assets=[
            raw_events,
            analytics_dbt_models,
            *learning_assets,
            *experiment_assets,
            *behaviour_assets,
            *weekly_report_assets,
        ],
        asset_checks=[*learning_checks, *experiment_checks],
        jobs=[analytics_pipeline, weekly_report_job],
        schedules=[daily_schedule, weekly_report_schedule],
        sensors=[slack_on_scheduled_run_failure],
        resources=build_resources(),
    )


defs = build_definitions()
