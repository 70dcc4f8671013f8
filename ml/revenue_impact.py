"""The revenue impact of features: adopters against comparable non-adopters, stratified.

Plain functions over person-level frames (``int_feature_revenue_persons`` as read from the
warehouse, or hand-built in tests). docs/behaviour.md defines the population and the windows; the
estimator, in short:

* A stratum is a signup cohort week x segment (the features breakdowns read on the signup event).
  Within stratum ``s`` the difference ``d_s = mean(adopters) - mean(non-adopters)`` and its
  variance ``v_s = s_a^2 / n_a + s_n^2 / n_n`` (sample variances, ddof 1) come from
  :func:`ml.experiment_stats.welch_ttest`.
* A stratum is used when it has at least two adopters and two non-adopters (a sample variance needs
  two); the others are dropped and counted.
* The estimate is the average effect on the adopters (ATT): ``sum w_s d_s`` with
  ``w_s = n_a,s / sum n_a`` over the used strata, so the comparison is re-weighted to the adopters'
  own mix of cohorts and segments. Its variance is ``sum w_s^2 v_s``; the 95 % CI and the two-sided
  p-value use the normal distribution (a sum over strata, each a difference of means).
* With ATT weights, the adopters' weighted mean is simply their mean over the used strata, and the
  non-adopters' weighted mean is what comparable non-adopters (same strata, adopters' mix) earn;
  the two differ by exactly the estimate.

This is observational. Adopters choose to adopt, and whatever makes them adopt (being activated,
being engaged, having a need) also drives revenue; stratification removes only the differences
between cohorts and segments, not those. The estimate is an association, not the feature's effect.

Degenerate data never raise and never give NaN: a statistic that cannot be computed is ``None``
and ``note`` says why (no adopters, no stratum with both groups); zero variance in every used
stratum follows :mod:`ml.experiment_stats`' convention (p = 1 and CI (0, 0) for a zero difference,
else p = 0 and a zero-width CI).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ml.experiment_stats import welch_ttest

MIN_PER_GROUP = 2
STRATUM_COLUMNS = ("cohort_week", "segment")
RESULT_COLUMNS = [
    "feature",
    "persons",
    "adopters",
    "adoption_rate",
    "strata_used",
    "strata_dropped",
    "adopters_used",
    "non_adopters_used",
    "conversion_adopters",
    "conversion_non_adopters",
    "conversion_difference",
    "conversion_ci_low",
    "conversion_ci_high",
    "conversion_p_value",
    "revenue_per_person_adopters",
    "revenue_per_person_non_adopters",
    "revenue_difference",
    "ci_low",
    "ci_high",
    "p_value",
    "raw_revenue_difference",
    "current_adopters",
    "implied_revenue",
    "note",
]


@dataclass(frozen=True)
class StratifiedDifference:
    """Result of :func:`stratified_difference` (``None`` where not computable; see ``reason``)."""

    mean_treated: float | None
    mean_control: float | None
    estimate: float | None
    std_error: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    strata_used: int
    strata_dropped: int
    treated_used: int
    control_used: int
    reason: str | None = None


def stratified_difference(
    values: np.ndarray | pd.Series,
    treated: np.ndarray | pd.Series,
    strata: np.ndarray | pd.Series,
    alpha: float = 0.05,
) -> StratifiedDifference:
    """The ATT-weighted stratified difference of means, treated minus control (module docstring).

    ``values`` are per-person outcomes, ``treated`` booleans (or 0/1), ``strata`` any hashable
    stratum label per person.
    """
    frame = pd.DataFrame(
        {
            "value": np.asarray(values, dtype=float),
            "treated": np.asarray(treated).astype(bool),
            "stratum": np.asarray(strata),
        }
    )
    if not np.isfinite(frame["value"]).all():
        raise ValueError("values must be finite")
    groups = (
        frame.groupby(["stratum", "treated"])["value"]
        .agg(n="size", mean="mean", var=lambda v: float(v.var(ddof=1)) if len(v) > 1 else 0.0)
        .unstack("treated")
    )
    strata_total = len(groups)
    if strata_total == 0:
        return StratifiedDifference(
            None, None, None, None, None, None, None, 0, 0, 0, 0, "no persons"
        )
    counts = groups["n"].reindex(columns=[False, True]).fillna(0)
    used_mask = (counts[True] >= MIN_PER_GROUP) & (counts[False] >= MIN_PER_GROUP)
    used = groups[used_mask]
    dropped = int(strata_total - len(used))
    if used.empty:
        reason = (
            "no adopters"
            if counts[True].sum() == 0
            else "no non-adopters"
            if counts[False].sum() == 0
            else f"no stratum has {MIN_PER_GROUP}+ adopters and {MIN_PER_GROUP}+ non-adopters"
        )
        return StratifiedDifference(
            None, None, None, None, None, None, None, 0, dropped, 0, 0, reason
        )
    differences, variances = [], []
    for _, row in used.iterrows():
        welch = welch_ttest(
            row[("mean", False)],
            row[("var", False)],
            int(row[("n", False)]),
            row[("mean", True)],
            row[("var", True)],
            int(row[("n", True)]),
            alpha,
        )
        differences.append(welch.difference)
        variances.append(welch.std_error**2)
    n_treated = used[("n", True)].to_numpy(dtype=float)
    weights = n_treated / n_treated.sum()
    estimate = float(weights @ np.asarray(differences))
    mean_treated = float(weights @ used[("mean", True)].to_numpy(dtype=float))
    mean_control = float(weights @ used[("mean", False)].to_numpy(dtype=float))
    variance = float(weights**2 @ np.asarray(variances))
    treated_used, control_used = int(n_treated.sum()), int(used[("n", False)].sum())
    common = (dropped, treated_used, control_used)
    if variance == 0.0:
        if estimate == 0.0:
            return StratifiedDifference(
                mean_treated, mean_control, 0.0, 0.0, 0.0, 0.0, 1.0, len(used), *common,
                "no variance: every used stratum constant and equal; p set to 1.0, CI (0, 0)",
            )  # fmt: skip
        return StratifiedDifference(
            mean_treated, mean_control, estimate, 0.0, estimate, estimate, 0.0, len(used), *common,
            "no variance: every used stratum constant; the difference is exact, p set to 0.0",
        )  # fmt: skip
    se = math.sqrt(variance)
    half = float(stats.norm.isf(alpha / 2)) * se
    p_value = float(2 * stats.norm.sf(abs(estimate) / se))
    return StratifiedDifference(
        mean_treated, mean_control, estimate, se, estimate - half, estimate + half, p_value,
        len(used), *common,
    )  # fmt: skip


def _stratum_labels(frame: pd.DataFrame) -> pd.Series:
    return frame["cohort_week"].astype(str) + " | " + frame["segment"].astype(str)


def feature_impact(persons: pd.DataFrame, feature: str, alpha: float = 0.05) -> dict:
    """One row of ``feature_revenue_impact`` for ``feature`` from its rows of
    ``int_feature_revenue_persons`` (columns feature, cohort_week, segment,
    in_population, adopted, converted, revenue)."""
    rows = persons[persons["feature"] == feature]
    population = rows[rows["in_population"].astype(bool)]
    adopted = population["adopted"].astype(bool)
    n, adopters = len(population), int(adopted.sum())
    current = int(rows["adopted"].astype(bool).sum())
    strata = _stratum_labels(population)
    revenue = stratified_difference(population["revenue"], adopted, strata, alpha)
    conversion = stratified_difference(population["converted"], adopted, strata, alpha)
    raw = None
    if adopters and adopters < n:
        raw = float(
            population.loc[adopted, "revenue"].mean() - population.loc[~adopted, "revenue"].mean()
        )
    notes = [revenue.reason] if revenue.reason else []
    if conversion.reason and conversion.reason != revenue.reason:
        notes.append(f"conversion: {conversion.reason}")
    if revenue.strata_dropped and revenue.strata_used:
        notes.append(
            f"{revenue.strata_dropped} strata without {MIN_PER_GROUP}+ persons in each group "
            "dropped"
        )
    return {
        "feature": feature,
        "persons": n,
        "adopters": adopters,
        "adoption_rate": adopters / n if n else None,
        "strata_used": revenue.strata_used,
        "strata_dropped": revenue.strata_dropped,
        "adopters_used": revenue.treated_used,
        "non_adopters_used": revenue.control_used,
        "conversion_adopters": conversion.mean_treated,
        "conversion_non_adopters": conversion.mean_control,
        "conversion_difference": conversion.estimate,
        "conversion_ci_low": conversion.ci_low,
        "conversion_ci_high": conversion.ci_high,
        "conversion_p_value": conversion.p_value,
        "revenue_per_person_adopters": revenue.mean_treated,
        "revenue_per_person_non_adopters": revenue.mean_control,
        "revenue_difference": revenue.estimate,
        "ci_low": revenue.ci_low,
        "ci_high": revenue.ci_high,
        "p_value": revenue.p_value,
        "raw_revenue_difference": raw,
        "current_adopters": current,
        "implied_revenue": None if revenue.estimate is None else revenue.estimate * current,
        "note": "; ".join(notes) or None,
    }


def feature_revenue_impact(
    persons: pd.DataFrame, features: list[str] | None = None, alpha: float = 0.05
) -> pd.DataFrame:
    """``feature_revenue_impact``: one row per feature (``features``, else those in ``persons``)."""
    names = features if features is not None else sorted(persons["feature"].unique())
    rows = [feature_impact(persons, name, alpha) for name in names]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)
