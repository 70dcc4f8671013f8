"""The project's Dagster definitions: assembled here, defined in one module per stage."""

import dagster as dg

from orchestration import settings

settings.apply_defaults()

from orchestration.ingest.assets import raw_events  # noqa: E402
from orchestration.jobs import analytics_pipeline, daily_schedule  # noqa: E402
from orchestration.resources import build_resources  # noqa: E402
from orchestration.transform.assets import analytics_dbt_models  # noqa: E402

defs = dg.Definitions(
    assets=[raw_events, analytics_dbt_models],
    jobs=[analytics_pipeline],
    schedules=[daily_schedule],
    resources=build_resources(),
)
