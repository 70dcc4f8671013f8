"""The product-metrics configuration: one YAML file read, validated and turned into dbt vars.

Plain functions, no Dagster: the dbt asset calls :func:`load_config` and passes
:func:`to_dbt_vars` as ``dbt build --vars``; ``python -m orchestration.metrics_config`` prints the
same JSON for running dbt by hand. Every error names the file and line (YAML node marks), so a typo
is reported before anything runs. The fields are documented in ``docs/metrics.md``
(``experiments:`` in ``docs/experiments.md``).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "config" / "analytics.yml"
CONFIG_ENV_VAR = "ANALYTICS_CONFIG"

CONTRACT_BREAKDOWNS = ("platform", "country", "source")
GRANULARITIES = ("day", "week", "month")
DEFAULT_MAX_PERIODS = {"day": 30, "week": 12, "month": 12}
FUNNEL_ORDERS = ("ordered", "strict")
FUNNEL_GRANULARITIES = ("timestamp", "day")
COHORT_TYPES = ("first_time", "recurring")
EXPERIMENT_METRIC_TYPES = ("conversion", "revenue", "retention")
DEFAULT_PRE_PERIOD_SECONDS = 14 * 86400

_WINDOW_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
}
_WINDOW = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")
_PROPERTY_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
UNBOUNDED = ("none", "unbounded")


class MetricsConfigError(ValueError):
    """The metrics configuration is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Funnel:
    name: str
    steps: list[str]
    conversion_window_seconds: int | None  # None: no window (unbounded)
    order: str = "ordered"
    granularity: str = "timestamp"


@dataclass(frozen=True)
class Retention:
    cohort_event: str = "first_seen"
    return_event: str = "any"
    cohort_type: str = "first_time"
    granularities: list[str] = field(default_factory=lambda: list(GRANULARITIES))
    max_periods: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_PERIODS))


@dataclass(frozen=True)
class ExperimentMetric:
    """One metric of an experiment (docs/experiments.md defines each type precisely)."""

    name: str
    type: str  # conversion | revenue | retention
    event: str | None = None  # conversion: the target event; revenue: only this event's property
    funnel: str | None = None  # conversion to a funnel's step instead of an event
    step: str | None = None
    step_index: int | None = None  # 1-based position of ``step`` in ``funnel``
    property: str | None = None  # revenue: the numeric event property summed
    window_seconds: int | None = None  # conversion, revenue: measured this long after exposure
    day: int | None = None  # retention: the UTC day N after the exposure day
    return_event: str = "any"  # retention: any, or an event name


@dataclass(frozen=True)
class Experiment:
    name: str
    exposure_event: str
    variant_property: str
    control: str
    metrics: list[ExperimentMetric]
    guardrails: list[str] = field(default_factory=list)
    variants: list[str] | None = None  # None: every variant observed, equal planned shares
    weights: list[float] | None = None  # planned traffic shares, aligned with ``variants``
    pre_period_seconds: int | None = DEFAULT_PRE_PERIOD_SECONDS  # CUPED covariate; None: off
    alpha: float = 0.05

    @property
    def primary_metrics(self) -> list[str]:
        return [m.name for m in self.metrics if m.name not in self.guardrails]


@dataclass(frozen=True)
class MetricsConfig:
    funnels: list[Funnel]
    breakdowns: list[str]
    retention: Retention
    path: str = ""
    experiments: list[Experiment] = field(default_factory=list)
    behaviour: Any = None  # behaviour_config.BehaviourConfig (docs/behaviour.md)


def parse_window(text: str) -> int | None:
    """``7d``, ``30 minutes``, ``2h``, ``10s`` -> seconds; ``none``/``unbounded`` -> None."""
    if text.strip().lower() in UNBOUNDED:
        return None
    match = _WINDOW.match(text.lower())
    if not match or match.group(2) not in _WINDOW_UNITS or int(match.group(1)) <= 0:
        raise ValueError(
            f"conversion_window {text!r} is not a positive number followed by a unit "
            "(s, m, h or d, e.g. 7d, 30m, 2h), nor 'none'"
        )
    return int(match.group(1)) * _WINDOW_UNITS[match.group(2)]


# --- validation over YAML nodes (they carry the line numbers) ----------------------------------


class _Reader:
    def __init__(self, source: str):
        self.source = source

    def fail(self, node: yaml.Node | None, message: str) -> MetricsConfigError:
        where = (
            f"{self.source}, line {node.start_mark.line + 1}" if node is not None else self.source
        )
        return MetricsConfigError(f"{where}: {message}")

    def mapping(self, node: yaml.Node, what: str, allowed: dict[str, bool]) -> dict[str, tuple]:
        """Keys -> (key node, value node); unknown, duplicate or missing required keys fail."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping (key: value)")
        found: dict[str, tuple] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key not in allowed:
                raise self.fail(
                    key_node,
                    f"unknown key {key!r} in {what}; expected one of: {', '.join(sorted(allowed))}",
                )
            if key in found:
                raise self.fail(key_node, f"duplicate key {key!r} in {what}")
            found[key] = (key_node, value_node)
        for key, required in allowed.items():
            if required and key not in found:
                raise self.fail(node, f"{what} is missing the required key {key!r}")
        return found

    def entries(
        self, node: yaml.Node, not_a_mapping: str, key_what: str, twice: Callable[[str], str]
    ) -> list[tuple[yaml.Node, str, yaml.Node]]:
        """A mapping whose keys the user chooses (alias names, event names): (key node, key, value
        node) for each entry. Not a mapping fails with ``not_a_mapping``; a key that is not text
        names ``key_what``; a key given twice fails with ``twice(key)``, at its second line."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, not_a_mapping)
        entries: list[tuple[yaml.Node, str, yaml.Node]] = []
        for key_node, value_node in node.value:
            key = self.text(key_node, key_what)
            if key in {seen for _, seen, _ in entries}:
                raise self.fail(key_node, twice(key))
            entries.append((key_node, key, value_node))
        return entries

    def named_items(
        self,
        node: yaml.Node,
        parse: Callable[[yaml.Node, int], Any],
        *,
        not_a_list: str,
        duplicate: str,
        non_empty: bool = False,
    ) -> list:
        """Each item of a YAML list parsed with ``parse(item, index)``; the parsed items' ``name``s
        must be unique (``"<duplicate> 'x' is used twice"``, at the repeated item's line)."""
        if not isinstance(node, yaml.SequenceNode) or (non_empty and not node.value):
            raise self.fail(node, not_a_list)
        items: list = []
        for index, item in enumerate(node.value):
            parsed = parse(item, index)
            if parsed.name in {p.name for p in items}:
                raise self.fail(item, f"{duplicate} {parsed.name!r} is used twice")
            items.append(parsed)
        return items

    def text(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag.endswith((":null", ":bool")):
            raise self.fail(node, f"{what} must be a text value")
        if not str(node.value).strip():
            raise self.fail(node, f"{what} must not be empty")
        return str(node.value)

    def choice(self, node: yaml.Node, what: str, choices: tuple[str, ...]) -> str:
        value = self.text(node, what)
        if value not in choices:
            raise self.fail(node, f"{what} is {value!r}; expected one of: {', '.join(choices)}")
        return value

    def text_list(self, node: yaml.Node, what: str, allow_empty: bool = False) -> list[tuple]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        if not node.value and not allow_empty:
            raise self.fail(node, f"{what} must not be empty")
        return [(item, self.text(item, f"an item of {what}")) for item in node.value]

    def number(self, node: yaml.Node, what: str) -> float:
        if not isinstance(node, yaml.ScalarNode) or not node.tag.endswith((":int", ":float")):
            raise self.fail(node, f"{what} must be a number")
        value = float(node.value)
        if not value > 0 or value == float("inf"):
            raise self.fail(node, f"{what} must be a positive number")
        return value

    def window(self, node: yaml.Node, what: str, allow_none: bool = False) -> int | None:
        try:
            seconds = parse_window(self.text(node, what))
        except ValueError as error:
            raise self.fail(node, f"{what}: {error}") from None
        if seconds is None and not allow_none:
            raise self.fail(node, f"{what} must be bounded (e.g. 14d), not {node.value!r}")
        return seconds

    def count(self, node: yaml.Node, what: str) -> int:
        if not isinstance(node, yaml.ScalarNode) or not node.tag.endswith(":int"):
            raise self.fail(node, f"{what} must be a whole number")
        value = int(node.value)
        if value < 0:
            raise self.fail(node, f"{what} must not be negative")
        return value


def _funnel(reader: _Reader, node: yaml.Node, index: int) -> Funnel:
    keys = reader.mapping(
        node,
        f"funnel #{index + 1}",
        {
            "name": True,
            "steps": True,
            "conversion_window": True,
            "order": False,
            "granularity": False,
        },
    )
    name = reader.text(keys["name"][1], "a funnel's name")
    steps = [text for _, text in reader.text_list(keys["steps"][1], f"funnel {name!r} steps")]
    window_node = keys["conversion_window"][1]
    try:
        window = parse_window(reader.text(window_node, f"funnel {name!r} conversion_window"))
    except ValueError as error:
        raise reader.fail(window_node, f"funnel {name!r}: {error}") from None
    order = (
        reader.choice(keys["order"][1], f"funnel {name!r} order", FUNNEL_ORDERS)
        if "order" in keys
        else "ordered"
    )
    granularity = (
        reader.choice(keys["granularity"][1], f"funnel {name!r} granularity", FUNNEL_GRANULARITIES)
        if "granularity" in keys
        else "timestamp"
    )
    return Funnel(name, steps, window, order, granularity)


def _breakdown(reader: _Reader, node: yaml.Node, value: str) -> str:
    if value in CONTRACT_BREAKDOWNS:
        return value
    if value.startswith("properties.") and _PROPERTY_KEY.match(value.removeprefix("properties.")):
        return value
    raise reader.fail(
        node,
        f"breakdown {value!r} is neither a contract column ({', '.join(CONTRACT_BREAKDOWNS)}) nor "
        "properties.<key> (letters, digits and underscores)",
    )


def _retention(reader: _Reader, node: yaml.Node) -> Retention:
    keys = reader.mapping(
        node,
        "retention",
        {
            "cohort_event": False,
            "return_event": False,
            "cohort_type": False,
            "granularities": False,
            "max_periods": False,
        },
    )
    default = Retention()
    cohort_event = (
        reader.text(keys["cohort_event"][1], "retention.cohort_event")
        if "cohort_event" in keys
        else default.cohort_event
    )
    return_event = (
        reader.text(keys["return_event"][1], "retention.return_event")
        if "return_event" in keys
        else default.return_event
    )
    cohort_type = (
        reader.choice(keys["cohort_type"][1], "retention.cohort_type", COHORT_TYPES)
        if "cohort_type" in keys
        else default.cohort_type
    )
    granularities = default.granularities
    if "granularities" in keys:
        granularities = []
        for item, value in reader.text_list(keys["granularities"][1], "retention.granularities"):
            if value not in GRANULARITIES:
                raise reader.fail(
                    item,
                    f"retention granularity {value!r}; expected one of: {', '.join(GRANULARITIES)}",
                )
            if value in granularities:
                raise reader.fail(item, f"retention granularity {value!r} is listed twice")
            granularities.append(value)
    max_periods = dict(DEFAULT_MAX_PERIODS)
    if "max_periods" in keys:
        periods = reader.mapping(
            keys["max_periods"][1], "retention.max_periods", dict.fromkeys(GRANULARITIES, False)
        )
        for grain, (_, value_node) in periods.items():
            max_periods[grain] = reader.count(value_node, f"retention.max_periods.{grain}")
    return Retention(cohort_event, return_event, cohort_type, granularities, max_periods)


_METRIC_KEYS = {
    "conversion": {"name", "type", "event", "funnel", "step", "window"},
    "revenue": {"name", "type", "property", "event", "window"},
    "retention": {"name", "type", "day", "return_event"},
}


def _experiment_metric(
    reader: _Reader, node: yaml.Node, experiment: str, funnels: dict[str, Funnel]
) -> ExperimentMetric:
    what = f"a metric of experiment {experiment!r}"
    if not isinstance(node, yaml.MappingNode):
        raise reader.fail(node, f"{what} must be a mapping (key: value)")
    type_node = next(
        (v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "type"), None
    )
    if type_node is None:
        raise reader.fail(node, f"{what} is missing the required key 'type'")
    kind = reader.choice(type_node, f"{what}: type", EXPERIMENT_METRIC_TYPES)
    allowed = {key: key in ("name", "type") for key in sorted(_METRIC_KEYS[kind])}
    keys = reader.mapping(node, f"{kind} metric of experiment {experiment!r}", allowed)
    name = reader.text(keys["name"][1], f"{what}: name")
    label = f"metric {name!r} of experiment {experiment!r}"

    def optional_text(key: str) -> str | None:
        return reader.text(keys[key][1], f"{label}: {key}") if key in keys else None

    def required(key: str) -> yaml.Node:
        if key not in keys:
            raise reader.fail(node, f"{label} ({kind}) is missing the required key {key!r}")
        return keys[key][1]

    if kind == "retention":
        return ExperimentMetric(
            name,
            kind,
            day=reader.count(required("day"), f"{label}: day"),
            return_event=optional_text("return_event") or "any",
        )
    window = reader.window(required("window"), f"{label}: window")
    if kind == "revenue":
        prop_node = required("property")
        prop = reader.text(prop_node, f"{label}: property")
        if not _PROPERTY_KEY.match(prop):
            raise reader.fail(prop_node, f"{label}: property {prop!r} is not a property key")
        return ExperimentMetric(
            name, kind, event=optional_text("event"), property=prop, window_seconds=window
        )
    event, funnel_name = optional_text("event"), optional_text("funnel")
    if (event is None) == (funnel_name is None):
        raise reader.fail(node, f"{label}: give either 'event' or 'funnel' (with 'step'), not both")
    if event is not None:
        if "step" in keys:
            raise reader.fail(keys["step"][0], f"{label}: 'step' goes with 'funnel', not 'event'")
        return ExperimentMetric(name, kind, event=event, window_seconds=window)
    if funnel_name not in funnels:
        raise reader.fail(
            keys["funnel"][1], f"{label}: funnel {funnel_name!r} is not among the funnels"
        )
    steps = funnels[funnel_name].steps
    step = optional_text("step") or steps[-1]
    if step not in steps:
        raise reader.fail(
            keys["step"][1], f"{label}: step {step!r} is not a step of funnel {funnel_name!r}"
        )
    return ExperimentMetric(
        name,
        kind,
        funnel=funnel_name,
        step=step,
        step_index=steps.index(step) + 1,
        window_seconds=window,
    )


def _experiment(
    reader: _Reader, node: yaml.Node, index: int, funnels: dict[str, Funnel]
) -> Experiment:
    keys = reader.mapping(
        node,
        f"experiment #{index + 1}",
        {
            "name": True,
            "exposure_event": True,
            "variant_property": True,
            "control": True,
            "metrics": True,
            "guardrails": False,
            "variants": False,
            "weights": False,
            "pre_period": False,
            "alpha": False,
        },
    )
    name = reader.text(keys["name"][1], "an experiment's name")
    label = f"experiment {name!r}"
    exposure_event = reader.text(keys["exposure_event"][1], f"{label}: exposure_event")
    prop_node = keys["variant_property"][1]
    variant_property = reader.text(prop_node, f"{label}: variant_property")
    if not _PROPERTY_KEY.match(variant_property):
        raise reader.fail(prop_node, f"{label}: variant_property {variant_property!r} is not a key")
    control_node = keys["control"][1]
    control = reader.text(control_node, f"{label}: control")

    metrics: list[ExperimentMetric] = reader.named_items(
        keys["metrics"][1],
        lambda item, _: _experiment_metric(reader, item, name, funnels),
        not_a_list=f"{label}: metrics must be a non-empty list",
        duplicate=f"{label}: metric name",
        non_empty=True,
    )

    guardrails: list[str] = []
    if "guardrails" in keys:
        for item, value in reader.text_list(
            keys["guardrails"][1], f"{label}: guardrails", allow_empty=True
        ):
            if value not in {m.name for m in metrics}:
                raise reader.fail(item, f"{label}: guardrail {value!r} is not one of its metrics")
            if value in guardrails:
                raise reader.fail(item, f"{label}: guardrail {value!r} is listed twice")
            guardrails.append(value)
    if len(guardrails) == len(metrics):
        raise reader.fail(
            keys["guardrails"][1], f"{label}: every metric is a guardrail; one must be primary"
        )

    variants = None
    if "variants" in keys:
        variants = []
        for item, value in reader.text_list(keys["variants"][1], f"{label}: variants"):
            if value in variants:
                raise reader.fail(item, f"{label}: variant {value!r} is listed twice")
            variants.append(value)
        if len(variants) < 2:
            raise reader.fail(keys["variants"][1], f"{label}: variants needs at least two")
        if control not in variants:
            raise reader.fail(control_node, f"{label}: control {control!r} is not in variants")
    weights = None
    if "weights" in keys:
        weights_node = keys["weights"][1]
        if variants is None:
            raise reader.fail(weights_node, f"{label}: weights need a variants list to align with")
        if not isinstance(weights_node, yaml.SequenceNode) or len(weights_node.value) != len(
            variants
        ):
            raise reader.fail(
                weights_node, f"{label}: weights must be a list of {len(variants)} numbers"
            )
        weights = [reader.number(item, f"{label}: a weight") for item in weights_node.value]
    pre_period = (
        reader.window(keys["pre_period"][1], f"{label}: pre_period", allow_none=True)
        if "pre_period" in keys
        else DEFAULT_PRE_PERIOD_SECONDS
    )
    alpha = 0.05
    if "alpha" in keys:
        alpha = reader.number(keys["alpha"][1], f"{label}: alpha")
        if not alpha < 0.5:
            raise reader.fail(keys["alpha"][1], f"{label}: alpha must be below 0.5")
    return Experiment(
        name,
        exposure_event,
        variant_property,
        control,
        metrics,
        guardrails,
        variants,
        weights,
        pre_period,
        alpha,
    )


def parse_config(text: str, source: str = "<config>") -> MetricsConfig:
    """Validate the YAML ``text``; raise :class:`MetricsConfigError` naming the line."""
    reader = _Reader(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}" if mark is not None else source
        raise MetricsConfigError(
            f"{where}: not valid YAML: {getattr(error, 'problem', error)}"
        ) from None
    if root is None:
        raise MetricsConfigError(f"{source}: the file is empty")
    keys = reader.mapping(
        root,
        "the configuration",
        {"funnels": False, "breakdowns": False, "retention": False, "experiments": False,
         "behaviour": False},
    )

    funnels: list[Funnel] = []
    if "funnels" in keys:
        funnels = reader.named_items(
            keys["funnels"][1],
            lambda item, index: _funnel(reader, item, index),
            not_a_list="funnels must be a list of funnels",
            duplicate="funnel name",
        )

    breakdowns: list[str] = []
    if "breakdowns" in keys:
        for item, value in reader.text_list(keys["breakdowns"][1], "breakdowns", allow_empty=True):
            if value == "all":
                raise reader.fail(item, "'all' is reserved for the whole population")
            if value in breakdowns:
                raise reader.fail(item, f"breakdown {value!r} is listed twice")
            breakdowns.append(_breakdown(reader, item, value))

    retention = _retention(reader, keys["retention"][1]) if "retention" in keys else Retention()

    experiments: list[Experiment] = []
    if "experiments" in keys:
        by_name = {f.name: f for f in funnels}
        experiments = reader.named_items(
            keys["experiments"][1],
            lambda item, index: _experiment(reader, item, index, by_name),
            not_a_list="experiments must be a list of experiments",
            duplicate="experiment name",
        )
    from orchestration import behaviour_config  # imports this module's reader in turn

    behaviour = behaviour_config.parse_behaviour(
        reader, keys["behaviour"][1] if "behaviour" in keys else None, funnels, _breakdown
    )
    return MetricsConfig(
        funnels, breakdowns, retention, path=source, experiments=experiments, behaviour=behaviour
    )


def config_path() -> Path:
    """``ANALYTICS_CONFIG`` when set, else the repository's ``config/analytics.yml``."""
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def load_config(path: str | Path | None = None) -> MetricsConfig:
    path = Path(path) if path is not None else config_path()
    try:
        text = path.read_text()
    except OSError as error:
        raise MetricsConfigError(f"cannot read the metrics configuration {path}: {error}") from None
    return parse_config(text, source=str(path))


def to_dbt_vars(config: MetricsConfig) -> dict[str, Any]:
    """The ``--vars`` mapping the metrics models read (``var('metrics')``)."""
    return {
        "metrics": {
            "funnels": [asdict(f) for f in config.funnels],
            "breakdowns": list(config.breakdowns),
            "retention": asdict(config.retention),
            "experiments": [asdict(e) for e in config.experiments],
        },
        "behaviour": _behaviour_vars(config),
    }


def _behaviour_vars(config: MetricsConfig) -> dict[str, Any]:
    """The dbt var ``behaviour`` (docs/behaviour.md), built by behaviour_config."""
    from orchestration import behaviour_config

    return behaviour_config.to_dbt_vars(config.behaviour, config.funnels)


def dbt_vars_json(config: MetricsConfig) -> str:
    return json.dumps(to_dbt_vars(config), separators=(",", ":"))


if __name__ == "__main__":  # ``dbt build --vars "$(python -m orchestration.metrics_config)"``
    try:
        print(dbt_vars_json(load_config(sys.argv[1] if len(sys.argv) > 1 else None)))
    except MetricsConfigError as error:
        sys.exit(str(error))
