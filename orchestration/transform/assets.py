"""dbt models as Dagster assets; dbt tests become asset checks.

The product-metrics configuration (config/analytics.yml, or ANALYTICS_CONFIG) is validated when
this module loads, so a malformed file stops the code location with the file and line before any
run, and it is read again at each run and passed to ``dbt build`` as ``--vars``, so an edit takes
effect on the next run. The metrics marts get their headline numbers and a chart as metadata.
"""

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from orchestration import metrics_config
from orchestration.metrics.reports import REPORTS, headline_entries, missing_steps_message
from orchestration.resources import WarehouseResource
from orchestration.transform.project import dbt_project

MISSING_STEP_TEST = "assert_every_funnel_step_occurs"

metrics_config.load_config()  # fail fast, naming the line, when the file is malformed


class AnalyticsDbtTranslator(DagsterDbtTranslator):
    """Groups follow the dbt folder a model lives in (``models/marts/core`` -> ``core``,
    ``models/staging`` -> ``staging``), so the UI's groups match the dbt structure guide's
    layers."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        folders = fqn[1:-1]
        if not folders:
            return "dbt"
        return folders[-1] if folders[0] == "marts" else folders[0]

    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project):
        """dbt tests are blocking checks (a failure fails the dbt step and all that is downstream),
        except ``assert_every_funnel_step_occurs``: a funnel step that never occurs already makes
        dbt skip ``funnel_conversion``; it should not also stop every unrelated asset downstream of
        the single dbt step. The check still fails, naming the funnel and step."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is not None and spec.name == MISSING_STEP_TEST:
            spec = dg.AssetCheckSpec(
                spec.name,
                asset=spec.asset_key,
                description=spec.description,
                additional_deps=spec.additional_deps,
                blocking=False,
                metadata=spec.metadata,
            )
        return spec


translator = AnalyticsDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True)
)


def _preview(query: Callable[[str], Any], relation: str, limit: int = 10) -> dict[str, Any]:
    count = query(f"select count(*) as row_count from {relation}").iloc[0, 0]
    head = query(f"select * from {relation} limit {limit}")
    metadata = {
        "dagster/row_count": int(count),
        "preview": dg.MetadataValue.md(head.to_markdown(index=False)),
    }
    report = REPORTS.get(relation.split(".")[-1].strip('"'))
    if report is not None:
        built = report(query(f"select * from {relation}"))
        metadata.update(headline_entries(built.headline))
        metadata["chart"] = dg.MetadataValue.md(built.chart_markdown)
    return metadata


def _missing_funnel_steps(duckdb: WarehouseResource) -> list[tuple]:
    """Configured funnel steps with no event, read from the model the blocking dbt test checks."""
    with duckdb.querying() as query:
        frame = query(
            "select funnel_name, step_index, step_name"
            f" from {duckdb.models_schema}.int_funnel_step_occurrences"
            " where occurrences = 0 order by funnel_name, step_index"
        )
    return list(frame.itertuples(index=False, name=None))


# Only materialized relations get a count and a preview: on a view, each would recompute the
# whole view (window functions and all), which at scale costs minutes.
PREVIEWED_MATERIALIZATIONS = {"table", "incremental"}


def _with_table_metadata(
    events: list[Any], duckdb: WarehouseResource, context: dg.AssetExecutionContext
) -> Iterator[Any]:
    """Row counts and a preview for each built table, read after dbt has let go of DuckDB (dbt runs
    in its own process and DuckDB admits one writer, so we cannot read while it builds)."""
    with duckdb.querying() as query:
        for event in events:
            if isinstance(event, dg.Output):
                props = context.assets_def.metadata_by_key.get(
                    context.asset_key_for_output(event.output_name), {}
                )
                identifier = props.get("dagster/relation_identifier") or props.get(
                    "dagster/table_name"
                )
                materialized = props.get("dagster-dbt/materialization_type")
                # On DuckDB schema.table (the catalog in the manifest is the DuckDB file name at
                # parse time); on Postgres every model is in the target's one schema.
                parts = str(identifier).split(".")[-2:] if identifier else None
                if parts and duckdb.is_postgres:
                    parts = [duckdb.models_schema, parts[-1]]
                relation = ".".join(parts) if parts else None
                if relation and materialized in PREVIEWED_MATERIALIZATIONS:
                    try:
                        event = event.with_metadata({**event.metadata, **_preview(query, relation)})
                    except Exception as error:  # a preview must never fail the build
                        context.log.warning(f"no preview for {relation}: {error}")
            yield event


def _failed_dbt_nodes(invocation: Any) -> set[str]:
    """Names of the dbt nodes that errored or failed, from the invocation's run_results.json."""
    results = invocation.get_artifact("run_results.json").get("results", [])
    return {r["unique_id"].split(".")[-1] for r in results if r.get("status") in ("error", "fail")}


def _explain_missing_steps(event: Any, message: str) -> Any:
    """The failed dbt check on int_funnel_step_occurrences, described with the funnel and step."""
    if (
        isinstance(event, dg.AssetCheckResult)
        and event.check_name == MISSING_STEP_TEST
        and not event.passed
    ):
        return dg.AssetCheckResult(
            passed=False,
            asset_key=event.asset_key,
            check_name=event.check_name,
            metadata={**event.metadata, "missing_steps": message},
            severity=event.severity,
            description=message,
        )
    return event


class DbtBuildConfig(dg.Config):
    """Run configuration of the dbt step (the launchpad's ``ops: analytics_dbt_models: config``)."""

    full_refresh: bool = False
    """``dbt build --full-refresh``: rebuild the incremental models from scratch. Needed after
    changing the SQL of stg_raw__events or fct_events, or the session_inactivity_minutes var; note
    that metric_snapshots then recomputes every past day under today's definitions."""


@dbt_assets(
    pool="duckdb_writer",
    manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=translator
)
def analytics_dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    duckdb: WarehouseResource,
    config: DbtBuildConfig,
):
    """``dbt build`` with the metrics configuration as vars.

    A funnel step that never occurs fails the dbt test ``assert_every_funnel_step_occurs``, so dbt
    skips ``funnel_conversion`` (and what depends on it) and Dagster shows that check failed, with
    the funnel and step in its description and in the run's error log; every other model is still
    built and materialized, as a failed blocking check would do, so unrelated assets keep running.
    Any other dbt failure fails the step.
    """
    metrics = metrics_config.load_config()
    # dbt opens the DuckDB file in its own process: hold the warehouse lock while it runs.
    with duckdb.exclusive():  # a no-op on Postgres
        invocation = dbt.cli(
            [
                "build",
                "--vars",
                metrics_config.dbt_vars_json(metrics),
                *(["--full-refresh"] if config.full_refresh else []),
            ],
            context=context,
            raise_on_error=False,
        )
        events = list(invocation.stream())
    if invocation.is_successful():
        yield from _with_table_metadata(events, duckdb, context)
        return
    failed = _failed_dbt_nodes(invocation)
    missing = (
        _missing_funnel_steps(duckdb) if MISSING_STEP_TEST in failed else []
    )
    message = f"{missing_steps_message(missing)} (config: {metrics.path})" if missing else ""
    if message:
        context.log.error(
            f"{message}; funnel_conversion was not built. Fix the step name or remove the step."
        )
        events = [_explain_missing_steps(event, message) for event in events]
    yield from _with_table_metadata(events, duckdb, context)
    if failed - {MISSING_STEP_TEST} or not message:
        error = invocation.get_error()
        if error is not None:
            raise error
        raise dg.Failure(description=f"dbt build failed on: {', '.join(sorted(failed))}")
