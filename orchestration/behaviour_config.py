"""The ``behaviour:`` section of the analytics configuration: journeys, feature adoption, lifecycle,
abandonment, revenue impact and daily snapshots (docs/behaviour.md defines every field).

Plain functions, no Dagster. :func:`parse_behaviour` is called by
:func:`orchestration.metrics_config.parse_config` with its YAML reader, so errors name the file and
line in the same way; :func:`to_dbt_vars` gives the dbt var ``behaviour`` the models read.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # metrics_config imports this module; only its reader's type is needed here
    from orchestration.metrics_config import Funnel, _Reader

_PROPERTY_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DIRECTIONS = ("after", "before")
OCCURRENCES = ("first", "every")
LIFECYCLE_GRANULARITIES = ("day", "week")
DEFAULT_STEPS = 5
MAX_STEPS = 50


@dataclass(frozen=True)
class Journey:
    """The first ``steps`` events after ``event`` (direction ``after``) or the last ``steps`` events
    before it (``before``), per person, the anchor event included as step 0."""

    name: str
    event: str
    direction: str = "after"
    steps: int = DEFAULT_STEPS
    occurrence: str = "first"  # first: one path per person; every: one per anchor occurrence
    collapse_repeats: bool = True
    exclude: list[str] = field(default_factory=list)  # regexes on event names
    aliases: list[dict[str, str]] = field(default_factory=list)  # [{name, pattern}], first wins


@dataclass(frozen=True)
class Features:
    events: list[str] | None = None  # None: every event that is not a funnel step
    signup_event: str = "first_seen"
    breakdowns: list[str] | None = None  # None: the top-level breakdowns
    # The feature recommendations' weight of a use of each feature event (unlisted: 1).
    weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Lifecycle:
    event: str = "any"
    granularities: list[str] = field(default_factory=lambda: list(LIFECYCLE_GRANULARITIES))


@dataclass(frozen=True)
class AbandonmentPair:
    name: str
    start_event: str
    complete_event: str
    window_seconds: int | None  # None: no window
    value_property: str | None = None
    item_property: str | None = None


@dataclass(frozen=True)
class RevenueImpact:
    adoption_window_seconds: int = 7 * 86400
    outcome_window_seconds: int = 30 * 86400


@dataclass(frozen=True)
class Snapshots:
    recompute_days: int = 3


@dataclass(frozen=True)
class BehaviourConfig:
    journeys: list[Journey] = field(default_factory=list)
    features: Features = field(default_factory=Features)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    abandonment: list[AbandonmentPair] = field(default_factory=list)
    revenue_property: str = "revenue"
    revenue_impact: RevenueImpact = field(default_factory=RevenueImpact)
    snapshots: Snapshots = field(default_factory=Snapshots)


def _regex(reader: _Reader, node: yaml.Node, what: str) -> str:
    pattern = reader.text(node, what)
    try:
        re.compile(pattern)
    except re.error as error:
        raise reader.fail(
            node, f"{what} {pattern!r} is not a regular expression: {error}"
        ) from None
    return pattern


def _property(reader: _Reader, node: yaml.Node, what: str) -> str:
    value = reader.text(node, what)
    if not _PROPERTY_KEY.match(value):
        raise reader.fail(node, f"{what} {value!r} is not a property key (letters, digits, _)")
    return value


def _flag(reader: _Reader, node: yaml.Node, what: str) -> bool:
    if not isinstance(node, yaml.ScalarNode) or not node.tag.endswith(":bool"):
        raise reader.fail(node, f"{what} must be true or false")
    return node.value.lower() in ("true", "yes", "on")


def _journey(reader: _Reader, node: yaml.Node, index: int) -> Journey:
    keys = reader.mapping(
        node,
        f"journey #{index + 1}",
        {
            "name": True,
            "after": False,
            "before": False,
            "steps": False,
            "occurrence": False,
            "collapse_repeats": False,
            "exclude": False,
            "aliases": False,
        },
    )
    name = reader.text(keys["name"][1], "a journey's name")
    label = f"journey {name!r}"
    given = [d for d in DIRECTIONS if d in keys]
    if len(given) != 1:
        raise reader.fail(
            node, f"{label}: give exactly one of 'after: <event>' or 'before: <event>'"
        )
    direction = given[0]
    event = reader.text(keys[direction][1], f"{label}: {direction}")
    steps = DEFAULT_STEPS
    if "steps" in keys:
        steps = reader.count(keys["steps"][1], f"{label}: steps")
        if not 1 <= steps <= MAX_STEPS:
            raise reader.fail(keys["steps"][1], f"{label}: steps must be 1 to {MAX_STEPS}")
    occurrence = (
        reader.choice(keys["occurrence"][1], f"{label}: occurrence", OCCURRENCES)
        if "occurrence" in keys
        else "first"
    )
    collapse = (
        _flag(reader, keys["collapse_repeats"][1], f"{label}: collapse_repeats")
        if "collapse_repeats" in keys
        else True
    )
    exclude = []
    if "exclude" in keys:
        for item, _ in reader.text_list(keys["exclude"][1], f"{label}: exclude", allow_empty=True):
            exclude.append(_regex(reader, item, f"{label}: exclude pattern"))
    aliases = []
    if "aliases" in keys:
        for _, alias, value_node in reader.entries(
            keys["aliases"][1],
            f"{label}: aliases must map a name to a pattern",
            f"{label}: an alias name",
            lambda alias: f"{label}: alias {alias!r} is listed twice",
        ):
            pattern = _regex(reader, value_node, f"{label}: alias {alias!r} pattern")
            aliases.append({"name": alias, "pattern": pattern})
    return Journey(name, event, direction, steps, occurrence, collapse, exclude, aliases)


def _features(reader: _Reader, node: yaml.Node, breakdown: Any) -> Features:
    keys = reader.mapping(
        node,
        "behaviour.features",
        {"events": False, "signup_event": False, "breakdowns": False, "weights": False},
    )
    events = None
    if "events" in keys:
        events = []
        for item, value in reader.text_list(keys["events"][1], "behaviour.features.events"):
            if value in events:
                raise reader.fail(item, f"feature {value!r} is listed twice")
            events.append(value)
    signup = (
        reader.text(keys["signup_event"][1], "behaviour.features.signup_event")
        if "signup_event" in keys
        else "first_seen"
    )
    breakdowns = None
    if "breakdowns" in keys:
        breakdowns = []
        for item, value in reader.text_list(
            keys["breakdowns"][1], "behaviour.features.breakdowns", allow_empty=True
        ):
            if value in breakdowns or value == "all":
                raise reader.fail(item, f"breakdown {value!r} is reserved or listed twice")
            breakdowns.append(breakdown(reader, item, value))
    weights: dict[str, float] = {}
    if "weights" in keys:
        for key_node, event, value_node in reader.entries(
            keys["weights"][1],
            "behaviour.features.weights must be a mapping (event: weight)",
            "an event of behaviour.features.weights",
            lambda event: f"feature {event!r} has two weights",
        ):
            if events is not None and event not in events:
                raise reader.fail(
                    key_node, f"{event!r} has a weight but is not in behaviour.features.events"
                )
            weights[event] = reader.number(value_node, f"the weight of {event!r}")
    return Features(events, signup, breakdowns, weights)


def _lifecycle(reader: _Reader, node: yaml.Node) -> Lifecycle:
    keys = reader.mapping(node, "behaviour.lifecycle", {"event": False, "granularities": False})
    event = reader.text(keys["event"][1], "behaviour.lifecycle.event") if "event" in keys else "any"
    grains = list(LIFECYCLE_GRANULARITIES)
    if "granularities" in keys:
        grains = []
        for item, value in reader.text_list(
            keys["granularities"][1], "behaviour.lifecycle.granularities"
        ):
            if value not in LIFECYCLE_GRANULARITIES or value in grains:
                raise reader.fail(
                    item,
                    f"lifecycle granularity {value!r}: expected each of "
                    f"{', '.join(LIFECYCLE_GRANULARITIES)} at most once",
                )
            grains.append(value)
    return Lifecycle(event, grains)


def _abandonment(reader: _Reader, node: yaml.Node, index: int) -> AbandonmentPair:
    keys = reader.mapping(
        node,
        f"abandonment pair #{index + 1}",
        {
            "name": True,
            "start_event": True,
            "complete_event": True,
            "window": True,
            "value_property": False,
            "item_property": False,
        },
    )
    name = reader.text(keys["name"][1], "an abandonment pair's name")
    label = f"abandonment pair {name!r}"
    return AbandonmentPair(
        name,
        reader.text(keys["start_event"][1], f"{label}: start_event"),
        reader.text(keys["complete_event"][1], f"{label}: complete_event"),
        reader.window(keys["window"][1], f"{label}: window", allow_none=True),
        _property(reader, keys["value_property"][1], f"{label}: value_property")
        if "value_property" in keys
        else None,
        _property(reader, keys["item_property"][1], f"{label}: item_property")
        if "item_property" in keys
        else None,
    )


def parse_behaviour(
    reader: _Reader, node: yaml.Node | None, funnels: list[Funnel], breakdown: Any
) -> BehaviourConfig:
    """The ``behaviour:`` node validated (absent: every default). ``breakdown`` is metrics_config's
    breakdown validator, so a feature breakdown follows the same rules as the top-level ones."""
    if node is None:
        return BehaviourConfig()
    keys = reader.mapping(
        node,
        "behaviour",
        {
            "journeys": False,
            "features": False,
            "lifecycle": False,
            "abandonment": False,
            "revenue_property": False,
            "revenue_impact": False,
            "snapshots": False,
        },
    )
    journeys: list[Journey] = []
    if "journeys" in keys:
        journeys = reader.named_items(
            keys["journeys"][1],
            lambda item, index: _journey(reader, item, index),
            not_a_list="behaviour.journeys must be a list of journeys",
            duplicate="journey name",
        )
    features = (
        _features(reader, keys["features"][1], breakdown) if "features" in keys else Features()
    )
    lifecycle = _lifecycle(reader, keys["lifecycle"][1]) if "lifecycle" in keys else Lifecycle()
    pairs: list[AbandonmentPair] = []
    if "abandonment" in keys:
        pairs = reader.named_items(
            keys["abandonment"][1],
            lambda item, index: _abandonment(reader, item, index),
            not_a_list="behaviour.abandonment must be a list of start/complete pairs",
            duplicate="abandonment pair name",
        )
    revenue_property = (
        _property(reader, keys["revenue_property"][1], "behaviour.revenue_property")
        if "revenue_property" in keys
        else "revenue"
    )
    impact = RevenueImpact()
    if "revenue_impact" in keys:
        ik = reader.mapping(
            keys["revenue_impact"][1],
            "behaviour.revenue_impact",
            {"adoption_window": False, "outcome_window": False},
        )
        impact = RevenueImpact(
            reader.window(ik["adoption_window"][1], "behaviour.revenue_impact.adoption_window")
            if "adoption_window" in ik
            else impact.adoption_window_seconds,
            reader.window(ik["outcome_window"][1], "behaviour.revenue_impact.outcome_window")
            if "outcome_window" in ik
            else impact.outcome_window_seconds,
        )
    snapshots = Snapshots()
    if "snapshots" in keys:
        sk = reader.mapping(keys["snapshots"][1], "behaviour.snapshots", {"recompute_days": False})
        if "recompute_days" in sk:
            days = reader.count(sk["recompute_days"][1], "behaviour.snapshots.recompute_days")
            if days < 1:
                raise reader.fail(sk["recompute_days"][1], "recompute_days must be at least 1")
            snapshots = Snapshots(days)
    return BehaviourConfig(
        journeys, features, lifecycle, pairs, revenue_property, impact, snapshots
    )


def to_dbt_vars(config: BehaviourConfig | None, funnels: list[Funnel]) -> dict[str, Any]:
    """The value of the dbt var ``behaviour``."""
    config = config or BehaviourConfig()
    variables = asdict(config)
    variables["funnel_steps"] = funnel_steps(funnels)
    return variables


def funnel_steps(funnels: list[Funnel]) -> list[str]:
    """Every step of the configured funnels, sorted: the events that are not features when
    ``features.events`` is not given (the dbt var ``behaviour.funnel_steps``)."""
    return sorted({step for funnel in funnels for step in funnel.steps})
