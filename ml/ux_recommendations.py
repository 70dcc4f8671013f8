"""UX recommendations: which (funnel step, segment) loses the most persons, and what to do.

For each step and each segment dimension (platform, country, channel), every segment with at
least ``min_persons`` attempts is compared with the **best comparable segment**: the segment of the
same dimension with the highest conversion rate at the same step (also at least ``min_persons``).

* ``recoverable_persons = persons x (best_rate - rate)``: how many more persons would have passed
  the step had the segment converted like the best one.
* ``p_value``: two-sided two-proportion z-test of the segment against the best segment (pooled
  standard error); ``significant`` when it is below ``alpha`` divided by the number of comparisons
  made (Bonferroni), because picking the best of several segments is itself a multiple comparison.

Rows are ranked by significance first, then by recoverable persons (largest first). Each row
carries its evidence (the numbers behind it, as JSON) and a recommendation from
:data:`CATALOGUE`, chosen by the first pattern in catalogue order that the evidence matches.
When friction clusters are given, the largest cluster among the segment's droppers is named too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ml.errors import InsufficientDataError

DIMENSIONS = ("platform", "country", "channel")


@dataclass(frozen=True)
class Pattern:
    key: str
    when: str
    recommendation: str


# The documented catalogue: checked in this order, the first that matches is the recommendation.
CATALOGUE: tuple[Pattern, ...] = (
    Pattern(
        "errors_before_leaving",
        "at least 30% of the segment's droppers hit an error at the step, and at least twice the "
        "share among the best segment's droppers",
        "Fix the error: {segment} persons hit errors at '{step}' before leaving; reproduce it "
        "from the error events' properties and fix it first.",
    ),
    Pattern(
        "platform_gap",
        "the segment is a platform",
        "Platform-specific defect: '{step}' converts {rate:.0%} on {segment} against "
        "{best_rate:.0%} on {best_segment}; test the step on {segment} (layout, permissions, "
        "app version) and fix what differs.",
    ),
    Pattern(
        "long_time_to_convert",
        "the segment's converters take at least twice as long (median minutes at the step) as "
        "the best segment's",
        "Simplify the step: {segment} persons who pass '{step}' take {median_minutes:.0f} min "
        "against {best_median_minutes:.0f} min; cut fields and decisions from it.",
    ),
    Pattern(
        "help_seeking",
        "at least 30% of the segment's droppers opened help at the step",
        "Clarify the step: {segment} persons open help at '{step}' before leaving; put the "
        "answer in the step itself (inline guidance, better defaults).",
    ),
    Pattern(
        "country_gap",
        "the segment is a country",
        "Regional issue: '{step}' converts {rate:.0%} in {segment} against {best_rate:.0%} in "
        "{best_segment}; check translation, local formats, payment methods and latency.",
    ),
    Pattern(
        "channel_gap",
        "the segment is an acquisition channel",
        "Expectation mismatch: persons from {segment} convert {rate:.0%} at '{step}' against "
        "{best_rate:.0%} from {best_segment}; align the campaign's promise with the product.",
    ),
    Pattern(
        "conversion_gap",
        "any other gap",
        "Investigate '{step}' for {segment}: it converts {rate:.0%} against {best_rate:.0%} "
        "for {best_segment}.",
    ),
)

OUTPUT_COLUMNS = [
    "rank",
    "step",
    "dimension",
    "segment",
    "persons",
    "conversions",
    "conversion_rate",
    "best_segment",
    "best_rate",
    "recoverable_persons",
    "p_value",
    "significant",
    "pattern",
    "recommendation",
    "friction_cluster",
    "evidence",
]


def recoverable_persons(persons: int, rate: float, best_rate: float) -> float:
    """``persons x (best_rate - rate)``, never negative."""
    return max(0.0, persons * (best_rate - rate))


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided pooled two-proportion z-test; 1.0 when there is no variance at all."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both groups need persons")
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return float(2 * stats.norm.sf(abs(z)))


def matching_patterns(evidence: dict) -> list[Pattern]:
    """Every catalogue pattern the evidence matches, in catalogue order (see each ``when``).
    ``evidence`` needs ``dimension``, ``error_share_dropped``, ``best_error_share_dropped``,
    ``help_share_dropped``, ``median_minutes`` and ``best_median_minutes`` (shares may be None)."""
    err, best_err = evidence["error_share_dropped"], evidence["best_error_share_dropped"]
    med, best_med = evidence["median_minutes"], evidence["best_median_minutes"]
    checks = {
        "errors_before_leaving": err is not None
        and err >= 0.3
        and (best_err is None or err >= 2 * best_err),
        "platform_gap": evidence["dimension"] == "platform",
        "long_time_to_convert": med is not None
        and best_med is not None
        and best_med > 0
        and med >= 2 * best_med,
        "help_seeking": (evidence["help_share_dropped"] or 0) >= 0.3,
        "country_gap": evidence["dimension"] == "country",
        "channel_gap": evidence["dimension"] == "channel",
        "conversion_gap": True,
    }
    return [p for p in CATALOGUE if checks[p.key]]


def match_pattern(evidence: dict) -> Pattern:
    """The first catalogue pattern the evidence matches: the recommendation to make."""
    return matching_patterns(evidence)[0]


def _segment_stats(rows: pd.DataFrame) -> dict:
    dropped = rows[~rows["converted"]]
    passed = rows[rows["converted"]]
    return dict(
        persons=len(rows),
        conversions=int(rows["converted"].sum()),
        rate=float(rows["converted"].mean()),
        error_share=float((dropped["errors_at_step"] > 0).mean()) if len(dropped) else None,
        help_share=float((dropped["help_views_at_step"] > 0).mean()) if len(dropped) else None,
        median_minutes=float(passed["minutes_at_step"].median()) if len(passed) else None,
    )


def _r(value, digits=4):
    return None if value is None else round(float(value), digits)


def ux_recommendations(
    behaviour: pd.DataFrame,
    clusters: pd.DataFrame | None = None,
    cluster_names: pd.DataFrame | None = None,
    dimensions: Sequence[str] = DIMENSIONS,
    min_persons: int = 30,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Ranked (step, segment) recommendations from :func:`ml.features.step_behaviour` rows.

    ``clusters`` (person_id, step, cluster) and ``cluster_names`` (step, cluster, name) are the
    friction-cluster outputs; when given, each row names the largest cluster among its droppers.

    Output columns: see :data:`OUTPUT_COLUMNS`; ``evidence`` is JSON text with the segment's and
    the best segment's persons, conversions, rates, error and help shares among droppers and
    median minutes at the step among converters, plus every matched pattern.
    Raises :class:`InsufficientDataError` when no segment is large enough to compare.
    """
    need = {
        "person_id",
        "step",
        "step_index",
        "converted",
        "errors_at_step",
        "help_views_at_step",
        "minutes_at_step",
        *dimensions,
    }
    missing = need - set(behaviour.columns)
    if missing:
        raise ValueError(f"behaviour lacks columns {sorted(missing)}")
    data = behaviour[sorted(need)].copy()
    data["converted"] = data["converted"].astype(bool)
    if clusters is not None:
        data = data.merge(
            clusters[["person_id", "step", "cluster"]], on=["person_id", "step"], how="left"
        )
    # categories (in sorted order, as groupby sorts): a million rows are split per step and
    # segment below, and an integer code is cheaper to carry than a string
    data = data.drop(columns="person_id").astype({c: "category" for c in ("step", *dimensions)})
    names = {}
    if cluster_names is not None:
        names = {(r.step, r.cluster): r.name for r in cluster_names.itertuples()}
    candidates = []
    steps = data.sort_values("step_index")["step"].drop_duplicates()
    for step in steps:
        at = data[data["step"] == step]
        for dim in dimensions:
            groups = {
                seg: rows for seg, rows in at.groupby(dim, sort=True) if len(rows) >= min_persons
            }
            if len(groups) < 2:
                continue
            st = {seg: _segment_stats(rows) for seg, rows in groups.items()}
            best = max(sorted(st), key=lambda s: st[s]["rate"])
            for seg, s in st.items():
                if seg == best or s["rate"] >= st[best]["rate"]:
                    continue
                b = st[best]
                evidence = dict(
                    step=step,
                    dimension=dim,
                    segment=seg,
                    persons=s["persons"],
                    conversions=s["conversions"],
                    rate=_r(s["rate"]),
                    best_segment=best,
                    best_persons=b["persons"],
                    best_conversions=b["conversions"],
                    best_rate=_r(b["rate"]),
                    error_share_dropped=_r(s["error_share"]),
                    best_error_share_dropped=_r(b["error_share"]),
                    help_share_dropped=_r(s["help_share"]),
                    best_help_share_dropped=_r(b["help_share"]),
                    median_minutes=_r(s["median_minutes"], 2),
                    best_median_minutes=_r(b["median_minutes"], 2),
                )
                cluster_label = None
                if clusters is not None:
                    dropped = groups[seg]
                    dropped = dropped[~dropped["converted"] & dropped["cluster"].notna()]
                    if len(dropped):
                        counts = dropped["cluster"].astype(int).value_counts()
                        top = int(min(counts[counts == counts.max()].index))
                        cluster_label = names.get((step, top), f"cluster {top}")
                        evidence["friction_cluster_share_of_dropped"] = _r(
                            counts.max() / len(dropped)
                        )
                candidates.append(
                    dict(
                        step=step,
                        dimension=dim,
                        segment=seg,
                        persons=s["persons"],
                        conversions=s["conversions"],
                        conversion_rate=s["rate"],
                        best_segment=best,
                        best_rate=b["rate"],
                        recoverable_persons=recoverable_persons(s["persons"], s["rate"], b["rate"]),
                        p_value=two_proportion_p_value(
                            s["conversions"], s["persons"], b["conversions"], b["persons"]
                        ),
                        friction_cluster=cluster_label,
                        evidence=evidence,
                    )
                )
    if not candidates:
        raise InsufficientDataError(
            f"no step has two segments of at least {min_persons} persons to compare"
        )
    out = pd.DataFrame(candidates)
    out["significant"] = out["p_value"] < alpha / len(out)
    patterns, texts, evidence_json = [], [], []
    for row in out.itertuples():
        ev = row.evidence
        matched = matching_patterns(ev)
        pattern = matched[0]
        ev["matched_patterns"] = [p.key for p in matched]
        patterns.append(pattern.key)
        texts.append(
            pattern.recommendation.format(
                step=row.step,
                segment=row.segment,
                rate=row.conversion_rate,
                best_rate=row.best_rate,
                best_segment=row.best_segment,
                median_minutes=ev["median_minutes"] or 0.0,
                best_median_minutes=ev["best_median_minutes"] or 0.0,
            )
        )
        evidence_json.append(json.dumps(ev, sort_keys=True))
    out["pattern"], out["recommendation"], out["evidence"] = patterns, texts, evidence_json
    out = out.sort_values(
        ["significant", "recoverable_persons", "step", "dimension", "segment"],
        ascending=[False, False, True, True, True],
        kind="stable",
    ).reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out[OUTPUT_COLUMNS]
