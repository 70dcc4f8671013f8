"""Per-experiment analysis over person-level DataFrames, with the tests of ``ml.experiment_stats``.

Inputs are plain frames (``int_experiment_outcomes`` and ``int_experiment_exposures`` as read from
the warehouse, or hand-built in tests); outputs are frames with one row per metric and variant
(:func:`analyze_experiment`, :func:`analyze_by_segment`) or per variant (:func:`experiment_health`).
The choices are defined in docs/experiments.md; in short:

* Persons whose exposure events carried more than one variant are left out of every result (and
  counted by :func:`experiment_health`); so are persons in a variant that is not planned.
* A person whose metric window has not elapsed by the end of the data (``is_complete`` false) is
  left out of that metric and counted in ``persons_window_open``.
* Conversion and retention: pooled two-proportion z-test, unpooled Wald 95 % CI of the difference,
  Beta(1, 1)-Binomial probability to beat control. Revenue: Welch's t-test and its CI, normal
  approximation for the probability to beat control.
* CUPED on every metric when the pre-exposure covariate is present, reported beside the plain
  estimate (never instead of it).
* Holm across the experiment's treatment variants x primary metrics (``p_value_adjusted``);
  guardrails form their own Holm family and never pick a winner. Segment results form one Holm
  family over every segment, variant and primary metric of the experiment.

Degenerate data (an empty variant, no conversions, one person) give ``None`` with the reason in
``note``, never an exception or NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.experiment_stats import (
    SRM_P_THRESHOLD,
    cuped_difference,
    holm_adjust,
    prob_beats_control,
    prob_beats_control_normal,
    sample_ratio_mismatch,
    two_proportion_ztest,
    welch_ttest_arrays,
)

BINARY_TYPES = ("conversion", "retention")
METRIC_TYPES = (*BINARY_TYPES, "revenue")
NO_WINNER = "no significant winner"

RESULT_COLUMNS = [
    "experiment_name",
    "metric_name",
    "metric_type",
    "is_guardrail",
    "variant",
    "is_control",
    "persons",
    "persons_window_open",
    "conversions",
    "value_sum",
    "mean",
    "std_dev",
    "absolute_lift",
    "relative_lift",
    "ci_low",
    "ci_high",
    "p_value",
    "p_value_adjusted",
    "is_significant",
    "prob_beats_control",
    "cuped_absolute_lift",
    "cuped_ci_low",
    "cuped_ci_high",
    "cuped_p_value",
    "cuped_variance_reduction",
    "note",
]
SEGMENT_COLUMNS = [
    *RESULT_COLUMNS[:1],
    "segment_name",
    "segment_value",
    *RESULT_COLUMNS[1:],
    "comparisons_in_family",
]
HEALTH_COLUMNS = [
    "experiment_name",
    "variant",
    "is_control",
    "persons",
    "expected_share",
    "observed_share",
    "expected_persons",
    "srm_chi_square",
    "srm_p_value",
    "srm_detected",
    "multi_variant_persons",
    "unplanned_variant_persons",
    "first_exposure_at",
    "last_exposure_at",
    "note",
]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    type: str  # conversion | revenue | retention
    is_guardrail: bool = False

    def __post_init__(self) -> None:
        if self.type not in METRIC_TYPES:
            raise ValueError(f"metric {self.name!r}: type {self.type!r} not in {METRIC_TYPES}")


def planned_variants(observed: Sequence[str], control: str, variants: Sequence[str] | None) -> list:
    """The configured variants, or else every observed one with control first."""
    if variants is not None:
        return list(variants)
    others = sorted({str(v) for v in observed} - {control})
    return [control, *others]


def _opt(value) -> float | None:
    """A float, or None for None/NaN/inf (the marts hold nulls, never NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _join(*notes: str | None) -> str | None:
    kept = [n for n in notes if n]
    return "; ".join(dict.fromkeys(kept)) or None


@dataclass
class _Arm:
    values: np.ndarray
    covariate: np.ndarray | None
    window_open: int

    @property
    def n(self) -> int:
        return int(self.values.size)


@dataclass(frozen=True)
class _Outcomes:
    """The outcomes an analysis counts (persons exposed to one variant only, in a planned
    variant) as arrays, with each (metric, variant)'s row numbers in input order. An arm is then
    a slice of those rows (within a segment: the ones of its persons) rather than a filtered
    copy of a frame of millions of rows."""

    person_id: np.ndarray
    rows: dict[tuple[str, str], np.ndarray]
    value: np.ndarray
    complete: np.ndarray
    covariate: np.ndarray | None

    @classmethod
    def of(cls, outcomes: pd.DataFrame, variants: list[str]) -> _Outcomes:
        keep = np.array(outcomes["variant"].isin(variants), dtype=bool)
        if "has_multiple_variants" in outcomes.columns:
            keep &= ~outcomes["has_multiple_variants"].fillna(False).to_numpy(dtype=bool)
        frame = outcomes[keep]
        metric, metrics = pd.factorize(frame["metric_name"])
        variant, variant_names = pd.factorize(frame["variant"])
        group = metric.astype(np.int64) * len(variant_names) + variant
        order = np.argsort(group, kind="stable")
        starts = np.flatnonzero(np.diff(group[order], prepend=-1))
        rows = {
            (metrics[g // len(variant_names)], variant_names[g % len(variant_names)]): part
            for g, part in zip(group[order][starts], np.split(order, starts[1:]), strict=True)
            if g >= 0  # a row without a metric name belongs to no metric
        }
        covariate = None
        if "pre_exposure_events" in frame.columns:
            covariate = frame["pre_exposure_events"].to_numpy(dtype=float, na_value=np.nan)
        return cls(
            person_id=frame["person_id"].to_numpy(),
            rows=rows,
            value=frame["value"].to_numpy(dtype=float, na_value=np.nan),
            complete=frame["is_complete"].fillna(False).to_numpy(dtype=bool),
            covariate=covariate,
        )

    def arms(self, metric: str, variants: list[str], within: np.ndarray | None = None) -> dict:
        """Each variant's :class:`_Arm` for ``metric`` (only the rows ``within`` marks)."""
        empty = np.zeros(0, dtype=np.int64)
        rows = {v: self.rows.get((metric, v), empty) for v in variants}
        if within is not None:
            rows = {v: r[within[r]] for v, r in rows.items()}
        has_cov = self.covariate is not None and any(
            (~np.isnan(self.covariate[r])).any() for r in rows.values()
        )
        arms = {}
        for variant, mine in rows.items():
            done = mine[self.complete[mine]]
            covariate = None
            if has_cov:
                covariate = np.where(np.isnan(self.covariate[done]), 0.0, self.covariate[done])
            arms[variant] = _Arm(self.value[done], covariate, len(mine) - len(done))
        return arms


def _describe(arm: _Arm, metric: MetricSpec) -> dict:
    n = arm.n
    binary = metric.type in BINARY_TYPES
    total = float(arm.values.sum()) if n else 0.0
    return {
        "persons": n,
        "persons_window_open": arm.window_open,
        "conversions": int(round(total)) if binary else None,
        "value_sum": total,
        "mean": total / n if n else None,
        "std_dev": float(arm.values.std(ddof=1)) if n >= 2 else None,
    }


def _compare(control: _Arm, treatment: _Arm, metric: MetricSpec, alpha: float) -> dict:
    """The plain test, the CUPED estimate and the probability to beat control for one variant."""
    out: dict = {}
    notes: list[str | None] = []
    if metric.type in BINARY_TYPES:
        conv_c, conv_t = int(round(control.values.sum())), int(round(treatment.values.sum()))
        test = two_proportion_ztest(conv_c, control.n, conv_t, treatment.n, alpha=alpha)
        out |= {
            "absolute_lift": test.difference,
            "relative_lift": test.relative_lift,
            "ci_low": test.ci_low,
            "ci_high": test.ci_high,
            "p_value": test.p_value,
        }
        notes.append(test.reason)
        bayes = prob_beats_control(conv_c, control.n, conv_t, treatment.n)
        out["prob_beats_control"] = bayes.prob_beats_control if control.n and treatment.n else None
    else:
        test = welch_ttest_arrays(control.values, treatment.values, alpha=alpha)
        relative = (
            test.difference / test.mean_control
            if test.difference is not None and test.mean_control
            else None
        )
        out |= {
            "absolute_lift": test.difference,
            "relative_lift": relative,
            "ci_low": test.ci_low,
            "ci_high": test.ci_high,
            "p_value": test.p_value,
        }
        notes.append(test.reason)
        if control.n and treatment.n:
            bayes = prob_beats_control_normal(
                float(control.values.mean()),
                float(control.values.var(ddof=1)) if control.n >= 2 else 0.0,
                control.n,
                float(treatment.values.mean()),
                float(treatment.values.var(ddof=1)) if treatment.n >= 2 else 0.0,
                treatment.n,
                alpha=alpha,
            )
            out["prob_beats_control"] = bayes.prob_beats_control
        else:
            out["prob_beats_control"] = None
    if test.difference is not None and out["relative_lift"] is None:
        notes.append("relative lift undefined: control's rate or mean is 0")

    if control.covariate is None or treatment.covariate is None:
        notes.append("CUPED: no pre-exposure covariate")
    elif control.n and treatment.n:
        cuped = cuped_difference(
            control.values, control.covariate, treatment.values, treatment.covariate, alpha=alpha
        )
        out |= {
            "cuped_absolute_lift": cuped.difference,
            "cuped_ci_low": cuped.ci_low,
            "cuped_ci_high": cuped.ci_high,
            "cuped_p_value": cuped.p_value,
            "cuped_variance_reduction": cuped.variance_reduction,
        }
        if cuped.reason:
            notes.append(f"CUPED: {cuped.reason}")
    if not control.n or not treatment.n:
        empty = [arm for arm, a in (("control", control), ("variant", treatment)) if not a.n]
        notes.insert(
            0, f"empty variant: no person in the {' and '.join(empty)} has a closed window"
        )
    out["note"] = _join(*notes)
    return out


def _metric_rows(
    outcomes: _Outcomes,
    metric: MetricSpec,
    control: str,
    variants: list[str],
    alpha: float,
    rows: np.ndarray | None = None,
) -> list[dict]:
    arms = outcomes.arms(metric.name, variants, rows)
    rows = []
    for variant in variants:
        row = {
            "metric_name": metric.name,
            "metric_type": metric.type,
            "is_guardrail": metric.is_guardrail,
            "variant": variant,
            "is_control": variant == control,
            **_describe(arms[variant], metric),
        }
        if variant == control:
            row["note"] = "control" if arms[variant].n else "control; empty variant"
        else:
            row |= _compare(arms[control], arms[variant], metric, alpha)
        rows.append(row)
    return rows


def _adjust(rows: list[dict], family_key, alpha: float) -> None:
    """Holm within each family (treatment rows grouped by ``family_key``), in place."""
    families: dict = {}
    for index, row in enumerate(rows):
        if not row["is_control"]:
            families.setdefault(family_key(row), []).append(index)
    for members in families.values():
        adjusted = holm_adjust([_opt(rows[i].get("p_value")) for i in members])
        present = sum(a is not None for a in adjusted)
        for i, value in zip(members, adjusted, strict=True):
            rows[i]["p_value_adjusted"] = value
            rows[i]["is_significant"] = value is not None and value < alpha
            rows[i]["comparisons_in_family"] = present
    for row in rows:
        row.setdefault("is_significant", False)


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows).reindex(columns=columns)
    return frame.astype(object).where(frame.notna(), None)


def analyze_experiment(
    outcomes: pd.DataFrame,
    *,
    experiment: str,
    control: str,
    metrics: Sequence[MetricSpec],
    variants: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """One row per metric and variant (control included) of :data:`RESULT_COLUMNS`.

    ``outcomes``: one row per person and metric with ``metric_name``, ``variant``, ``value``,
    ``is_complete`` and optionally ``has_multiple_variants`` and ``pre_exposure_events``.
    """
    variants = planned_variants(outcomes["variant"].dropna().unique(), control, variants)
    if control not in variants:
        raise ValueError(f"control {control!r} is not among the variants {variants}")
    data = _Outcomes.of(outcomes, variants)
    rows = [r for m in metrics for r in _metric_rows(data, m, control, variants, alpha)]
    _adjust(rows, lambda row: row["is_guardrail"], alpha)
    for row in rows:
        row["experiment_name"] = experiment
    return _frame(rows, RESULT_COLUMNS)


def analyze_by_segment(
    outcomes: pd.DataFrame,
    segments: pd.DataFrame,
    *,
    experiment: str,
    control: str,
    metrics: Sequence[MetricSpec],
    variants: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """:func:`analyze_experiment` within each breakdown segment (:data:`SEGMENT_COLUMNS`).

    ``segments``: ``person_id``, ``segment_name``, ``segment_value`` (one value per person and
    segment name; a missing value is ``(none)``). Segment comparisons are exploratory: Holm runs
    over every segment x treatment variant x primary metric of the experiment at once (guardrails
    in their own family), so ``p_value_adjusted`` pays for every comparison made here, and
    ``comparisons_in_family`` says how many that was.
    """
    variants = planned_variants(outcomes["variant"].dropna().unique(), control, variants)
    data = _Outcomes.of(outcomes, variants)
    segments = segments.assign(segment_value=segments["segment_value"].fillna("(none)"))
    # persons as numbers: every outcome row's, and every segment member's (-1: no outcome)
    person, persons = pd.factorize(data.person_id)
    member = pd.Index(persons).get_indexer(segments["person_id"])
    rows: list[dict] = []
    groups = segments.groupby(["segment_name", "segment_value"]).indices
    for name, value in sorted(groups):
        positions = groups[name, value]
        members = member[positions]
        chosen = np.zeros(len(persons) + 1, dtype=bool)  # the last: rows without a person (-1)
        chosen[members[members >= 0]] = True
        in_segment = chosen[person]
        for metric in metrics:
            for row in _metric_rows(data, metric, control, variants, alpha, in_segment):
                rows.append({"segment_name": name, "segment_value": value, **row})
    _adjust(rows, lambda row: row["is_guardrail"], alpha)
    for row in rows:
        row["experiment_name"] = experiment
    return _frame(rows, SEGMENT_COLUMNS)


def experiment_health(
    exposures: pd.DataFrame,
    *,
    experiment: str,
    control: str,
    variants: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
    threshold: float = SRM_P_THRESHOLD,
) -> pd.DataFrame:
    """One row per planned variant (:data:`HEALTH_COLUMNS`): persons, planned and observed share,
    the sample-ratio-mismatch chi-square test (flag below ``threshold``), and the experiment-wide
    counts of persons exposed to more than one variant and of persons in an unplanned variant.

    ``exposures``: one row per person with ``variant``, ``exposed_at`` and optionally
    ``has_multiple_variants``.
    """
    plan = planned_variants(exposures["variant"].dropna().unique(), control, variants)
    if weights is not None and len(weights) != len(plan):
        raise ValueError("weights must align with variants")
    shares = np.asarray(weights if weights is not None else [1.0] * len(plan), dtype=float)
    shares = shares / shares.sum()
    multi = (
        exposures["has_multiple_variants"].fillna(False).astype(bool)
        if "has_multiple_variants" in exposures.columns
        else pd.Series(False, index=exposures.index)
    )
    single = exposures[~multi]
    unplanned = int((~single["variant"].isin(plan)).sum())
    counts = [int((single["variant"] == v).sum()) for v in plan]
    total = sum(counts)
    notes: list[str | None] = []
    if len(plan) < 2:
        statistic = p_value = None
        detected = False
        notes.append(f"only {len(plan)} variant observed: no sample-ratio test")
    else:
        srm = sample_ratio_mismatch(counts, list(shares), threshold=threshold)
        statistic, p_value, detected = srm.statistic, srm.p_value, srm.srm_detected
        notes.append(srm.reason)
    if int(multi.sum()):
        notes.append(f"{int(multi.sum())} persons exposed to more than one variant: excluded")
    if unplanned:
        notes.append(f"{unplanned} persons in an unplanned variant: excluded")
    rows = []
    for variant, share, count in zip(plan, shares, counts, strict=True):
        times = single.loc[single["variant"] == variant, "exposed_at"]
        rows.append(
            {
                "experiment_name": experiment,
                "variant": variant,
                "is_control": variant == control,
                "persons": count,
                "expected_share": float(share),
                "observed_share": count / total if total else None,
                "expected_persons": float(share * total),
                "srm_chi_square": _opt(statistic),
                "srm_p_value": _opt(p_value),
                "srm_detected": bool(detected),
                "multi_variant_persons": int(multi.sum()),
                "unplanned_variant_persons": unplanned,
                "first_exposure_at": times.min() if len(times) else None,
                "last_exposure_at": times.max() if len(times) else None,
                "note": _join(*notes),
            }
        )
    return _frame(rows, HEALTH_COLUMNS)


def pick_winner(results: pd.DataFrame) -> str | None:
    """The winning variant of one experiment's results, or None.

    A candidate has a significant (Holm-adjusted) positive lift on at least one primary metric and
    no significant negative lift on any primary metric. Among candidates: the most significant
    positive primary metrics, then the smallest adjusted p-value. Guardrails never pick a winner.
    """
    primary = results[~results["is_guardrail"].astype(bool) & ~results["is_control"].astype(bool)]
    significant = primary[primary["is_significant"].astype(bool)]
    lift = significant["absolute_lift"].astype(float)
    worse = set(significant.loc[lift < 0, "variant"])
    better = significant[(lift > 0) & ~significant["variant"].isin(worse)]
    if better.empty:
        return None
    ranked = (
        better.groupby("variant")
        .agg(wins=("metric_name", "count"), best_p=("p_value_adjusted", "min"))
        .sort_values(["wins", "best_p"], ascending=[False, True])
    )
    return str(ranked.index[0])


def guardrail_alerts(results: pd.DataFrame) -> list[str]:
    """Guardrail metrics that a variant makes significantly worse (Holm within the guardrails)."""
    rows = results[
        results["is_guardrail"].astype(bool)
        & results["is_significant"].astype(bool)
        & (results["absolute_lift"].astype(float) < 0)
    ]
    return [
        f"{r.variant} lowers {r.metric_name} by {abs(float(r.absolute_lift)):.4g}"
        for r in rows.itertuples()
    ]
