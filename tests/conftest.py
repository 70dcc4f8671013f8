"""Test set-up: every test writes to its own temporary DuckDB file, and the dbt manifest is parsed
once per session (the Dagster definitions need it to exist before they are imported)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

# postgres_server, postgres_database (tests/postgres.py); slack, smtp_server, certificate: local
# Slack Web API and SMTP servers (tests/report_servers.py).
pytest_plugins = ["tests.postgres", "tests.report_servers"]


def pytest_sessionstart(session: pytest.Session) -> None:
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ["DUCKDB_DATABASE"] = str(REPO / "data" / "pytest-parse.duckdb")
    if hasattr(session.config, "workerinput"):
        return  # a pytest-xdist worker: the controller parsed before starting the workers
    (REPO / "data").mkdir(exist_ok=True)
    from orchestration.transform.parse import parse_manifest

    parse_manifest()


@pytest.fixture
def duckdb_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh warehouse file, seen by the Dagster resource and by dbt (through the environment)."""
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("DUCKDB_DATABASE", str(path))
    return path


@pytest.fixture
def peers_dir() -> Path:
    path = SHARED / "peers"
    if not path.exists():
        pytest.skip(f"peer cases not found at {path} (CI clones ../shared beside the repo)")
    return path
