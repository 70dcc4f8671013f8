"""The metrics configuration: the default file loads; each mistake is named with its line."""

from __future__ import annotations

import json

import pytest

from orchestration import metrics_config
from orchestration.metrics_config import (
    MetricsConfigError,
    load_config,
    parse_config,
    parse_window,
    to_dbt_vars,
)


def test_the_default_file_matches_the_demo():
    config = load_config(metrics_config.DEFAULT_CONFIG_PATH)
    onboarding = config.funnels[0]
    assert onboarding.steps == [
        "signup",
        "verify_email",
        "create_project",
        "invite_teammate",
        "activate",
    ]
    assert onboarding.conversion_window_seconds == 7 * 86400
    assert config.breakdowns == ["platform", "country", "properties.plan"]
    assert config.retention.cohort_event == "signup"


def test_analytics_config_env_var_points_at_another_file(tmp_path, monkeypatch):
    path = tmp_path / "mine.yml"
    path.write_text("funnels:\n  - {name: f, steps: [a, b], conversion_window: 30m}\n")
    monkeypatch.setenv("ANALYTICS_CONFIG", str(path))
    config = load_config()
    assert config.funnels[0].conversion_window_seconds == 1800
    assert config.breakdowns == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 604800), ("90m", 5400), ("2h", 7200), ("10s", 10), ("3 days", 259200), ("none", None)],
)
def test_windows(text, seconds):
    assert parse_window(text) == seconds


def test_dbt_vars_are_json():
    config = parse_config(
        "funnels:\n  - {name: f, steps: [a], conversion_window: 1h, order: strict}\n"
    )
    variables = json.loads(json.dumps(to_dbt_vars(config)))
    assert variables["metrics"]["funnels"] == [
        {
            "name": "f",
            "steps": ["a"],
            "conversion_window_seconds": 3600,
            "order": "strict",
            "granularity": "timestamp",
        }
    ]
    assert variables["metrics"]["retention"]["cohort_type"] == "first_time"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "funnels:\n  - name: f\n    steps: [a]\n    conversion_windw: 7d\n",
            "line 4: unknown key 'conversion_windw' in funnel #1",
        ),
        (
            "funnels:\n  - name: f\n    steps: [a]\n",
            "line 2: funnel #1 is missing the required key 'conversion_window'",
        ),
        (
            "funnels:\n  - name: f\n    steps: [a]\n    conversion_window: 7 fortnights\n",
            "line 4: funnel 'f': conversion_window '7 fortnights'",
        ),
        (
            "funnels:\n  - name: f\n    steps: []\n    conversion_window: 7d\n",
            "line 3: funnel 'f' steps must not be empty",
        ),
        ("breakdowns: [platform, device]\n", "line 1: breakdown 'device' is neither"),
        ("retention:\n  cohort_type: sometimes\n", "line 2: retention.cohort_type is 'sometimes'"),
        ("retention:\n  granularities: [day, year]\n", "line 2: retention granularity 'year'"),
        (
            "retention:\n  max_periods: {day: -1}\n",
            "line 2: retention.max_periods.day must not be negative",
        ),
        ("funnel: []\n", "line 1: unknown key 'funnel' in the configuration"),
        (
            "funnels:\n  - {name: f, steps: [a], conversion_window: 1d}\n"
            "  - {name: f, steps: [b], conversion_window: 1d}\n",
            "line 3: funnel name 'f' is used twice",
        ),
        ("funnels:\n  - name: f\n    steps: [a, b\n", "not valid YAML"),
        ("", "the file is empty"),
    ],
)
def test_errors_name_the_line(text, message):
    with pytest.raises(MetricsConfigError) as error:
        parse_config(text, source="analytics.yml")
    assert message in str(error.value)
    assert str(error.value).startswith("analytics.yml")
