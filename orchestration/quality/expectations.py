"""Great Expectations suites (JSON files under ``expectations/``) run on pandas DataFrames.

GX's SQL datasource does not work with duckdb_engine, so the gate validates the DataFrame that was
just landed, in an ephemeral context (no files written, no network, no progress bars).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd

from orchestration.settings import EXPECTATIONS_DIR


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str
    column: str | None
    unexpected_count: int | None
    unexpected_percent: float | None
    observed_value: object | None = None


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    success: bool
    evaluated: int
    failures: list[FailedExpectation] = field(default_factory=list)

    def describe(self) -> str:
        if self.success:
            return f"{self.suite}: all {self.evaluated} expectations met"
        parts = []
        for f in self.failures:
            where = f" on {f.column}" if f.column else ""
            if f.unexpected_count is not None:
                how = f"{f.unexpected_count} rows ({(f.unexpected_percent or 0):.1f}%)"
            else:
                how = f"observed {f.observed_value!r}"
            parts.append(f"{f.expectation}{where}: {how}")
        return f"{self.suite}: {len(self.failures)} of {self.evaluated} failed: " + "; ".join(parts)


_context_lock = threading.Lock()


def _context():
    with _context_lock:
        return _new_context()


def warm_up() -> None:
    """Import GX and build its context in a background thread, for a caller that validates after
    other work: importing GX takes about 3 s here, which then overlaps that work (the ingest gate
    starts it before landing the days, whose DuckDB inserts release the GIL)."""
    threading.Thread(target=_context, name="gx-warm-up", daemon=True).start()


@cache
def _new_context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def load_suite_spec(name: str, directory: Path = EXPECTATIONS_DIR) -> dict:
    path = directory / f"{name}.json"
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def validate(
    frame: pd.DataFrame, suite_name: str, directory: Path = EXPECTATIONS_DIR
) -> SuiteResult:
    """Validate ``frame`` against the suite ``<directory>/<suite_name>.json``."""
    import great_expectations as gx

    context = _context()
    spec = load_suite_spec(suite_name, directory)
    suite = gx.ExpectationSuite(**spec)
    datasource = context.data_sources.add_or_update_pandas(name=f"{suite_name}_frames")
    asset = datasource.add_dataframe_asset(name=f"{suite_name}_{id(frame)}")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite)
    failures = []
    for r in result.results:
        if r.success:
            continue
        kwargs = r.expectation_config.kwargs
        details = r.result or {}
        failures.append(
            FailedExpectation(
                expectation=r.expectation_config.type,
                column=kwargs.get("column"),
                unexpected_count=details.get("unexpected_count"),
                unexpected_percent=details.get("unexpected_percent"),
                observed_value=details.get("observed_value"),
            )
        )
    return SuiteResult(
        suite=suite_name,
        success=bool(result.success),
        evaluated=len(result.results),
        failures=failures,
    )
