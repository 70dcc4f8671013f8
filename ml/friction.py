"""Friction clusters: who dropped at each funnel step, grouped by their behaviour before leaving.

For every step, the persons who attempted it and dropped (``converted`` false in
:func:`ml.features.step_behaviour`) are clustered with k-means on scaled features (see
:mod:`ml.clustering`): ``log1p`` of the time spent at the step, the events, errors and help views
in the step window and the sessions before leaving, plus one-hot platform, country and channel.
k is chosen by silhouette over ``k_range`` with fixed seeds.

Each cluster is then described against the persons who *passed* the same step (the converters):

* for a yes/no trait (``platform=android``, ``hit errors``, ``opened help``, ...) the **lift** is
  the share of the cluster with the trait divided by the share of converters with it;
* for a numeric trait (minutes at the step, events, sessions) the lift is the ratio of means.

A zero among converters would make the lift infinite, so both values are floored at half a unit
spread over the converters (``0.5 / converters``): a zero against a zero is a lift of 1.
A trait *sets the cluster apart* when its lift is at least ``min_lift`` (or at most
``1 / min_lift`` for numeric traits) and, for yes/no traits, at least ``min_share`` of the
cluster has it. The cluster's name lists its three strongest such traits in plain words
(strength: ``|log lift|``, capped at ``log 20``, times the cluster share
for yes/no traits and times 0.25 for numeric ones).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd

from ml.clustering import choose_k, scale_features
from ml.errors import InsufficientDataError

CLUSTER_NUMERIC = (
    "minutes_at_step",
    "events_at_step",
    "errors_at_step",
    "help_views_at_step",
    "sessions_before",
)
CLUSTER_CATEGORICAL = ("platform", "country", "channel")
# yes/no traits derived from counts: (name, column, phrase)
FLAG_TRAITS = (
    ("hit errors", "errors_at_step", "hit errors"),
    ("opened help", "help_views_at_step", "opened help"),
    ("several sessions", "sessions_before", "came back in several sessions"),
)
# numeric traits compared by their mean: column -> (phrase when higher, phrase when lower)
MEAN_TRAITS = {
    "minutes_at_step": ("spent long at the step", "left the step quickly"),
    "events_at_step": ("were busy at the step", "did little at the step"),
    "events_before": ("were more active before", "were less active before"),
    "sessions_before": ("used more sessions", "used fewer sessions"),
}
CATEGORY_PHRASES = {"platform": "on {}", "country": "in {}", "channel": "from {}"}
MAX_LOG_LIFT = math.log(20)


@dataclass(frozen=True)
class FrictionResult:
    """``clusters``: person_id, step, cluster. ``profiles``: step, cluster, persons,
    share_of_dropped, name, traits (text), k, silhouette and the cluster's mean features.
    ``traits``: step, cluster, trait, kind (share|mean), cluster_value, converter_value, lift,
    distinctive. ``skipped``: step -> reason for steps that could not be clustered."""

    clusters: pd.DataFrame
    profiles: pd.DataFrame
    traits: pd.DataFrame
    silhouette_by_step: dict[str, dict[int, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def lift(cluster_value: float, converter_value: float, converters: int) -> float:
    """``cluster_value / converter_value``, both floored at ``0.5 / converters`` (half a unit
    spread over the converters), so a zero among converters gives a large finite lift and a zero
    against a zero gives 1."""
    if converters <= 0:
        raise InsufficientDataError("no converters to compare with")
    floor = 0.5 / converters
    return max(float(cluster_value), floor) / max(float(converter_value), floor)


def _trait_table(members: pd.DataFrame, converters: pd.DataFrame) -> list[dict]:
    n_conv = len(converters)
    rows = []
    for name, col, phrase in FLAG_TRAITS:
        threshold = 1 if col != "sessions_before" else 2
        c, v = (members[col] >= threshold).mean(), (converters[col] >= threshold).mean()
        rows.append(
            dict(
                trait=name,
                kind="share",
                cluster_value=c,
                converter_value=v,
                lift=lift(c, v, n_conv),
                phrase=phrase,
            )
        )
    for col, fmt in CATEGORY_PHRASES.items():
        for value in sorted(members[col].unique()):
            c, v = (members[col] == value).mean(), (converters[col] == value).mean()
            rows.append(
                dict(
                    trait=f"{col}={value}",
                    kind="share",
                    cluster_value=c,
                    converter_value=v,
                    lift=lift(c, v, n_conv),
                    phrase=fmt.format(value),
                )
            )
    for col, (high, low) in MEAN_TRAITS.items():
        c, v = members[col].mean(), converters[col].mean()
        value = lift(c, v, n_conv)
        rows.append(
            dict(
                trait=f"mean {col}",
                kind="mean",
                cluster_value=c,
                converter_value=v,
                lift=value,
                phrase=high if value >= 1 else low,
            )
        )
    return rows


def _strength(row: dict) -> float:
    log_lift = min(abs(math.log(row["lift"])) if row["lift"] > 0 else MAX_LOG_LIFT, MAX_LOG_LIFT)
    return log_lift * (row["cluster_value"] if row["kind"] == "share" else 0.25)


def describe_cluster(
    members: pd.DataFrame,
    converters: pd.DataFrame,
    step: str,
    min_lift: float = 1.5,
    min_share: float = 0.25,
    max_traits: int = 3,
) -> tuple[str, list[dict]]:
    """The cluster's plain-words name and every trait row (with ``distinctive`` set)."""
    rows = _trait_table(members, converters)
    for row in rows:
        if row["kind"] == "share":
            row["distinctive"] = row["lift"] >= min_lift and row["cluster_value"] >= min_share
        else:
            row["distinctive"] = row["lift"] >= min_lift or row["lift"] <= 1 / min_lift
        row["strength"] = _strength(row)
    top = sorted((r for r in rows if r["distinctive"]), key=lambda r: (-r["strength"], r["trait"]))
    phrases = [r["phrase"] for r in top[:max_traits]]
    name = f"Left at {step}: " + (", ".join(phrases) if phrases else "no distinctive trait")
    return name, rows


def cluster_step(
    behaviour: pd.DataFrame,
    step: str,
    k_range: Sequence[int] = range(2, 7),
    seed: int = 0,
    min_dropped: int = 10,
) -> FrictionResult:
    """Cluster the persons who dropped at ``step`` (rows of :func:`ml.features.step_behaviour`).

    Raises :class:`InsufficientDataError` with fewer than ``min_dropped`` droppers, no converters
    to compare with, or too few distinct droppers for any k.
    """
    at = behaviour[behaviour["step"] == step]
    # categories: the traits below compare every value with every cluster and the converters
    at = at.astype({col: "category" for col in CLUSTER_CATEGORICAL})
    dropped = at[~at["converted"].astype(bool)].sort_values("person_id").reset_index(drop=True)
    converters = at[at["converted"].astype(bool)]
    if len(dropped) < min_dropped:
        raise InsufficientDataError(f"{len(dropped)} persons dropped at {step} (< {min_dropped})")
    if converters.empty:
        raise InsufficientDataError(f"nobody passed {step}: no converters to compare with")
    x, _ = scale_features(
        dropped, CLUSTER_NUMERIC, CLUSTER_CATEGORICAL, log_columns=CLUSTER_NUMERIC
    )
    fit = choose_k(x, k_range, seed)
    clusters = pd.DataFrame(
        {"person_id": dropped["person_id"], "step": step, "cluster": fit.labels}
    )
    profiles, traits = [], []
    for c in range(fit.k):
        members = dropped[fit.labels == c]
        name, rows = describe_cluster(members, converters, step)
        top = sorted(
            (r for r in rows if r["distinctive"]), key=lambda r: (-r["strength"], r["trait"])
        )
        profiles.append(
            dict(
                step=step,
                cluster=c,
                persons=len(members),
                share_of_dropped=len(members) / len(dropped),
                name=name,
                traits="; ".join(f"{r['trait']} (lift {r['lift']:.1f})" for r in top[:5]),
                k=fit.k,
                silhouette=fit.silhouette,
                **{f"mean_{col}": float(members[col].mean()) for col in CLUSTER_NUMERIC},
            )
        )
        traits += [
            dict(
                step=step,
                cluster=c,
                trait=r["trait"],
                kind=r["kind"],
                cluster_value=float(r["cluster_value"]),
                converter_value=float(r["converter_value"]),
                lift=float(r["lift"]),
                distinctive=bool(r["distinctive"]),
            )
            for r in rows
        ]
    return FrictionResult(
        clusters, pd.DataFrame(profiles), pd.DataFrame(traits), {step: fit.silhouette_by_k}
    )


def friction_clusters(
    behaviour: pd.DataFrame,
    steps: Sequence[str] | None = None,
    k_range: Sequence[int] = range(2, 7),
    seed: int = 0,
    min_dropped: int = 10,
) -> FrictionResult:
    """:func:`cluster_step` for every step (default: the steps in ``behaviour`` in funnel order).

    Steps that cannot be clustered are listed in ``skipped`` with the reason; if no step can be,
    :class:`InsufficientDataError` is raised.
    """
    if steps is None:
        steps = behaviour.sort_values("step_index")["step"].drop_duplicates().tolist()

    def cluster(step: str) -> FrictionResult | str:
        try:
            return cluster_step(behaviour, step, k_range, seed, min_dropped)
        except InsufficientDataError as exc:
            return str(exc)

    # the steps are independent: as many at a time as there are cores (results do not depend
    # on it; k-means limits itself to one thread per fit, see ml/clustering.py)
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        outcomes = list(pool.map(cluster, steps))
    results = [r for r in outcomes if isinstance(r, FrictionResult)]
    skipped = {step: r for step, r in zip(steps, outcomes, strict=True) if isinstance(r, str)}
    if not results:
        raise InsufficientDataError(f"no step could be clustered: {skipped}")
    return FrictionResult(
        clusters=pd.concat([r.clusters for r in results], ignore_index=True),
        profiles=pd.concat([r.profiles for r in results], ignore_index=True),
        traits=pd.concat([r.traits for r in results], ignore_index=True),
        silhouette_by_step={k: v for r in results for k, v in r.silhouette_by_step.items()},
        skipped=skipped,
    )
