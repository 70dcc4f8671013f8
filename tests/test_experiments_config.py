"""The ``experiments:`` section of the metrics configuration: the default file's experiment, the
dbt vars, and each mistake named with its line."""

from __future__ import annotations

import json

import pytest

from orchestration import metrics_config
from orchestration.metrics_config import MetricsConfigError, parse_config, to_dbt_vars

FUNNEL = "funnels:\n  - {name: onboarding, steps: [signup, activate], conversion_window: 7d}\n"
HEAD = (
    "experiments:\n"
    "  - name: onboarding_v2\n"
    "    exposure_event: signup\n"
    "    variant_property: variant\n"
    "    control: control\n"
)


def test_the_default_file_declares_the_demo_experiment():
    config = metrics_config.load_config(metrics_config.DEFAULT_CONFIG_PATH)
    (experiment,) = config.experiments
    assert experiment.name == "onboarding_v2"
    assert experiment.variants == [
        "control",
        "short_form",
        "guided_tour",
        "video_intro",
        "checklist",
    ]
    assert [(m.name, m.type) for m in experiment.metrics] == [
        ("activated", "conversion"),
        ("revenue", "revenue"),
        ("d7_retention", "retention"),
    ]
    assert experiment.metrics[0].window_seconds == 14 * 86400
    assert experiment.metrics[2].day == 7
    assert experiment.guardrails == ["d7_retention"]
    assert experiment.primary_metrics == ["activated", "revenue"]
    variables = json.loads(metrics_config.dbt_vars_json(config))
    assert variables["metrics"]["experiments"][0]["metrics"][1]["property"] == "revenue"


def test_a_full_experiment_with_every_option():
    config = parse_config(
        FUNNEL + HEAD + "    variants: [control, b]\n"
        "    weights: [2, 1.5]\n"
        "    pre_period: none\n"
        "    alpha: 0.01\n"
        "    metrics:\n"
        "      - {name: done, type: conversion, funnel: onboarding, window: 3d}\n"
        "      - {name: step, type: conversion, funnel: onboarding, step: signup, window: 1h}\n"
        "      - {name: paid, type: revenue, property: amount, event: purchase, window: 30d}\n"
        "      - {name: back, type: retention, day: 0, return_event: login}\n"
    )
    (experiment,) = config.experiments
    assert experiment.weights == [2.0, 1.5] and experiment.alpha == 0.01
    assert experiment.pre_period_seconds is None
    done, step, paid, back = experiment.metrics
    assert (done.funnel, done.step, done.step_index) == ("onboarding", "activate", 2)
    assert (step.step, step.step_index, step.window_seconds) == ("signup", 1, 3600)
    assert (paid.event, paid.property) == ("purchase", "amount")
    assert (back.day, back.return_event) == (0, "login")
    assert experiment.guardrails == [] and experiment.primary_metrics == [
        "done",
        "step",
        "paid",
        "back",
    ]
    assert to_dbt_vars(config)["metrics"]["experiments"][0]["pre_period_seconds"] is None


def test_without_experiments_the_section_is_empty():
    assert parse_config(FUNNEL).experiments == []
    assert to_dbt_vars(parse_config(FUNNEL))["metrics"]["experiments"] == []


METRIC = "    metrics:\n      - {name: m, type: conversion, event: activate, window: 14d}\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("experiments: {a: 1}\n", 1, "experiments must be a list"),
        ("experiments:\n  - name: x\n", 2, "missing the required key 'exposure_event'"),
        (HEAD + METRIC + "    colour: red\n", 8, "unknown key 'colour' in experiment #1"),
        (HEAD + "    variant_property: 'a.b'\n" + METRIC, 6, "duplicate key"),
        (
            HEAD.replace("variant_property: variant", "variant_property: 'a-b'") + METRIC,
            4,
            "is not a key",
        ),
        (HEAD + "    metrics: []\n", 6, "metrics must be a non-empty list"),
        (HEAD + "    metrics:\n      - {name: m, type: ratio}\n", 7, "type is 'ratio'"),
        (
            HEAD + "    metrics:\n      - {name: m, event: a}\n",
            7,
            "missing the required key 'type'",
        ),
        (
            HEAD + "    metrics:\n      - {name: m, type: conversion, event: a}\n",
            7,
            "missing the required key 'window'",
        ),
        (
            HEAD + "    metrics:\n      - {name: m, type: conversion, event: a, window: 2w}\n",
            7,
            "not a positive number followed by a unit",
        ),
        (
            HEAD + "    metrics:\n      - {name: m, type: conversion, event: a, window: none}\n",
            7,
            "must be bounded",
        ),
        (
            HEAD + "    metrics:\n      - {name: m, type: conversion, window: 1d}\n",
            7,
            "give either 'event' or 'funnel'",
        ),
        (
            HEAD + "    metrics:\n      - {name: m, type: conversion, funnel: nope, window: 1d}\n",
            7,
            "funnel 'nope' is not among the funnels",
        ),
        (
            HEAD + "    metrics:\n      - {name: m, type: retention, day: -1}\n",
            7,
            "must not be negative",
        ),
        (
            HEAD + "    metrics:\n      - {name: m, type: retention, day: 7, window: 7d}\n",
            7,
            "unknown key 'window' in retention metric",
        ),
        (
            HEAD + "    metrics:\n      - {name: m, type: revenue, window: 7d}\n",
            7,
            "missing the required key 'property'",
        ),
        (HEAD + METRIC + "      - {name: m, type: retention, day: 1}\n", 8, "'m' is used twice"),
        (
            HEAD + METRIC + "    guardrails: [typo]\n",
            8,
            "guardrail 'typo' is not one of its metrics",
        ),
        (HEAD + METRIC + "    guardrails: [m]\n", 8, "every metric is a guardrail"),
        (HEAD + METRIC + "    variants: [b, c]\n", 5, "control 'control' is not in variants"),
        (HEAD + METRIC + "    variants: [control]\n", 8, "variants needs at least two"),
        (HEAD + METRIC + "    variants: [control, b, b]\n", 8, "variant 'b' is listed twice"),
        (HEAD + METRIC + "    weights: [1, 1]\n", 8, "weights need a variants list"),
        (
            HEAD + METRIC + "    variants: [control, b]\n    weights: [1]\n",
            9,
            "weights must be a list of 2 numbers",
        ),
        (
            HEAD + METRIC + "    variants: [control, b]\n    weights: [1, 0]\n",
            9,
            "must be a positive number",
        ),
        (HEAD + METRIC + "    alpha: 0.7\n", 8, "alpha must be below 0.5"),
        (HEAD + METRIC + "    pre_period: soon\n", 8, "pre_period"),
        (
            HEAD + METRIC + HEAD.removeprefix("experiments:\n") + METRIC,
            8,
            "experiment name 'onboarding_v2' is used twice",
        ),
    ],
)
def test_mistakes_are_named_with_their_line(text, line, message):
    with pytest.raises(MetricsConfigError) as error:
        parse_config(text, source="analytics.yml")
    assert f"analytics.yml, line {line}: " in str(error.value)
    assert message in str(error.value)
