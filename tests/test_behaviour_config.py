"""The behaviour: section of the analytics configuration: defaults, dbt vars, and errors that name
the file and line."""

from __future__ import annotations

import json

import pytest

from orchestration.behaviour_config import BehaviourConfig, Journey
from orchestration.metrics_config import (
    MetricsConfigError,
    load_config,
    parse_config,
    to_dbt_vars,
)


def test_absent_section_gives_defaults():
    config = parse_config("funnels: []\n")
    assert config.behaviour == BehaviourConfig()
    variables = json.loads(json.dumps(to_dbt_vars(config)))
    assert variables["behaviour"]["journeys"] == []
    assert variables["behaviour"]["snapshots"] == {"recompute_days": 3}


def test_a_journey_with_every_option():
    config = parse_config(
        "funnels:\n  - {name: f, steps: [a, b], conversion_window: 1d}\n"
        "behaviour:\n"
        "  journeys:\n"
        "    - name: j\n"
        "      before: b\n"
        "      steps: 3\n"
        "      occurrence: every\n"
        "      collapse_repeats: false\n"
        "      exclude: ['^page_']\n"
        "      aliases: {feature: '^(x|y)$', other: z}\n"
        "  abandonment:\n"
        "    - {name: cart, start_event: add, complete_event: buy, window: 2h, value_property: v}\n"
    )
    assert config.behaviour.journeys == [
        Journey(
            "j",
            "b",
            "before",
            3,
            "every",
            False,
            ["^page_"],
            [{"name": "feature", "pattern": "^(x|y)$"}, {"name": "other", "pattern": "z"}],
        )
    ]
    assert config.behaviour.abandonment[0].window_seconds == 7200
    assert to_dbt_vars(config)["behaviour"]["funnel_steps"] == ["a", "b"]


def test_feature_weights_are_the_configured_features_weighted(tmp_path, monkeypatch):
    """The recommendations' items are behaviour.features.events, weighted as configured (1 when
    unlisted); without a features list, every event that is not a funnel step."""
    from orchestration.learning.tables import feature_weights

    config = tmp_path / "analytics.yml"
    monkeypatch.setenv("ANALYTICS_CONFIG", str(config))
    config.write_text(
        "funnels:\n  - {name: f, steps: [signup, pay], conversion_window: 1d}\n"
        "behaviour:\n  features:\n    events: [search, export]\n    weights: {export: 2.5}\n"
    )
    assert feature_weights(["export", "pay", "search", "signup", "view"]) == {
        "search": 1.0,
        "export": 2.5,
    }
    config.write_text(
        "funnels:\n  - {name: f, steps: [signup, pay], conversion_window: 1d}\n"
        "behaviour:\n  features:\n    weights: {view: 3}\n"
    )
    assert feature_weights(["export", "pay", "search", "signup", "view"]) == {
        "export": 1.0,
        "search": 1.0,
        "view": 3.0,
    }


def test_the_repository_config_parses():
    config = load_config()
    assert [j.name for j in config.behaviour.journeys] == ["after_signup", "before_purchase"]
    # the demo's recommendation weights (the demo findings' tests read them from here)
    assert config.behaviour.features.weights == {
        "view_dashboard": 1.0,
        "create_report": 3.0,
        "export_csv": 3.0,
        "share_dashboard": 3.0,
        "use_integration": 3.0,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("behaviour:\n  journey: []\n", "line 2: unknown key 'journey' in behaviour"),
        ("behaviour:\n  journeys:\n    - {name: j}\n", "line 3: journey 'j': give exactly one of"),
        (
            "behaviour:\n  journeys:\n    - {name: j, after: a, before: b}\n",
            "line 3: journey 'j': give exactly one of",
        ),
        (
            "behaviour:\n  journeys:\n    - {name: j, after: a, steps: 0}\n",
            "line 3: journey 'j': steps",
        ),
        (
            "behaviour:\n  journeys:\n    - name: j\n      after: a\n      exclude: ['(']\n",
            "line 5: journey 'j': exclude pattern '(' is not a regular expression",
        ),
        (
            "behaviour:\n  journeys:\n    - {name: j, after: a}\n    - {name: j, after: b}\n",
            "line 4: journey name 'j' is used twice",
        ),
        (
            "behaviour:\n  abandonment:\n    - {name: c, start_event: a, complete_event: b,"
            " window: 3x}\n",
            "line 3: abandonment pair 'c': window",
        ),
        (
            "behaviour:\n  journeys:\n    - name: j\n      after: a\n      aliases: [x]\n",
            "line 5: journey 'j': aliases must map a name to a pattern",
        ),
        (
            "behaviour:\n  journeys:\n    - name: j\n      after: a\n      aliases:\n"
            "        x: '^a$'\n        x: '^b$'\n",
            "line 7: journey 'j': alias 'x' is listed twice",
        ),
        ("behaviour:\n  lifecycle: {granularities: [month]}\n", "line 2: lifecycle granularity"),
        ("behaviour:\n  features: {breakdowns: [colour]}\n", "line 2: breakdown 'colour'"),
        ("behaviour:\n  snapshots: {recompute_days: 0}\n", "line 2: recompute_days"),
        (
            "behaviour:\n  features:\n    weights: [a]\n",
            "line 3: behaviour.features.weights must be a mapping",
        ),
        (
            "behaviour:\n  features:\n    events: [a]\n    weights: {a: 2, b: 1}\n",
            "line 4: 'b' has a weight but is not in behaviour.features.events",
        ),
        (
            "behaviour:\n  features:\n    weights:\n      a: 0\n",
            "line 4: the weight of 'a' must be a positive number",
        ),
        (
            "behaviour:\n  features:\n    weights:\n      a: 1\n      a: 2\n",
            "line 5: feature 'a' has two weights",
        ),
    ],
)
def test_errors_name_the_line(text, message):
    with pytest.raises(MetricsConfigError) as error:
        parse_config(text, source="analytics.yml")
    assert f"analytics.yml, {message}" in str(error.value)
