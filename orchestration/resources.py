"""Resources: the warehouse, dbt, and the event source, all configured from the environment.

This module is the one environment switch: which source is read, where DuckDB lives, which dbt
target builds. Secrets are passed as ``EnvVar`` so that Dagster shows their names, never values.
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from orchestration import settings
from orchestration.ingest.sources import EventSource, build_source
from orchestration.ingest.vendors import SECRET_FIELDS, VENDOR_SETTINGS
from orchestration.transform.project import dbt_project


class EventSourceResource(dg.ConfigurableResource):
    """The event source that ``ANALYTICS_SOURCE`` names; see orchestration/ingest/sources.py.

    Vendor secrets are fields set from ``EnvVar`` (the UI shows the variable's name, never its
    value). A vendor's other settings (project id, region, base URL, dates) are not secret and are
    read from the environment when the source is built, by the same names (VENDOR_SETTINGS).
    """

    kind: str = "demo"
    path: str | None = None
    format: str = "events"
    demo_persons: int | None = None
    demo_days: int | None = None
    demo_start: str | None = None
    mixpanel_api_secret: str | None = None
    amplitude_api_key: str | None = None
    amplitude_secret_key: str | None = None
    posthog_personal_api_key: str | None = None

    def get_source(self) -> EventSource:
        env = {
            name: value
            for name, value in os.environ.items()
            if name.startswith(("ANALYTICS_", "MIXPANEL_", "AMPLITUDE_", "POSTHOG_"))
        }
        env.update({"ANALYTICS_SOURCE": self.kind, "ANALYTICS_SOURCE_FORMAT": self.format})
        optional = {
            "ANALYTICS_SOURCE_PATH": self.path,
            "DEMO_PERSONS": self.demo_persons,
            "DEMO_DAYS": self.demo_days,
            "DEMO_START": self.demo_start,
        }
        for vendor, fields in SECRET_FIELDS.items():
            for field in fields:
                optional[VENDOR_SETTINGS[vendor][field]] = getattr(self, f"{vendor}_{field}")
        env.update({k: str(v) for k, v in optional.items() if v is not None})
        return build_source(env)


def _optional_env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if settings.get(name) else None


def event_source_resource() -> EventSourceResource:
    secrets = {
        f"{vendor}_{field}": _optional_env(VENDOR_SETTINGS[vendor][field])
        for vendor, fields in SECRET_FIELDS.items()
        for field in fields
    }
    return EventSourceResource(
        kind=dg.EnvVar("ANALYTICS_SOURCE"),
        path=_optional_env("ANALYTICS_SOURCE_PATH"),
        format=settings.get("ANALYTICS_SOURCE_FORMAT") or "events",
        demo_persons=dg.EnvVar.int("DEMO_PERSONS") if settings.get("DEMO_PERSONS") else None,
        demo_days=dg.EnvVar.int("DEMO_DAYS") if settings.get("DEMO_DAYS") else None,
        demo_start=_optional_env("DEMO_START"),
        **{name: value for name, value in secrets.items() if value is not None},
    )


def dbt_executable() -> str:
    """dbt from this interpreter's environment, so that no one needs to activate the venv."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def build_resources() -> dict[str, object]:
    return {
        "duckdb": DuckDBResource(database=dg.EnvVar("DUCKDB_DATABASE")),
        "dbt": DbtCliResource(
            project_dir=dbt_project,
            target=settings.get("DBT_TARGET"),
            dbt_executable=dbt_executable(),
        ),
        "event_source": event_source_resource(),
    }


def partition_start_date() -> date:
    return date.fromisoformat(settings.get("ANALYTICS_START_DATE"))


def yesterday() -> date:
    return date.today() - timedelta(days=1)
